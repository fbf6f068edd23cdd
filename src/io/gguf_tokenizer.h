// The tokenizer a GGUF file carries (tokenizer.ggml.* keys as llama.cpp writes them), copied out of
// the mapping so it outlives the file. The tokenizer library builds its BPE from this; nothing here
// interprets the vocabulary. Lengths and ids are validated against the token count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/gguf.h"

namespace g4 {

struct GgufTokenizerData {
  std::string model;                 // tokenizer.ggml.model: "gemma4", "llama", "gpt2", ...
  std::string pre;                   // tokenizer.ggml.pre, "" when absent
  std::vector<std::string> tokens;   // id -> piece (SentencePiece style, "▁" for space)
  std::vector<float> scores;         // empty when absent, else one per token
  std::vector<int32_t> token_types;  // empty when absent, else one per token (1 normal, 2 unknown, 3 control,
                                     // 4 user-defined, 5 unused, 6 byte)
  std::vector<std::string> merges;   // "left right", in rank order; empty when absent
  int32_t bos_id = -1, eos_id = -1, eot_id = -1, unk_id = -1, pad_id = -1;  // -1 = absent
  bool add_bos = false, add_eos = false, add_space_prefix = false;           // false when absent
};

// Throws g4::Error naming the file and key when tokenizer.ggml.tokens is missing or anything is
// inconsistent (array lengths, ids out of range, wrong types).
GgufTokenizerData read_gguf_tokenizer(const GgufFile& f);

}  // namespace g4
