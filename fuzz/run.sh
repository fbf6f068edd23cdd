#!/bin/sh
# Builds the fuzz targets with clang (libFuzzer + ASan + UBSan) and runs each for SECONDS (default 60)
# on a copy of its seed corpus, as many at a time as there are cores. Any finding (crash, sanitizer
# report, trap) fails the script.
set -e
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-60}"
# Every target needs its seed corpus (fuzz/corpus/<area>, non-empty): checked before the long build.
for src in fuzz/fuzz_*.cc; do
  name=$(basename "$src" .cc); area=${name#fuzz_}
  if [ ! -d "fuzz/corpus/$area" ] || [ -z "$(ls -A "fuzz/corpus/$area")" ]; then
    echo "fuzz/run.sh: error: $name has no seed corpus in fuzz/corpus/$area (fuzz/make_seeds.py writes it)" >&2
    exit 1
  fi
done
cmake --preset fuzz >/dev/null
# Only the fuzz targets and the libraries they link (not g4 itself, the benchmarks and the tools).
targets=$(for src in fuzz/fuzz_*.cc; do basename "$src" .cc; done)
cmake --build --preset fuzz -j "$(nproc)" --target $targets
# One target per core at a time (libFuzzer runs one process each); each writes its own log, read in order.
run_one() {  # run_one BIN LOG: the target on a copy of its corpus; LOG gets its output and its exit status
  name=$(basename "$1"); area=${name#fuzz_}
  work=$(mktemp -d); cp -r "fuzz/corpus/$area/." "$work/"
  status=0
  "$1" -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 "$work" \
    >"$2" 2>&1 || status=$?
  echo "$status" > "$2.status"
  rm -rf "$work"
}
logs=$(mktemp -d)
JOBS=$(nproc)
running=0
for name in $targets; do
  run_one "build/fuzz/fuzz/$name" "$logs/$name.log" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then wait; running=0; fi
done
wait
failed=0
for name in $targets; do
  log="$logs/$name.log"
  echo "== $name for ${SECONDS_EACH}s"
  status=$(cat "$log.status" 2>/dev/null || echo "no status")
  if [ "$status" != 0 ]; then
    echo "FUZZ FINDING in $name (exit $status):"; tail -60 "$log"; failed=1
  else
    tail -3 "$log"
  fi
done
rm -rf "$logs"
exit "$failed"
