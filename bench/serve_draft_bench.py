#!/usr/bin/env python3
# Server throughput with and without speculative decoding: for plain, --draft-ngram and -md, starts
# `g4 serve --parallel 4 -t 1` on models/tiny-kjv (cpu), sends 1 and then 4 concurrent raw completions of
# 200 tokens (ignore_eos) of a KJV prompt, 4 times each, and prints the best aggregate tok/s of each and the
# server's drafted / accepted counters. Run from the repository root after building build/release/g4.
import json, subprocess, time, urllib.request, concurrent.futures, sys
PROMPT = ("In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness "
          "was upon the face of the deep. And God said, Let there be light: and there was light. And God said,")
def post(port, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=300))
def metric(port, name):
    t = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    for l in t.splitlines():
        if l.startswith("g4_" + name + " "): return float(l.split()[1])
for flags in [[], ["--draft-ngram"], ["-md", "models/tiny-kjv-assistant"]]:
    port = 18479
    p = subprocess.Popen(["build/release/g4", "serve", "-m", "models/tiny-kjv", "--backend", "cpu", "--port", str(port), "--parallel", "4", "--quiet", "-t", "1"] + flags, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try: urllib.request.urlopen(f"http://127.0.0.1:{port}/health"); break
        except Exception: time.sleep(0.1)
    res = {}
    for streams in [1, 4]:
        best = 0
        for rep in range(4):
            bodies = [{"prompt": f"{i}{rep}. " + PROMPT, "max_tokens": 200, "temperature": 0, "ignore_eos": True} for i in range(streams)]
            t0 = time.time()
            with concurrent.futures.ThreadPoolExecutor(streams) as ex: out = list(ex.map(lambda b: post(port, b), bodies))
            dt = time.time() - t0
            toks = sum(o["usage"]["completion_tokens"] for o in out)
            best = max(best, toks / dt)
        res[streams] = best
    d, a = metric(port, "draft_tokens_total"), metric(port, "draft_accepted_tokens_total")
    p.terminate(); p.wait()
    print(f"{' '.join(flags) or 'plain':35s} 1 stream best {res[1]:6.1f} tok/s   4 streams best {res[4]:6.1f} tok/s   drafted {d:.0f} accepted {a:.0f} ({100*a/max(d,1):.0f}%)", flush=True)
