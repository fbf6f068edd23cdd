// g4 checkpoint -> MLX-LM directory (quant/mlx_affine.h for the tensor layout). Names are those mlx-lm's
// gemma4 model holds after its sanitize step: with config "model_type": "gemma4" (the Hugging Face layout)
// language_model.model.<canonical> and language_model.lm_head.weight; with "gemma4_text" model.<canonical>
// and lm_head.weight. config.json is the source's plus the "quantization" block mlx-lm reads (defaults and
// per-module overrides), a top-level vocab_size (mlx-lm's gemma4 wrapper otherwise assumes 262144) and
// tie_word_embeddings false when a separate lm_head is stored (mlx-lm builds lm_head only when untied), and
// every text-model key mlx-lm reads (export_mlx_config.h).
#include <cmath>
#include <map>

#include "base/error.h"
#include "base/progress.h"
#include "convert/export_common.h"
#include "convert/export_mlx_config.h"
#include "io/safetensors_stream.h"
#include "quant/mlx_affine.h"

namespace g4 {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

struct Planned {
  std::string canonical, stored;  // stored: the tensor name in the MLX file (".weight" of the module)
  const StoredWeight* w;
  int bits = 0;
  int64_t group = 0;  // target group size
  DType sdt = DType::kF16;  // scales and biases
};

DType parse_scale_dtype(const std::string& s) {
  if (s == "bf16") return DType::kBF16;
  if (s == "f16") return DType::kF16;
  if (s == "f32") return DType::kF32;
  throw Error("--scale-dtype: '" + s + "' is not bf16, f16 or f32");
}

std::string module_of(const std::string& stored) { return stored.substr(0, stored.size() - 7); }  // drop ".weight"

}  // namespace

ExportReport export_mlx(const ExportOptions& o) {
  if (o.out.empty()) throw Error("--out: an output directory is required");
  const DType sdt = parse_scale_dtype(o.scale_dtype);
  ExportSource src = open_export_source(o.model, "mlx");
  ordered_json cfg = src.config;
  const std::string model_type = cfg.contains("model_type") && cfg["model_type"].is_string() ? cfg["model_type"].get<std::string>() : "";
  std::string prefix, head;
  if (model_type == "gemma4") prefix = "language_model.model.", head = "language_model.lm_head.weight";
  else if (model_type == "gemma4_text") prefix = "model.", head = "lm_head.weight";
  else throw Error((src.dir / "config.json").string() + ": model_type '" + model_type + "' is not gemma4 or gemma4_text");

  std::vector<Planned> plan;
  std::vector<TensorDecl> decls;
  std::map<std::pair<int64_t, int>, int> param_count;
  for (const auto& [name, w] : src.ws->weights()) {
    Planned p{name, name == "lm_head.weight" ? head : prefix + name, &w};
    if (w.quant) {
      const QuantWeight& q = *w.quant;
      if (name.size() < 7 || name.compare(name.size() - 7, 7, ".weight") != 0)
        throw Error("tensor '" + name + "' is quantized but is not a module weight; MLX cannot hold it");
      p.bits = mlx_bits(q.kind);
      p.group = mlx_group_size_supported(q.group_size) ? q.group_size : target_group(q.group_size, {128, 64, 32});
      if (p.group == 0)
        throw Error("tensor '" + name + "': group size " + std::to_string(q.group_size) +
                    " cannot be expressed in MLX (group sizes 32, 64 and 128, or a multiple of one of them)");
      decls.push_back({p.stored, DType::kU32, {q.rows, q.cols * p.bits / 32}});
      // Symmetric data keeps the source's scale dtype: its bias -2^(bits-1) * s is exact there, and an
      // embedding keeps the dtype mlx-lm multiplies it by sqrt(hidden) in (the source's rounding of it).
      p.sdt = q.zeros ? sdt : q.scale_dtype;
      decls.push_back({module_of(p.stored) + ".scales", p.sdt, {q.rows, q.cols / p.group}});
      decls.push_back({module_of(p.stored) + ".biases", p.sdt, {q.rows, q.cols / p.group}});
      ++param_count[{p.group, p.bits}];
    } else {
      decls.push_back({p.stored, w.plain->dtype, w.plain->shape});
    }
    plan.push_back(p);
  }

  // Defaults: the most common (group size, bits); every other quantized module gets its own entry.
  std::pair<int64_t, int> def{0, 0};
  int best = -1;
  for (const auto& [k, n] : param_count)
    if (n > best) best = n, def = k;
  ordered_json quant = {{"group_size", def.first}, {"bits", def.second}, {"mode", "affine"}};
  for (const Planned& p : plan)
    if (p.bits && std::make_pair(p.group, p.bits) != def)
      quant[module_of(p.stored)] = {{"group_size", p.group}, {"bits", p.bits}};
  cfg["quantization"] = quant;
  cfg["quantization_config"] = quant;
  const bool has_head = src.ws->find_weight("lm_head.weight") != nullptr;
  if (model_type == "gemma4") {
    if (!cfg.contains("vocab_size")) cfg["vocab_size"] = src.spec.vocab_size;
    if (!cfg.contains("text_config") || !cfg["text_config"].is_object()) cfg["text_config"] = ordered_json::object();
  }
  ordered_json& text = model_type == "gemma4" ? cfg["text_config"] : cfg;
  complete_mlx_text_config(text, src.spec);
  text["tie_word_embeddings"] = !has_head;
  if (has_head) cfg["tie_word_embeddings"] = false;

  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) throw Error("--out: cannot create directory " + o.out + ": " + ec.message());
  if (fs::equivalent(src.dir, fs::path(o.out), ec)) throw Error("--out: must differ from the source directory");
  copy_side_files(src.dir, o.out);

  ExportReport rep;
  SafetensorsStreamWriter out((fs::path(o.out) / "model.safetensors").string(), decls, {{"format", "mlx"}});
  uint64_t work = 0;
  for (size_t i = 0; i < decls.size(); ++i) work += out.tensor_bytes(i);
  Progress prog("export", work, "B", o.progress);
  for (const Planned& p : plan) {
    const StoredWeight& w = *p.w;
    if (!w.quant) {
      const TensorInfo& t = *w.plain;
      out.write(p.stored, 0, t.data, t.nbytes);
      prog.add(t.nbytes);
      ++rep.plain;
      ++rep.types[dtype_name(t.dtype)];
      continue;
    }
    const QuantWeight& q = *w.quant;
    const int64_t n_words = q.cols * p.bits / 32, n_groups = q.cols / p.group;
    const int off = mlx_code_offset(q.kind);
    std::vector<uint32_t> words(static_cast<size_t>(n_words));
    const DType sdt = p.sdt;
    std::vector<uint8_t> scales(size_t(n_groups) * dtype_size(sdt)), biases(scales.size());
    const size_t is = out.index(module_of(p.stored) + ".scales"), ib = out.index(module_of(p.stored) + ".biases");
    for (int64_t r = 0; r < q.rows; ++r) {
      mlx_pack_row(q, r, words.data());
      for (int64_t t = 0; t < n_groups; ++t) {
        const int64_t g = t * p.group / q.group_size;
        const double s = source_scale(q, r, g), z = source_zero(q, r, g);
        const float s2 = round_param(sdt, s, p.canonical, "scale");
        const float b2 = round_param(sdt, -s * (z + off), p.canonical, "bias (-scale * zero point)");
        store_param(sdt, s2, scales.data(), t);
        store_param(sdt, b2, biases.data(), t);
        for (int64_t k = t * p.group; k < (t + 1) * p.group; ++k) {
          const int c = source_code(q, r, k);
          note_change(&rep, p.canonical, std::fabs((double(s2) * (c + off) + double(b2)) - (c - z) * s), s);
        }
      }
      out.write(p.stored, uint64_t(r) * uint64_t(n_words) * 4, words.data(), words.size() * 4);
      out.write(is, uint64_t(r) * scales.size(), scales.data(), scales.size());
      out.write(ib, uint64_t(r) * biases.size(), biases.data(), biases.size());
      prog.add(words.size() * 4 + scales.size() * 2);
    }
    ++rep.quantized;
    ++rep.types["mlx " + std::to_string(p.bits) + "-bit g" + std::to_string(p.group)];
    src.ws->release_pages();
  }
  out.finish();
  prog.finish();
  write_text((fs::path(o.out) / "config.json").string(), cfg.dump(2) + "\n");
  rep.bytes_out = out.total_bytes();
  return rep;
}

}  // namespace g4
