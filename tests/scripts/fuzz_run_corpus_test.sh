#!/bin/sh
# fuzz/run.sh with a missing or empty seed corpus stops before the (long) fuzz build with one clear error
# line and exit status 1. Runs a copy of the script in a scratch tree. Usage: fuzz_run_corpus_test.sh SRC_DIR
set -u
src="$1"
check() {  # check AREA MAKE_IT_EMPTY
  tmp=$(mktemp -d)
  mkdir -p "$tmp/fuzz"
  cp "$src/fuzz/run.sh" "$src"/fuzz/fuzz_*.cc "$tmp/fuzz/"
  cp -r "$src/fuzz/corpus" "$tmp/fuzz/"
  rm -rf "$tmp/fuzz/corpus/$1"
  [ "$2" = empty ] && mkdir "$tmp/fuzz/corpus/$1"
  out=$(sh "$tmp/fuzz/run.sh" 1 2>&1)
  status=$?
  rm -rf "$tmp"
  want="fuzz/run.sh: error: fuzz_$1 has no seed corpus in fuzz/corpus/$1 (fuzz/make_seeds.py writes it)"
  if [ "$status" -ne 1 ] || [ "$out" != "$want" ]; then
    echo "FAIL ($1, $2): exit $status, output:"; echo "$out"; exit 1
  fi
  echo "ok: $1 $2 -> $out"
}
check gguf missing
check tokenizer empty
