// The metadata of an exported gemma4 GGUF, keyed as llama.cpp's convert_hf_to_gguf.py writes them for
// Gemma 4 (general.*, gemma4.*, tokenizer.ggml.*, tokenizer.chat_template), from the source's config.json,
// tokenizer.json, chat template and generation_config.json.
#pragma once

#include "convert/export_common.h"
#include "io/gguf_writer.h"

namespace g4 {

// Vocabulary from tokenizer.json as GGUF arrays. Token types: <0xHH> byte tokens 6 (BYTE); added tokens marked
// special 3 (CONTROL), except those llama.cpp's converter keeps visible for its chat parser (<|channel>,
// <channel|>, <|tool_call>, <tool_call|>, <|tool_response>, <tool_response|>, <|"|>) and non-special added
// tokens, 4 (USER_DEFINED); ids the file does not name up to the embedding rows "[PADn]", 5 (UNUSED).
struct GgufVocab {
  std::vector<std::string> tokens, merges;
  std::vector<int32_t> types;
};
GgufVocab read_vocab_for_gguf(const std::string& tokenizer_json, int64_t n_rows);

// Writes every metadata key; file_type is llama.cpp's LLAMA_FTYPE of the dominant tensor type.
void write_gguf_metadata(GgufWriter& w, const ExportSource& src, uint32_t file_type);

}  // namespace g4
