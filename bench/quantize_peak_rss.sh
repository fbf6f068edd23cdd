#!/bin/bash
# Peak memory of `g4 quantize` on synthetic bf16 checkpoints with the 31B layer dimensions, at two depths.
# Streaming means the peak must not grow with the number of layers (issue 4: < 10% apart, < 3 GB).
# Usage: bench/quantize_peak_rss.sh [G4_BINARY] [WORK_DIR] [LAYERS...]   (default layers: 4 12)
set -euo pipefail
G4=${1:-build/release/g4}
WORK=${2:-/tmp/g4_quant_bench}
shift $(( $# >= 2 ? 2 : $# )) || true
LAYERS=("$@")
[ ${#LAYERS[@]} -eq 0 ] && LAYERS=(4 12)
mkdir -p "$WORK"
echo "layers,bf16_bytes,int4_bytes,max_rss_kb,seconds"
for n in "${LAYERS[@]}"; do
  rm -rf "$WORK/bf16-$n" "$WORK/int4-$n"
  "$G4" synth --preset 31b --layers "$n" --format bf16 --out "$WORK/bf16-$n" 2>/dev/null
  /usr/bin/time -f "%M %e" -o "$WORK/time-$n" "$G4" quantize -m "$WORK/bf16-$n" --out "$WORK/int4-$n" 2>/dev/null
  read -r rss secs < "$WORK/time-$n"
  echo "$n,$(stat -c %s "$WORK/bf16-$n/model.safetensors"),$(stat -c %s "$WORK/int4-$n/model.safetensors"),$rss,$secs"
  rm -rf "$WORK/bf16-$n" "$WORK/int4-$n"
done
