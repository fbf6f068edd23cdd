#!/bin/sh
# Quality of int4 recipe variants against the float model: g4 quantize each variant, then
# g4 perplexity --reference (mean KL(float || quantized), top-1 agreement, perplexities), one line each.
# Usage: bench/quant_quality.sh MODEL_DIR TOKENS_FILE [ctx=512] [backend=ref]
# Env: G4 (default build/release/g4), WORK (scratch folder, default a fresh mktemp -d, removed after),
# ONLY (one variant's name).
# Token files: `g4 tokenize -m models/tiny-kjv --text-file bench/data/kjv_heldout.txt --bos` (KJV text the tiny
# model never trained on), or random ids for the random-weight fixtures (docs/QUANT.md says which).
set -eu
MODEL=$1; TOKENS=$2; CTX=${3:-512}; BACKEND=${4:-ref}
G4=${G4:-build/release/g4}
work=${WORK:-$(mktemp -d)}
# name | g4 quantize flags | bits per weight of the int4 linears (codes + scales + zero points)
while IFS='|' read -r name flags bits; do
  [ -n "$name" ] || continue
  [ -z "${ONLY:-}" ] || [ "$ONLY" = "$name" ] || continue
  # shellcheck disable=SC2086
  if ! err=$("$G4" quantize -m "$MODEL" -o "$work/$name" $flags 2>&1 >/dev/null); then
    echo "$name | $bits | not applicable: $(echo "$err" | grep 'g4: error' | head -1)"
    continue
  fi
  r=$("$G4" perplexity -m "$work/$name" --reference "$MODEL" --tokens-file "$TOKENS" -c "$CTX" --backend "$BACKEND" 2>/dev/null |
      tail -1)
  echo "$name | $bits | $r"
  rm -r "${work:?}/$name"
done <<'EOF'
g32-asym|--group-size 32|5.0
g32-asym-free|--group-size 32 --offsets free|5.0
g64-asym|--group-size 64|4.5
g64-asym-hqq|--group-size 64 --method hqq|4.5
g32-sym-f16|--group-size 32 --int4 sym --scale-dtype f16|4.5
g128-asym-hqq|--group-size 128 --method hqq|4.25
g128-asym|--group-size 128|4.25
EOF
[ -n "${WORK:-}" ] || rm -r "$work"
