#!/usr/bin/env python3
# Multi-turn chat against a running server (g4 serve or any OpenAI-compatible one): how much of each
# turn's prompt the prompt cache reuses and how soon the answer starts.
#
# Turn 1 sends a history of about HISTORY tokens (fixed user/assistant messages of deterministic text,
# ending with a user message); turns 2..TURNS each append an assistant message and a new user message
# (about 100-300 tokens together) and ask for a short streamed reply (greedy, MAX_TOKENS tokens:
# `ignore_eos`). As a chat UI does with its stored history, the client sends its own fixed text as the
# earlier assistant turns, not the generated replies.
# Per turn it prints prompt tokens, usage.prompt_tokens_details.cached_tokens, the tokens of the previous
# prompt that were not reused, time to first token and total time. Last, a "cold" row: the final turn's
# messages with a different first word, so that no slot holds its prefix (a cold prefill of the same length).
#
# Usage: python3 bench/serve_turns.py [--port 8080] [--host 127.0.0.1] [--history 8192] [--turns 5]
#          [--max-tokens 16] [--thinking] [--model NAME]
# The server needs a context (-c) of at least HISTORY + (TURNS - 1) * 300 + MAX_TOKENS tokens; when the
# history does not fit, the server's refusal is printed and the exit status is 1.
# Time to first token: from sending the request to the first chunk carrying generated text (g4 sends the
# role chunk before reading the prompt, so that one does not count).
# Python 3 standard library only (the GPU machine has no node). Exit status 1 on any error.
import argparse
import json
import math
import re
import time

from serve_client import Server, die, read_all, sse_events

PROG = "serve_turns"
p = argparse.ArgumentParser(prog="serve_turns.py")
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", default="8080")
p.add_argument("--history", default="8192")
p.add_argument("--turns", default="5")
p.add_argument("--max-tokens", default="16")
p.add_argument("--thinking", action="store_true")
p.add_argument("--model", default="bench")
a = p.parse_args()
try:
    history, turns, max_tokens = int(a.history), int(a.turns), int(a.max_tokens)
except ValueError:
    history = turns = max_tokens = 0
if history < 16 or turns < 1 or max_tokens < 1:
    die(PROG, "--history >= 16, --turns >= 1 and --max-tokens >= 1")
srv = Server(PROG, a.host, a.port)

# Deterministic text: sentences of common words from a fixed generator (the node version's words).
WORDS = ("the a of and to in that it with as for was on are be this by from at or have an they which one "
         "you were all we when there can said each use how their if will up other about out many then them these so "
         "some her would make like him into time has look two more write go see number no way could people my than "
         "first water been call who oil its now find long down day did get come made may part light land river city").split(" ")
seed = 20261202


def rand():  # a 32-bit LCG
    global seed
    seed = (seed * 1103515245 + 12345) & 0xFFFFFFFF
    return seed / 4294967296


def text(n_words):
    out = []
    for i in range(n_words):
        w = WORDS[math.floor(rand() * len(WORDS))]
        if i == 0 or out[i - 1].endswith("."):
            w = w[0].upper() + w[1:]
        out.append(w + "." if rand() < 0.08 or i == n_words - 1 else w)
    return " ".join(out)


def ask(messages):
    """One streamed chat request: (prompt tokens, cached tokens or None, ttft ms, total ms, text)."""
    body = {"model": a.model, "messages": messages, "max_tokens": max_tokens, "ignore_eos": True, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True},
            "chat_template_kwargs": {"enable_thinking": a.thinking}}
    t0 = time.perf_counter()
    res = srv.post("/v1/chat/completions", body)
    if res.status != 200:
        msg = read_all(res)
        try:
            msg = json.loads(msg)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            pass
        hint = (" (start the server with a larger -c, or ask for a shorter --history)"
                if re.search("context|n_ctx|exceed", msg, re.I) else "")
        die(PROG, f"HTTP {res.status}: {msg}{hint}")
    ttft, usage, out = None, None, ""
    try:
        for j, now in sse_events(res):
            if j.get("error"):
                die(PROG, f"stream error: {json.dumps(j['error'])}")
            if j.get("usage"):
                usage = j["usage"]
            ch = (j.get("choices") or [None])[0]
            d = ch.get("delta") if ch else None
            piece = ((d.get("content") or "") + (d.get("reasoning_content") or "")) if d else ""
            if piece and ttft is None:
                ttft = (now - t0) * 1000  # the first generated text, not the role chunk
            out += piece
    except Exception as e:
        die(PROG, f"{type(e).__name__}: {e}")
    total = (time.perf_counter() - t0) * 1000
    if not usage:
        die(PROG, "the server sent no usage (stream_options.include_usage)")
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if details else None
    return usage["prompt_tokens"], cached, (total if ttft is None else ttft), total, out


# The history: user questions of ~150 words and assistant answers of ~300 words until about `history`
# tokens (checked against the server's count: the first request is sized from a sample), then a user turn.
per_word = ask([{"role": "user", "content": text(500)}])[0] / 500  # also a warm-up
messages = []
words_ = 0
while (words_ + 150) * per_word < history:
    messages.append({"role": "user", "content": text(60)})
    messages.append({"role": "assistant", "content": text(240)})
    words_ += 300
messages.append({"role": "user", "content": text(max(5, math.floor((history - words_ * per_word) / per_word + 0.5)))})


def fmt(x, w):
    return str(x).rjust(w)


print(f"# {srv.base}, history ~{history} tokens ({per_word:.2f} tokens/word), {turns} turns, "
      f"max_tokens {max_tokens}, thinking {'on' if a.thinking else 'off'}")
print("turn  prompt  cached  not-reused  ttft_ms  total_ms", flush=True)
prev = last = None
for t in range(1, turns + 1):
    if t > 1:
        messages.append({"role": "assistant", "content": text(90)})  # the client's stored reply, not the generated one
        messages.append({"role": "user", "content": text(50)})
    r = ask(messages)
    lost = "-" if prev is None or r[1] is None else prev - r[1]
    print(f"{fmt(t, 4)}  {fmt(r[0], 6)}  {fmt('-' if r[1] is None else r[1], 6)}  {fmt(lost, 10)}  "
          f"{fmt(f'{r[2]:.1f}', 7)}  {fmt(f'{r[3]:.1f}', 8)}", flush=True)
    prev, last = r[0], r
# Cold: the same messages but the first word changed, so no cached prefix beyond the template's first tokens.
messages[0] = dict(messages[0], content="Cold " + messages[0]["content"])
c = ask(messages)
print(f"cold  {fmt(c[0], 6)}  {fmt('-' if c[1] is None else c[1], 6)}  {fmt('-', 10)}  {fmt(f'{c[2]:.1f}', 7)}  "
      f"{fmt(f'{c[3]:.1f}', 8)}")
print(f"turn {turns}: ttft {last[2]:.1f} ms against {c[2]:.1f} ms cold ({c[2] / last[2]:.1f}x)")
