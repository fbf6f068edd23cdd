#!/bin/sh
# One call on the GPU machine: the CUDA tests with G4_REQUIRE_GPU=1 (a run without a usable GPU fails),
# then benchmarks on a synthetic 60-layer 31B int4 checkpoint written there by `g4 synth`; a short table
# last. Run from the repository root with the CUDA build carried in build/cuda and the shared libraries
# the GPU machine lacks in .devlibs/ (collect them here with: bench/device_run.sh --collect-libs).
# Logs go to $OUT (the device tool's output folder) or /tmp/g4-device.
set -u
if [ "${1:-}" = "--collect-libs" ]; then
  mkdir -p .devlibs
  ldd build/cuda/g4 | awk '/simdjson|httplib|brotli|libedit|libbsd|libmd|libtinfo/ {print $3}' | xargs -I{} cp -L {} .devlibs/
  ls .devlibs
  exit 0
fi
B=build/cuda
LOG=${OUT:-/tmp/g4-device}
mkdir -p "$LOG"
export LD_LIBRARY_PATH="$PWD/.devlibs:${LD_LIBRARY_PATH:-}"
export G4_REQUIRE_GPU=1
SYNTH=${SYNTH_DIR:-/tmp/g4-m60}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

summary() { grep -E "^\[  (PASSED|FAILED|SKIPPED) " "$1" | sed "s|^|$(basename "$1" .log): |"; }
$B/tests/backend_cuda/test_backend_cuda > "$LOG/cuda_tests.log" 2>&1
$B/tests/model/test_model --gtest_filter='*cuda*' > "$LOG/cuda_sequences.log" 2>&1
$B/tests/e2e/test_cli --gtest_filter='*Cuda*' > "$LOG/cuda_cli.log" 2>&1

t0=$(date +%s)
$B/g4 synth --preset 31b --format int4 -o "$SYNTH" > "$LOG/synth.log" 2>&1
echo "synth 60-layer int4: $(( $(date +%s) - t0 )) s"
bench() { $B/g4 bench -m "$SYNTH" --backend cuda --json "$@" 2>>"$LOG/bench.err"; }
{
  bench -p 2048 -n 128 -r 3 -d 0,16384 --cache-type-k f32 --cache-type-v f32
  bench -p 2048 -n 128 -r 3 -d 0,16384,65536
  bench -p 0 -n 64 -r 2 --parallel 1,4,8,16
  bench -p 32768 -n 0 -r 1
} > "$LOG/bench.jsonl"

echo "== tests"
for f in "$LOG"/cuda_*.log; do summary "$f"; done
grep -hE "FAILED|Failure" "$LOG"/cuda_*.log | head -20
echo "== bench (tok/s: pp = prefill of pp tokens, tg = decode; depth = tokens already cached; seqs = sequences per step)"
python3 - "$LOG/bench.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    j = json.loads(line)
    print(f"KV {j['cache_type_k']:5} depth {j['depth']:6} seqs {j['parallel']:3} | pp{j['pp']} {j['pp_tok_s']:9.1f} ± {j['pp_sd']:6.1f}"
          f" | tg{j['tg']} {j['tg_tok_s']:8.2f} ± {j['tg_sd']:5.2f} | load {j['load_s']:.1f} s")
PY
cat "$LOG/bench.err" | tail -5
