#!/bin/sh
# A session's GPU work in one call (machines are scarce: a refused start costs minutes of the session's
# device time, so everything goes into the call that gets one). Run from the repository root with the carry
# of bench/device_run.sh (.devbin .devtests .devlibs). In order, each step bounded so that the call ends
# inside BUDGET_S seconds (default 585, under the device tool's 600):
#   1. on an H200 (or any card with GOALS=1; SKIP_GOALS=1: not even there), the open issues' goals
#      (device_run.sh goals), since every goal is stated on that card;
#   2. the CUDA tests by default and under each of TEST_SETTINGS (device_run.sh tests);
#   3. when MULTI_SETTINGS is set, the 1-8-token GEMV alone under each (device_run.sh multi; MULTI_GREP picks
#      the lines, default those of 2, 4 and 8 tokens; with MULTI_ALL=1 each shape's whole table of compiled
#      kernel shapes instead, the sweep to run on a card whose shapes were never measured);
#   4. when AB is set, the A/B of its settings with AB_ARGS (device_run.sh ab), its one-line-a-setting table;
#   5. when ATTN_SHAPES is set (e.g. "sliding full-derived"), decode attention alone for each shape
#      (device_run.sh attn: ATTN_SETTINGS, default only here, then an older build's benchmark if carried);
#   6. when ATTN_HOT is set (e.g. "1 f"), those split kernels under Nsight Compute (device_run.sh attn-ncu);
#   7. each of MODES (other device_run.sh modes, e.g. "gemv-ncu trace"), with its settings from the environment.
# Every step's logs come back as one archive each in $OUT (a call returns at most 8 files), and what the call
# prints also as $OUT/session.txt (the device tool keeps only the end of a call's output).
# SYNTH_FORMAT / SYNTH_DIR as for device_run.sh (default here: the Q4_0 layout, the goals' llama.cpp file).
set -u
S0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
export SYNTH_FORMAT=${SYNTH_FORMAT:-q4_0} SYNTH_DIR=${SYNTH_DIR:-/tmp/g4-q40}
export BUNDLE=${OUT:-/tmp/g4-device}
left() { echo $(( ${BUDGET_S:-585} - ($(date +%s) - S0) )); }
SAY=$BUNDLE/session.txt
mkdir -p "$BUNDLE"
step() { echo "== [$(( $(date +%s) - S0 )) s] $*" | tee -a "$SAY"; }
run_mode() {  # MODE [filter command...]: device_run.sh MODE within the time left, its output through the filter
  m=$1; shift
  t=$(left)
  [ "$t" -gt 20 ] || { echo "(skipped: $t s left)" | tee -a "$SAY"; return 0; }
  timeout "$t" sh bench/device_run.sh "$m" | "$@" | tee -a "$SAY"
}
if { nvidia-smi -L | grep -q H200 && [ -z "${SKIP_GOALS:-}" ]; } || [ -n "${GOALS:-}" ]; then
  step "goals"
  SKIP_TESTS=1 run_mode goals tail -4
fi
step "tests${TEST_SETTINGS:+ (settings: $TEST_SETTINGS)}"
run_mode tests cat
# The bulk-copy GEMV (new, first GPU runs) is left out of the runs below unless its own test passed: a kernel
# that hangs would take the rest of the call, setting after setting.
if ! grep -q "^\[  PASSED  \] 1 test" /tmp/g4-bundle-tests/cuda_bulk.log 2>/dev/null; then
  drop_bulk() { for w in $1; do case "$w" in *G4_CUDA_Q8_BULK*) ;; *) printf '%s ' "$w";; esac; done; }
  AB=$(drop_bulk "${AB:-}") MULTI_SETTINGS=$(drop_bulk "${MULTI_SETTINGS:-}")
  echo "(the bulk GEMV's test did not pass here: its settings are left out of what follows)" | tee -a "$SAY"
fi
if [ -n "${MULTI_SETTINGS:-}" ]; then
  step "multi ($MULTI_SETTINGS)"
  pick=" (2|4|8) "; [ -n "${MULTI_ALL:-}" ] && pick="."  # (MULTI_ALL=1: every compiled shape's table, whole)
  SKIP_TESTS=1 run_mode multi grep -E "${MULTI_GREP:-$pick}"
fi
if [ -n "${AB:-}" ]; then
  step "ab ($AB; ${AB_ARGS:-device_run.sh's default arguments})"
  SKIP_TESTS=1 run_mode ab sed -n '/^== A\/B by setting/,$p'
fi
if [ -n "${ATTN_SHAPES:-}" ]; then
  for shape in $ATTN_SHAPES; do
    step "attn ($shape, depths ${ATTN_DEPTHS:-512,4096})"
    ATTN_SHAPE=$shape ATTN_SETTINGS=${ATTN_SETTINGS:-default} run_mode attn grep -v "^NVIDIA"
  done
fi
if [ -n "${ATTN_HOT:-}" ]; then
  step "attn-ncu ($ATTN_HOT, depth ${ATTN_DEPTHS:-512})"
  run_mode attn-ncu grep -v "^NVIDIA"
fi
for m in ${MODES:-}; do
  step "$m"
  SKIP_TESTS=1 run_mode "$m" grep -v "^NVIDIA"
done
step done
