#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/error.h"

namespace g4 {

using nlohmann::json;

namespace {
constexpr uint64_t kMaxHeaderBytes = uint64_t(100) << 20;  // the format's own limit
constexpr int kMaxRank = 8;
}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string TensorInfo::shape_str() const { return shape_to_string(shape); }

SafetensorsFile::SafetensorsFile(const std::string& path) {
  file_ = std::make_unique<MappedFile>(path);
  SafetensorsHeader h = parse_safetensors(file_->data(), file_->size(), path);
  tensors_ = std::move(h.tensors);
  metadata_ = std::move(h.metadata);
}

SafetensorsHeader parse_safetensors(const uint8_t* base, size_t size, const std::string& path) {
  SafetensorsHeader out;
  if (size < 8) throw Error(path + ": not a safetensors file (shorter than its 8-byte header length)");
  uint64_t header_len;
  std::memcpy(&header_len, base, 8);
  if (header_len > kMaxHeaderBytes)
    throw Error(path + ": safetensors header length " + std::to_string(header_len) + " exceeds the 100 MB limit");
  if (header_len > size - 8)
    throw Error(path + ": safetensors header length " + std::to_string(header_len) + " runs past the end of the " +
                std::to_string(size) + "-byte file (truncated?)");
  json header;
  try {
    header = json::parse(base + 8, base + 8 + header_len);
  } catch (const json::exception& e) {
    throw Error(path + ": safetensors header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) throw Error(path + ": safetensors header is not a JSON object");

  const uint8_t* data = base + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  struct Span { uint64_t begin, end; const std::string* name; };
  std::vector<Span> spans;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw Error(path + ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) throw Error(path + ": __metadata__ value for '" + m.key() + "' is not a string");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = path + ": tensor '" + name + "'";
    if (!v.is_object()) throw Error(where + " entry is not an object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) throw Error(where + " has no string dtype");
    if (!v.contains("shape") || !v["shape"].is_array()) throw Error(where + " has no shape array");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      throw Error(where + " has no data_offsets pair");
    TensorInfo t;
    t.name = name;
    t.file = path;
    const std::string dt = v["dtype"].get<std::string>();
    if (!parse_safetensors_dtype(dt, &t.dtype)) throw Error(where + " has unsupported dtype " + dt);
    if (v["shape"].size() > kMaxRank) throw Error(where + " has rank above " + std::to_string(kMaxRank));
    uint64_t numel = 1;
    for (const json& d : v["shape"]) {
      if (!d.is_number_unsigned()) throw Error(where + " has a shape entry that is not a non-negative integer");
      uint64_t dim = d.get<uint64_t>();
      if (dim > (uint64_t(1) << 40)) throw Error(where + " has an absurd dimension " + std::to_string(dim));
      t.shape.push_back(int64_t(dim));
      numel = checked_mul(numel, dim, where);
    }
    const uint64_t nbytes = checked_mul(numel, dtype_size(t.dtype), where);
    const json& off = v["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw Error(where + " has data_offsets that are not non-negative integers");
    const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e) throw Error(where + " has data_offsets with begin after end");
    if (e > data_size)
      throw Error(where + " data ends at byte " + std::to_string(e) + " past the end of the data section (" +
                  std::to_string(data_size) + " bytes; truncated file?)");
    if (e - b != nbytes)
      throw Error(where + " holds " + std::to_string(e - b) + " bytes but its shape " + t.shape_str() + " and dtype " +
                  dt + " need " + std::to_string(nbytes));
    t.data = data + b;
    t.nbytes = size_t(nbytes);
    auto [pos, inserted] = out.tensors.emplace(name, std::move(t));
    if (e > b) spans.push_back({b, e, &pos->first});  // empty tensors occupy no bytes
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].begin < spans[i - 1].end)
      throw Error(path + ": tensors '" + *spans[i - 1].name + "' and '" + *spans[i].name + "' overlap");
  return out;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

void SafetensorsFile::release_pages() const {
  if (file_->size() > 0) g4::release_pages(file_->data(), file_->size());
}

}  // namespace g4
