// The memory a model needs before it is loaded: weights as they will be packed, the KV cache at the chosen
// context size, and the activations of one prefill chunk, compared with what the machine has free. A model
// (or a context size) that cannot fit is refused with one line naming the numbers and the way out, instead
// of being killed by the OOM killer halfway through loading or at the first long prompt.
#pragma once

#include <cstdint>
#include <string>

#include "model/kv_cache.h"
#include "model/model_spec.h"

namespace g4 {

struct MemoryEstimate {
  uint64_t weights = 0;      // packed weights (quantized size when quantizing while loading)
  uint64_t kv_cache = 0;     // K and V of every layer at the context size (f32; sliding layers hold their window)
  uint64_t activations = 0;  // one prefill chunk: hidden states, MLP, logits; attention score rows
  uint64_t total() const { return weights + kv_cache + activations; }
};

// stored_weight_bytes: the bytes of the checkpoint's weights; quantize: "", "int4" or "int8" (--quantize);
// kv: the cache as it will be allocated (kv_cache_bytes). The ctx_size form assumes one f32 sequence
// whose sliding layers hold exactly their window.
MemoryEstimate estimate_memory(const ModelSpec& s, uint64_t stored_weight_bytes, const std::string& quantize,
                               const KvCacheOptions& kv, int64_t prefill_chunk);
MemoryEstimate estimate_memory(const ModelSpec& s, uint64_t stored_weight_bytes, const std::string& quantize,
                               int64_t ctx_size, int64_t prefill_chunk);

// The bytes of the weights stored at `model_path` (headers only: nothing large is read).
uint64_t stored_weight_bytes(const std::string& model_path);
// Estimates from the files at `model_path` (config and weight headers only: nothing large is read).
MemoryEstimate estimate_memory_for(const std::string& model_path, const std::string& quantize,
                                   const KvCacheOptions& kv, int64_t prefill_chunk);
MemoryEstimate estimate_memory_for(const std::string& model_path, const std::string& quantize, int64_t ctx_size,
                                   int64_t prefill_chunk);

// Bytes the model may use on `backend_name`: MemAvailable of /proc/meminfo for host backends. -1 when
// unknown (then no check is made). Hook: a device backend (cuda) should report its free device memory
// (cudaMemGetInfo) here; until it does, device backends are not checked.
int64_t available_memory_bytes(const std::string& backend_name);

// Throws g4::Error "MODEL: needs about X GiB (weights A, KV cache B at --ctx-size N, activations C) but
// only Y GiB is available; ..." when e.total() > available (available < 0: no check).
void check_memory_fits(const MemoryEstimate& e, int64_t available, const std::string& model_path, int64_t ctx_size);

}  // namespace g4
