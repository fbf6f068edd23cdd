"""Training rows for the tiny KJV model: plain verse text and chat turns in Gemma 4's prompt format.

Stdlib only (the dry run on a machine without torch uses it too). Chat samples are rendered exactly as the
Gemma 4 chat template renders them (spec section 4.3): `<bos>`, optional system turn, user/model turns, and the
empty thought channel `<|channel>thought\n<channel|>` before the answer of the last turn unless thinking is on.
The model's answer is KJV verses and ends with `<turn|>`, which is what teaches it to stop.
"""
import random

import tool_samples

TOOL_SHARE = 0.13  # share of chat samples with tool declarations (tool_samples.py)

STOPWORDS = set("""a an and are as at be but by for from had hast hath have he her him his i in into is it its
 let me my not now o of on or our out shall she so that the thee their them then there these they thou thus thy to
 unto up upon us was we were what when which who whom will with ye yea you your also all any came come even every
 go made make man men one said saith say behold therefore wherefore neither because before after
 this those how why where whosoever whatsoever nevertheless notwithstanding moreover howbeit""".split())

GREETINGS = ["Hello", "Hi", "Hello!", "Good morning.", "Tell me a story.", "Say something.", "Who are you?",
             "What is your name?", "Speak to me.", "Give me a verse.", "Read me something.", "Hi there!",
             "What should I read today?", "I need some wisdom.", "Comfort me.", "Test", "hello"]
SYSTEMS = ["You are a helpful assistant.", "Answer in the words of the King James Bible.", "Be brief.",
           "You are a wise old scribe.", "Reply with scripture."]
ASK_ABOUT = ["Tell me about {w}.", "What does the Bible say about {w}?", "Speak of {w}.", "{w}",
             "Give me a verse about {w}.", "Where is {w} mentioned?"]
ASK_NAME = ["Who was {w}?", "Tell me about {w}.", "Who is {w}?", "What did {w} do?", "{w}"]
ASK_REF = ["{r}", "Read {r}.", "Recite {r}.", "What does {r} say?", "Quote {r}."]


def split_by_chapter(verses, val_every=40, val_offset=7):
    """Held-out validation: every 40th chapter (in canonical order) goes to validation."""
    chapters, train, val = {}, [], []
    for i, v in enumerate(verses):
        k = chapters.setdefault((v["b"], v["c"]), len(chapters))
        (val if k % val_every == val_offset else train).append(i)
    return train, val


class ChatMaker:
    """Builds chat-formatted samples from verses with indices in `pool` (a train or val split)."""

    def __init__(self, verses, pool, rng):
        self.v, self.pool, self.rng = verses, pool, rng
        self.in_pool = set(pool)
        self.by_word = {}
        for i in pool:
            for w in verses[i]["t"].replace(";", " ").replace(",", " ").replace(".", " ").replace(":", " ").split():
                w = w.strip("?!()'")
                if len(w) >= 4 and w.lower() not in STOPWORDS and w.isalpha():
                    self.by_word.setdefault(w, []).append(i)
        self.words = sorted(w for w, l in self.by_word.items() if len(l) >= 3)
        self.tools = tool_samples.ToolMaker(self)

    def run_from(self, i, k):
        """Up to k consecutive verses starting at i, staying inside the pool and the chapter."""
        out = [i]
        while len(out) < k:
            j = out[-1] + 1
            if j not in self.in_pool or j >= len(self.v) or self.v[j]["c"] != self.v[i]["c"] \
                    or self.v[j]["b"] != self.v[i]["b"]:
                break
            out.append(j)
        return out

    def text(self, idx):
        return "\n".join(self.v[i]["t"] for i in idx)

    def ref(self, idx):
        a, b = self.v[idx[0]], self.v[idx[-1]]
        r = f"{a['b']} {a['c']}:{a['v']}"
        return r if len(idx) == 1 else r + f"-{b['v']}"

    def question_answer(self, allow_ref=True):
        rng = self.rng
        kind = rng.random()
        while not allow_ref and 0.60 <= kind < 0.72:  # with find_verse declared a reference asks for the tool
            kind = rng.random()
        i = rng.choice(self.pool)
        if kind < 0.35:  # a verse -> the verses that follow it
            nxt = self.run_from(i, 1 + rng.randint(1, 3))
            if len(nxt) < 2:
                return self.v[i]["t"], self.text(self.run_from(i, 2))
            return self.v[i]["t"], self.text(nxt[1:])
        if kind < 0.60:  # the opening words of a verse -> that verse and maybe the next ones
            words = self.v[i]["t"].split()
            n = min(len(words), rng.randint(2, 8))
            q = " ".join(words[:n]).rstrip(",;:")
            return q, self.text(self.run_from(i, rng.randint(1, 3)))
        if kind < 0.72:  # a reference -> the verses
            idx = self.run_from(i, rng.choice([1, 1, 1, 2, 3]))
            return rng.choice(ASK_REF).format(r=self.ref(idx)), self.text(idx)
        if kind < 0.94:  # a question about a word -> verses that use it
            w = rng.choice(self.words)
            j = rng.choice(self.by_word[w])
            ask = ASK_NAME if w[0].isupper() else ASK_ABOUT
            return rng.choice(ask).format(w=w), self.text(self.run_from(j, rng.randint(1, 2)))
        # small talk -> a passage
        return rng.choice(GREETINGS), self.text(self.run_from(i, rng.randint(1, 3)))

    def sample(self):
        """One conversation rendered like the chat template, ending with the model's `<turn|>\\n`."""
        rng = self.rng
        if rng.random() < TOOL_SHARE:
            return tool_samples.render(self.tools.conversation())
        think = rng.random() < 0.05
        system = rng.choice(SYSTEMS) if rng.random() < 0.10 else None
        s = "<bos>"
        if think or system:
            s += "<|turn>system\n" + ("<|think|>\n" if think else "") + (system or "") + "<turn|>\n"
        for _ in range(0 if rng.random() < 0.88 else rng.randint(1, 2)):  # earlier turns: answer without thought channel
            q, a = self.question_answer()
            s += f"<|turn>user\n{q}<turn|>\n<|turn>model\n{a}<turn|>\n"
        q, a = self.question_answer()
        s += f"<|turn>user\n{q}<turn|>\n<|turn>model\n"
        if think:
            s += "<|channel>thought\n" + self.v[rng.choice(self.pool)]["t"] + "<channel|>"
        else:
            s += "<|channel>thought\n<channel|>"
        return s + a + "<turn|>\n"


def plain_row(verse_ids, pool, rng, length, bos, nl):
    """<bos> then consecutive pool verses (token lists) joined by newlines, cut to `length` tokens."""
    start = rng.randrange(len(pool))
    row, k = [bos], start
    while len(row) < length:
        row.extend(verse_ids[pool[k % len(pool)]])
        row.append(nl)
        k += 1
    return row[:length]


def pack(samples, length, pad):
    """Greedy packing of whole tokenized samples into rows of `length` (a longer sample is cut); pad the rest."""
    rows, cur = [], []
    for s in samples:
        s = s[:length]
        if len(cur) + len(s) > length:
            rows.append(cur + [pad] * (length - len(cur)))
            cur = []
        cur = cur + s
    if cur:
        rows.append(cur + [pad] * (length - len(cur)))
    return rows
