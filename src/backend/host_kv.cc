#include "backend/host_kv.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

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

// Symmetric int8 codes of a row of D floats and their scale: x ~= q * scale.
float quantize_i8(const float* x, int64_t D, int8_t* q) {
  float amax = 0;
  for (int64_t d = 0; d < D; ++d) amax = std::max(amax, std::fabs(x[d]));
  const float s = amax / 127.0f;
  const float inv = s > 0 ? 1.0f / s : 0.0f;
  for (int64_t d = 0; d < D; ++d) q[d] = int8_t(std::clamp(std::lrintf(x[d] * inv), -127L, 127L));
  return s;
}

// The element offset of slot `slot`, head g's row in a cache tensor [capacity, H, D].
int64_t row_at(const Tensor& t, int64_t slot, int64_t g) { return (slot * t.shape[1] + g) * t.shape[2]; }

// Encodes one head row of D floats into slot `slot`, head g of cache tensor `dst` (and its scale).
void put(Tensor& dst, Tensor& scale, DType t, int64_t slot, int64_t g, int64_t H, int64_t D, const float* x) {
  const int64_t at = row_at(dst, slot, g);
  if (t == DType::kF32) {
    std::memcpy(static_cast<float*>(dst.data) + at, x, size_t(D) * 4);
  } else if (t == DType::kBF16) {
    uint16_t* o = static_cast<uint16_t*>(dst.data) + at;
    for (int64_t d = 0; d < D; ++d) o[d] = f32_to_bf16(x[d]);
  } else {
    static_cast<float*>(scale.data)[slot * H + g] = quantize_i8(x, D, static_cast<int8_t*>(dst.data) + at);
  }
}

const float* get(const Tensor& src, const Tensor& scale, DType t, int64_t slot, int64_t g, float* buf) {
  const int64_t H = src.shape[1], D = src.shape[2], at = row_at(src, slot, g);
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

// Asks the CPU's caches (L2 hint) for slot `slot`, head g's row of a cache tensor.
void prefetch_row(const Tensor& t, int64_t slot, int64_t g) {
  const size_t esz = dtype_size(t.dtype), bytes = size_t(t.shape[2]) * esz;
  const char* row = static_cast<const char*>(t.data) + size_t(row_at(t, slot, g)) * esz;
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(row + o, 0, 1);
}

// What deriving a key needs: the k_norm weight and cos/sin of every position's RoPE angles
// (rope_cos_sin, shared between the layers and caches of one RoPE and length).
struct Derive {
  const float* k_norm = nullptr;
  int pairs = 0;
  std::shared_ptr<const std::vector<float>> table;  // [position][pair] {cos, sin}
};

// Rounds a row of D floats as storing it in type t would: bf16 rounding, or int8 with the row's own scale.
const float* round_row(DType t, const float* x, int64_t D, float* buf) {
  if (t == DType::kF32) return x;
  if (t == DType::kBF16) {
    for (int64_t d = 0; d < D; ++d) buf[d] = bf16_to_f32(f32_to_bf16(x[d]));
    return buf;
  }
  std::vector<int8_t> q(static_cast<size_t>(D));
  const float s = quantize_i8(x, D, q.data());
  for (int64_t d = 0; d < D; ++d) buf[d] = float(q[size_t(d)]) * s;
  return buf;
}

// K = RoPE(v * k_norm) at position pk, v being the (decoded) value row; written to buf (v may be buf).
const float* derive_from(const KvLayer& c, const float* v, int64_t pk, float* buf) {
  const Derive& dv = *static_cast<const Derive*>(c.derive.get());
  const int64_t D = c.v.dim(2), half = D / 2;
  for (int64_t d = 0; d < D; ++d) buf[d] = v[d] * dv.k_norm[d];
  const float* cs = dv.table->data() + pk * dv.pairs * 2;
  for (int d = 0; d < dv.pairs; ++d) {
    const float a = buf[d], b = buf[d + half], co = cs[2 * d], si = cs[2 * d + 1];
    buf[d] = a * co - b * si;
    buf[d + half] = b * co + a * si;
  }
  return buf;
}

const float* derive_key(const KvLayer& c, int64_t pk, int64_t g, float* buf) {
  return derive_from(c, get(c.v, c.v_scale, c.v_type, slot_of(c, pk), g, buf), pk, buf);
}

}  // namespace

const float* fresh_key(const KvLayer& c, const float* fresh_k, const float* fresh_v, int64_t pk, float* buf) {
  if (c.k_from_v) return derive_from(c, round_row(c.v_type, fresh_v, c.v.dim(2), buf), pk, buf);
  return round_row(c.k_type, fresh_k, c.k.dim(2), buf);
}

const float* fresh_value(const KvLayer& c, const float* fresh_v, float* buf) {
  return round_row(c.v_type, fresh_v, c.v.dim(2), buf);
}

KvLayer make(const KvLayerSpec& s, const float* k_norm) {
  check_type(s.k_type);
  check_type(s.v_type);
  G4_CHECK(s.capacity > 0 && s.n_kv_heads > 0 && s.head_dim > 0, "KV cache layer shape");
  G4_CHECK(!s.k_from_v || (k_norm && !s.ring && s.rope.pairs <= s.head_dim / 2), "derived keys need k_norm and a flat cache");
  KvLayer c;
  if (s.k_from_v) {
    auto dv = std::make_shared<Derive>();
    dv->k_norm = k_norm;
    dv->pairs = s.rope.pairs;
    dv->table = rope_cos_sin(s.rope, s.head_dim, s.capacity);
    c.derive = dv;
    c.k_from_v = true;
  }
  c.k = host_zeros({s.k_from_v ? 0 : s.capacity, s.n_kv_heads, s.head_dim}, s.k_type);
  c.v = host_zeros({s.capacity, s.n_kv_heads, s.head_dim}, s.v_type);
  if (s.k_type == DType::kI8 && !s.k_from_v) c.k_scale = host_zeros({s.capacity, s.n_kv_heads}, DType::kF32);
  if (s.v_type == DType::kI8) c.v_scale = host_zeros({s.capacity, s.n_kv_heads}, DType::kF32);
  c.capacity = s.capacity;
  c.ring = s.ring;
  c.k_type = s.k_type;
  c.v_type = s.v_type;
  return c;
}

void append(KvLayer& c, const Tensor& k, const Tensor& v, int64_t p0) {
  const int64_t T = k.dim(0), H = c.v.dim(1), D = c.v.dim(2);
  G4_CHECK(k.numel() == T * H * D && v.numel() == k.numel(), "kv_append shapes");
  if (!c.ring) G4_CHECK(p0 + T <= c.capacity, "flat cache overflow");
  const int64_t first = c.ring ? std::max<int64_t>(0, T - c.capacity) : 0;
  const float* kd = static_cast<const float*>(k.data);
  const float* vd = static_cast<const float*>(v.data);
  for (int64_t t = first; t < T; ++t) {
    const int64_t slot = slot_of(c, p0 + t);
    for (int64_t g = 0; g < H; ++g) {
      if (!c.k_from_v) put(c.k, c.k_scale, c.k_type, slot, g, H, D, kd + (t * H + g) * D);
      put(c.v, c.v_scale, c.v_type, slot, g, H, D, vd + (t * H + g) * D);
    }
  }
}

void append(const std::vector<SeqRows>& seqs, const Tensor& k, const Tensor& v) {
  check_seq_rows(seqs, k.dim(0), true);
  for (const SeqRows& s : seqs) append(*s.cache, k.rows(s.row0, s.n), v.rows(s.row0, s.n), s.p0);
}

const float* key(const KvLayer& c, int64_t pk, int64_t g, float* buf) {
  if (c.k_from_v) return derive_key(c, pk, g, buf);
  return get(c.k, c.k_scale, c.k_type, slot_of(c, pk), g, buf);
}

const float* value(const KvLayer& c, int64_t pk, int64_t g, float* buf) {
  return get(c.v, c.v_scale, c.v_type, slot_of(c, pk), g, buf);
}

void prefetch_key(const KvLayer& c, int64_t pk, int64_t g) { prefetch_row(c.k_from_v ? c.v : c.k, slot_of(c, pk), g); }

void prefetch_value(const KvLayer& c, int64_t pk, int64_t g) { prefetch_row(c.v, slot_of(c, pk), g); }

}  // namespace g4::host_kv
