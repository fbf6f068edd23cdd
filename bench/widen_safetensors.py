#!/usr/bin/python3
"""Copies a safetensors file with its BF16 tensors widened to F32 (exactly: a bf16 is the top half of an f32).
bench/export_vs_llamacpp.sh uses it for a GGUF whose matrices llama.cpp multiplies in f32.
Usage: widen_safetensors.py IN.safetensors OUT.safetensors"""
import array
import json
import struct
import sys

src, dst = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
out, blobs, off = {}, [], 0
for name, t in header.items():
    if name == "__metadata__":
        out[name] = t
        continue
    a, b = t["data_offsets"]
    raw = data[8 + n + a:8 + n + b]
    dtype = t["dtype"]
    if dtype == "BF16":
        halves = array.array("H")
        halves.frombytes(raw)
        raw = array.array("I", [h << 16 for h in halves]).tobytes()
        dtype = "F32"
    out[name] = {"dtype": dtype, "shape": t["shape"], "data_offsets": [off, off + len(raw)]}
    blobs.append(raw)
    off += len(raw)
head = json.dumps(out).encode()
head += b" " * (-len(head) % 8)
with open(dst, "wb") as f:
    f.write(struct.pack("<Q", len(head)))
    f.write(head)
    for b in blobs:
        f.write(b)
