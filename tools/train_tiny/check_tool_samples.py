#!/usr/bin/python3
"""Holds tool_samples.render byte-equal to Google's gemma-4-31B-it chat template rendered by jinja2 (set up as
transformers does: trim_blocks, lstrip_blocks), on COUNT drawn tool conversations; prints two examples.
Usage: check_tool_samples.py KJV.JSONL TEMPLATE.jinja [COUNT]   (Debian python3 with python3-jinja2)"""
import json, os, random, sys
from jinja2 import ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import samples, tool_samples

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[ext.loopcontrols])
tpl = env.from_string(open(sys.argv[2], encoding="utf-8").read())
verses = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
train, _ = samples.split_by_chapter(verses)
maker = samples.ChatMaker(verses, train, random.Random(3))
kinds, bad = {}, 0
for n in range(int(sys.argv[3]) if len(sys.argv) > 3 else 3000):
    conv = maker.tools.conversation()
    mine = tool_samples.render(conv)
    ref = tpl.render(messages=conv["messages"], tools=conv["tools"], bos_token="<bos>",
                     add_generation_prompt=conv["add_generation_prompt"]) + conv["completion"]
    k = "round trip" if not conv["add_generation_prompt"] else "call" if "<|tool_call>" in mine else "text answer"
    kinds[k] = kinds.get(k, 0) + 1
    if mine != ref:
        bad += 1
        if bad <= 3:
            print("MISMATCH\n mine:", repr(mine), "\n  ref:", repr(ref))
    if n < 3:
        print(f"example ({k}):", repr(mine))
print(f"{n + 1 - bad}/{n + 1} tool conversations byte-equal to the jinja2 rendering; kinds {kinds}")
# The prompt the reference and the C++ test use: get_weather declared, one user question.
p = tool_samples.render({"messages": [{"role": "user", "content": "What is the weather in Jerusalem?"}],
                         "tools": [tool_samples.WEATHER], "add_generation_prompt": True})
q = tpl.render(messages=[{"role": "user", "content": "What is the weather in Jerusalem?"}],
               tools=[tool_samples.WEATHER], bos_token="<bos>", add_generation_prompt=True)
print("tool prompt equal:", p == q, repr(p))
sys.exit(1 if bad or p != q else 0)
