#include "engine/kv_options.h"

namespace g4 {

KvCacheOptions kv_options_for(const std::string& backend, int64_t ctx_size, int n_seq, const std::string& k_type,
                              const std::string& v_type) {
  KvCacheOptions o;
  o.ctx_size = ctx_size;
  o.n_seq = n_seq;
  const bool cpu = backend == "cpu";
  // cuda: f32 until its bf16 decode attention is faster (H200, 31B int4: level at depth 16,384, 69.5 against
  // 70.5 tok/s, 2.7% behind at depth 0, docs/PERF.md); bf16 is an option there (half the memory).
  const DType def = cpu ? DType::kBF16 : DType::kF32;
  o.k_type = k_type.empty() || k_type == "auto" ? def : parse_kv_type(k_type, "--cache-type-k");
  o.v_type = v_type.empty() || v_type == "auto" ? def : parse_kv_type(v_type, "--cache-type-v");
  o.derive_k = cpu;
  return o;
}

}  // namespace g4
