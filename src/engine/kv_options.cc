#include "engine/kv_options.h"

#include <cstdlib>
#include <cstring>

namespace g4 {

KvCacheOptions kv_options_for(const std::string& backend, int64_t ctx_size, int n_seq, const std::string& k_type,
                              const std::string& v_type) {
  KvCacheOptions o;
  o.ctx_size = ctx_size;
  o.n_seq = n_seq;
  const bool cpu = backend == "cpu";
  // cpu and cuda: bf16 (half the memory and, on the H200 with the grouped decode kernel, faster than f32:
  // 31B int4 at depth 16,384 84.5 against 81.2 tok/s, docs/PERF.md); ref keeps f32, the exact oracle.
  const DType def = cpu || backend == "cuda" ? DType::kBF16 : DType::kF32;
  o.k_type = k_type.empty() || k_type == "auto" ? def : parse_kv_type(k_type, "--cache-type-k");
  o.v_type = v_type.empty() || v_type == "auto" ? def : parse_kv_type(v_type, "--cache-type-v");
  const char* env = std::getenv("G4_DERIVE_K");
  o.derive_k = env && (cpu || backend == "cuda") ? std::strcmp(env, "0") != 0 : cpu;
  return o;
}

}  // namespace g4
