// A streaming GGUF v3 writer (little-endian): metadata and tensor descriptions are collected first, begin()
// writes the header, then each tensor's bytes are appended in declaration order (in as many pieces as the
// caller likes) and padded to the alignment (32). The file is written as PATH.tmp and renamed by finish(),
// so a failed export never leaves a half file under the real name. Layout as io/gguf.h reads it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "quant/gguf_blocks.h"

namespace g4 {

class GgufWriter {
 public:
  explicit GgufWriter(std::string path);
  ~GgufWriter();  // without finish(), removes the partial file
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  void kv_u32(const std::string& k, uint32_t v);
  void kv_i32(const std::string& k, int32_t v);
  void kv_f32(const std::string& k, float v);
  void kv_bool(const std::string& k, bool v);
  void kv_str(const std::string& k, const std::string& v);
  void kv_arr_i32(const std::string& k, const std::vector<int32_t>& v);
  void kv_arr_f32(const std::string& k, const std::vector<float>& v);
  void kv_arr_bool(const std::string& k, const std::vector<bool>& v);
  void kv_arr_str(const std::string& k, const std::vector<std::string>& v);

  // shape outermost first (PyTorch order, [out, in]); stored as ggml ne (innermost first). Returns the index.
  size_t add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape);
  uint64_t tensor_bytes(size_t i) const { return tensors_[i].nbytes; }

  // Writes the header; after it, tensors' bytes are appended with write() in declaration order.
  void begin();
  void write(const void* data, size_t n);
  void finish();
  uint64_t total_bytes() const { return pos_; }

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<uint64_t> ne;
    uint64_t nbytes;
  };
  void key(const std::string& k, uint32_t type);
  void put(const void* p, size_t n) { kv_.insert(kv_.end(), (const uint8_t*)p, (const uint8_t*)p + n); }
  void put_str(const std::string& s);
  void raw(const void* p, size_t n);
  void pad();

  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  std::vector<uint8_t> kv_;
  uint64_t n_kv_ = 0, pos_ = 0;
  std::vector<Tensor> tensors_;
  size_t cur_ = 0;        // tensor being written
  uint64_t cur_done_ = 0;  // its bytes written so far
  bool begun_ = false;
};

}  // namespace g4
