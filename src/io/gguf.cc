// GGUF parsing. Every read goes through Cursor, which checks the remaining length first; sizes derived
// from counts use checked_mul/checked_add, and nothing is reserved before the bytes it describes are
// known to be in the file (a count of 2^60 strings fails on the length check, not on allocation).
#include "io/gguf.h"

#include <algorithm>
#include <cmath>
#include <cctype>
#include <cstring>

#include "base/error.h"

namespace g4 {

namespace {

constexpr int kMaxDims = 4;  // ggml tensors have at most 4 dimensions

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kBool: return 1;
    case GgufType::kU16: case GgufType::kI16: return 2;
    case GgufType::kU32: case GgufType::kI32: case GgufType::kF32: return 4;
    case GgufType::kU64: case GgufType::kI64: case GgufType::kF64: return 8;
    default: return 0;  // string, array
  }
}

bool valid_type(uint32_t t) { return t <= uint32_t(GgufType::kF64); }
bool is_int_type(GgufType t) {
  return t == GgufType::kU8 || t == GgufType::kI8 || t == GgufType::kU16 || t == GgufType::kI16 ||
         t == GgufType::kU32 || t == GgufType::kI32 || t == GgufType::kU64 || t == GgufType::kI64;
}

uint64_t load_le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t k = 0; k < n; ++k) v |= uint64_t(p[k]) << (8 * k);
  return v;
}

// Decodes a little-endian scalar of type t at p into the scalar fields of v.
void decode_scalar(GgufType t, const uint8_t* p, GgufValue* v) {
  const uint64_t bits = load_le(p, scalar_size(t));
  switch (t) {
    case GgufType::kU8: case GgufType::kU16: case GgufType::kU32: case GgufType::kU64: v->u = bits; break;
    case GgufType::kI8: v->i = int8_t(bits); break;
    case GgufType::kI16: v->i = int16_t(bits); break;
    case GgufType::kI32: v->i = int32_t(bits); break;
    case GgufType::kI64: v->i = int64_t(bits); break;
    case GgufType::kBool: v->i = int64_t(bits); break;
    case GgufType::kF32: { float f; uint32_t b = uint32_t(bits); std::memcpy(&f, &b, 4); v->f = f; break; }
    case GgufType::kF64: { double d; std::memcpy(&d, &bits, 8); v->f = d; break; }
    default: break;
  }
}

class Cursor {
 public:
  Cursor(const MappedFile& f) : p_(f.data()), size_(f.size()), path_(f.path()) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  const uint8_t* here() const { return p_ + pos_; }

  void need(uint64_t n, const std::string& what) const {
    if (n > remaining())
      throw Error(path_ + ": truncated GGUF file: " + what + " needs " + std::to_string(n) + " bytes at offset " +
                  std::to_string(pos_) + " but the file has " + std::to_string(size_) + " bytes");
  }
  const uint8_t* take(uint64_t n, const std::string& what) {
    need(n, what);
    const uint8_t* r = p_ + pos_;
    pos_ += size_t(n);
    return r;
  }
  uint32_t u32(const std::string& what) { return uint32_t(load_le(take(4, what), 4)); }
  uint64_t u64(const std::string& what) { return load_le(take(8, what), 8); }
  std::string_view str(const std::string& what) {
    const uint64_t n = u64(what + " (string length)");
    const uint8_t* s = take(n, what);
    return {reinterpret_cast<const char*>(s), size_t(n)};
  }

 private:
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

void read_value(Cursor& c, GgufType t, GgufValue* v, const std::string& what, const std::string& path) {
  v->type = t;
  if (t == GgufType::kString) {
    v->str = c.str(what);
    return;
  }
  if (t != GgufType::kArray) {
    decode_scalar(t, c.take(scalar_size(t), what), v);
    if (t == GgufType::kBool && v->i > 1)
      throw Error(path + ": " + what + " is a bool with value " + std::to_string(v->i) + " (must be 0 or 1)");
    return;
  }
  const uint32_t et = c.u32(what + " (array element type)");
  if (et == uint32_t(GgufType::kArray)) throw Error(path + ": " + what + " is a nested array, which is not supported");
  if (!valid_type(et)) throw Error(path + ": " + what + " has unknown array element type " + std::to_string(et));
  v->elem_type = GgufType(et);
  v->count = c.u64(what + " (array length)");
  if (v->elem_type == GgufType::kString) {
    // Each string costs at least its 8-byte length, which bounds the count before reserving.
    if (v->count > c.remaining() / 8)
      throw Error(path + ": " + what + " claims " + std::to_string(v->count) + " strings, more than the file holds");
    v->strings.reserve(size_t(v->count));
    for (uint64_t k = 0; k < v->count; ++k) v->strings.push_back(c.str(what + "[" + std::to_string(k) + "]"));
    return;
  }
  const size_t es = scalar_size(v->elem_type);
  const uint64_t bytes = checked_mul(v->count, es, path + ": " + what + " array size");
  v->raw = c.take(bytes, what + " (" + std::to_string(v->count) + " elements)");
  if (v->elem_type == GgufType::kBool)
    for (uint64_t k = 0; k < v->count; ++k)
      if (v->raw[k] > 1) throw Error(path + ": " + what + "[" + std::to_string(k) + "] is a bool other than 0 or 1");
}

}  // namespace

std::string gguf_type_name(GgufType t) {
  static const char* kNames[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array",
                                 "u64", "i64", "f64"};
  return valid_type(uint32_t(t)) ? kNames[uint32_t(t)] : "type " + std::to_string(uint32_t(t));
}

int64_t GgufTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;  // validated at parse time not to overflow
  return n;
}

GgufFile::GgufFile(const std::string& path) : file_(std::make_unique<MappedFile>(path)) {
  Cursor c(*file_);
  const uint8_t* magic = c.take(4, "magic");
  if (std::memcmp(magic, "GGUF", 4) != 0) throw Error(path + ": not a GGUF file (bad magic)");
  version_ = c.u32("version");
  if (version_ == 1) throw Error(path + ": GGUF version 1 is not supported (only 2 and 3)");
  if (version_ != 2 && version_ != 3)
    throw Error(path + ": GGUF version " + std::to_string(version_) +
                " is not supported (only little-endian versions 2 and 3)");
  const uint64_t n_tensors = c.u64("tensor count");
  const uint64_t n_kv = c.u64("metadata count");

  // Every key/value needs at least 8 (key length) + 4 (type) + 1 bytes: reject absurd counts up front.
  if (n_kv > c.remaining() / 13)
    throw Error(path + ": metadata count " + std::to_string(n_kv) + " is larger than the file can hold");
  for (uint64_t k = 0; k < n_kv; ++k) {
    const std::string what = "metadata entry " + std::to_string(k);
    const std::string key(c.str(what + " key"));
    if (key.empty()) throw Error(path + ": " + what + " has an empty key");
    const uint32_t t = c.u32("metadata '" + key + "' type");
    if (!valid_type(t)) throw Error(path + ": metadata '" + key + "' has unknown type " + std::to_string(t));
    GgufValue v;
    read_value(c, GgufType(t), &v, "metadata '" + key + "'", path);
    if (!kv_.emplace(key, std::move(v)).second) throw Error(path + ": metadata key '" + key + "' appears twice");
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (a->type != GgufType::kU32) throw Error(path + ": metadata 'general.alignment' must be a u32");
    if (a->u == 0 || (a->u & (a->u - 1)) != 0)
      throw Error(path + ": general.alignment " + std::to_string(a->u) + " is not a power of two");
    alignment_ = a->u;
  }

  // Name (8) + n_dims (4) + one dim (8) + type (4) + offset (8) is the least a tensor info takes.
  if (n_tensors > c.remaining() / 32)
    throw Error(path + ": tensor count " + std::to_string(n_tensors) + " is larger than the file can hold");
  tensors_.reserve(size_t(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensor t;
    t.name = std::string(c.str("tensor info " + std::to_string(k) + " name"));
    const std::string tn = "tensor '" + t.name + "'";
    if (t.name.empty()) throw Error(path + ": tensor info " + std::to_string(k) + " has an empty name");
    const uint32_t nd = c.u32(tn + " dimension count");
    if (nd == 0 || nd > kMaxDims)
      throw Error(path + ": " + tn + " has " + std::to_string(nd) + " dimensions (1 to 4 allowed)");
    uint64_t numel = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      const uint64_t n = c.u64(tn + " dimension");
      if (n > uint64_t(INT64_MAX)) throw Error(path + ": " + tn + " has a negative dimension");
      numel = checked_mul(numel, n, path + ": " + tn + " element count");
      if (numel > uint64_t(INT64_MAX)) throw Error(path + ": " + tn + " element count overflows");
      t.ne.push_back(int64_t(n));
    }
    t.type = c.u32(tn + " type");
    const GgmlTypeInfo info = ggml_type_info(t.type);
    if (!info.name) throw Error(path + ": " + tn + " has unknown ggml type " + std::to_string(t.type));
    if (t.ne[0] % info.block_elems != 0)
      throw Error(path + ": " + tn + " row length " + std::to_string(t.ne[0]) + " is not a multiple of the " +
                  info.name + " block size " + std::to_string(info.block_elems));
    t.nbytes = checked_mul(numel / uint64_t(info.block_elems), uint64_t(info.block_bytes),
                           path + ": " + tn + " byte size");
    t.offset = c.u64(tn + " offset");
    if (t.offset % alignment_ != 0)
      throw Error(path + ": " + tn + " offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                  std::to_string(alignment_));
    if (!tensor_index_.emplace(t.name, tensors_.size()).second)
      throw Error(path + ": tensor '" + t.name + "' appears twice");
    tensors_.push_back(std::move(t));
  }

  const uint64_t header_end = c.pos();
  data_offset_ = checked_add(header_end, alignment_ - 1, path + ": data offset") / alignment_ * alignment_;
  const uint64_t fsize = file_->size();
  if (!tensors_.empty() && data_offset_ > fsize)
    throw Error(path + ": truncated GGUF file: the data section would start at " + std::to_string(data_offset_) +
                " but the file has " + std::to_string(fsize) + " bytes");
  const uint64_t data_size = data_offset_ <= fsize ? fsize - data_offset_ : 0;
  for (GgufTensor& t : tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      throw Error(path + ": tensor '" + t.name + "' (" + std::to_string(t.nbytes) + " bytes at data offset " +
                  std::to_string(t.offset) + ") extends past the end of the file (data section has " +
                  std::to_string(data_size) + " bytes)");
    t.data = file_->data() + data_offset_ + t.offset;
  }
  // No two tensors may share bytes.
  std::vector<const GgufTensor*> order;
  for (const GgufTensor& t : tensors_)
    if (t.nbytes > 0) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < order.size(); ++k)
    if (order[k]->offset < order[k - 1]->offset + order[k - 1]->nbytes)
      throw Error(path + ": tensors '" + order[k - 1]->name + "' and '" + order[k]->name + "' overlap");
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

const GgufTensor* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

const GgufValue& must(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (!v) throw Error(f.path() + ": metadata '" + key + "' is missing");
  return *v;
}

[[noreturn]] void wrong_type(const GgufFile& f, const std::string& key, const GgufValue& v, const char* want) {
  std::string got = gguf_type_name(v.type);
  if (v.type == GgufType::kArray) got = "array of " + gguf_type_name(v.elem_type);
  throw Error(f.path() + ": metadata '" + key + "' is " + got + "; expected " + want);
}

int64_t checked_int(const GgufFile& f, const std::string& key, GgufType t, int64_t i, uint64_t u, int64_t lo,
                    int64_t hi) {
  const bool is_unsigned = t == GgufType::kU8 || t == GgufType::kU16 || t == GgufType::kU32 || t == GgufType::kU64;
  if (is_unsigned ? (u > uint64_t(hi) || (lo > 0 && u < uint64_t(lo))) : (i < lo || i > hi))
    throw Error(f.path() + ": metadata '" + key + "' = " + (is_unsigned ? std::to_string(u) : std::to_string(i)) +
                " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return is_unsigned ? int64_t(u) : i;
}

}  // namespace

int64_t GgufFile::get_int(const std::string& key, int64_t lo, int64_t hi) const {
  const GgufValue& v = must(*this, key);
  if (!is_int_type(v.type)) wrong_type(*this, key, v, "an integer");
  return checked_int(*this, key, v.type, v.i, v.u, lo, hi);
}

double GgufFile::get_float(const std::string& key) const {
  const GgufValue& v = must(*this, key);
  if (v.type == GgufType::kF32 || v.type == GgufType::kF64) return v.f;
  if (is_int_type(v.type)) return v.type == GgufType::kU8 || v.type == GgufType::kU16 || v.type == GgufType::kU32 ||
                                          v.type == GgufType::kU64 ? double(v.u) : double(v.i);
  wrong_type(*this, key, v, "a number");
}

bool GgufFile::get_bool(const std::string& key) const {
  const GgufValue& v = must(*this, key);
  if (v.type != GgufType::kBool) wrong_type(*this, key, v, "a bool");
  return v.i != 0;
}

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = must(*this, key);
  if (v.type != GgufType::kString) wrong_type(*this, key, v, "a string");
  return std::string(v.str);
}

std::vector<int64_t> GgufFile::get_int_array(const std::string& key, int64_t lo, int64_t hi) const {
  const GgufValue& v = must(*this, key);
  if (v.type != GgufType::kArray || !is_int_type(v.elem_type)) wrong_type(*this, key, v, "an integer array");
  std::vector<int64_t> out;
  out.reserve(size_t(v.count));
  const size_t es = scalar_size(v.elem_type);
  for (uint64_t k = 0; k < v.count; ++k) {
    GgufValue e;
    decode_scalar(v.elem_type, v.raw + k * es, &e);
    out.push_back(checked_int(*this, key, v.elem_type, e.i, e.u, lo, hi));
  }
  return out;
}

std::vector<double> GgufFile::get_float_array(const std::string& key) const {
  const GgufValue& v = must(*this, key);
  if (v.type != GgufType::kArray || (v.elem_type != GgufType::kF32 && v.elem_type != GgufType::kF64))
    wrong_type(*this, key, v, "a float array");
  std::vector<double> out;
  out.reserve(size_t(v.count));
  const size_t es = scalar_size(v.elem_type);
  for (uint64_t k = 0; k < v.count; ++k) {
    GgufValue e;
    decode_scalar(v.elem_type, v.raw + k * es, &e);
    out.push_back(e.f);
  }
  return out;
}

std::vector<bool> GgufFile::get_bool_array(const std::string& key) const {
  const GgufValue& v = must(*this, key);
  if (v.type != GgufType::kArray || v.elem_type != GgufType::kBool) wrong_type(*this, key, v, "a bool array");
  std::vector<bool> out(size_t(v.count));
  for (uint64_t k = 0; k < v.count; ++k) out[size_t(k)] = v.raw[k] != 0;
  return out;
}

const std::vector<std::string_view>& GgufFile::get_string_array(const std::string& key) const {
  const GgufValue& v = must(*this, key);
  if (v.type != GgufType::kArray || v.elem_type != GgufType::kString) wrong_type(*this, key, v, "a string array");
  return v.strings;
}

bool is_gguf_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char m[4] = {};
  const bool magic = std::fread(m, 1, 4, f) == 4 && std::memcmp(m, "GGUF", 4) == 0;
  std::fclose(f);
  // A file named *.gguf is meant to be one: GgufFile then says what is wrong with it (bad magic, ...)
  // instead of the caller looking for a checkpoint directory's config.json beside it.
  std::string ext = path.size() >= 5 ? path.substr(path.size() - 5) : "";
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return magic || ext == ".gguf";
}

void GgufFile::release_pages() const {
  if (file_->size() > data_offset_) g4::release_pages(file_->data() + data_offset_, file_->size() - data_offset_);
}

}  // namespace g4
