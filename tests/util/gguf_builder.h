// A small GGUF writer for tests: metadata of every type, tensors with their data, alignment padding.
// Tests use it to build valid files and, by editing the returned bytes, malicious ones.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace g4::test {

class GgufBuilder {
 public:
  explicit GgufBuilder(uint32_t version = 3) : version_(version) {}

  void kv_u32(const std::string& k, uint32_t v) { key(k, 4); put(v); ++n_kv_; }
  void kv_i32(const std::string& k, int32_t v) { key(k, 5); put(v); ++n_kv_; }
  void kv_u64(const std::string& k, uint64_t v) { key(k, 10); put(v); ++n_kv_; }
  void kv_i64(const std::string& k, int64_t v) { key(k, 11); put(v); ++n_kv_; }
  void kv_u8(const std::string& k, uint8_t v) { key(k, 0); put(v); ++n_kv_; }
  void kv_i8(const std::string& k, int8_t v) { key(k, 1); put(v); ++n_kv_; }
  void kv_u16(const std::string& k, uint16_t v) { key(k, 2); put(v); ++n_kv_; }
  void kv_i16(const std::string& k, int16_t v) { key(k, 3); put(v); ++n_kv_; }
  void kv_f32(const std::string& k, float v) { key(k, 6); put(v); ++n_kv_; }
  void kv_f64(const std::string& k, double v) { key(k, 12); put(v); ++n_kv_; }
  void kv_bool(const std::string& k, bool v) { key(k, 7); put(uint8_t(v)); ++n_kv_; }
  void kv_str(const std::string& k, const std::string& v) { key(k, 8); str(v); ++n_kv_; }
  void kv_arr_i32(const std::string& k, const std::vector<int32_t>& v) { arr(k, 5, v.size()); for (auto x : v) put(x); }
  void kv_arr_u32(const std::string& k, const std::vector<uint32_t>& v) { arr(k, 4, v.size()); for (auto x : v) put(x); }
  void kv_arr_f32(const std::string& k, const std::vector<float>& v) { arr(k, 6, v.size()); for (auto x : v) put(x); }
  void kv_arr_bool(const std::string& k, const std::vector<bool>& v) {
    arr(k, 7, v.size());
    for (bool x : v) put(uint8_t(x));
  }
  void kv_arr_str(const std::string& k, const std::vector<std::string>& v) { arr(k, 8, v.size()); for (auto& x : v) str(x); }

  // ne in ggml order (ne[0] innermost). data must have the tensor's exact byte size.
  void tensor(const std::string& name, uint32_t type, std::vector<uint64_t> ne, const std::vector<uint8_t>& data) {
    Tensor t{name, type, std::move(ne), data, 0};
    tensors_.push_back(std::move(t));
  }
  template <class T>
  void tensor_of(const std::string& name, uint32_t type, std::vector<uint64_t> ne, const std::vector<T>& v) {
    std::vector<uint8_t> b(v.size() * sizeof(T));
    std::memcpy(b.data(), v.data(), b.size());
    tensor(name, type, std::move(ne), b);
  }
  void set_alignment(uint32_t a) { align_ = a; kv_u32("general.alignment", a); }

  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out;
    auto w = [&](const void* p, size_t n) { out.insert(out.end(), (const uint8_t*)p, (const uint8_t*)p + n); };
    w("GGUF", 4);
    w(&version_, 4);
    const uint64_t nt = tensors_.size(), nk = n_kv_;
    w(&nt, 8);
    w(&nk, 8);
    w(kv_.data(), kv_.size());
    uint64_t off = 0;
    std::vector<uint64_t> offs;
    for (const Tensor& t : tensors_) {
      const uint64_t n = t.name.size();
      w(&n, 8);
      w(t.name.data(), n);
      const uint32_t nd = uint32_t(t.ne.size());
      w(&nd, 4);
      w(t.ne.data(), 8 * nd);
      w(&t.type, 4);
      w(&off, 8);
      offs.push_back(off);
      off += (t.data.size() + align_ - 1) / align_ * align_;
    }
    while (out.size() % align_) out.push_back(0);
    for (const Tensor& t : tensors_) {
      w(t.data.data(), t.data.size());
      while (out.size() % align_) out.push_back(0);
    }
    return out;
  }

  static void write(const std::string& path, const std::vector<uint8_t>& b) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
  }

 private:
  struct Tensor {
    std::string name;
    uint32_t type;
    std::vector<uint64_t> ne;
    std::vector<uint8_t> data;
    uint64_t offset;
  };
  template <class T>
  void put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    kv_.insert(kv_.end(), p, p + sizeof(T));
  }
  void str(const std::string& s) {
    put(uint64_t(s.size()));
    kv_.insert(kv_.end(), s.begin(), s.end());
  }
  void key(const std::string& k, uint32_t type) {
    str(k);
    put(type);
  }
  void arr(const std::string& k, uint32_t elem, size_t n) {
    key(k, 9);
    put(elem);
    put(uint64_t(n));
    ++n_kv_;
  }

  uint32_t version_;
  uint32_t align_ = 32;
  uint64_t n_kv_ = 0;
  std::vector<uint8_t> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace g4::test
