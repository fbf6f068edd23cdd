#!/usr/bin/env python3
"""Where a kernel's instructions go, region by region, from bench/ncu_hotspots.sh's SASS table.

A region is the run of instructions between two block barriers (BAR.SYNC), warp syncs or exits, in address
order: for a kernel staged in phases (copy, barrier, multiply, barrier, ...) each phase reads as one line with
its executed instructions (summed over warps), its warp-stall samples and its most executed opcodes. Two
profiles of related kernels (a one-row and a packed variant, an old and a new build) side by side show which
phase grew. The executed count of a region's busiest instruction says how often the region ran (a loop
body runs once a tile, a prologue once a warp).

    bench/ncu_regions.py hot_sass.csv [hot_sass.csv ...]
"""
import csv
import sys


def num(s):
    try:
        return float(s.replace(",", ""))
    except ValueError:
        return 0.0


def regions(path):
    rows = [r for r in csv.reader(open(path)) if r]
    # Newer ncu versions print a "Kernel Name" row before the header.
    start = next(i for i, r in enumerate(rows) if "Source" in r and "Address" in r)
    head, body = rows[start], rows[start + 1:]
    src, execd = head.index("Source"), head.index("Instructions Executed")
    stall = head.index("Warp Stall Sampling (All Samples)")
    out, cur = [], None
    for k, r in enumerate(body):
        if cur is None:
            cur = {"first": k, "inst": 0.0, "samples": 0.0, "most": 0.0, "ops": {}}
        text = r[src].split()
        op = (text[1] if text and text[0].startswith("@") and len(text) > 1 else (text[0] if text else "")).split(".")[0]
        e = num(r[execd])
        cur["inst"] += e
        cur["samples"] += num(r[stall])
        cur["most"] = max(cur["most"], e)
        cur["ops"][op] = cur["ops"].get(op, 0.0) + e
        if op in ("BAR", "WARPSYNC", "EXIT"):
            cur["last"] = k
            out.append(cur)
            cur = None
    if cur is not None:
        cur["last"] = len(body) - 1
        out.append(cur)
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        rs = regions(path)
        total = sum(r["inst"] for r in rs)
        print(f"== {path}: {total:,.0f} instructions executed")
        for r in rs:
            if r["inst"] == 0:
                continue
            ops = " ".join(f"{o}:{v:,.0f}" for o, v in sorted(r["ops"].items(), key=lambda x: -x[1])[:6])
            print(f"[{r['first']:5d}-{r['last']:5d}] {r['inst']:11,.0f} instr {r['samples']:6.0f} samples "
                  f"x{r['most']:<7,.0f} {ops}")


if __name__ == "__main__":
    main()
