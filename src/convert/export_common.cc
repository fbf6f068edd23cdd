#include "convert/export_common.h"

#include <cmath>
#include <cstdio>

#include "base/error.h"
#include "io/gguf.h"
#include "io/mapped_file.h"
#include "model/tensor_list.h"

namespace g4 {

namespace fs = std::filesystem;

ExportSource open_export_source(const std::string& model, const std::string& format) {
  if (format != "mlx" && format != "gguf") throw Error("--format: '" + format + "' is not mlx or gguf");
  std::error_code ec;
  if (!fs::exists(model, ec)) throw Error("model path " + model + " does not exist");
  if (!fs::is_directory(model, ec)) {
    if (is_gguf_file(model))
      throw Error(model + " is a GGUF file; g4 export reads a g4 quantized checkpoint directory (made by g4 quantize)");
    throw Error(model + " is not a directory; g4 export reads a g4 quantized checkpoint directory (made by g4 quantize)");
  }
  ExportSource src;
  src.dir = fs::path(model);
  const fs::path cfg = src.dir / "config.json";
  if (!fs::exists(cfg, ec)) throw Error("no config.json in " + model);
  try {
    src.config = nlohmann::ordered_json::parse(read_text_file(cfg.string()));
  } catch (const nlohmann::json::exception& e) {
    throw Error(cfg.string() + ": not valid JSON: " + e.what());
  }
  src.spec = load_model_config(model);
  src.ws = WeightStore::open(model);
  bool any_quant = false;
  for (const auto& [name, w] : src.ws->weights()) any_quant |= is_quantized(w);
  if (!any_quant)
    throw Error(model + " holds no quantized weights (a float checkpoint); quantize it first: g4 quantize -m " + model +
                " -o DIR, then g4 export -m DIR --format " + format);
  for (const ModelTensor& t : model_tensors(src.spec, false)) {
    const StoredWeight& w = src.ws->get_weight(t.name);
    if (w.shape != t.shape)
      throw Error(w.file + ": tensor '" + t.name + "' has shape " + shape_to_string(w.shape) + " but the config implies " +
                  shape_to_string(t.shape));
  }
  return src;
}

float round_param(DType t, double v, const std::string& tensor, const char* what) {
  if (!std::isfinite(v)) throw Error("tensor '" + tensor + "': a " + what + " is not finite");
  float r = float(v);
  if (t == DType::kBF16) r = bf16_to_f32(f32_to_bf16(r));
  else if (t == DType::kF16) r = f16_to_f32(f32_to_f16(r));
  if (!std::isfinite(r))
    throw Error("tensor '" + tensor + "': " + what + " " + std::to_string(v) + " overflows " + dtype_name(t) +
                (t == DType::kF16 ? " (largest 65504)" : "") + "; the weights cannot be exported to this format unchanged");
  return r;
}

void store_param(DType t, float v, void* base, int64_t i) {
  if (t == DType::kBF16) static_cast<uint16_t*>(base)[i] = f32_to_bf16(v);
  else if (t == DType::kF16) static_cast<uint16_t*>(base)[i] = f32_to_f16(v);
  else static_cast<float*>(base)[i] = v;
}

namespace {
double load(DType t, const void* base, int64_t i) {
  float f;
  convert_to_f32(t, static_cast<const uint8_t*>(base) + size_t(i) * dtype_size(t), 1, &f);
  return f;
}
}  // namespace

double source_scale(const QuantWeight& q, int64_t r, int64_t g) { return load(q.scale_dtype, q.scales, r * q.groups_per_row() + g); }

double source_zero(const QuantWeight& q, int64_t r, int64_t g) {
  if (!q.zeros) return q.kind == QuantKind::kInt4 ? 8.0 : 0.0;
  return load(q.scale_dtype, q.zeros, r * q.groups_per_row() + g);
}

int source_code(const QuantWeight& q, int64_t r, int64_t k) {
  if (q.kind == QuantKind::kInt4) {
    const uint8_t byte = q.codes[size_t(r) * size_t(q.cols / 2) + size_t(k / 2)];
    return (k & 1) ? byte >> 4 : byte & 15;
  }
  return reinterpret_cast<const int8_t*>(q.codes)[size_t(r) * size_t(q.cols) + size_t(k)];
}

int64_t target_group(int64_t source_gs, std::initializer_list<int64_t> allowed) {
  for (int64_t g : allowed)
    if (source_gs % g == 0) return g;
  return 0;
}

void note_change(ExportReport* rep, const std::string& tensor, double change, double scale) {
  if (change > rep->max_change) {
    rep->max_change = change;
    rep->max_change_tensor = tensor;
  }
  if (scale != 0) rep->max_change_steps = std::max(rep->max_change_steps, change / std::fabs(scale));
}

void write_text(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error("cannot create " + path);
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) throw Error("cannot write " + path);
}

void copy_side_files(const fs::path& from, const fs::path& to) {
  static const char* kFiles[] = {"generation_config.json", "tokenizer.json", "tokenizer_config.json", "tokenizer.model",
                                 "special_tokens_map.json", "chat_template.jinja", "chat_template.json"};
  std::error_code ec;
  for (const char* f : kFiles) {
    if (!fs::exists(from / f, ec)) continue;
    fs::copy_file(from / f, to / f, fs::copy_options::overwrite_existing, ec);
    if (ec) throw Error("cannot copy " + (from / f).string() + " to " + to.string() + ": " + ec.message());
  }
}

}  // namespace g4
