// The KV cache a command gets: element types from -ctk/-ctv ("auto" picks the backend's default), the
// context size, the number of sequences, and whether K=V layers store V only. Defaults per backend: ref
// keeps f32 with stored keys (the oracle stays the plain computation); cpu stores bf16 and derives the keys
// of K=V layers; cuda stores bf16 with stored keys (its grouped decode attention is faster over bf16 than
// over f32; deriving keys there halves the full layers' cache but decodes 18% slower at depth 16,384 on
// the H200, docs/PERF.md). G4_DERIVE_K=1 / =0 in the environment turns derived keys on / off on cpu and
// cuda.
#pragma once

#include <cstdint>
#include <string>

#include "model/kv_cache.h"

namespace g4 {

// backend: a resolved backend name (ref, cpu, cuda). Throws g4::Error naming the flag for an unknown type.
KvCacheOptions kv_options_for(const std::string& backend, int64_t ctx_size, int n_seq, const std::string& k_type,
                              const std::string& v_type);

}  // namespace g4
