#include "io/mlx_checkpoint.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/mapped_file.h"
#include "quant/mlx_affine.h"

namespace g4 {

using nlohmann::json;
static_assert(std::endian::native == std::endian::little, "MLX's 4-bit words are used in place as g4's nibble order");

namespace {

MlxQuantParams parse_params(const json& o, const std::string& where) {
  MlxQuantParams p;
  if (!o.contains("group_size") || !o["group_size"].is_number_integer() || !o.contains("bits") ||
      !o["bits"].is_number_integer())
    throw Error(where + ": needs integer 'group_size' and 'bits'");
  p.group_size = o["group_size"].get<int64_t>();
  const int64_t bits = o["bits"].get<int64_t>();
  if (o.contains("mode") && o["mode"] != "affine")
    throw Error(where + ": quantization mode " + o["mode"].dump() + " is not supported (g4 reads MLX's \"affine\" mode)");
  if (bits != 4 && bits != 8)
    throw Error(where + ": " + std::to_string(bits) + "-bit quantization is not supported (g4 reads MLX 4-bit and 8-bit models)");
  if (p.group_size <= 0 || p.group_size > (int64_t(1) << 30))
    throw Error(where + ": group_size " + std::to_string(p.group_size) + " is not valid");
  p.bits = int(bits);
  return p;
}

float scalar(DType t, const uint8_t* base, int64_t i) {
  float f;
  convert_to_f32(t, base + size_t(i) * dtype_size(t), 1, &f);
  return f;
}

struct Owned {
  std::vector<uint8_t> codes;
  std::vector<float> scales, zeros;
};

}  // namespace

std::optional<MlxQuantConfig> read_mlx_quant_config(const std::string& dir) {
  const std::filesystem::path p = std::filesystem::path(dir) / "config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(p, ec)) return std::nullopt;
  json j;
  try {
    j = json::parse(read_text_file(p.string()));
  } catch (const json::exception& e) {
    throw Error(p.string() + ": not valid JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("quantization")) return std::nullopt;
  const json& q = j["quantization"];
  const std::string where = p.string() + ": \"quantization\"";
  if (!q.is_object()) throw Error(where + " is not an object");
  MlxQuantConfig c;
  c.source = p.string();
  c.defaults = parse_params(q, where);
  for (auto it = q.begin(); it != q.end(); ++it) {
    if (it.value().is_object()) c.modules[it.key()] = parse_params(it.value(), where + " entry '" + it.key() + "'");
    else if (it.value().is_boolean() && !it.value().get<bool>()) c.modules[it.key()] = std::nullopt;
    else if (it.key() != "group_size" && it.key() != "bits" && it.key() != "mode")
      throw Error(where + " entry '" + it.key() + "' must be {\"group_size\", \"bits\"} or false");
  }
  return c;
}

std::vector<MlxWeight> read_mlx_quant(const SafetensorsFile& f, const MlxQuantConfig& c, std::set<std::string>* parts) {
  std::vector<MlxWeight> out;
  const std::string& path = f.path();
  for (const auto& [name, sc] : f.tensors()) {
    if (name.size() < 7 || name.compare(name.size() - 7, 7, ".scales") != 0) continue;
    const std::string module = name.substr(0, name.size() - 7);
    const std::string where = path + ": quantized module '" + module + "'";
    MlxQuantParams p = c.defaults;
    if (auto m = c.modules.find(module); m != c.modules.end()) {
      if (!m->second) throw Error(where + " has scales but " + c.source + " marks it unquantized");
      p = *m->second;
    }
    const TensorInfo* w = f.find(module + ".weight");
    const TensorInfo* bi = f.find(module + ".biases");
    if (!w) throw Error(where + " has scales but no '" + module + ".weight'");
    if (!bi) throw Error(where + " has no '" + module + ".biases' (only MLX's affine mode is supported)");
    if (w->dtype != DType::kU32 || w->shape.size() != 2)
      throw Error(where + ": the packed weight must be a U32 matrix, not " + dtype_name(w->dtype) + " " + w->shape_str());
    if (sc.dtype != DType::kBF16 && sc.dtype != DType::kF16 && sc.dtype != DType::kF32)
      throw Error(where + ": scales must be BF16, F16 or F32, not " + dtype_name(sc.dtype));
    const int64_t rows = w->shape[0], cols = w->shape[1] * (32 / p.bits);
    if (rows <= 0 || cols <= 0 || cols % p.group_size != 0)
      throw Error(where + ": " + std::to_string(cols) + " elements per row is not a multiple of group_size " +
                  std::to_string(p.group_size));
    const std::vector<int64_t> sshape{rows, cols / p.group_size};
    if (sc.shape != sshape || bi->shape != sshape || bi->dtype != sc.dtype)
      throw Error(where + ": scales " + dtype_name(sc.dtype) + " " + sc.shape_str() + " and biases " + dtype_name(bi->dtype) +
                  " " + bi->shape_str() + " do not match the weight (expected " + shape_to_string(sshape) + " with " +
                  std::to_string(p.bits) + " bits, group_size " + std::to_string(p.group_size) + ")");
    parts->insert(name);
    parts->insert(module + ".weight");
    parts->insert(module + ".biases");

    const int64_t n_groups = rows * (cols / p.group_size);
    const float half = float(1 << (p.bits - 1));
    bool symmetric = true;
    for (int64_t g = 0; g < n_groups && symmetric; ++g) {
      const float s = scalar(sc.dtype, sc.data, g), b = scalar(sc.dtype, bi->data, g);
      if (!std::isfinite(s) || !std::isfinite(b)) throw Error(where + ": scale or bias of group " + std::to_string(g) + " is not finite");
      symmetric = b == -half * s;
    }
    auto own = std::make_shared<Owned>();
    MlxWeight mw{module + ".weight", own, {}};
    QuantWeight& q = mw.q;
    q.kind = p.bits == 4 ? QuantKind::kInt4 : QuantKind::kInt8;
    q.rows = rows;
    q.cols = cols;
    q.group_size = p.group_size;
    if (p.bits == 4) {
      q.codes = w->data;
    } else {  // unsigned 8-bit codes -> signed: q_g4 = q_mlx - 128 (byte k of a little-endian word is element k)
      own->codes.resize(size_t(rows) * size_t(cols));
      for (size_t i = 0; i < own->codes.size(); ++i) own->codes[i] = w->data[i] ^ 0x80;
      q.codes = own->codes.data();
    }
    if (symmetric) {  // b = -2^(bits-1) s: exactly the implied zero point (8 for int4; 0 after the int8 shift)
      q.scale_dtype = sc.dtype;
      q.scales = sc.data;
      q.zeros = nullptr;
    } else {
      own->scales.resize(size_t(n_groups));
      own->zeros.resize(size_t(n_groups));
      const float shift = float(mlx_code_offset(q.kind));
      for (int64_t g = 0; g < n_groups; ++g) {
        const float s = scalar(sc.dtype, sc.data, g), b = scalar(sc.dtype, bi->data, g);
        if (!std::isfinite(s) || !std::isfinite(b)) throw Error(where + ": scale or bias of group " + std::to_string(g) + " is not finite");
        if (s != 0) {
          own->scales[size_t(g)] = s;
          own->zeros[size_t(g)] = -b / s - shift;
          continue;
        }
        // Constant group w = b: codes 1 (int4) / 1 (int8) with zero point 0 and scale b.
        if (q.kind == QuantKind::kInt4 && own->codes.empty()) {
          own->codes.assign(w->data, w->data + size_t(rows) * size_t(cols / 2));
          q.codes = own->codes.data();
        }
        const int64_t r = g / (cols / p.group_size), k0 = (g % (cols / p.group_size)) * p.group_size;
        for (int64_t k = k0; k < k0 + p.group_size; ++k) {
          if (q.kind == QuantKind::kInt4) {
            uint8_t& byte = own->codes[size_t(r) * size_t(cols / 2) + size_t(k / 2)];
            byte = (k & 1) ? uint8_t((byte & 0x0f) | 0x10) : uint8_t((byte & 0xf0) | 0x01);
          } else {
            own->codes[size_t(r) * size_t(cols) + size_t(k)] = 1;
          }
        }
        own->scales[size_t(g)] = b;
        own->zeros[size_t(g)] = 0;
      }
      q.scale_dtype = DType::kF32;
      q.scales = own->scales.data();
      q.zeros = own->zeros.data();
    }
    validate(q, where);
    out.push_back(std::move(mw));
  }
  return out;
}

}  // namespace g4
