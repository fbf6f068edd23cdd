#include "engine/kv_options.h"

#include <cstdlib>
#include <cstring>

#include "base/error.h"

namespace g4 {

KvCacheOptions kv_options_for(const std::string& backend, int64_t ctx_size, int n_seq, const KvFlags& f) {
  KvCacheOptions o;
  o.ctx_size = ctx_size;
  o.n_seq = n_seq;
  const bool cpu = backend == "cpu";
  // cpu and cuda: bf16 (half the memory and, on the H200 with the grouped decode kernel, faster than f32:
  // 31B int4 at depth 16,384 84.5 against 81.2 tok/s, docs/PERF.md); ref keeps f32, the exact oracle.
  const DType def = cpu || backend == "cuda" ? DType::kBF16 : DType::kF32;
  o.k_type = f.cache_type_k.empty() || f.cache_type_k == "auto" ? def : parse_kv_type(f.cache_type_k, "--cache-type-k");
  o.v_type = f.cache_type_v.empty() || f.cache_type_v == "auto" ? def : parse_kv_type(f.cache_type_v, "--cache-type-v");
  if (f.keys == "stored") {
    o.derive_k = false;
  } else if (f.keys == "derived") {
    o.derive_k = true;
  } else if (f.keys.empty() || f.keys == "auto") {
    const char* env = std::getenv("G4_DERIVE_K");
    const bool by_default = cpu || backend == "cuda";  // ref keeps stored keys
    o.derive_k = env && by_default ? std::strcmp(env, "0") != 0 : by_default;
  } else {
    throw Error("--kv-keys: unknown value '" + f.keys + "' (auto, stored, derived)");
  }
  return o;
}

}  // namespace g4
