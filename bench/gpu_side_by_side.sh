#!/bin/sh
# g4 and llama.cpp on the GPU machine, same card, same Q4_0 file, one lease. Two calls in a row (the
# machine keeps /tmp while it stays warm between calls):
#   bench/gpu_side_by_side.sh pack DIR  # here, once: .devpeer/ from a llama.cpp git directory (DIR)
#   bench/gpu_side_by_side.sh start   # unpacks llama.cpp (.devpeer/llama.tar.xz: the source subset that
#                                     # llama-bench and llama-batched-bench need), builds it in the
#                                     # background (setsid: it outlives the call)
#   bench/gpu_side_by_side.sh run     # writes the 60-layer Q4_0 GGUF with shared/peers/synth_gguf.py
#                                     # (.devpeer/synth_gguf.py; .devtok/tokenizer.json.xz is the Gemma 3
#                                     # tokenizer it carries), waits for the build, then alternates g4 bench
#                                     # and llama-bench on that file (decode, prefill, decode at depth), then
#                                     # batched decode
# g4's binary comes from bench/device_run.sh --pack (.devbin, .devlibs), or G4=PATH names one already there.
# PAR=1,8 picks the batch sizes (default 1,4,8,16,32). DEEP=1 adds decode at depth 65,536 and a prefill of
# 32,768 tokens (issue 11's long-context rows). The carried set must stay under 64 MiB: carry .devtests in the
# first call and .devtok in the second. Logs in $OUT or /tmp/g4-device.
set -u
W=/tmp/g4-peer
LOG=${OUT:-/tmp/g4-device}
mkdir -p "$W" "$LOG"
GGUF=$W/m60.gguf
LB=$W/lcb/bin
# bench/serve_side_by_side.sh start builds llama-bench too (with llama-server): use that build when it is there.
[ -x "$W/lcs/bin/llama-bench" ] && LB=$W/lcs/bin
if [ "${1:-}" = pack ]; then  # pack LLAMA_CPP_GIT_DIR: .devpeer/llama.tar.xz (lc-src/: what the CPU and CUDA
  # builds of llama-bench and llama-batched-bench need, and gguf-py for synth_gguf.py), .devpeer/synth_gguf.py
  repo=${2:?usage: bench/gpu_side_by_side.sh pack LLAMA_CPP_GIT_DIR}
  t=$(mktemp -d) && mkdir -p "$t/lc-src/tools" .devpeer || exit 1
  # Files, not git archive: some blobs of that mirror's history are absent (shared/peers/README.md).
  git -C "$repo" ls-tree -r HEAD CMakeLists.txt LICENSE cmake common include src vendor gguf-py licenses ggml       tools/llama-bench tools/batched-bench | awk '$2 == "blob" {print $3, $4}' |
    grep -E ' (ggml/src/[^/]+|ggml/src/ggml-(cpu|cuda)/.*|ggml/(include|cmake)/.*|ggml/CMakeLists.txt|[^g].*|gguf-py/.*)$' |
    while read -r sha path; do
      mkdir -p "$t/lc-src/$(dirname "$path")" && git -C "$repo" cat-file blob "$sha" > "$t/lc-src/$path" || exit 1
    done
  printf 'add_subdirectory(llama-bench)\nadd_subdirectory(batched-bench)\n' > "$t/lc-src/tools/CMakeLists.txt"
  tar -C "$t" -cJf .devpeer/llama.tar.xz lc-src && rm -rf "$t"
  cp "$(dirname "$0")/../../shared/peers/synth_gguf.py" .devpeer/ 2>/dev/null || true
  ls -la .devpeer
  exit 0
fi
if [ "${1:-}" = start ]; then
  if [ ! -x "$LB/llama-bench" ]; then
    rm -rf "$W/src" && mkdir -p "$W/src" && tar -C "$W/src" -xJf .devpeer/llama.tar.xz
    setsid sh -c "cmake -S $W/src/lc-src -B $W/lcb -G Ninja -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
      -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF \
      -DCMAKE_BUILD_TYPE=Release > $W/build.log 2>&1 && \
      cmake --build $W/lcb --target llama-bench llama-batched-bench -j 14 >> $W/build.log 2>&1; \
      echo done > $W/build.done" < /dev/null > /dev/null 2>&1 &
  fi
  exit 0
fi

export LD_LIBRARY_PATH="$PWD/.devlibs:${LD_LIBRARY_PATH:-}"
if [ -z "${G4:-}" ]; then mkdir -p build/cuda && tar -C build/cuda -xJf .devbin/cuda.tar.xz && G4=build/cuda/g4; fi
if [ ! -s "$GGUF" ]; then
  xz -dc .devtok/tokenizer.json.xz > "$W/tokenizer.json"
  t0=$(date +%s)
  python3 .devpeer/synth_gguf.py "$GGUF" 60 "$W/tokenizer.json" "$W/src/lc-src/gguf-py" q4_0 > "$W/synth.log" 2>&1 ||
    tail -5 "$W/synth.log"
  echo "synth 60-layer Q4_0 GGUF: $(( $(date +%s) - t0 )) s, $(du -h "$GGUF" | cut -f1)"
fi
i=0
while [ ! -x "$LB/llama-bench" ] && [ ! -f "$W/build.done" ] && [ $i -lt 400 ]; do sleep 2; i=$((i + 2)); done
[ -x "$LB/llama-bench" ] || { echo "llama.cpp did not build:"; tail -20 "$W/build.log"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
g4b() { $G4 bench -m "$GGUF" --backend cuda --json "$@" 2>>"$LOG/g4.err"; }
lb() { $LB/llama-bench -m "$GGUF" -ngl 99 -fa 1 -o jsonl "$@" 2>>"$LOG/lb.err"; }
{
  g4b -p 2048 -n 128 -r 2 -d 0,16384 | sed "s/^/g4 r1 /"
  lb -p 2048 -n 128 -r 2 | sed "s/^/lc r1 /"
  lb -p 0 -n 64 -r 2 -d 16384 | sed "s/^/lc r1 /"
  g4b -p 2048 -n 128 -r 2 -d 0 | sed "s/^/g4 r2 /"
  lb -p 2048 -n 128 -r 2 | sed "s/^/lc r2 /"
  if [ "${DEEP:-0}" = 1 ]; then
    g4b -p 32768 -n 0 -r 1 | sed "s/^/g4 deep /"
    g4b -p 0 -n 64 -r 1 -d 65536 | sed "s/^/g4 deep /"
    lb -p 32768 -n 0 -r 1 | sed "s/^/lc deep /"
    lb -p 0 -n 64 -r 1 -d 65536 | sed "s/^/lc deep /"
  fi
  if [ "${BATCH:-1}" = 1 ]; then
    g4b -p 0 -n 64 -r 2 --parallel "${PAR:-1,4,8,16,32}" | sed "s/^/g4 b /"
    $LB/llama-batched-bench -m "$GGUF" -c 40960 -b 2048 -ub 512 -npp 512 -ntg 128 -npl "${PAR:-1,4,8,16,32}" -fa 1 -ngl 99 \
      2>>"$LOG/lb.err" | sed "s/^/lcbatch /"
  fi
} > "$LOG/sbs.txt"
python3 - "$LOG/sbs.txt" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    tag, _, rest = line.partition(" ")
    if tag == "g4":
        r, _, js = rest.partition(" ")
        j = json.loads(js)
        print(f"g4   {r:3} depth {j['depth']:6} seqs {j['parallel']:3} pp{j['pp']} {j.get('pp_tok_s') or 0:8.1f} | tg{j['tg']} {j.get('tg_tok_s') or 0:7.2f} ± {j.get('tg_sd') or 0:.2f}")
    elif tag == "lc":
        r, _, js = rest.partition(" ")
        j = json.loads(js)
        kind = f"pp{j['n_prompt']}" if j['n_prompt'] else f"tg{j['n_gen']}"
        print(f"llama {r:3} depth {j.get('n_depth', 0):6} {kind} {j['avg_ts']:8.2f} ± {j['stddev_ts']:.2f}")
    elif tag == "lcbatch" and rest.strip().startswith("|") and rest.split("|")[1].strip().isdigit():
        print("llama batched |" + rest.strip())
PY
tail -3 "$LOG/g4.err" "$LOG/lb.err" 2>/dev/null
