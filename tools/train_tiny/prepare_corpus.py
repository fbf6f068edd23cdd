#!/usr/bin/python3
"""Extract the King James Bible from Debian's bible-kjv-text into one verse per JSON line.

Needs the Debian packages bible-kjv-text (the data) and bible-kjv (the `bible` reader); stdlib only.
Output lines: {"b": book, "c": chapter, "v": verse, "t": text}, in canonical order (31,102 verses).
"""
import json, re, subprocess, sys

HEADER = re.compile(r"^(\S.*) (\d+)$")
VERSE = re.compile(r"^\s+(\d+) (.*)$")


def read_kjv():
    # -l with a huge width keeps each verse on one line.
    out = subprocess.run(["bible", "-l100000", "gen1:1-rev22:21"], check=True, capture_output=True,
                         text=True, encoding="utf-8").stdout
    verses, book, chap = [], None, None
    for line in out.splitlines():
        if not line.strip():
            continue
        m = HEADER.match(line)
        if m:
            book, chap = m.group(1), int(m.group(2))
            continue
        m = VERSE.match(line)
        if not m or book is None:
            raise SystemExit(f"unexpected line from bible: {line!r}")
        text = " ".join(m.group(2).split())
        verses.append({"b": book, "c": chap, "v": int(m.group(1)), "t": text})
    return verses


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: prepare_corpus.py OUT.jsonl")
    verses = read_kjv()
    if len(verses) != 31102:
        raise SystemExit(f"expected 31102 verses, got {len(verses)}")
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        for v in verses:
            f.write(json.dumps(v, ensure_ascii=False) + "\n")
    books = len({v["b"] for v in verses})
    chars = sum(len(v["t"]) for v in verses)
    print(f"{len(verses)} verses, {books} books, {chars} characters -> {sys.argv[1]}")


if __name__ == "__main__":
    main()
