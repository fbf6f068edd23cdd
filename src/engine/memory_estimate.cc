#include "engine/memory_estimate.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include "base/error.h"
#include "io/weight_store.h"

namespace g4 {

namespace {

std::string gib(uint64_t b) {
  char s[32];
  std::snprintf(s, sizeof s, "%.2f GiB", double(b) / double(uint64_t(1) << 30));
  return s;
}

// Saturating arithmetic: a hostile config must not wrap the estimate into something small.
uint64_t mul(uint64_t a, uint64_t b) { return a != 0 && b > UINT64_MAX / a ? UINT64_MAX : a * b; }
uint64_t add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

}  // namespace

namespace {
KvCacheOptions plain_f32(int64_t ctx_size) {
  KvCacheOptions o;
  o.ctx_size = std::max<int64_t>(ctx_size, 1);
  o.slack = 0;
  return o;
}
}  // namespace

MemoryEstimate estimate_memory(const ModelSpec& s, uint64_t stored_weight_bytes, const std::string& quantize,
                               int64_t ctx_size, int64_t prefill_chunk) {
  return estimate_memory(s, stored_weight_bytes, quantize, plain_f32(ctx_size), prefill_chunk);
}

MemoryEstimate estimate_memory_for(const std::string& model_path, const std::string& quantize, int64_t ctx_size,
                                   int64_t prefill_chunk) {
  return estimate_memory_for(model_path, quantize, plain_f32(ctx_size), prefill_chunk);
}

MemoryEstimate estimate_memory(const ModelSpec& s, uint64_t stored_weight_bytes, const std::string& quantize,
                               const KvCacheOptions& kv, int64_t prefill_chunk) {
  const int64_t ctx_size = kv.ctx_size;
  MemoryEstimate e;
  e.weights = stored_weight_bytes;
  // Quantizing bf16 matrices while loading: int4 is 4 bits + a bf16 scale and zero per 32 weights
  // (~0.31 of bf16), int8 ~0.56. Norms stay as they are, so this slightly underestimates.
  if (quantize == "int4") e.weights = stored_weight_bytes / 16 * 5;
  else if (quantize == "int8") e.weights = stored_weight_bytes / 16 * 9;
  const uint64_t ctx = uint64_t(std::max<int64_t>(ctx_size, 1));
  try {
    e.kv_cache = uint64_t(kv_cache_bytes(s, kv));
  } catch (const Error&) {
    e.kv_cache = UINT64_MAX;  // beyond 64 bits: a hostile config must not wrap into something small
  }
  const uint64_t chunk = uint64_t(std::clamp<int64_t>(prefill_chunk, 1, std::max<int64_t>(ctx_size, 1)));
  int max_head_dim = 0;
  for (const LayerSpec& L : s.layers) max_head_dim = std::max(max_head_dim, L.head_dim);
  const uint64_t H = uint64_t(s.hidden_size), F = uint64_t(s.intermediate_size), V = uint64_t(s.vocab_size);
  const uint64_t per_token = add(add(mul(H, 6), mul(F, 3)), add(mul(uint64_t(s.n_heads), 3 * uint64_t(max_head_dim)), V));
  // Attention scores live one query row at a time per thread (ctx doubles each; 64 threads allowed for).
  const uint64_t scores = mul(ctx, 2 * 64);
  e.activations = mul(add(mul(chunk, per_token), scores), 4);  // f32
  return e;
}

uint64_t stored_weight_bytes(const std::string& model_path) {
  const auto ws = WeightStore::open(model_path);
  uint64_t bytes = 0;
  for (const auto& [name, w] : ws->weights()) bytes = add(bytes, stored_bytes(w));
  return bytes;
}

MemoryEstimate estimate_memory_for(const std::string& model_path, const std::string& quantize,
                                   const KvCacheOptions& kv, int64_t prefill_chunk) {
  return estimate_memory(load_model_config(model_path), stored_weight_bytes(model_path), quantize, kv, prefill_chunk);
}

int64_t available_memory_bytes(const std::string& backend_name) {
  if (backend_name == "cuda") return -1;  // hook: the CUDA backend's free device memory belongs here
  std::ifstream f("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  while (f >> key >> kb) {
    if (key == "MemAvailable:") return kb * 1024;
    std::getline(f, key);  // the unit
  }
  return -1;
}

void check_memory_fits(const MemoryEstimate& e, int64_t available, const std::string& model_path, int64_t ctx_size) {
  if (available < 0 || e.total() <= uint64_t(available)) return;
  throw Error(model_path + ": needs about " + gib(e.total()) + " (weights " + gib(e.weights) + ", KV cache " +
              gib(e.kv_cache) + " at --ctx-size " + std::to_string(ctx_size) + ", activations " + gib(e.activations) +
              ") but only " + gib(uint64_t(available)) +
              " is available; lower --ctx-size, quantize, or pass --no-memory-check to try anyway");
}

}  // namespace g4
