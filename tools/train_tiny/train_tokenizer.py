#!/usr/bin/python3
"""Trains the tiny model's BPE tokenizer (vocab 4096) on the KJV verses plus chat-format words; stdlib only.

Usage: train_tokenizer.py CORPUS.jsonl OUTDIR  ->  OUTDIR/tokenizer.json, OUTDIR/tokenizer_config.json
Deterministic: the same corpus gives the same file.
"""
import collections, json, os, random, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe, samples

VOCAB = 4096


def word_counts(verses):
    c = collections.Counter()
    for v in verses:
        for w in bpe.split_words(bpe.normalize(v["t"])):
            c[w] += 1
    # The chat side: template words, book names and question phrasings, as a few thousand rendered samples.
    train, _ = samples.split_by_chapter(verses)
    maker = samples.ChatMaker(verses, train, random.Random(1234))
    for _ in range(3000):
        s = maker.sample()
        text = s
        for sp in bpe.SPECIALS:
            text = text.replace(sp, "\n")
        for w in bpe.split_words(bpe.normalize(text)):
            c[w] += 1
    return c


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: train_tokenizer.py CORPUS.jsonl OUTDIR")
    verses = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
    vocab, merges = bpe.train(word_counts(verses), VOCAB)
    os.makedirs(sys.argv[2], exist_ok=True)
    with open(os.path.join(sys.argv[2], "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(bpe.tokenizer_json(vocab, merges), f, ensure_ascii=False, indent=1)
    with open(os.path.join(sys.argv[2], "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(bpe.tokenizer_config(), f, ensure_ascii=False, indent=2)
    print(f"vocab {len(vocab)}, merges {len(merges)} -> {sys.argv[2]}")


if __name__ == "__main__":
    main()
