#!/usr/bin/env python3
# Serving sweep against a running server, g4 serve or llama-server alike: for each number of concurrent
# streams N, N clients each send REQUESTS streamed /v1/completions requests one after another, every one
# with its own prompt of exactly PROMPT tokens (sized with the server's /tokenize, so that both servers
# read the same length) and an answer of exactly MAX_TOKENS tokens (`ignore_eos: true`, llama-server's
# field, which g4 also takes, with `max_tokens`; greedy). Prints per N: aggregate output tokens/s (all
# answers' tokens over the wall time of the round), p50/p99 time to first token, p50/p99 inter-token
# latency (gaps between SSE chunks carrying text) and the median decode speed of one stream.
#
# Usage: python3 bench/serve_sweep.py [--port 8080] [--host 127.0.0.1] [--streams 1,4,8,16,32]
#          [--prompt 512] [--max-tokens 128] [--requests 4] [--prompt-set K] [--label NAME] [--json FILE]
# Prompts are the same on every run with the same --prompt-set; give another K to a server that is still up
# from an earlier run, or its prompt cache answers them.
# The server needs as many slots as the largest N (g4 serve --parallel N, llama-server -np N) and a
# context of PROMPT + MAX_TOKENS per slot. Python 3 standard library only (one thread per client; the GPU
# machine has no node). Exit 1 on any error.
import argparse
import json
import math
import threading
import time

from serve_client import Server, die, sse_events

PROG = "serve_sweep"
p = argparse.ArgumentParser(prog="serve_sweep.py")
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", default="8080")
p.add_argument("--streams", default="1,4,8,16,32")
p.add_argument("--prompt", default="512")
p.add_argument("--max-tokens", default="128")
p.add_argument("--requests", default="4")
p.add_argument("--label", default="")
p.add_argument("--prompt-set", default="0")
p.add_argument("--json")
a = p.parse_args()
try:
    streams = [int(x) for x in a.streams.split(",")]
    prompt_tokens, max_tokens, requests, prompt_set = int(a.prompt), int(a.max_tokens), int(a.requests), int(a.prompt_set)
except ValueError:
    streams = []
if not streams or any(n < 1 for n in streams) or prompt_tokens < 2 or max_tokens < 2 or requests < 1:
    die(PROG, "--streams N,... >= 1, --prompt >= 2, --max-tokens >= 2, --requests >= 1")
srv = Server(PROG, a.host, a.port)

# A prompt of exactly `n` tokens with <bos> (n - 1 text tokens), its own words from `id`: words are added
# or dropped until the server's tokenizer counts n - 1. The same words as the node version gave.
WORDS = ("time light land river city water people day night morning house field mountain road stone tree "
         "fire wind rain gold silver bread wine king servant child brother sister father mother friend word voice hand "
         "heart eye door gate wall tower ship sea star sun moon year hour evening garden harvest seed").split(" ")


def make_prompt(id_):
    s = (id_ * 2654435761) & 0xFFFFFFFF  # a 32-bit LCG per prompt

    def nxt():
        nonlocal s
        s = (s * 1103515245 + 12345) & 0xFFFFFFFF
        return WORDS[(s >> 16) % len(WORDS)]

    out = [f"Request {id_}:"]
    have = srv.count(" ".join(out))
    while have < prompt_tokens - 1:
        missing = prompt_tokens - 1 - have
        for _ in range(max(1, math.floor(missing * 0.8))):
            out.append(nxt())
        have = srv.count(" ".join(out))
    while have > prompt_tokens - 1 and len(out) > 1:
        out.pop()
        have = srv.count(" ".join(out))
    while have < prompt_tokens - 1:  # a dropped word was worth more than one token: pad with one-token words
        out.append("a")
        have = srv.count(" ".join(out))
    if have != prompt_tokens - 1:
        die(PROG, f"could not build a prompt of {prompt_tokens} tokens (got {have + 1})")
    return " ".join(out)


# One streamed completion: arrival times (ms from sending) of the chunks carrying text, and the token count.
warned = threading.Lock()
warned_once = [False]


def one(prompt):
    t0 = time.perf_counter()
    res = srv.post_ok("/v1/completions", {"model": "bench", "prompt": prompt, "max_tokens": max_tokens,
                                          "ignore_eos": True, "temperature": 0, "stream": True,
                                          "stream_options": {"include_usage": True}})
    times, usage, finish = [], None, None
    for j, now in sse_events(res):
        if j.get("error"):
            die(PROG, f"stream error: {json.dumps(j['error'])}")
        if j.get("usage"):
            usage = j["usage"]
        ch = (j.get("choices") or [None])[0]
        if ch and ch.get("text"):
            times.append((now - t0) * 1000)
        if ch and ch.get("finish_reason"):
            finish = ch["finish_reason"]
    if not times:
        die(PROG, "a reply carried no text")
    if finish != "length":
        die(PROG, f'an answer ended with finish_reason {finish}, not "length" (does the server take ignore_eos?)')
    # Without usage in the stream, the answer is max_tokens long (it ran to the length limit).
    tokens = usage["completion_tokens"] if usage else max_tokens
    if tokens != max_tokens:
        die(PROG, f"an answer had {tokens} tokens, not {max_tokens}")
    if usage and usage.get("prompt_tokens") != prompt_tokens:
        with warned:
            if not warned_once[0]:
                warned_once[0] = True
                print(f"# warning: the server counts {usage.get('prompt_tokens')} prompt tokens, not {prompt_tokens}",
                      flush=True)
    return times, tokens


def pct(v, q):
    s = sorted(v)
    # JS Math.round (halves up), as the node version
    return s[min(len(s) - 1, math.floor(q / 100 * (len(s) - 1) + 0.5))] if s else math.nan


def f(x, w, d=1):
    return ("NaN" if math.isnan(x) else f"{x:.{d}f}").rjust(w)


STEP_COUNTERS = ["steps_total", "step_forward_seconds_total", "step_seconds_total"]
set_base = prompt_set * 1000000
next_id = set_base + 1
rows = []
try:
    one(make_prompt(set_base))  # warm-up
except Exception as e:
    die(PROG, f"{type(e).__name__}: {e}")
print(f"# {a.label or srv.base}: prompt {prompt_tokens} tokens, {max_tokens} generated (ignore_eos), "
      f"{requests} requests per stream, greedy, /v1/completions streamed")
print("streams  requests  tok/s   ttft_p50  ttft_p99  itl_p50  itl_p99  stream_tok/s_p50   (times in ms)", flush=True)
for n in streams:
    prompts = []
    for c in range(n):
        prompts.append([])
        for r in range(requests):
            prompts[c].append(make_prompt(next_id))
            next_id += 1
    results = [[] for _ in range(n)]  # each client's (times, tokens), merged after the round

    def client(c):
        try:
            for pr in prompts[c]:
                results[c].append(one(pr))
        except Exception as e:  # a broken stream or bad JSON: the whole run fails, as an unhandled node rejection
            die(PROG, f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=client, args=(c,)) for c in range(n)]
    m0 = srv.metrics(STEP_COUNTERS)
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.perf_counter() - t0
    m1 = srv.metrics(STEP_COUNTERS)
    ttft, itl, speed, tokens = [], [], [], 0
    for mine in results:
        for times, k in mine:
            tokens += k
            ttft.append(times[0])
            itl.extend(times[i] - times[i - 1] for i in range(1, len(times)))
            span = times[-1] - times[0]
            if span > 0:
                speed.append((k - 1) * 1000 / span)
    row = {"streams": n, "requests": n * requests, "tok_s": tokens / secs, "ttft_p50": pct(ttft, 50),
           "ttft_p99": pct(ttft, 99), "itl_p50": pct(itl, 50), "itl_p99": pct(itl, 99),
           "stream_tok_s_p50": pct(speed, 50)}
    rows.append(row)
    print(f"{n:>7}  {row['requests']:>8}  {f(row['tok_s'], 6)}  {f(row['ttft_p50'], 8)}  "
          f"{f(row['ttft_p99'], 8)}  {f(row['itl_p50'], 7, 2)}  {f(row['itl_p99'], 7, 2)}  "
          f"{f(row['stream_tok_s_p50'], 16)}", flush=True)
    if None not in m0.values() and None not in m1.values() and m1["steps_total"] > m0["steps_total"]:
        # g4 serve's own split of the round: its scheduler's steps, their forward passes, the host around them.
        k = m1["steps_total"] - m0["steps_total"]
        fwd = (m1["step_forward_seconds_total"] - m0["step_forward_seconds_total"]) * 1000 / k
        step = (m1["step_seconds_total"] - m0["step_seconds_total"]) * 1000 / k
        print(f"#   g4 steps: {k:.0f} in {secs:.2f} s; per step {step:.3f} ms = forward {fwd:.3f} + host {step - fwd:.3f}; "
              f"between steps {(secs * 1000 - step * k) / k:.3f} ms", flush=True)
if a.json:
    clean = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]
    with open(a.json, "w") as fh:
        fh.write(json.dumps({"label": a.label, "base": srv.base, "prompt": prompt_tokens, "max_tokens": max_tokens,
                             "rows": clean}, indent=1) + "\n")
