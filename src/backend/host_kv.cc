#include "backend/host_kv.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "base/error.h"

namespace g4::host_kv {

namespace {

Tensor host_zeros(std::vector<int64_t> shape, DType t) {
  Tensor x;
  x.shape = std::move(shape);
  x.dtype = t;
  const size_t bytes = std::max<size_t>(1, size_t(x.numel()) * dtype_size(t));
  void* p = std::calloc(bytes, 1);
  if (!p) throw Error("out of memory allocating a KV cache layer of " + std::to_string(bytes) + " bytes");
  x.storage = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  x.data = p;
  return x;
}

void check_type(DType t) {
  if (t != DType::kF32 && t != DType::kBF16 && t != DType::kI8)
    throw Error("KV cache type " + kv_type_name(t) + " is not supported (use f32, bf16 or q8_0)");
}

// Encodes one head row of D floats into slot `slot`, head g of cache tensor `dst` (and its scale).
void put(Tensor& dst, Tensor& scale, DType t, int64_t slot, int64_t g, int64_t H, int64_t D, const float* x) {
  const int64_t at = (slot * H + g) * D;
  if (t == DType::kF32) {
    std::memcpy(static_cast<float*>(dst.data) + at, x, size_t(D) * 4);
  } else if (t == DType::kBF16) {
    uint16_t* o = static_cast<uint16_t*>(dst.data) + at;
    for (int64_t d = 0; d < D; ++d) o[d] = f32_to_bf16(x[d]);
  } else {
    float amax = 0;
    for (int64_t d = 0; d < D; ++d) amax = std::max(amax, std::fabs(x[d]));
    const float s = amax / 127.0f;
    const float inv = s > 0 ? 1.0f / s : 0.0f;
    int8_t* o = static_cast<int8_t*>(dst.data) + at;
    for (int64_t d = 0; d < D; ++d) o[d] = int8_t(std::clamp(std::lrintf(x[d] * inv), -127L, 127L));
    static_cast<float*>(scale.data)[slot * H + g] = s;
  }
}

const float* get(const Tensor& src, const Tensor& scale, DType t, int64_t slot, int64_t g, float* buf) {
  const int64_t H = src.shape[1], D = src.shape[2], at = (slot * H + g) * D;
  if (t == DType::kF32) return static_cast<const float*>(src.data) + at;
  if (t == DType::kBF16) {
    const uint16_t* p = static_cast<const uint16_t*>(src.data) + at;
    for (int64_t d = 0; d < D; ++d) buf[d] = bf16_to_f32(p[d]);
  } else {
    const int8_t* p = static_cast<const int8_t*>(src.data) + at;
    const float s = static_cast<const float*>(scale.data)[slot * H + g];
    for (int64_t d = 0; d < D; ++d) buf[d] = float(p[d]) * s;
  }
  return buf;
}

}  // namespace

KvLayer make(const KvLayerSpec& s) {
  check_type(s.k_type);
  check_type(s.v_type);
  G4_CHECK(s.capacity > 0 && s.n_kv_heads > 0 && s.head_dim > 0, "KV cache layer shape");
  KvLayer c;
  c.k = host_zeros({s.capacity, s.n_kv_heads, s.head_dim}, s.k_type);
  c.v = host_zeros({s.capacity, s.n_kv_heads, s.head_dim}, s.v_type);
  if (s.k_type == DType::kI8) c.k_scale = host_zeros({s.capacity, s.n_kv_heads}, DType::kF32);
  if (s.v_type == DType::kI8) c.v_scale = host_zeros({s.capacity, s.n_kv_heads}, DType::kF32);
  c.capacity = s.capacity;
  c.ring = s.ring;
  c.k_type = s.k_type;
  c.v_type = s.v_type;
  return c;
}

void append(KvLayer& c, const Tensor& k, const Tensor& v, int64_t p0) {
  const int64_t T = k.dim(0), H = c.k.dim(1), D = c.k.dim(2);
  G4_CHECK(k.numel() == T * H * D && v.numel() == k.numel(), "kv_append shapes");
  if (!c.ring) G4_CHECK(p0 + T <= c.capacity, "flat cache overflow");
  const int64_t first = c.ring ? std::max<int64_t>(0, T - c.capacity) : 0;
  const float* kd = static_cast<const float*>(k.data);
  const float* vd = static_cast<const float*>(v.data);
  for (int64_t t = first; t < T; ++t) {
    const int64_t slot = slot_of(c, p0 + t);
    for (int64_t g = 0; g < H; ++g) {
      put(c.k, c.k_scale, c.k_type, slot, g, H, D, kd + (t * H + g) * D);
      put(c.v, c.v_scale, c.v_type, slot, g, H, D, vd + (t * H + g) * D);
    }
  }
}

const float* key(const KvLayer& c, int64_t pk, int64_t g, float* buf) {
  return get(c.k, c.k_scale, c.k_type, slot_of(c, pk), g, buf);
}

const float* value(const KvLayer& c, int64_t pk, int64_t g, float* buf) {
  return get(c.v, c.v_scale, c.v_type, slot_of(c, pk), g, buf);
}

}  // namespace g4::host_kv
