// ModelBundle: everything a user-facing command needs from a model path — the packed Model, its
// tokenizer (tokenizer.json beside the weights, or the vocabulary inside a GGUF), the stop set and
// the sampling defaults of generation_config.json. Stop ids come from the checkpoint, never from
// hard-coded Gemma 4 ids: a model with its own vocabulary (the shipped tiny model) has other ids.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"
#include "model/sampler.h"
#include "tokenizer/tokenizer.h"

namespace g4 {

struct ModelBundle {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  SamplingParams sampling;         // generation_config.json defaults (greedy when do_sample is false), or a
                                   // GGUF's general.sampling.* keys
  std::vector<int32_t> stop_ids;   // eos ids of both configs, plus <turn|> and <|tool_response> if present
  std::string path, name;          // name: the directory's (or file's) base name, for /v1/models
  double load_seconds = 0;

  // Throws g4::Error naming what is missing or malformed. backend_name and threads as make_backend's.
  static ModelBundle load(const std::string& path, const std::string& backend_name, const LoadOptions& opts,
                          int threads = 0);
};

// Reads the tokenizer of a model path: DIR/tokenizer.json, the tokenizer.json beside a .safetensors file,
// or the vocabulary embedded in a GGUF file.
Tokenizer load_tokenizer(const std::string& model_path);

}  // namespace g4
