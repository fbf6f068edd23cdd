// Reader for the safetensors format: 8-byte little-endian header length, a JSON header mapping tensor
// names to {dtype, shape, data_offsets}, then the data. Every field is validated against the file
// (offsets inside the data, size == numel * dtype size without overflow, no overlapping tensors), so
// a tensor handed out by this class can be read without further checks.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "io/mapped_file.h"

namespace g4 {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // inside the mapping; valid while the SafetensorsFile lives
  size_t nbytes = 0;
  std::string file;  // path, for error messages

  int64_t numel() const;
  std::string shape_str() const;  // "[4, 8]"
};

// The parsed and validated header of a safetensors image held in memory (base, size); tensor data
// pointers point into that image. `path` only names it in errors. Throws g4::Error.
struct SafetensorsHeader {
  std::map<std::string, TensorInfo> tensors;
  std::map<std::string, std::string> metadata;
};
SafetensorsHeader parse_safetensors(const uint8_t* base, size_t size, const std::string& path);

class SafetensorsFile {
 public:
  // Maps and validates the file. Throws g4::Error naming the file and, where it applies, the tensor.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Drops the resident pages of the whole mapping (streaming passes; data stays readable).
  void release_pages() const;

 private:
  std::unique_ptr<MappedFile> file_;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

std::string shape_to_string(const std::vector<int64_t>& shape);

}  // namespace g4
