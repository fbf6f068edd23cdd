// Reader for GGUF v2/v3 (little-endian) files: header, metadata key/values of every type (flat arrays
// included; nested arrays are refused), tensor infos and the aligned data section. The file is treated
// as hostile: every count, length, dimension and offset is checked against the file size with overflow
// checks before anything is allocated or read, tensors must lie inside the data section, be aligned and
// not overlap. A tensor handed out by this class can be read without further checks.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/mapped_file.h"
#include "quant/gguf_blocks.h"

namespace g4 {

enum class GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8,
  kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
std::string gguf_type_name(GgufType t);

// One metadata value. Strings point into the mapping (valid while the GgufFile lives).
struct GgufValue {
  GgufType type = GgufType::kU8;
  // Scalars: integers in i (signed types, bool) or u (unsigned types), floats in f.
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string_view str;
  // Arrays (type == kArray): element type and count; numeric elements raw little-endian at `raw`,
  // string elements in `strings`.
  GgufType elem_type = GgufType::kU8;
  uint64_t count = 0;
  const uint8_t* raw = nullptr;
  std::vector<std::string_view> strings;
};

struct GgufTensor {
  std::string name;
  uint32_t type = 0;            // GgmlType number (validated: known to ggml_type_info)
  std::vector<int64_t> ne;      // ggml order: ne[0] is the innermost (row length)
  uint64_t offset = 0;          // relative to the data section
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  GgmlType ggml_type() const { return GgmlType(type); }
  // PyTorch order, outermost first: ggml [in, out] -> [out, in].
  std::vector<int64_t> shape() const { return {ne.rbegin(), ne.rend()}; }
  int64_t numel() const;
};

class GgufFile {
 public:
  // Maps and validates the whole file. Throws g4::Error naming the file (and key or tensor).
  explicit GgufFile(const std::string& path);

  const std::string& path() const { return file_->path(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  // Drops the resident pages of the tensor data (still readable: re-read from the file when touched), as
  // SafetensorsFile::release_pages does: the loader calls it after packing each weight.
  void release_pages() const;

  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufValue* find(const std::string& key) const;
  const GgufTensor* find_tensor(const std::string& name) const;

  // Typed access; all throw g4::Error "FILE: metadata KEY ..." on a missing key or a wrong type.
  bool has(const std::string& key) const { return find(key) != nullptr; }
  // Any integer type whose value lies in [lo, hi].
  int64_t get_int(const std::string& key, int64_t lo, int64_t hi) const;
  double get_float(const std::string& key) const;  // F32 or F64 (integers accepted too)
  bool get_bool(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  // Array accessors: integer arrays (values in [lo, hi]), float arrays, bool arrays, string arrays.
  std::vector<int64_t> get_int_array(const std::string& key, int64_t lo, int64_t hi) const;
  std::vector<double> get_float_array(const std::string& key) const;
  std::vector<bool> get_bool_array(const std::string& key) const;
  const std::vector<std::string_view>& get_string_array(const std::string& key) const;

 private:
  std::unique_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, GgufValue> kv_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// True when the file is named *.gguf or starts with the GGUF magic (used to pick the loader).
bool is_gguf_file(const std::string& path);

}  // namespace g4
