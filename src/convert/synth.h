// g4 synth: a random-weight checkpoint with real Gemma 4 dimensions, for benchmarks where the real weights
// cannot be had. Written straight in the target format (int4 codes and scales are drawn directly, never
// via bf16) and streamed in row chunks, so memory stays at a few MB whatever the model size.
// Weights are plausible: norms ~1, linears and embedding with std ~0.02, so activations stay finite.
#pragma once

#include <cstdint>
#include <string>

namespace g4 {

struct SynthOptions {
  std::string preset = "tiny";  // "31b" (spec 1.2) or "tiny" (the dense-31b-shape fixture's dimensions)
  int layers = 0;               // 0 = the preset's (60 / 6); pattern 5 sliding + 1 full, last layer full
  std::string out;              // directory, created if missing
  std::string format = "bf16";  // bf16 | int4 (default recipe layout) | int8 | q4_0 (a Q4_0 GGUF's layout)
  int64_t group_size = 32;
  uint64_t seed = 0;
  bool progress = true;
};

// Returns the bytes written. Throws g4::Error on bad options or I/O failure.
uint64_t synth_checkpoint(const SynthOptions& o);

// Creates directory `out` (and its parents) and writes `config_json` there as config.json; returns that
// file's path. Throws g4::Error naming what could not be created or written.
std::string write_config_json(const std::string& out, const std::string& config_json);

}  // namespace g4
