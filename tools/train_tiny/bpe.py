"""A small BPE tokenizer in the family of Gemma's tokenizer.json, trained and applied with the stdlib only.

Layout written: HF `tokenizers` BPE model, byte_fallback true, unk <unk>, normalizer Replace(' ' -> '▁'), the
same no-op pre-tokenizer as Gemma 3's file (Split on ' ' after the normalizer removed every ' '), decoder
Replace('▁' -> ' ') + ByteFallback + Fuse, <bos> prepended by the post-processor, no prefix space.
Training counts units (a word with its leading '▁', a digit, a punctuation run), so no merge ever joins two
units: applying the merges to a whole text, as the tokenizer.json does, gives the same pieces as applying them
unit by unit here (the file's own check on the GPU machine compares both on the whole corpus).
"""
import heapq, json, re

SPACE = "\u2581"
# Gemma 4's special tokens; ids 0-3 as in Gemma, the rest in this order from id 4 (ids differ from the 31B's).
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<|turn>", "<turn|>", "<|channel>", "<channel|>", "<|think|>",
            "<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>", "<|tool>", "<tool|>", '<|"|>']
BYTES = [f"<0x{b:02X}>" for b in range(256)]
# Every printable ASCII character (space becomes '▁') and newline get a token of their own.
BASE_CHARS = [SPACE, "\n"] + [chr(c) for c in range(0x21, 0x7F)]
# A unit is optional '▁'s then a letter run, one digit, or a run of other characters; '▁' runs and newline runs
# stand alone. Whether two neighbours fall in one unit depends only on those two characters, which is what keeps
# merges inside units when the tokenizer.json applies them to a whole text.
WORD = re.compile(SPACE + "*(?:[A-Za-z]+|[0-9]|[^A-Za-z0-9" + SPACE + "\n]+)|" + SPACE + "+|\n+")


def normalize(text):
    return text.replace(" ", SPACE)


def split_words(norm):
    """Training/encoding units (see WORD)."""
    return WORD.findall(norm)


def train(word_counts, vocab_size):
    """word_counts: {normalized word: count}. Returns (vocab tokens in id order, merges as (a, b) pairs)."""
    vocab = SPECIALS + BYTES + BASE_CHARS
    known = set(vocab)
    words = [list(w) for w in word_counts]
    freqs = list(word_counts.values())
    for w in words:  # characters outside the base set fall back to bytes; they never join a merge
        for i, ch in enumerate(w):
            if ch not in known:
                w[i] = None
    pair_count, pair_words = {}, {}

    def add_pairs(wi, sign):
        w, f = words[wi], freqs[wi]
        for a, b in zip(w, w[1:]):
            if a is None or b is None:
                continue
            pair_count[(a, b)] = pair_count.get((a, b), 0) + sign * f
            if sign > 0:
                pair_words.setdefault((a, b), set()).add(wi)

    for wi in range(len(words)):
        add_pairs(wi, +1)
    # Max-heap on count; ties go to the lexicographically smaller pair so training is deterministic.
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges = []
    while len(vocab) < vocab_size and heap:
        negc, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -negc or negc == 0:
            continue  # stale entry
        a, b = pair
        new = a + b
        merges.append(pair)
        if new not in known:
            vocab.append(new)
            known.add(new)
        touched = set()
        for wi in pair_words.pop(pair, ()):
            w = words[wi]
            add_pairs(wi, -1)
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[wi] = out
            add_pairs(wi, +1)
            for x, y in zip(out, out[1:]):
                touched.add((x, y))
        pair_count.pop(pair, None)
        for p in touched:
            c = pair_count.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p))
    return vocab, merges


class Tokenizer:
    """Encodes like the tokenizer.json this module writes (special tokens matched atomically first)."""

    def __init__(self, vocab, merges):
        self.vocab = list(vocab)
        self.ids = {t: i for i, t in enumerate(self.vocab)}
        self.rank = {tuple(m): r for r, m in enumerate(merges)}
        self.cache = {}
        self.special_re = re.compile("|".join(re.escape(s) for s in sorted(SPECIALS, key=len, reverse=True)))

    def _bpe(self, word):
        syms = list(word)
        while len(syms) > 1:
            best, at = None, -1
            for i in range(len(syms) - 1):
                r = self.rank.get((syms[i], syms[i + 1]))
                if r is not None and (best is None or r < best):
                    best, at = r, i
            if best is None:
                break
            syms[at:at + 2] = [syms[at] + syms[at + 1]]
        out = []
        for s in syms:
            if s in self.ids:
                out.append(self.ids[s])
            else:
                out.extend(self.ids[BYTES[b]] for b in s.encode("utf-8"))
        return out

    def encode(self, text):
        out, pos = [], 0
        for m in list(self.special_re.finditer(text)) + [None]:
            end = m.start() if m else len(text)
            for w in split_words(normalize(text[pos:end])):
                if w not in self.cache:
                    self.cache[w] = self._bpe(w)
                out.extend(self.cache[w])
            if m:
                out.append(self.ids[m.group(0)])
                pos = m.end()
        return out

    def decode(self, ids):
        parts, pending = [], bytearray()
        for i in ids:
            t = self.vocab[i]
            if t in BYTES:
                pending.append(int(t[3:5], 16))
                continue
            if pending:
                parts.append(pending.decode("utf-8", errors="replace"))
                pending = bytearray()
            parts.append(t.replace(SPACE, " "))
        if pending:
            parts.append(pending.decode("utf-8", errors="replace"))
        return "".join(parts)


def tokenizer_json(vocab, merges):
    bos = SPECIALS.index("<bos>")
    added = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for i, s in enumerate(SPECIALS)]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": SPACE},
        "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious",
                          "invert": False},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<bos>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<bos>": {"id": "<bos>", "ids": [bos], "tokens": ["<bos>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(vocab)}, "merges": [list(m) for m in merges]},
    }


def tokenizer_config():
    dec = {str(i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                    "special": True} for i, s in enumerate(SPECIALS)}
    return {"add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": dec, "bos_token": "<bos>",
            "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>", "clean_up_tokenization_spaces": False,
            "model_max_length": 4096, "padding_side": "left", "spaces_between_special_tokens": False,
            "tokenizer_class": "GemmaTokenizer"}
