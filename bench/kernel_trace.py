#!/usr/bin/env python3
"""Where a decode step's time goes, kernel by kernel, from the CSV of bench/kernel_trace.cc.

    kernel_trace.py TRACE.csv[.gz] [--steps N] [--show N] [--kernels N] [--compare]

Kernels of one stream run as a chain: each waits for the one before it to complete (PDL lets it start
earlier, never finish earlier), so the step's time is the sum over its kernels of end(i) - end(i - 1), the
time each one adds to the chain ("adds"). A kernel whose "adds" is far above its bytes over the copy
bandwidth waits on latency or launch; one that adds less than its own run time ("span") overlapped its
predecessor. A step starts at the embedding kernel; the first row of a step ("adds" of the embedding)
includes the time between steps (the host's token choice and the next launch).

A step's kind is its kernel count and its embedding kernel's grid (the grid grows with the step's rows, so
a verify is told apart from a one-token step even where both launch as many kernels).
Prints: the steps kept (the last N of the most common kind), then one row per kernel (name and
grid) with launches a step, ms it adds a step, us it adds a launch, its span, and how long before its
predecessor's end it started (lead; PDL), then the first --show kernels of one step in order. --compare: then
the steps of the next most common kind (with `g4 bench --verify-cost K`, the verify's) against the
kept ones, by kernel (name and template arguments, grids aside: a verify's 2-8-token GEMV is another kernel
than a step's), ms a step each and the difference: where a verify's time over a step's goes.
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
            # (the name is the last field and unquoted: its template arguments' commas split it into more)
            name = ",".join([r["name"]] + r.get(None, []))
            rows.append((int(r["start_ns"]), int(r["end_ns"]), int(r["grid"]), int(r["block"]), name))
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


def kind(step):
    """A step's kind: its kernel count and its embedding kernel's grid (which grows with the rows, so that a
    verify whose kernels number as many as a one-token step's is still told apart from it)."""
    return (len(step), step[0][3])


def kind_name(k):
    return f"{k[0]} kernels, embed grid {k[1]}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace")
    ap.add_argument("--steps", type=int, default=16, help="steps to average (the last ones of the common kind)")
    ap.add_argument("--show", type=int, default=40, help="kernels of one step to list in order")
    ap.add_argument("--kernels", type=int, default=0,
                    help="keep the steps of this many kernels (the most common kind of that count; default: of any)")
    ap.add_argument("--compare", action="store_true",
                    help="the steps of the next most common kind against the kept ones, by kernel")
    a = ap.parse_args()
    steps = steps_of(load(a.trace))
    if not steps:
        sys.exit("kernel_trace.py: no step (no embed_kernel) in " + a.trace)
    counts = collections.Counter(kind(s) for s in steps)
    kinds = [k for k, _ in counts.most_common() if not a.kernels or k[0] == a.kernels]
    if not kinds:
        sys.exit(f"kernel_trace.py: no step of {a.kernels} kernels")
    common = kinds[0]
    print("kernels a step: " + ", ".join(f"{kind_name(k)} ({v} steps)" for k, v in sorted(counts.items())))
    kept = [s for s in steps if kind(s) == common][-a.steps:]
    ms = [sum(k[0] for k in s) / 1e6 for s in kept]
    print(f"{len(steps)} steps, {len(kept)} kept ({kind_name(common)}): {statistics.mean(ms):.3f} ms a step "
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
    if a.compare:
        compare(steps, counts, common, kept, a.steps)


def per_kernel(steps):
    """{kernel name: (launches a step, ms it adds a step)} over the steps."""
    by = collections.defaultdict(lambda: [0, 0])
    for s in steps:
        for adds, _span, _lead, _grid, name, _block in s:
            e = by[name]
            e[0] += 1
            e[1] += adds
    return {k: (v[0] / len(steps), v[1] / len(steps) / 1e6) for k, v in by.items()}


def compare(steps, counts, common, kept, n):
    others = [(v, k) for k, v in counts.items() if k != common]
    if not others:
        print("\n--compare: the trace holds steps of one kind only")
        return
    other = max(others)[1]
    theirs = [s for s in steps if kind(s) == other][-n:]
    a, b = per_kernel(kept), per_kernel(theirs)
    ta, tb = sum(v[1] for v in a.values()), sum(v[1] for v in b.values())
    print(f"\nSteps of {kind_name(other)} ({len(theirs)}, {tb:.3f} ms each) against those of {kind_name(common)} "
          f"({len(kept)}, {ta:.3f} ms): ms a step by kernel, largest differences first")
    print(f"| kernel | launches (A / B) | ms a step (A: {kind_name(common)}) | ms a step (B: {kind_name(other)}) | "
          "difference |")
    print("|---|---|---|---|---|")
    rows = [(k, a.get(k, (0, 0.0)), b.get(k, (0, 0.0))) for k in set(a) | set(b)]
    for k, (la, ma), (lb, mb) in sorted(rows, key=lambda r: -abs(r[2][1] - r[1][1])):
        print(f"| {k[:90]} | {la:.0f} / {lb:.0f} | {ma:.3f} | {mb:.3f} | {mb - ma:+.3f} |")
    print(f"| all | {sum(v[0] for v in a.values()):.0f} / {sum(v[0] for v in b.values()):.0f} | {ta:.3f} | {tb:.3f} | "
          f"{tb - ta:+.3f} |")


if __name__ == "__main__":
    main()
