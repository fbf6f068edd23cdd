#!/usr/bin/env python3
"""Where a decode step's time goes, kernel by kernel, from the CSV of bench/kernel_trace.cc.

    kernel_trace.py TRACE.csv[.gz] [--steps N] [--show N] [--kernels N]

Kernels of one stream run as a chain: each waits for the one before it to complete (PDL lets it start
earlier, never finish earlier), so the step's time is the sum over its kernels of end(i) - end(i - 1), the
time each one adds to the chain ("adds"). A kernel whose "adds" is far above its bytes over the copy
bandwidth waits on latency or launch; one that adds less than its own run time ("span") overlapped its
predecessor. A step starts at the embedding kernel; the first row of a step ("adds" of the embedding)
includes the time between steps (the host's token choice and the next launch).

Prints: the steps kept (the last N with the most common kernel count), then one row per kernel (name and
grid) with launches a step, ms it adds a step, us it adds a launch, its span, and how long before its
predecessor's end it started (lead; PDL), then the first --show kernels of one step in order.
"""
import argparse
import collections
import csv
import gzip
import statistics
import sys


def load(path):
    rows = []
    with (gzip.open(path, "rt", newline="") if path.endswith(".gz") else open(path, newline="")) as f:
        for r in csv.DictReader(f):
            rows.append((int(r["start_ns"]), int(r["end_ns"]), int(r["grid"]), int(r["block"]), r["name"]))
    rows.sort(key=lambda r: r[1])  # completion order: the chain's order
    return rows


def steps_of(rows):
    """Lists of (adds, span, lead, grid, name, block) per step; a step begins at an embedding kernel."""
    steps, cur = [], None
    prev_end = None
    for start, end, grid, block, name in rows:
        adds = end - prev_end if prev_end is not None else 0
        lead = prev_end - start if prev_end is not None else 0
        prev_end = end
        if name.startswith("embed_kernel"):
            if cur:
                steps.append(cur)
            cur = []
        if cur is not None:
            cur.append((adds, end - start, lead, grid, name, block))
    return steps[1:]  # the first step (no end before it) and the last, possibly incomplete, are left out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace")
    ap.add_argument("--steps", type=int, default=16, help="steps to average (the last ones of the common length)")
    ap.add_argument("--show", type=int, default=40, help="kernels of one step to list in order")
    ap.add_argument("--kernels", type=int, default=0,
                    help="keep the steps of this many kernels (default: the most common count; a verify has more)")
    a = ap.parse_args()
    steps = steps_of(load(a.trace))
    if not steps:
        sys.exit("kernel_trace.py: no step (no embed_kernel) in " + a.trace)
    counts = collections.Counter(len(s) for s in steps)
    common = a.kernels or counts.most_common(1)[0][0]
    print("kernels a step: " + ", ".join(f"{k} ({v} steps)" for k, v in sorted(counts.items())))
    kept = [s for s in steps if len(s) == common][-a.steps:]
    if not kept:
        sys.exit(f"kernel_trace.py: no step of {common} kernels")
    ms = [sum(k[0] for k in s) / 1e6 for s in kept]
    print(f"{len(steps)} steps, {len(kept)} kept ({common} kernels each): {statistics.mean(ms):.3f} ms a step "
          f"(min {min(ms):.3f}, max {max(ms):.3f}) = {1000 / statistics.mean(ms):.1f} steps/s")
    by = collections.OrderedDict()
    for s in kept:
        for adds, span, lead, grid, name, block in s:
            by.setdefault((name, grid, block), []).append((adds, span, lead))
    n = len(kept)
    table = []
    for (name, grid, block), v in by.items():
        table.append((sum(x[0] for x in v) / n / 1e6, len(v) / n, statistics.mean(x[0] for x in v) / 1e3,
                      statistics.mean(x[1] for x in v) / 1e3, statistics.mean(x[2] for x in v) / 1e3, grid, block, name))
    table.sort(reverse=True)
    print(f"\n| kernel | grid x block | launches a step | ms a step | us a launch | span us | lead us |")
    print("|---|---|---|---|---|---|---|")
    for ms_step, count, adds, span, lead, grid, block, name in table:
        print(f"| {name[:90]} | {grid} x {block} | {count:.0f} | {ms_step:.3f} | {adds:.2f} | {span:.2f} | {lead:.2f} |")
    print(f"\nThe first {a.show} kernels of the last step kept (us):")
    print("| # | kernel | grid | adds | span | lead |")
    print("|---|---|---|---|---|---|")
    for i, (adds, span, lead, grid, name, block) in enumerate(kept[-1][: a.show]):
        print(f"| {i} | {name[:90]} | {grid} | {adds / 1e3:.2f} | {span / 1e3:.2f} | {lead / 1e3:.2f} |")


if __name__ == "__main__":
    main()
