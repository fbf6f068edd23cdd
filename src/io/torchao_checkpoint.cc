#include "io/torchao_checkpoint.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "base/error.h"

namespace g4 {

using nlohmann::json;

namespace {

struct Buffers {
  std::vector<uint8_t> scales, zeros;
};

// torchao encodes some attributes as {"_type": ..., "_data": value}; plain JSON lists appear too.
const json& unwrap(const json& v) {
  if (v.is_object() && v.contains("_data")) return v["_data"];
  return v;
}

std::vector<int64_t> int_list(const json& d, const char* key, const std::string& where) {
  if (!d.contains(key)) throw Error(where + ": attribute '" + key + "' is missing");
  const json& v = unwrap(d[key]);
  std::vector<int64_t> out;
  if (!v.is_array()) throw Error(where + ": attribute '" + key + "' is not a list");
  for (const json& x : v) {
    if (!x.is_number_integer()) throw Error(where + ": attribute '" + key + "' holds a non-integer");
    out.push_back(x.get<int64_t>());
  }
  return out;
}

const TensorInfo& part(const SafetensorsFile& f, const std::string& stored, const std::string& where) {
  const TensorInfo* t = f.find(stored);
  if (!t) throw Error(where + ": stored part '" + stored + "' is missing");
  return *t;
}

void expect(const TensorInfo& t, std::vector<int64_t> shape, const std::string& where) {
  if (t.shape != shape)
    throw Error(where + ": '" + t.name + "' has shape " + t.shape_str() + ", expected " + shape_to_string(shape));
}

bool is_float(DType d) { return d == DType::kBF16 || d == DType::kF16 || d == DType::kF32; }

}  // namespace

bool is_torchao(const SafetensorsFile& f) { return f.metadata().count("tensor_names") != 0; }

std::vector<TorchaoWeight> read_torchao(const SafetensorsFile& f, std::set<std::string>* parts) {
  const std::string& path = f.path();
  const auto& meta = f.metadata();
  json names;
  try {
    names = json::parse(meta.at("tensor_names"));
  } catch (const json::exception& e) {
    throw Error(path + ": metadata 'tensor_names' is not valid JSON: " + e.what());
  }
  if (!names.is_array()) throw Error(path + ": metadata 'tensor_names' is not a list");
  std::vector<TorchaoWeight> out;
  for (const json& jn : names) {
    if (!jn.is_string()) throw Error(path + ": metadata 'tensor_names' holds a non-string");
    const std::string name = jn.get<std::string>();
    const std::string where = path + ": tensor '" + name + "'";
    auto m = meta.find(name);
    if (m == meta.end()) throw Error(where + ": listed in tensor_names but has no metadata entry");
    json d;
    try {
      d = json::parse(m->second);
    } catch (const json::exception& e) {
      throw Error(where + ": metadata is not valid JSON: " + e.what());
    }
    const std::string type = d.is_object() && d.contains("_type") && d["_type"].is_string() ? d["_type"].get<std::string>() : "";
    if (type == "Tensor" || type == "torch.Tensor") continue;
    const size_t dot = name.rfind('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == name.size()) throw Error(where + ": not of the form MODULE.ATTR");
    const std::string prefix = name.substr(0, dot) + "._" + name.substr(dot + 1) + "_";
    if (!d.contains("_data") || !d["_data"].is_object()) throw Error(where + ": metadata lacks the '_data' object");
    const json& a = d["_data"];
    const std::vector<int64_t> shape = int_list(a, "shape", where), block = int_list(a, "block_size", where);
    if (shape.size() != 2 || shape[0] <= 0 || shape[1] <= 0 || shape[0] > (int64_t(1) << 40) || shape[1] > (int64_t(1) << 40))
      throw Error(where + ": shape must be two positive dimensions");
    if (block.size() != 2 || block[0] != 1 || block[1] <= 0 || shape[1] % block[1] != 0)
      throw Error(where + ": block_size must be [1, gs] with gs dividing " + std::to_string(shape[1]));
    const int64_t N = shape[0], K = shape[1], gs = block[1], G = K / gs;
    auto buf = std::make_shared<Buffers>();
    TorchaoWeight w{name, buf, {}};
    QuantWeight& q = w.q;
    q.rows = N;
    q.cols = K;
    q.group_size = gs;
    const TensorInfo& qd = part(f, prefix + "qdata", where);
    const TensorInfo& sc = part(f, prefix + "scale", where);
    const TensorInfo* zp = f.find(prefix + "zero_point");
    if (!is_float(sc.dtype)) throw Error(where + ": scale must be BF16, F16 or F32, not " + dtype_name(sc.dtype));
    q.scale_dtype = sc.dtype;
    const size_t es = dtype_size(sc.dtype);
    if (type == "Int4Tensor") {
      if (K % 2 != 0) throw Error(where + ": int4 needs an even row length");
      if (qd.dtype != DType::kU8) throw Error(where + ": qdata must be U8, not " + dtype_name(qd.dtype));
      expect(qd, {N, K / 2}, where);
      expect(sc, {G, N}, where);  // torchao stores Int4Tensor scale and zero_point transposed
      if (!zp) throw Error(where + ": stored part '" + prefix + "zero_point' is missing");
      expect(*zp, {G, N}, where);
      if (zp->dtype != sc.dtype) throw Error(where + ": zero_point dtype differs from scale dtype");
      q.kind = QuantKind::kInt4;
      buf->scales.resize(size_t(N * G) * es);
      buf->zeros.resize(size_t(N * G) * es);
      for (int64_t g = 0; g < G; ++g)
        for (int64_t n = 0; n < N; ++n) {
          std::memcpy(&buf->scales[size_t(n * G + g) * es], sc.data + size_t(g * N + n) * es, es);
          std::memcpy(&buf->zeros[size_t(n * G + g) * es], zp->data + size_t(g * N + n) * es, es);
        }
      q.zeros = buf->zeros.data();
      q.scales = buf->scales.data();
    } else if (type == "IntxUnpackedToInt8Tensor") {
      if (qd.dtype != DType::kI8) throw Error(where + ": qdata must be I8, not " + dtype_name(qd.dtype));
      expect(qd, {N, K}, where);
      expect(sc, {N, G}, where);
      q.kind = QuantKind::kInt8;
      q.scales = sc.data;
      if (zp) {
        expect(*zp, {N, G}, where);
        if (zp->dtype != DType::kI8 && !is_float(zp->dtype))
          throw Error(where + ": zero_point must be I8 or a float type, not " + dtype_name(zp->dtype));
        std::vector<float> z(size_t(N * G));
        convert_to_f32(zp->dtype, zp->data, z.size(), z.data());
        bool any = false;
        for (float v : z) any |= v != 0.0f;
        if (any) {  // zero points are small integers: exact in any float dtype
          buf->zeros.resize(z.size() * es);
          for (size_t i = 0; i < z.size(); ++i) {
            if (sc.dtype == DType::kF32) std::memcpy(&buf->zeros[i * 4], &z[i], 4);
            else {
              const uint16_t h = sc.dtype == DType::kBF16 ? f32_to_bf16(z[i]) : f32_to_f16(z[i]);
              std::memcpy(&buf->zeros[i * 2], &h, 2);
            }
          }
          q.zeros = buf->zeros.data();
        }
      }
    } else {
      throw Error(where + ": unsupported torchao tensor type '" + type +
                  "' (supported: Int4Tensor, IntxUnpackedToInt8Tensor, Tensor)");
    }
    q.codes = qd.data;
    parts->insert(qd.name);
    parts->insert(sc.name);
    if (zp) parts->insert(zp->name);
    validate(q, where);
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace g4
