// The KV cache a command gets: element types from -ctk/-ctv ("auto" picks the backend's default), whether
// K=V layers store V only (--kv-keys), the context size and the number of sequences. Defaults per backend:
// ref keeps f32 with stored keys (the oracle stays the plain computation); cpu and cuda store bf16 and derive
// the keys of K=V layers (the full layers' cache halves: 11.8 GB instead of 22.5 GB for the 31B at 262,144
// tokens on cuda, at the decode speed of stored keys on the H200, docs/PERF.md). With --kv-keys auto,
// G4_DERIVE_K=1 / =0 in the environment turns derived keys on / off on cpu and cuda (benchmarks).
#pragma once

#include <cstdint>
#include <string>

#include "model/kv_cache.h"

namespace g4 {

// The KV cache flags of every command that runs or plans a model.
struct KvFlags {
  std::string cache_type_k = "auto", cache_type_v = "auto";  // -ctk / -ctv: auto, f32, bf16, q8_0
  std::string keys = "auto";                                 // --kv-keys: auto, stored, derived
};

// backend: a resolved backend name (ref, cpu, cuda). Throws g4::Error naming the flag for an unknown value.
KvCacheOptions kv_options_for(const std::string& backend, int64_t ctx_size, int n_seq, const KvFlags& flags = {});

}  // namespace g4
