// A safetensors writer for files larger than memory: the header (names, dtypes, shapes, offsets) is fixed
// up front, then each tensor's bytes are written at any byte offset in any order (row chunks of several
// tensors interleave). finish() checks every byte was written exactly once and renames the .tmp file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/dtype.h"

namespace g4 {

struct TensorDecl {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
};

class SafetensorsStreamWriter {
 public:
  SafetensorsStreamWriter(const std::string& path, const std::vector<TensorDecl>& tensors,
                          const std::map<std::string, std::string>& metadata);
  ~SafetensorsStreamWriter();  // without finish(), removes the partial file
  SafetensorsStreamWriter(const SafetensorsStreamWriter&) = delete;
  SafetensorsStreamWriter& operator=(const SafetensorsStreamWriter&) = delete;

  // Index of a declared tensor; throws g4::Error for unknown names.
  size_t index(const std::string& name) const;
  uint64_t tensor_bytes(size_t i) const { return sizes_[i]; }
  // Writes n bytes at `offset` inside tensor i.
  void write(size_t i, uint64_t offset, const void* data, size_t n);
  void write(const std::string& name, uint64_t offset, const void* data, size_t n) { write(index(name), offset, data, n); }
  void finish();
  uint64_t total_bytes() const { return data_start_ + total_; }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t data_start_ = 0, total_ = 0;
  std::vector<std::string> names_;
  std::vector<uint64_t> offsets_, sizes_, written_;
};

}  // namespace g4
