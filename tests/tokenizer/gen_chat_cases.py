#!/usr/bin/python3
"""Random Gemma 4 conversations rendered with the official template by Jinja, set up the way transformers
(and ../shared/oracle/render_chat.py) does it. The C++ renderer must reproduce every rendering byte for byte.
Usage: gen_chat_cases.py TEMPLATE SEED COUNT OUT.json   (needs python3-jinja2)"""
import json, random, sys
from datetime import datetime
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2 import ext

def raise_exception(msg):
    raise ValueError(msg)
def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[ext.loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda f: datetime(2026, 1, 1).strftime(f)
tpl = env.from_string(open(sys.argv[1]).read())
R = random.Random(int(sys.argv[2]))

WORDS = ["hello", "Paris", "  padded  ", "\n\nnewlines\n", "日本語", "emoji 😀", "tab\there", "x", "Quote's", 'dq"s',
         "back\\slash", "\u3000ideographic space\u3000", "\u00a0nbsp", "a,b:c{d}", "<b>bold</b>", "é", "Zürich"]
def text(n=3):
    return "".join(R.choice(WORDS) + R.choice([" ", "", "\n", "  "]) for _ in range(R.randint(0, n)))
def ident():
    return R.choice(["city", "Unit", "query", "limit", "a", "B", "zeta", "alpha_1", "Alpha", "count", "x-y"])
def scalar():
    c = R.randint(0, 7)
    if c == 0: return R.randint(-1000, 10**12)
    if c == 1: return R.choice([0.1, 2.5, -3.0, 1e-7, 1e16, 123456.789, 1.5e300, 0.0001, 100.0, 1e22])
    if c == 2: return R.choice([True, False])
    if c == 3: return None
    return text(2)
def value(depth=0):
    c = R.randint(0, 5 if depth < 2 else 2)
    if c <= 2: return scalar()
    if c == 3: return [value(depth + 1) for _ in range(R.randint(0, 3))]
    return {ident(): value(depth + 1) for _ in range(R.randint(0, 3))}
def schema(depth=0):
    t = R.choice(["string", "integer", "number", "boolean", "array", "object", "STRING"] if depth < 2 else ["string", "integer"])
    s = {"type": t}
    if R.random() < 0.6: s["description"] = text(2)
    if t.lower() == "string" and R.random() < 0.4: s["enum"] = [text(1) for _ in range(R.randint(1, 3))]
    if R.random() < 0.15: s["nullable"] = True
    if t == "array" and R.random() < 0.8:
        it = schema(depth + 1) if R.random() < 0.7 else {"type": R.choice(["string", ["string", "null"]]), "minItems": 1}
        if R.random() < 0.3: it["extra"] = None
        s["items"] = it
    if t == "object":
        if R.random() < 0.8:
            s["properties"] = {ident(): schema(depth + 1) for _ in range(R.randint(0, 3))}
            if s["properties"] and R.random() < 0.6: s["required"] = R.sample(list(s["properties"]), 1)
        else:
            s[ident()] = schema(depth + 1)
    return s
def tool():
    f = {"name": R.choice(["get_weather", "search", "calc", "send_mail"]), "description": text(2)}
    if R.random() < 0.85:
        props = {ident(): schema() for _ in range(R.randint(0, 4))}
        f["parameters"] = {"type": "object", "properties": props}
        if props and R.random() < 0.7: f["parameters"]["required"] = R.sample(list(props), R.randint(1, len(props)))
    if R.random() < 0.2:
        f["response"] = {"type": R.choice(["object", "string"]), **({"description": text(1)} if R.random() < 0.5 else {})}
    return {"type": "function", "function": f}
def content(role):
    c = R.random()
    if c < 0.6:
        s = text(4)
        if role == "assistant" and R.random() < 0.4:
            s = R.choice(["", "  "]) + "<|channel>thought\n" + text(2) + "<channel|>" + s
        return s
    if c < 0.9:
        parts = []
        for _ in range(R.randint(0, 3)):
            k = R.choice(["text", "text", "image", "audio", "video"])
            parts.append({"type": k, "text": text(2)} if k == "text" else {"type": k})
        return parts
    return None if R.random() < 0.5 else ""
def conversation():
    msgs = []
    if R.random() < 0.4:
        msgs.append({"role": R.choice(["system", "developer"]), "content": text(3)})
    call_id = 0
    for _ in range(R.randint(1, 5)):
        msgs.append({"role": "user", "content": content("user")})
        if R.random() < 0.3:
            calls = []
            for _ in range(R.randint(1, 2)):
                call_id += 1
                args = {ident(): value() for _ in range(R.randint(0, 3))} if R.random() < 0.85 else '{"raw": 1}'
                calls.append({"id": "call_%d" % call_id, "type": "function",
                              "function": {"name": R.choice(["get_weather", "search"]), "arguments": args}})
            m = {"role": "assistant", "content": R.choice(["", None, text(1)]), "tool_calls": calls}
            if R.random() < 0.3: m["reasoning_content"] = text(2)
            if R.random() < 0.2:
                m["tool_responses"] = [{"name": c["function"]["name"], "response": R.choice([value(), {"ok": True}, text(1)])} for c in calls]
                msgs.append(m)
            else:
                msgs.append(m)
                for c in calls:
                    t = {"role": "tool", "content": R.choice([text(2), json.dumps(value()), [{"type": "text", "text": text(1)}]])}
                    if R.random() < 0.5: t["tool_call_id"] = c["id"]
                    else: t["name"] = c["function"]["name"]
                    msgs.append(t)
            if R.random() < 0.5:
                msgs.append({"role": "assistant", "content": content("assistant")})
        elif R.random() < 0.8:
            msgs.append({"role": "assistant", "content": content("assistant")})
            if R.random() < 0.1:
                msgs.append({"role": "assistant", "content": text(1)})
    if R.random() < 0.3 and msgs[-1]["role"] == "assistant":
        msgs.pop()
    return msgs

out = []
for i in range(int(sys.argv[3])):
    c = {"name": "random %d" % i, "messages": conversation()}
    if R.random() < 0.35: c["tools"] = [tool() for _ in range(R.randint(1, 3))]
    if R.random() < 0.5: c["enable_thinking"] = R.random() < 0.6
    if R.random() < 0.2: c["add_generation_prompt"] = False
    kw = dict(messages=c["messages"], bos_token="<bos>", add_generation_prompt=c.get("add_generation_prompt", True))
    if "tools" in c: kw["tools"] = c["tools"]
    if "enable_thinking" in c: kw["enable_thinking"] = c["enable_thinking"]
    try:
        c["rendered"] = tpl.render(**kw)
    except Exception as e:
        c["error"] = str(e)
    out.append(c)
json.dump(out, open(sys.argv[4], "w"), ensure_ascii=False, indent=0)
print(len(out), "conversations,", sum("error" in o for o in out), "raise an error")
