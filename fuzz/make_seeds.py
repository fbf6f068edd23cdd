#!/usr/bin/env python3
"""Writes the seed inputs of fuzz/corpus/{gguf,tokenizer}/ that are derived from the shipped files (small
enough for the fuzzers' 64 KiB input limit): the tiny GGUF's metadata (no tensors) with that vocabulary, and tiny-kjv's tokenizer.json cut to its first 300 ids. Run from the repository root."""
import json, struct

def gguf_small(src, dst, tok_json):
    b = open(src, "rb").read()
    pos = 0
    def take(n):
        nonlocal pos
        pos += n
        return b[pos - n:pos]
    def u32(): return struct.unpack("<I", take(4))[0]
    def u64(): return struct.unpack("<Q", take(8))[0]
    def string(): return take(u64())
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    def value(t):
        if t == 8: return string()
        if t == 9:
            et, n = u32(), u64()
            return (et, [value(et) for _ in range(n)])
        return take(sizes[t])
    assert take(4) == b"GGUF"
    version, n_t, n_kv = u32(), u64(), u64()
    kvs = []
    for _ in range(n_kv):
        k = string(); t = u32(); kvs.append((k, t, value(t)))
    def enc(t, v):
        if t == 8: return struct.pack("<Q", len(v)) + v
        if t == 9:
            et, items = v
            return struct.pack("<IQ", et, len(items)) + b"".join(enc(et, x) for x in items)
        return v
    # The tiny GGUF carries no vocabulary: give it the small tokenizer.json seed's, as llama.cpp writes it.
    d = json.load(open(tok_json))
    pieces = [p for p, i in sorted(d["model"]["vocab"].items(), key=lambda x: x[1])]
    special = {t["id"] for t in d["added_tokens"] if t["special"]}
    out = [(k, t, v) for k, t, v in kvs if not k.startswith(b"tokenizer.")]
    out += [(b"tokenizer.ggml.model", 8, b"gemma4"),
            (b"tokenizer.ggml.tokens", 9, (8, [p.encode() for p in pieces])),
            (b"tokenizer.ggml.scores", 9, (6, [struct.pack("<f", -float(i)) for i in range(len(pieces))])),
            (b"tokenizer.ggml.token_type", 9, (5, [struct.pack("<i", 3 if i in special else 6 if
                                                               p.startswith("<0x") else 1)
                                                   for i, p in enumerate(pieces)])),
            (b"tokenizer.ggml.merges", 9, (8, [" ".join(m).encode() for m in d["model"]["merges"]])),
            (b"tokenizer.ggml.bos_token_id", 4, struct.pack("<I", 2)),
            (b"tokenizer.ggml.eos_token_id", 4, struct.pack("<I", 1))]
    body = b"GGUF" + struct.pack("<IQQ", version, 0, len(out))
    for k, t, v in out:
        body += struct.pack("<Q", len(k)) + k + struct.pack("<I", t) + enc(t, v)
    open(dst, "wb").write(body)

def tokenizer_small(src, dst, keep=300):
    d = json.load(open(src))
    # Ids below `keep` plus everything the first merges touch, renumbered densely in the original order.
    merges = [m if isinstance(m, list) else m.split(" ", 1) for m in d["model"]["merges"][:keep // 2]]
    wanted = {p for m in merges for p in (m[0], m[1], m[0] + m[1])}
    old = d["model"]["vocab"]
    kept = sorted((i, p) for p, i in old.items() if i < keep or p in wanted)
    vocab = {p: n for n, (i, p) in enumerate(kept)}
    d["model"]["vocab"] = vocab
    d["model"]["merges"] = [m for m in merges if m[0] in vocab and m[1] in vocab and m[0] + m[1] in vocab]
    d["added_tokens"] = [t for t in d["added_tokens"] if t["id"] < keep]
    json.dump(d, open(dst, "w"), ensure_ascii=False)

tokenizer_small("models/tiny-kjv/tokenizer.json", "fuzz/corpus/tokenizer/tiny_kjv_300.json")
gguf_small("tests/data/gguf-llamacpp/tiny-q4_k_m.gguf", "fuzz/corpus/gguf/tiny_meta.gguf",
           "fuzz/corpus/tokenizer/tiny_kjv_300.json")
