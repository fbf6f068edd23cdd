#!/usr/bin/env bash
# Serving benchmark: for each --parallel value, starts `g4 serve` on the model, drives 1, 2 and 4
# concurrent streaming clients with build/release/serve_bench, and prints aggregate output tokens/s and
# p50/p99 TTFT and inter-token latency per line.
#   bench/serve_bench.sh MODEL_DIR [BACKEND] [PARALLEL_LIST] [STREAM_LIST]
# e.g. bench/serve_bench.sh models/tiny-kjv cpu "1 4" "1 2 4"
# Environment: REQUESTS (per stream, default 4), MAX_TOKENS (64), PROMPT_WORDS (32), PORT (18431),
# CTX (2048), BUILD (build/release), PROMPT (a fixed text instead of PROMPT_WORDS numbered words), SERVE_FLAGS (more g4 serve flags, e.g. "--draft-ngram"; after each
# sweep the server's /metrics drafted / accepted counters are printed when it drafted).
set -euo pipefail
model=${1:?usage: bench/serve_bench.sh MODEL_DIR [BACKEND] [PARALLEL_LIST] [STREAM_LIST]}
backend=${2:-cpu}
parallels=${3:-"1 4"}
streams_list=${4:-"1 2 4"}
build=${BUILD:-build/release}
port=${PORT:-18431}
for bin in "$build/g4" "$build/serve_bench"; do
  [[ -x $bin ]] || { echo "serve_bench.sh: error: $bin is missing (cmake --build --preset release)" >&2; exit 1; }
done
echo "# $(date -u +%F) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), model $model, backend $backend"
for np in $parallels; do
  "$build/g4" serve -m "$model" --backend "$backend" --port "$port" --parallel "$np" -c "${CTX:-2048}" --quiet ${SERVE_FLAGS:-} \
    2>/tmp/serve_bench_server.$$.log &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    kill -0 $server 2>/dev/null || { cat /tmp/serve_bench_server.$$.log >&2; exit 1; }
    sleep 0.1
  done
  "$build/serve_bench" --port "$port" --streams 1 --requests 1 --max-tokens 8 >/dev/null  # warm-up
  for s in $streams_list; do
    printf -- "--parallel %-2s " "$np"
    "$build/serve_bench" --port "$port" --streams "$s" --requests "${REQUESTS:-4}" --max-tokens "${MAX_TOKENS:-64}" \
      --prompt-words "${PROMPT_WORDS:-32}" ${PROMPT:+--prompt "$PROMPT"}
  done
  curl -sf "http://127.0.0.1:$port/metrics" | grep '^g4_draft' | tr '\n' ' ' | sed 's/.$/\n/' || true
  kill $server
  wait $server 2>/dev/null || true
  trap - EXIT
done
rm -f /tmp/serve_bench_server.$$.log
