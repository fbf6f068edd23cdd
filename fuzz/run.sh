#!/bin/sh
# Builds the fuzz targets with clang (libFuzzer + ASan + UBSan) and runs each for SECONDS (default 60)
# on a copy of its seed corpus. Any finding (crash, sanitizer report, trap) fails the script.
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
cmake --build --preset fuzz -j "$(nproc)"
for bin in build/fuzz/fuzz/fuzz_*; do
  name=$(basename "$bin"); area=${name#fuzz_}
  work=$(mktemp -d); cp -r "fuzz/corpus/$area/." "$work/"
  echo "== $name for ${SECONDS_EACH}s"
  status=0
  "$bin" -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 "$work" \
    >"$work.log" 2>&1 || status=$?
  tail -3 "$work.log"
  if [ "$status" -ne 0 ]; then
    echo "FUZZ FINDING in $name (exit $status):"; tail -60 "$work.log"; rm -rf "$work" "$work.log"; exit 1
  fi
  rm -rf "$work" "$work.log"
done
