#!/bin/sh
# g4 serve and llama-server on the same GGUF file, one after the other (issue 12's serving benchmark):
# bench/serve_sweep.py at 1-32 concurrent streams against each, `g4 bench` on the file for the one-stream
# reference, and bench/serve_turns.py (8K-token chat history, 5 turns) against g4. The clients are Python 3
# standard library only: the GPU machine has python3 but no node, and a device call carries at most 64 MiB
# (the tracked tree is about 52 MB of it), too little for a node binary next to the packed builds.
#
# Here, once (the GPU machine has no llama-server source):
#   bench/device_run.sh --pack                     # g4's CUDA build -> .devbin, .devlibs
#   bench/serve_side_by_side.sh pack /work/.mirror/mahald+llama.cpp/repo
#       # -> .devpeer/llama-server.tar.xz: tools/server and tools/mtmd of the commit that .devpeer/llama.tar.xz
#       #    holds (3ccb1b3), laid over it
# On the GPU machine, two calls carrying .devbin .devlibs .devpeer .devtok (the machine keeps /tmp while it
# stays warm between them):
#   bench/serve_side_by_side.sh start  # unpacks llama.cpp + the server overlay; builds llama-server (CUDA)
#                                      # in the background (setsid); writes the 60-layer Q4_0 GGUF if absent (as
#                                      # gpu_side_by_side.sh, same path); waits up to 8 minutes for the build
#   bench/serve_side_by_side.sh run    # g4 bench, then g4 serve (turns; sweep) and llama-server (sweep), side
#                                      # by side; tables in $OUT, server logs in $W/logs
# The same `run` works elsewhere with the environment naming what to use, e.g. on the 2-core box:
#   G4=build/release/g4 BACKEND=cpu LLAMA_SERVER=/path/llama-server GGUF=model.gguf \
#     STREAMS=1,2,4 PROMPT=256 MAX_TOKENS=64 HISTORY=3000 bench/serve_side_by_side.sh run
# Environment for `run`: STREAMS (1,4,8,16,32), PROMPT (512), MAX_TOKENS (128), REQUESTS (4 per stream),
# HISTORY (8192), ROUNDS (2: g4 then llama-server, twice), LS_ARGS / G4_ARGS (extra server flags), PYTHON
# (python3: runs the clients and the /health polls). To split a run over calls of 10 minutes: BENCH=0 and
# TURNS=0 leave out the g4 bench rows and the turns, ROUND_FROM=2 ROUNDS=2 runs round 2 (its own prompts) alone.
# `start` also builds llama-bench and llama-batched-bench ($W/lcs/bin) for bench/gpu_side_by_side.sh.
set -u
W=${W:-/tmp/g4-peer}
LOG=${OUT:-/tmp/g4-device}  # the tables: sweep.txt, turns-g4.txt, g4-bench.txt (server logs in $W/logs)
mkdir -p "$W/logs" "$LOG"
GGUF=${GGUF:-$W/m60.gguf}
synth() {  # the 60-layer Q4_0 file, as bench/gpu_side_by_side.sh writes it (same path: a warm machine keeps it)
  xz -dc .devtok/tokenizer.json.xz > "$W/tokenizer.json" &&
    python3 .devpeer/synth_gguf.py "$GGUF" 60 "$W/tokenizer.json" "$W/srv/lc-src/gguf-py" q4_0 > "$W/synth.log" 2>&1 ||
    { tail -5 "$W/synth.log"; exit 1; }
}
wait_build() {  # wait_build SECONDS: until the background llama-server build has ended
  i=0
  while [ ! -f "$W/srv-build.done" ] && [ $i -lt "$1" ]; do sleep 2; i=$((i + 2)); done
}

if [ "${1:-}" = pack ]; then
  repo=${2:?usage: bench/serve_side_by_side.sh pack LLAMA_CPP_GIT_DIR}
  t=$(mktemp -d) && mkdir -p "$t/lc-src/tools" .devpeer || exit 1
  # Files, not git archive: some blobs of that mirror's history are absent (shared/peers/README.md).
  git -C "$repo" ls-tree -r HEAD tools/server tools/mtmd | awk '$2 == "blob" {print $3, $4}' |
    grep -Ev ' tools/server/(public|tests|bench|webui)/' | while read -r sha path; do
      mkdir -p "$t/lc-src/$(dirname "$path")" && git -C "$repo" cat-file blob "$sha" > "$t/lc-src/$path" || exit 1
    done
  printf 'add_subdirectory(llama-bench)\nadd_subdirectory(batched-bench)\nadd_subdirectory(mtmd)\nadd_subdirectory(server)\n' \
    > "$t/lc-src/tools/CMakeLists.txt"
  tar -C "$t" -cJf .devpeer/llama-server.tar.xz lc-src && rm -rf "$t"
  rm -f .devpeer/node.xz  # left by the node-client version of this script: 24 MB the device call cannot carry
  ls -la .devpeer
  exit 0
fi

if [ "${1:-}" = start ]; then
  if [ ! -x "$W/lcs/bin/llama-server" ]; then
    rm -rf "$W/srv" "$W/srv-build.done" && mkdir -p "$W/srv" && tar -C "$W/srv" -xJf .devpeer/llama.tar.xz &&
      tar -C "$W/srv" -xJf .devpeer/llama-server.tar.xz || exit 1
    setsid sh -c "cmake -S $W/srv/lc-src -B $W/lcs -G Ninja -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
      -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_WEBUI=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release > $W/srv-build.log 2>&1 && \
      cmake --build $W/lcs --target llama-server llama-bench llama-batched-bench -j 15 >> $W/srv-build.log 2>&1; echo done > $W/srv-build.done" \
      < /dev/null > /dev/null 2>&1 &
  fi
  # While it builds: the GGUF; then wait for the build (within this call's 10 minutes), so that `run` has
  # all its time for the benchmarks. A build not done by then goes on, and `run` waits for it.
  [ -s "$GGUF" ] || synth
  wait_build 480
  tail -2 "$W/srv-build.log"
  exit 0
fi

[ "${1:-}" = run ] || { sed -n 2,25p "$0"; exit 2; }
if [ -z "${G4:-}" ]; then  # the GPU machine: the packed CUDA build
  mkdir -p build/cuda && tar -C build/cuda -xJf .devbin/cuda.tar.xz || exit 1
  export LD_LIBRARY_PATH="$PWD/.devlibs:${LD_LIBRARY_PATH:-}"
  G4=build/cuda/g4
fi
BACKEND=${BACKEND:-cuda}
PY=${PYTHON:-python3}
LS=${LLAMA_SERVER:-$W/lcs/bin/llama-server}
STREAMS=${STREAMS:-1,4,8,16,32}
PROMPT=${PROMPT:-512}
MAX_TOKENS=${MAX_TOKENS:-128}
REQUESTS=${REQUESTS:-4}
HISTORY=${HISTORY:-8192}
NP=$(echo "$STREAMS" | tr ',' '\n' | sort -n | tail -1)
SLOT_CTX=$((PROMPT + MAX_TOKENS + 64))
TURN_CTX=$((HISTORY + 2048))

[ -s "$GGUF" ] || synth
[ -n "${LLAMA_SERVER:-}" ] || wait_build 500
[ -x "$LS" ] || { echo "llama-server is missing:"; tail -20 "$W/srv-build.log" 2>/dev/null; exit 1; }
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "# $(date -u +%FT%TZ) $GGUF, g4 $BACKEND, streams $STREAMS, prompt $PROMPT, answer $MAX_TOKENS, $REQUESTS requests/stream"

pids=
up() {  # up NAME PORT COMMAND...: starts a server and waits until its /health answers 200
  name=$1; port=$2; shift 2
  "$@" > "$W/logs/$name.log" 2>&1 &
  pids="$pids $!"
  i=0
  # (python3, not curl: the GPU machine's image may lack curl; urlopen raises on anything but 2xx)
  until "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=5)" 2>/dev/null; do
    kill -0 $! 2>/dev/null && [ $i -lt 1800 ] || { echo "$name did not start:"; tail -5 "$W/logs/$name.log"; exit 1; }
    sleep 0.2; i=$((i + 1))
  done
}
# shellcheck disable=SC2086
trap '[ -n "$pids" ] && kill $pids' EXIT
sweep() {  # sweep LABEL PORT ROUND: each round its own prompts (the servers stay up: no prompt-cache hits)
  "$PY" bench/serve_sweep.py --port "$2" --streams "$STREAMS" --prompt "$PROMPT" --max-tokens "$MAX_TOKENS" \
    --requests "$REQUESTS" --prompt-set "$3" --label "$1" | tee -a "$LOG/sweep.txt"
}

# One stream's reference: g4 bench on the same file (prompt, then decode), the decode also from depth PROMPT,
# where a stream of the sweep decodes (its prompt in the cache).
[ "${BENCH:-1}" = 1 ] &&
  "$G4" bench -m "$GGUF" --backend "$BACKEND" -p "$PROMPT" -n "$MAX_TOKENS" -d 0,"$PROMPT" -r 2 2>>"$W/logs/g4-bench.err" | tee "$LOG/g4-bench.txt"
# The three servers stay up side by side (one load each); an idle one does no work.
# shellcheck disable=SC2086
if [ "${TURNS:-1}" = 1 ]; then
  up g4-turns 18482 "$G4" serve -m "$GGUF" --backend "$BACKEND" --port 18482 --parallel 2 -c $TURN_CTX --quiet ${G4_ARGS:-}
  "$PY" bench/serve_turns.py --port 18482 --history "$HISTORY" | tee "$LOG/turns-g4.txt"
fi
# shellcheck disable=SC2086
up g4 18480 "$G4" serve -m "$GGUF" --backend "$BACKEND" --port 18480 --parallel "$NP" -c $SLOT_CTX --quiet ${G4_ARGS:-}
# llama-server: -c is split between the -np slots; flash attention on, all layers on the GPU, continuous batching
# (its default).
# shellcheck disable=SC2086
up llama 18481 "$LS" -m "$GGUF" --port 18481 -np "$NP" -c $((NP * SLOT_CTX)) -fa on -ngl 99 ${LS_ARGS:-}
for round in $(seq "${ROUND_FROM:-1}" "${ROUNDS:-2}"); do  # alternating, so that a drift of the machine shows
  sweep "g4-r$round" 18480 "$round"
  sweep "llama-r$round" 18481 "$round"
done
