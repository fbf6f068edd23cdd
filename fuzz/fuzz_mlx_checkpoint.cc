// Fuzzes the MLX-LM quantized weight reader (io/mlx_checkpoint.cc): packed U32 codes with scales and biases
// per group, turned into g4's QuantWeight (codes in place or converted, zero points from the biases). Input:
// a byte choosing the config's quantization (bit 0: 4 or 8 bits; bits 1-3: the group size; bit 4: module
// "a" marked unquantized), then a safetensors file. Any bytes must give weights whose every claimed byte is
// readable, or one g4::Error.
#include <set>
#include <string>

#include "base/error.h"
#include "fuzz_support.h"
#include "io/mlx_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const int64_t kGroups[8] = {32, 64, 128, 1, 2, 3, 16, 1024};
  g4::MlxQuantConfig c;
  c.defaults.bits = (data[0] & 1) ? 8 : 4;
  c.defaults.group_size = kGroups[(data[0] >> 1) & 7];
  if (data[0] & 16) c.modules["a"] = std::nullopt;
  c.source = "config.json";
  const g4::fuzz::MemfdInput in(data + 1, size - 1);
  try {
    g4::SafetensorsFile f(in.path());
    std::set<std::string> parts;
    for (const g4::MlxWeight& w : g4::read_mlx_quant(f, c, &parts)) g4::fuzz::check_quant_weight(w.q);
  } catch (const g4::Error&) {
  }
  return 0;
}
