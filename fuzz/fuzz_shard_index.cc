// Fuzzes model.safetensors.index.json parsing: shard names must never escape the model directory.
#include "base/error.h"
#include "io/weight_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto m = g4::parse_shard_index(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    for (const auto& [name, shard] : m)
      if (shard.find('/') != std::string::npos || shard == "..") __builtin_trap();
  } catch (const g4::Error&) {
  }
  return 0;
}
