#!/bin/sh
# Where one kernel's time goes, instruction by instruction, on the GPU machine (Nsight Compute's source page
# in SASS): one launch of the first kernel whose name matches REGEX (after $SKIP launches of it, default 3)
# is profiled with the SourceCounters and WarpStateStats sections, then the $TOP (default 40) instructions
# with the most warp-stall samples are printed with their share of all samples, in address order, so that
# a loop's hot region reads as one block. The report stays in $OUT (or /tmp/g4-device) as hot.ncu-rep, its
# SASS table as hot_sass.csv (bench/ncu_regions.py sums that table phase by phase, between barriers).
#   bench/ncu_hotspots.sh REGEX COMMAND [ARGS...]
#   e.g. bench/ncu_hotspots.sh decode_tc build/cuda/cuda_attn_bench 2 65536 full-derived
# $NCU_ARGS go to ncu before the others: e.g. "--kernel-name-base mangled" to pick one template instance by
# its mangled name (the 8-token tensor-core GEMV over f16 scales, any ring depth:
# 'gemv_q8_tc_kernelI6__halfLb0ELi1ELi8E').
set -u
[ $# -ge 2 ] || { echo "usage: bench/ncu_hotspots.sh REGEX COMMAND [ARGS...]" >&2; exit 2; }
RE=$1; shift
NCU=${NCU:-/usr/local/cuda/bin/ncu}
LOG=${OUT:-/tmp/g4-device}
mkdir -p "$LOG"
"$NCU" ${NCU_ARGS:-} --section SourceCounters --section WarpStateStats -k "regex:$RE" --launch-skip "${SKIP:-3}" --launch-count 1 \
  -f -o "$LOG/hot" "$@" > "$LOG/hot.log" 2>&1 || { echo "ncu failed:"; tail -5 "$LOG/hot.log"; exit 1; }
"$NCU" --import "$LOG/hot.ncu-rep" --page source --print-source sass --csv > "$LOG/hot_sass.csv" 2> "$LOG/hot_sass.err" ||
  { echo "ncu --page source failed:"; tail -5 "$LOG/hot_sass.err"; exit 1; }
python3 "$(dirname "$0")/ncu_regions.py" --top "${TOP:-40}" "$LOG/hot_sass.csv"
# Where the warps wait, from the same report: the warp-state and issue lines of its details page.
"$NCU" --import "$LOG/hot.ncu-rep" --page details 2>/dev/null |
  grep -E "Duration|Memory Throughput|Warp Cycles Per|Stall|Issued Warp|No Eligible|Active Warps|Registers" | head -${DETAIL_LINES:-24}

