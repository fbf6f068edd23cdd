#include "convert/quantize_model.h"

#include <algorithm>
#include <filesystem>

#include "base/error.h"
#include "base/progress.h"
#include "io/g4_checkpoint_writer.h"
#include "io/mapped_file.h"
#include "io/weight_store.h"
#include "model/model_spec.h"
#include "model/tensor_list.h"
#include "quant/recipe.h"

namespace g4 {

namespace fs = std::filesystem;

namespace {

// Files beside the weights that a runnable checkpoint keeps unchanged.
const char* kCopiedFiles[] = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                              "tokenizer.model", "special_tokens_map.json", "chat_template.jinja"};

uint64_t stored_bytes(const PlannedTensor& p) {
  if (!p.quant) {
    uint64_t n = dtype_size(p.dtype);
    for (int64_t d : p.shape) n *= uint64_t(d);
    return n;
  }
  return quant_code_bytes(p.quant->kind, p.shape[0], p.shape[1]) +
         quant_scale_bytes(*p.quant, p.shape[0], p.shape[1]) * (p.quant->symmetric ? 1 : 2);
}

}  // namespace

QuantizeSummary quantize_checkpoint(const QuantizeOptions& o) {
  if (o.out.empty()) throw Error("--out: an output directory is required");
  const ModelSpec spec = load_model_config(o.model);
  const fs::path src_dir = fs::is_directory(o.model) ? fs::path(o.model) : fs::path(o.model).parent_path();
  auto ws = WeightStore::open(o.model);
  if (o.int4 != "asym" && o.int4 != "sym") throw Error("--int4: '" + o.int4 + "' is not asym or sym");
  DType sdt;
  if (o.scale_dtype == "bf16") sdt = DType::kBF16;
  else if (o.scale_dtype == "f16") sdt = DType::kF16;
  else if (o.scale_dtype == "f32") sdt = DType::kF32;
  else throw Error("--scale-dtype: '" + o.scale_dtype + "' is not bf16, f16 or f32");
  if (o.offsets != "f16" && o.offsets != "free") throw Error("--offsets: '" + o.offsets + "' is not f16 or free");
  const QuantScheme int4{QuantKind::kInt4, o.group_size, o.int4 == "sym", parse_quant_method(o.method, "--method"), sdt,
                         o.offsets == "f16"};
  Recipe recipe = Recipe::make(o.recipe, spec.n_layers(), int4);
  for (const std::string& r : o.rules) recipe.add_user_rule(r);

  // Check the whole checkpoint against the config before writing anything.
  for (const ModelTensor& t : model_tensors(spec, false)) {
    const StoredWeight& w = ws->get_weight(t.name);
    if (w.shape != t.shape)
      throw Error(w.file + ": tensor '" + t.name + "' has shape " + shape_to_string(w.shape) + " but the config implies " +
                  shape_to_string(t.shape));
  }
  std::vector<PlannedTensor> plan;
  std::vector<std::string> source;  // source tensor of each planned one
  QuantizeSummary sum;
  for (const auto& [name, w] : ws->weights()) {
    if (is_quantized(w)) throw Error(w.file + ": tensor '" + name + "' is already quantized; g4 quantize needs a float checkpoint");
    const TensorInfo& t = *w.plain;
    if (t.dtype != DType::kF32 && t.dtype != DType::kF16 && t.dtype != DType::kBF16)
      throw Error(t.file + ": tensor '" + name + "' has dtype " + dtype_name(t.dtype) + "; expected BF16, F16 or F32");
    PlannedTensor p{name, t.dtype, t.shape, t.shape.size() == 2 ? recipe.choose(name) : std::nullopt};
    plan.push_back(p);
    source.push_back(name);
  }
  if (spec.tie_embeddings && recipe.untie_lm_head() && !ws->find_weight("lm_head.weight")) {
    const TensorInfo& e = ws->get("embed_tokens.weight");
    plan.push_back({"lm_head.weight", e.dtype, e.shape, recipe.choose("lm_head.weight")});
    source.push_back("embed_tokens.weight");
  }
  // Refuse group sizes that do not divide a row before the long pass starts.
  for (const PlannedTensor& p : plan)
    if (p.quant && p.shape[1] % p.quant->group_for(p.shape[1]) != 0)
      throw Error("tensor '" + p.name + "' has rows of " + std::to_string(p.shape[1]) + " elements, not a multiple of group size " +
                  std::to_string(p.quant->group_size) + " (add a --rule to keep or regroup it)");

  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) throw Error("--out: cannot create directory " + o.out + ": " + ec.message());
  if (fs::equivalent(src_dir, fs::path(o.out), ec)) throw Error("--out: must differ from the source directory");
  for (const char* f : kCopiedFiles) {
    const fs::path from = src_dir / f;
    if (fs::exists(from, ec)) {
      fs::copy_file(from, fs::path(o.out) / f, fs::copy_options::overwrite_existing, ec);
      if (ec) throw Error("cannot copy " + from.string() + " to " + o.out + ": " + ec.message());
    }
  }

  G4CheckpointWriter w((fs::path(o.out) / "model.safetensors").string(), plan,
                       {{"g4.quantized_by", "g4 quantize --recipe " + o.recipe + " --group-size " +
                                                std::to_string(o.group_size) + " --method " + o.method + " --int4 " + o.int4 +
                                                " --scale-dtype " + o.scale_dtype + " --offsets " + o.offsets}});
  uint64_t work = 0;
  for (const PlannedTensor& p : plan) work += stored_bytes(p);
  Progress prog("quantize", work, "B", o.progress);
  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedTensor& p = plan[i];
    const TensorInfo& t = ws->get(source[i]);
    if (std::find(source.begin(), source.begin() + std::ptrdiff_t(i), source[i]) == source.begin() + std::ptrdiff_t(i))
      sum.bytes_in += t.nbytes;  // an untied lm_head reads the embedding again: count its bytes once
    if (p.quant) {
      ++sum.quantized;
      const uint64_t per_row = stored_bytes(p) / uint64_t(p.shape[0]);
      quantize_stored(t, p.name, *p.quant, [&](const QuantChunk& c) {
        w.write_quant(p.name, c);
        prog.add(per_row * uint64_t(c.rows));
      });
    } else {
      ++sum.kept;
      const size_t chunk = size_t(8) << 20;
      for (size_t off = 0; off < t.nbytes; off += chunk) {
        const size_t n = std::min(chunk, t.nbytes - off);
        w.write_plain(p.name, off, t.data + off, n);
        const size_t back = std::min<size_t>(off, size_t(4) << 20);  // see quantize_stored.cc
        release_pages(t.data + off - back, n + back);
        prog.add(n);
      }
    }
    ws->release_pages();
  }
  w.finish();
  prog.finish();
  sum.bytes_out = w.total_bytes();
  return sum;
}

}  // namespace g4
