#!/bin/sh
# g4's GGUF export run by llama.cpp: quantize a model with g4 (one recipe per GGUF type g4 exports), export it
# with `g4 export --format gguf`, evaluate the same tokens with libllama (CPU) and with g4 (ref backend) on the
# source checkpoint and on the GGUF, and print one table row per variant. Not run in CI (CI has no llama.cpp).
# Usage: bench/export_vs_llamacpp.sh [MODEL_DIR=models/tiny-kjv] [TOKENS=comma-separated ids] [VARIANTS]
# VARIANTS: space-separated names from the list below (default: q4_1 q4_0 q8_0 bf16 f32); `asis` exports MODEL
# itself (an already quantized g4 checkpoint, e.g. from `g4 synth --format int4`).
# Env: G4 (default build/release/g4), LOGITS_DIFF (default build/release/logits_diff),
#      LLAMA_SRC (llama.cpp sources, default /tmp/llama.cpp), LLAMA_LIB (its CPU build's libllama.so and
#      libggml*.so, default /tmp/llama-build/bin), KEEP (a folder to keep the files in; default a temporary one,
#      removed after), LLAMA_COMMIT (printed when LLAMA_SRC is not a git checkout). llama.cpp is built beside the
#      project, never committed: tests/data/gguf-llamacpp/README.md says how.
# Columns: max |diff| / mean |diff| / top-1 agreement over all positions. "kernel noise" is g4's own cpu backend
# (int8 activations, as llama.cpp's CPU matmuls round activations to 8 bits) against g4's ref backend on the source.
set -eu
MODEL=${1:-$(dirname "$0")/../models/tiny-kjv}
TOKENS=${2:-2,4,536,273,1182,370,2201,5,273,4,538,273,6,561,273,7,1182,370,901,1246,285,399,370,901}
VARIANTS=${3:-q4_1 q4_0 q8_0 bf16 f32}
LLAMA_SRC=${LLAMA_SRC:-/tmp/llama.cpp}
LLAMA_LIB=${LLAMA_LIB:-/tmp/llama-build/bin}
work=${KEEP:-$(mktemp -d)}
mkdir -p "$work"
here=$(cd "$(dirname "$0")/.." && pwd)
G4=${G4:-$here/build/release/g4}
DIFF=${LOGITS_DIFF:-$here/build/release/logits_diff}
[ -x "$G4" ] && [ -x "$DIFF" ] || { echo "build g4 and logits_diff first (cmake --build --preset release)" >&2; exit 1; }

g++ -O2 -std=c++17 -I"$LLAMA_SRC/include" -I"$LLAMA_SRC/ggml/include" "$here/tools/gguf/llama_logits.cc" \
    -o "$work/llama_logits" -L"$LLAMA_LIB" -lllama -lggml -lggml-base -Wl,-rpath,"$LLAMA_LIB"
g++ -O2 -std=c++17 -I"$LLAMA_SRC/include" -I"$LLAMA_SRC/ggml/include" "$here/tools/gguf/llama_tokenize.cc" \
    -o "$work/llama_tokenize" -L"$LLAMA_LIB" -lllama -lggml -lggml-base -Wl,-rpath,"$LLAMA_LIB"
commit=$(git -C "$LLAMA_SRC" rev-parse --short HEAD 2>/dev/null || echo "${LLAMA_COMMIT:-commit unknown: set LLAMA_COMMIT}")
cpu=$(sed -n 's/^\(model name\|Model\)[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "model: $MODEL, $(echo "$TOKENS" | tr ',' '\n' | wc -l) tokens; llama.cpp: $LLAMA_SRC ($commit), CPU build, 2 threads, f32 KV cache"
echo "machine: ${cpu:-unknown}, $(nproc) cores; g4: $("$G4" --version | head -1)"
echo
echo "| variant (g4 quantize flags) | GGUF tensor types | g4 source vs llama.cpp | g4 on the GGUF vs llama.cpp | kernel noise: g4 cpu vs g4 ref | round trip: g4 on the GGUF vs source |"
echo "|---|---|---|---|---|---|"
for v in $VARIANTS; do
  case $v in
    q4_1) flags=""; label="default recipe" ;;                       # int4 asym g32 + int8 embedding
    q4_0) flags="--int4 sym"; label=$flags ;;                       # int4 symmetric
    q8_0) flags="--recipe int8"; label=$flags ;;                    # int8 everywhere
    bf16) flags="--rule embed_tokens.*=int8 --rule .*=bf16"; label="matrices kept bf16, embedding int8" ;;
    f32) flags="--rule embed_tokens.*=int8 --rule .*=bf16"; label="model widened to f32, matrices kept, embedding int8" ;;
    asis) flags=""; label="MODEL as it is" ;;
    *) echo "unknown variant $v (q4_1 q4_0 q8_0 bf16 f32 asis)" >&2; exit 1 ;;
  esac
  q=$work/$v; gguf=$work/$v.gguf
  src=$MODEL
  if [ "$v" = f32 ]; then  # llama.cpp's F32 matmuls keep f32 activations: what is left is the rest of the model
    src=$work/f32-source
    mkdir -p "$src"
    cp "$MODEL"/*.json "$src"/ && cp "$MODEL"/*.jinja "$src"/ 2>/dev/null || true
    /usr/bin/python3 "$here/bench/widen_safetensors.py" "$MODEL/model.safetensors" "$src/model.safetensors"
  fi
  if [ "$v" = asis ]; then
    q=$MODEL
  else
    # shellcheck disable=SC2086
    "$G4" quantize -m "$src" -o "$q" $flags >/dev/null 2>&1
  fi
  types=$("$G4" export -m "$q" --format gguf -o "$gguf" 2>&1 | sed -n 's/.*tensors (\(.*\)) -> .*/\1/p')
  if ! "$work/llama_logits" "$gguf" "$TOKENS" "$work/$v.llama.gguf" >"$work/$v.llama.log" 2>&1; then
    echo "| $v ($label) | $types | llama.cpp refused the file or failed: $(grep -i 'error\|fail' "$work/$v.llama.log" | head -2 | tr '\n' ' ') | | | |"
    continue
  fi
  "$G4" logits -m "$q" --tokens "$TOKENS" --out "$work/$v.src.safetensors" 2>/dev/null
  "$G4" logits -m "$q" --tokens "$TOKENS" --backend cpu --out "$work/$v.cpu.safetensors" 2>/dev/null
  "$G4" logits -m "$gguf" --tokens "$TOKENS" --out "$work/$v.gguf.safetensors" 2>/dev/null
  row() { "$DIFF" "$1" "$2" | awk -F' [|] ' '{sub(/^max /, "", $1); sub(/^mean /, "", $2); sub(/^top-1 /, "", $3); printf "%s / %s / %s", $1, $2, $3}'; }
  echo "| $v ($label) | $types | $(row "$work/$v.src.safetensors" "$work/$v.llama.gguf") |" \
       "$(row "$work/$v.gguf.safetensors" "$work/$v.llama.gguf") | $(row "$work/$v.cpu.safetensors" "$work/$v.src.safetensors") |" \
       "$(row "$work/$v.gguf.safetensors" "$work/$v.src.safetensors") |"
done
# The tokenizer in the GGUF's metadata, run by llama.cpp, against g4's tokenizer.json: held-out KJV text and a
# chat turn with every kind of control token written as text.
first=$(echo "$VARIANTS" | cut -d' ' -f1)
if [ -f "$MODEL/tokenizer.json" ] && [ -f "$work/$first.gguf" ]; then
  text=$work/text.txt
  cat "$here/bench/data/kjv_heldout.txt" > "$text"
  printf '<|turn>system\n<|think|>Be brief.<turn|>\n<|turn>user\nWho built the ark?<turn|>\n<|turn>model\n<|channel>thought\nNoah.<channel|>Noah built it. <|tool_call>call:f{a:<|"|>b<|"|>}<tool_call|><|tool_response>ok<tool_response|><eos>\n  spaces\t\ttabs \303\274n\303\257c\303\266d\303\251 \346\227\245\346\234\254 \360\237\231\202\n' >> "$text"
  "$work/llama_tokenize" "$work/$first.gguf" "$text" 2>/dev/null | tr ' ' '\n' > "$work/llama.tok"
  "$G4" tokenize -m "$MODEL" --text-file "$text" | tr ' ' '\n' > "$work/g4.tok"
  same=$(paste "$work/llama.tok" "$work/g4.tok" | awk '$1 == $2 && !d {n++} $1 != $2 {d = 1} END {print n + 0}')
  echo
  echo "tokenizer: llama.cpp on the exported GGUF gives $(wc -l < "$work/llama.tok") ids, g4 (tokenizer.json) $(wc -l < "$work/g4.tok");" \
       "identical for the first $same (bench/data/kjv_heldout.txt plus a chat turn with control tokens)"
fi
[ -n "${KEEP:-}" ] || rm -r "$work"
