#!/usr/bin/env python3
"""Reads the SASS table of bench/ncu_hotspots.sh (Nsight Compute's source page, one row an instruction).

    bench/ncu_regions.py --top N hot_sass.csv   the N instructions with the most warp-stall samples, with
                                                their share of all samples, in address order (a loop's hot
                                                region reads as one block)
    bench/ncu_regions.py hot_sass.csv [...]     where the instructions go, region by region

A region is the run of instructions up to a block barrier (BAR), warp sync or exit, in address order: for a
kernel staged in phases (copy, barrier, multiply, barrier, ...) each phase reads as one line with its executed
instructions (summed over warps), its warp-stall samples and its most executed opcodes. Two profiles of
related kernels (a one-row and a packed variant, an old and a new build) side by side show which phase grew.
The executed count of a region's busiest instruction says how often the region ran (a loop body once a tile,
a prologue once a warp).
"""
import csv
import sys


def num(s):
    try:
        return float(s.replace(",", ""))
    except ValueError:
        return 0.0


def load(path):
    """The table's rows as dicts of the columns used here: source, address, stall samples, executed count."""
    rows = list(csv.reader(l for l in open(path) if l.strip() and not l.startswith("==")))
    if not rows:
        sys.exit(f"{path}: no source rows in the report")

    # Newer ncu versions print a "Kernel Name" row before the header: the header is the first row naming both
    # the source and the address columns.
    def has(r, *words):
        return any(all(w.lower() in h.lower() for w in words) for h in r)

    start = next((i for i, r in enumerate(rows) if has(r, "Source") and has(r, "Address")), 0)
    head = rows[start]

    def col(*words):
        return next((i for i, h in enumerate(head) if all(w.lower() in h.lower() for w in words)), None)

    src, addr = col("Source"), col("Address")
    stall = col("Sampling", "All") if col("Sampling", "All") is not None else col("Sampling")
    execd = col("Instructions Executed")
    if src is None or stall is None:
        sys.exit(f"{path}: columns not found; header: " + ", ".join(head))
    out = []
    for i, r in enumerate(rows[start + 1:]):
        if len(r) <= max(src, stall):
            continue
        out.append({"at": r[addr] if addr is not None else str(i), "source": r[src].strip(),
                    "samples": num(r[stall]), "executed": num(r[execd]) if execd is not None else 0.0})
    return out


def top(path, n):
    body = load(path)
    total = sum(r["samples"] for r in body) or 1.0
    hot = sorted(range(len(body)), key=lambda i: -body[i]["samples"])[:n]
    print(f"{len(body)} instructions, {total:.0f} stall samples; the top {len(hot)}:")
    for i in sorted(hot):
        r = body[i]
        print(f"{r['at']:>8} {100 * r['samples'] / total:5.1f}%  {r['source'][:110]}")


def opcode(source):
    words = source.split()
    if words and words[0].startswith("@"):  # a predicate guard
        words = words[1:]
    return words[0].split(".")[0] if words else ""


def regions(path):
    out, cur = [], None
    body = load(path)
    for k, r in enumerate(body):
        if cur is None:
            cur = {"first": k, "inst": 0.0, "samples": 0.0, "most": 0.0, "ops": {}}
        op = opcode(r["source"])
        cur["inst"] += r["executed"]
        cur["samples"] += r["samples"]
        cur["most"] = max(cur["most"], r["executed"])
        cur["ops"][op] = cur["ops"].get(op, 0.0) + r["executed"]
        if op in ("BAR", "WARPSYNC", "EXIT") or k == len(body) - 1:
            cur["last"] = k
            out.append(cur)
            cur = None
    return out


def main():
    args = sys.argv[1:]
    if len(args) == 3 and args[0] == "--top":
        return top(args[2], int(args[1]))
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    for path in args:
        rs = regions(path)
        print(f"== {path}: {sum(r['inst'] for r in rs):,.0f} instructions executed")
        for r in rs:
            if r["inst"] == 0:
                continue
            ops = " ".join(f"{o}:{v:,.0f}" for o, v in sorted(r["ops"].items(), key=lambda x: -x[1])[:6])
            print(f"[{r['first']:5d}-{r['last']:5d}] {r['inst']:11,.0f} instr {r['samples']:6.0f} samples "
                  f"x{r['most']:<7,.0f} {ops}")


if __name__ == "__main__":
    main()
