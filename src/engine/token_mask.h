// Token masks for constrained decoding: which tokens of the vocabulary may come next under a JsonGrammar.
//
// TokenVocab holds every token's bytes (special tokens the grammar uses become its symbol bytes; other
// special tokens are never allowed) sorted by bytes, which makes the sorted array an implicit trie: a
// mask walks it depth first and drops every token under a prefix the grammar rejects, so it reads each
// shared prefix once. Inside a string, where almost every token is valid, tokens made only of plain
// text (and short enough for a maxLength) are admitted by a per-token flag without reading them. Build one TokenVocab per model and share it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/json_grammar.h"

namespace g4 {

class TokenVocab {
 public:
  struct Token {
    std::string text;      // the bytes decode appends for it (a special token: its piece)
    bool special = false;  // a control token: only usable as one of `symbols`
  };
  // `symbols`: special-token pieces the grammar reads as symbol bytes ({"<|\"|>", kSymQuote}, ...).
  TokenVocab(const std::vector<Token>& tokens, const std::vector<std::pair<std::string, uint8_t>>& symbols);

  int64_t size() const { return int64_t(text_.size()); }
  const std::string& bytes(int32_t id) const { return text_[size_t(id)]; }
  bool usable(int32_t id) const { return usable_[size_t(id)]; }
  // True when every symbol byte has a token (a grammar that needs a missing one would dead-end).
  bool has_symbol(uint8_t sym) const;

 private:
  friend class TokenConstraint;
  std::vector<std::string> text_;   // [V] grammar bytes ("" when unusable)
  std::vector<uint8_t> usable_;     // [V]
  std::vector<uint8_t> plain_;      // [V] bit 1: plain JSON string text; bit 2: plain Gemma string text
  std::vector<uint16_t> chars_;     // [V] characters of a plain token (capped at 65535)
  std::vector<int32_t> sorted_;     // usable ids by bytes
  std::vector<int32_t> not_plain_[2];  // usable ids without the plain bit, per dialect
  std::vector<uint8_t> symbols_;
};

// The grammar state of one generation plus its vocabulary and end tokens. Not thread-safe.
class TokenConstraint {
 public:
  // `end_ids`: tokens that end generation (allowed only where the value is complete).
  TokenConstraint(std::shared_ptr<const JsonGrammar> grammar, std::shared_ptr<const TokenVocab> vocab,
                  std::vector<int32_t> end_ids);

  // May `id` come next?
  bool allows(int32_t id) const;
  // allowed[id] = 1 for every token that may come next (size V); returns how many.
  size_t mask(std::vector<uint8_t>& allowed) const;
  // Reads a token that allows() accepted (an end token changes nothing).
  void accept(int32_t id);
  // The value is complete and nothing may follow: generation is over.
  bool finished() const { return state_.finished(); }

 private:
  void walk(size_t lo, size_t hi, size_t depth, const GrammarState& st, std::vector<uint8_t>& allowed,
            size_t& count) const;

  std::shared_ptr<const JsonGrammar> grammar_;
  std::shared_ptr<const TokenVocab> vocab_;
  std::vector<int32_t> end_ids_;
  GrammarState state_;
};

}  // namespace g4
