// Fuzzes the safetensors header parser: any bytes must give a valid header or a g4::Error.
#include "base/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    g4::SafetensorsHeader h = g4::parse_safetensors(data, size, "fuzz");
    // Touch every byte a validated tensor claims, so ASan sees any out-of-bounds promise.
    volatile uint8_t sink = 0;
    for (const auto& [name, t] : h.tensors)
      for (size_t i = 0; i < t.nbytes; ++i) sink = sink ^ t.data[i];
  } catch (const g4::Error&) {
  }
  return 0;
}
