// Fuzzes config.json parsing into a ModelSpec: any text must give a consistent spec or a g4::Error.
#include "base/error.h"
#include "model/model_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    g4::ModelSpec s = g4::parse_model_config(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    for (const auto& L : s.layers)
      if (L.head_dim <= 0 || L.n_kv_heads <= 0 || s.n_heads % L.n_kv_heads != 0 || L.rope_pairs > L.head_dim / 2)
        __builtin_trap();  // the parser promised an invariant it did not keep
  } catch (const g4::Error&) {
  }
  return 0;
}
