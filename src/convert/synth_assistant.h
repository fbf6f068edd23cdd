// g4 synth --assistant-for TARGET: a random-weight Gemma 4 assistant drafter (model_type gemma4_assistant,
// the Hugging Face layout of google/gemma-4-31B-it-assistant) made to fit TARGET: its vocabulary, the
// target's hidden size as backbone, head dimensions and RoPE of the target's layers. Tiny by default, so
// tests can make one at run time. Weights bf16, linears with std ~0.02, norms ~1.
#pragma once

#include <cstdint>
#include <string>

namespace g4 {

struct SynthAssistantOptions {
  std::string target;      // the target model directory (config.json)
  std::string out;         // directory, created if missing
  int layers = 2;          // all sliding but the last (full)
  int hidden = 64;
  int heads = 4;           // query heads: a multiple of the target's KV heads
  int intermediate = 128;
  int centroids = 0;       // > 0: use_ordered_embeddings with this many centroids (must divide the vocabulary)
  int centroid_top_k = 4;
  uint64_t seed = 0;
};

// Returns the bytes of weights written. Throws g4::Error on bad options or I/O failure.
uint64_t synth_assistant(const SynthAssistantOptions& o);

}  // namespace g4
