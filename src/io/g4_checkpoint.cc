#include "io/g4_checkpoint.h"

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace g4 {

using nlohmann::json;

std::string quant_codes_name(const std::string& n) { return n + ".codes"; }
std::string quant_scales_name(const std::string& n) { return n + ".scales"; }
std::string quant_zeros_name(const std::string& n) { return n + ".zeros"; }

std::vector<TensorDecl> quant_stored_tensors(const QuantTensorSpec& s) {
  const QuantScheme& q = s.scheme;
  const int64_t G = s.cols / q.group_size;
  std::vector<TensorDecl> out;
  if (q.kind == QuantKind::kInt4) out.push_back({quant_codes_name(s.name), DType::kU8, {s.rows, s.cols / 2}});
  else out.push_back({quant_codes_name(s.name), DType::kI8, {s.rows, s.cols}});
  out.push_back({quant_scales_name(s.name), q.scale_dtype, {s.rows, G}});
  if (!q.symmetric) out.push_back({quant_zeros_name(s.name), q.scale_dtype, {s.rows, G}});
  return out;
}

std::string quant_metadata_json(const std::vector<QuantTensorSpec>& specs) {
  json tensors = json::object();
  for (const auto& s : specs) {
    const QuantScheme& q = s.scheme;
    tensors[s.name] = {{"kind", q.kind == QuantKind::kInt4 ? "int4" : "int8"},
                       {"shape", {s.rows, s.cols}},
                       {"group_size", q.group_size},
                       {"symmetric", q.symmetric},
                       {"scale_dtype", dtype_name(q.scale_dtype)},
                       {"method", q.method == QuantMethod::kHqq ? "hqq" : "minmax"}};
  }
  return json{{"format", "g4-quant"}, {"version", kG4QuantVersion}, {"tensors", tensors}}.dump();
}

namespace {

bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

int64_t get_int(const json& o, const char* key, const std::string& where) {
  if (!o.contains(key) || !o[key].is_number_integer()) throw Error(where + ": field '" + key + "' must be an integer");
  return o[key].get<int64_t>();
}

const TensorInfo& part(const SafetensorsFile& f, const std::string& name, const std::string& logical, DType dtype,
                       const std::vector<int64_t>& shape) {
  const TensorInfo* t = f.find(name);
  if (!t) throw Error(f.path() + ": quantized tensor '" + logical + "' lacks its stored part '" + name + "'");
  if (t->dtype != dtype || t->shape != shape)
    throw Error(f.path() + ": '" + name + "' is " + dtype_name(t->dtype) + " " + t->shape_str() + " but the scheme of '" +
                logical + "' implies " + dtype_name(dtype) + " " + shape_to_string(shape));
  return *t;
}

}  // namespace

std::vector<LoadedQuant> read_g4_quant(const SafetensorsFile& f, std::set<std::string>* parts) {
  std::vector<LoadedQuant> out;
  const auto it = f.metadata().find(kG4QuantKey);
  const std::string& path = f.path();
  if (it != f.metadata().end()) {
    json j;
    try {
      j = json::parse(it->second);
    } catch (const json::exception& e) {
      throw Error(path + ": metadata '" + kG4QuantKey + "' is not valid JSON: " + e.what());
    }
    if (!j.is_object() || !j.contains("format") || j["format"] != "g4-quant")
      throw Error(path + ": metadata '" + kG4QuantKey + "' is not a g4-quant description");
    if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<int64_t>() != kG4QuantVersion)
      throw Error(path + ": unsupported g4-quant version (this build reads version " + std::to_string(kG4QuantVersion) + ")");
    if (!j.contains("tensors") || !j["tensors"].is_object()) throw Error(path + ": g4-quant description lacks 'tensors'");
    for (auto t = j["tensors"].begin(); t != j["tensors"].end(); ++t) {
      const std::string& name = t.key();
      const std::string where = path + ": quantized tensor '" + name + "'";
      const json& d = t.value();
      if (!d.is_object()) throw Error(where + ": description is not an object");
      LoadedQuant lq;
      QuantTensorSpec& s = lq.spec;
      s.name = name;
      const std::string kind = d.contains("kind") && d["kind"].is_string() ? d["kind"].get<std::string>() : "";
      if (kind == "int4") s.scheme.kind = QuantKind::kInt4;
      else if (kind == "int8") s.scheme.kind = QuantKind::kInt8;
      else throw Error(where + ": kind must be \"int4\" or \"int8\"");
      if (!d.contains("shape") || !d["shape"].is_array() || d["shape"].size() != 2 || !d["shape"][0].is_number_integer() ||
          !d["shape"][1].is_number_integer())
        throw Error(where + ": shape must be [rows, cols]");
      s.rows = d["shape"][0].get<int64_t>();
      s.cols = d["shape"][1].get<int64_t>();
      if (s.rows <= 0 || s.cols <= 0 || s.rows > (int64_t(1) << 40) || s.cols > (int64_t(1) << 40))
        throw Error(where + ": shape [" + std::to_string(s.rows) + ", " + std::to_string(s.cols) + "] is not valid");
      s.scheme.group_size = get_int(d, "group_size", where);
      if (s.scheme.group_size <= 0 || s.cols % s.scheme.group_size != 0)
        throw Error(where + ": group_size " + std::to_string(s.scheme.group_size) + " does not divide the row length " +
                    std::to_string(s.cols));
      if (s.scheme.kind == QuantKind::kInt4 && s.cols % 2 != 0) throw Error(where + ": int4 needs an even row length");
      if (!d.contains("symmetric") || !d["symmetric"].is_boolean()) throw Error(where + ": field 'symmetric' must be a boolean");
      s.scheme.symmetric = d["symmetric"].get<bool>();
      DType sd;
      if (!d.contains("scale_dtype") || !d["scale_dtype"].is_string() ||
          !parse_safetensors_dtype(d["scale_dtype"].get<std::string>(), &sd) ||
          (sd != DType::kBF16 && sd != DType::kF16 && sd != DType::kF32))
        throw Error(where + ": scale_dtype must be \"BF16\", \"F16\" or \"F32\"");
      s.scheme.scale_dtype = sd;
      const json method = d.contains("method") ? d["method"] : json("minmax");
      if (method != "minmax" && method != "hqq") throw Error(where + ": method must be \"minmax\" or \"hqq\"");
      s.scheme.method = method == "hqq" ? QuantMethod::kHqq : QuantMethod::kMinMax;
      if (f.find(name)) throw Error(where + ": stored both as a plain tensor and as a quantized one");

      const std::vector<TensorDecl> decls = quant_stored_tensors(s);
      std::vector<const TensorInfo*> infos;
      for (const auto& decl : decls) {
        infos.push_back(&part(f, decl.name, name, decl.dtype, decl.shape));
        parts->insert(decl.name);
      }
      QuantWeight& q = lq.q;
      q.kind = s.scheme.kind;
      q.rows = s.rows;
      q.cols = s.cols;
      q.group_size = s.scheme.group_size;
      q.codes = infos[0]->data;
      q.scale_dtype = sd;
      q.scales = infos[1]->data;
      q.zeros = s.scheme.symmetric ? nullptr : infos[2]->data;
      validate(q, path + ": " + name);
      out.push_back(lq);
    }
  }
  for (const auto& [name, info] : f.tensors()) {
    if (parts->count(name)) continue;
    if (ends_with(name, ".codes") || ends_with(name, ".scales") || ends_with(name, ".zeros"))
      if (it != f.metadata().end() || f.find(name.substr(0, name.rfind('.')) + ".codes"))
        throw Error(path + ": stored tensor '" + name + "' looks like a quantized part but no quantized tensor in '" +
                    kG4QuantKey + "' claims it");
  }
  return out;
}

}  // namespace g4
