#include "io/gguf_writer.h"

#include <cerrno>
#include <cstring>
#include <set>

#include "base/error.h"

namespace g4 {

namespace {
constexpr uint64_t kAlign = 32;
// GGUF metadata value types (io/gguf.h GgufType).
constexpr uint32_t kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9;
}  // namespace

GgufWriter::GgufWriter(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {}

GgufWriter::~GgufWriter() {
  if (f_) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
}

void GgufWriter::put_str(const std::string& s) {
  const uint64_t n = s.size();
  put(&n, 8);
  put(s.data(), s.size());
}

void GgufWriter::key(const std::string& k, uint32_t type) {
  if (begun_) throw Error(path_ + ": metadata added after the header was written");
  put_str(k);
  put(&type, 4);
  ++n_kv_;
}

void GgufWriter::kv_u32(const std::string& k, uint32_t v) { key(k, kU32); put(&v, 4); }
void GgufWriter::kv_i32(const std::string& k, int32_t v) { key(k, kI32); put(&v, 4); }
void GgufWriter::kv_f32(const std::string& k, float v) { key(k, kF32); put(&v, 4); }
void GgufWriter::kv_bool(const std::string& k, bool v) {
  key(k, kBool);
  const uint8_t b = v;
  put(&b, 1);
}
void GgufWriter::kv_str(const std::string& k, const std::string& v) { key(k, kString); put_str(v); }

#define G4_ARRAY_HEADER(elem, n)        \
  key(k, kArray);                       \
  {                                     \
    const uint32_t e = elem;            \
    const uint64_t count = n;           \
    put(&e, 4);                         \
    put(&count, 8);                     \
  }

void GgufWriter::kv_arr_i32(const std::string& k, const std::vector<int32_t>& v) {
  G4_ARRAY_HEADER(kI32, v.size());
  put(v.data(), v.size() * 4);
}
void GgufWriter::kv_arr_f32(const std::string& k, const std::vector<float>& v) {
  G4_ARRAY_HEADER(kF32, v.size());
  put(v.data(), v.size() * 4);
}
void GgufWriter::kv_arr_bool(const std::string& k, const std::vector<bool>& v) {
  G4_ARRAY_HEADER(kBool, v.size());
  for (bool b : v) {
    const uint8_t x = b;
    put(&x, 1);
  }
}
void GgufWriter::kv_arr_str(const std::string& k, const std::vector<std::string>& v) {
  G4_ARRAY_HEADER(kString, v.size());
  for (const std::string& s : v) put_str(s);
}
#undef G4_ARRAY_HEADER

size_t GgufWriter::add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape) {
  if (begun_) throw Error(path_ + ": tensor '" + name + "' added after the header was written");
  const GgmlTypeInfo info = ggml_type_info(uint32_t(type));
  if (!info.name) throw Error(path_ + ": tensor '" + name + "' has an unknown ggml type");
  if (shape.empty() || shape.size() > 4) throw Error(path_ + ": tensor '" + name + "' must have 1 to 4 dimensions");
  Tensor t{name, type, {shape.rbegin(), shape.rend()}, 0};
  uint64_t n = 1;
  for (uint64_t d : t.ne) {
    if (d == 0) throw Error(path_ + ": tensor '" + name + "' has an empty dimension");
    n = checked_mul(n, d, path_ + ": size of tensor " + name);
  }
  if (t.ne[0] % uint64_t(info.block_elems) != 0)
    throw Error(path_ + ": tensor '" + name + "' has rows of " + std::to_string(t.ne[0]) + " elements, not a multiple of the " +
                info.name + " block (" + std::to_string(info.block_elems) + ")");
  t.nbytes = n / uint64_t(info.block_elems) * uint64_t(info.block_bytes);
  for (const Tensor& o : tensors_)
    if (o.name == name) throw Error(path_ + ": tensor '" + name + "' declared twice");
  tensors_.push_back(std::move(t));
  return tensors_.size() - 1;
}

void GgufWriter::raw(const void* p, size_t n) {
  if (n && std::fwrite(p, 1, n, f_) != n) throw Error("cannot write " + tmp_ + ": " + std::strerror(errno));
  pos_ += n;
}

void GgufWriter::pad() {
  static const uint8_t zeros[kAlign] = {};
  raw(zeros, size_t((kAlign - pos_ % kAlign) % kAlign));
}

void GgufWriter::begin() {
  if (begun_) return;
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) throw Error("cannot create " + tmp_ + ": " + std::strerror(errno));
  begun_ = true;
  const uint32_t version = 3;
  const uint64_t nt = tensors_.size();
  raw("GGUF", 4);
  raw(&version, 4);
  raw(&nt, 8);
  raw(&n_kv_, 8);
  raw(kv_.data(), kv_.size());
  uint64_t off = 0;
  for (const Tensor& t : tensors_) {
    const uint64_t n = t.name.size();
    raw(&n, 8);
    raw(t.name.data(), n);
    const uint32_t nd = uint32_t(t.ne.size());
    raw(&nd, 4);
    raw(t.ne.data(), 8 * t.ne.size());
    const uint32_t type = uint32_t(t.type);
    raw(&type, 4);
    raw(&off, 8);
    off += (t.nbytes + kAlign - 1) / kAlign * kAlign;
  }
  pad();
}

void GgufWriter::write(const void* data, size_t n) {
  if (!begun_) throw Error(path_ + ": tensor data written before the header");
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    if (cur_ >= tensors_.size()) throw Error(path_ + ": more tensor data than the declared tensors hold");
    const uint64_t room = tensors_[cur_].nbytes - cur_done_;
    const size_t k = size_t(std::min<uint64_t>(room, n));
    raw(p, k);
    p += k;
    n -= k;
    cur_done_ += k;
    if (cur_done_ == tensors_[cur_].nbytes) {
      pad();
      ++cur_;
      cur_done_ = 0;
    }
  }
}

void GgufWriter::finish() {
  begin();
  if (cur_ != tensors_.size())
    throw Error(path_ + ": tensor '" + tensors_[cur_].name + "' was not completely written");
  if (std::fclose(f_) != 0) {
    f_ = nullptr;
    std::remove(tmp_.c_str());
    throw Error("cannot write " + tmp_ + ": " + std::strerror(errno));
  }
  f_ = nullptr;
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::remove(tmp_.c_str());
    throw Error("cannot rename " + tmp_ + " to " + path_ + ": " + std::strerror(errno));
  }
}

}  // namespace g4
