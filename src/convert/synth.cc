#include "convert/synth.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/progress.h"
#include "io/g4_checkpoint_writer.h"
#include "model/model_spec.h"
#include "model/tensor_list.h"

namespace g4 {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct Rng {  // splitmix64: fast, and any (seed, tensor, chunk) gives an independent stream
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform() { return float(next() >> 40) * (1.0f / 16777216.0f); }  // [0, 1)
};

constexpr float kWeightStd = 0.02f;  // transformers' initializer_range

json make_config(const std::string& preset, int layers) {
  json t;
  if (preset == "31b") {
    t = {{"vocab_size", 262144}, {"hidden_size", 5376}, {"intermediate_size", 21504}, {"num_attention_heads", 32},
         {"num_key_value_heads", 16}, {"head_dim", 256}, {"global_head_dim", 512}, {"num_global_key_value_heads", 4},
         {"sliding_window", 1024}, {"max_position_embeddings", 262144}};
  } else if (preset == "tiny") {
    t = {{"vocab_size", 1024}, {"hidden_size", 256}, {"intermediate_size", 512}, {"num_attention_heads", 4},
         {"num_key_value_heads", 2}, {"head_dim", 64}, {"global_head_dim", 128}, {"num_global_key_value_heads", 1},
         {"sliding_window", 16}, {"max_position_embeddings", 4096}};
  } else {
    throw Error("--preset: unknown preset '" + preset + "' (expected 31b or tiny)");
  }
  json types = json::array();
  for (int i = 0; i < layers; ++i)
    types.push_back((i + 1) % 6 == 0 || i == layers - 1 ? "full_attention" : "sliding_attention");
  t["model_type"] = "gemma4_text";
  t["num_hidden_layers"] = layers;
  t["layer_types"] = types;
  t["attention_k_eq_v"] = true;
  t["rms_norm_eps"] = 1e-6;
  t["hidden_activation"] = "gelu_pytorch_tanh";
  t["final_logit_softcapping"] = 30.0;
  t["tie_word_embeddings"] = true;
  t["rope_parameters"] = {{"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}},
                          {"full_attention",
                           {{"rope_type", "proportional"}, {"partial_rotary_factor", 0.25}, {"rope_theta", 1000000.0}}}};
  t["bos_token_id"] = 2;
  t["eos_token_id"] = 1;
  t["pad_token_id"] = 0;
  t["dtype"] = "bfloat16";
  return {{"architectures", {"Gemma4ForConditionalGeneration"}}, {"model_type", "gemma4"}, {"text_config", t},
          {"tie_word_embeddings", true}, {"g4_synthetic", {{"preset", preset}}}};
}

// Writes rows [r0, r0+n) of a quantized tensor with random codes around the zero point and scales that
// give the tensor a standard deviation of ~kWeightStd.
void synth_quant_chunk(G4CheckpointWriter& w, const std::string& name, int64_t cols, const QuantScheme& s, int64_t r0,
                       int64_t n, Rng& rng) {
  const int64_t gs = s.group_for(cols), G = cols / gs;
  std::vector<uint8_t> codes(quant_code_bytes(s.kind, n, cols));
  for (size_t i = 0; i < codes.size(); i += 8) {
    uint64_t v = rng.next();
    for (size_t j = 0; j < 8 && i + j < codes.size(); ++j, v >>= 8) codes[i + j] = uint8_t(v);
  }
  // Standard deviation of a uniform code over the range: int4 0..15 -> 4.61, int8 -128..127 -> 73.9.
  const float code_std = s.kind == QuantKind::kInt4 ? 4.61f : 73.9f;
  std::vector<uint16_t> scales(size_t(n * G)), zeros(s.symmetric ? 0 : size_t(n * G));
  for (size_t i = 0; i < scales.size(); ++i) {
    const float sc = kWeightStd / code_std * (0.75f + 0.5f * rng.uniform());
    scales[i] = s.scale_dtype == DType::kF16 ? f32_to_f16(sc) : f32_to_bf16(sc);
    if (!s.symmetric) zeros[i] = f32_to_bf16((s.kind == QuantKind::kInt4 ? 7.5f : -0.5f) + rng.uniform() - 0.5f);
  }
  w.write_quant(name, {r0, n, codes.data(), scales.data(), s.symmetric ? nullptr : zeros.data()});
}

}  // namespace

std::string write_config_json(const std::string& out, const std::string& config_json) {
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw Error("--out: cannot create directory " + out + ": " + ec.message());
  const std::string path = (fs::path(out) / "config.json").string();
  std::ofstream f(path);
  f << config_json << "\n";
  if (!f) throw Error("cannot write " + path);
  return path;
}

uint64_t synth_checkpoint(const SynthOptions& o) {
  const int layers = o.layers > 0 ? o.layers : (o.preset == "31b" ? 60 : 6);
  if (layers > 1000) throw Error("--layers: " + std::to_string(o.layers) + " is too many");
  if (o.group_size != 32 && o.group_size != 64 && o.group_size != 128)
    throw Error("--group-size: " + std::to_string(o.group_size) + " is not 32, 64 or 128");
  if (o.format != "bf16" && o.format != "int4" && o.format != "int8" && o.format != "q4_0")
    throw Error("--format: '" + o.format + "' is not bf16, int4, int8 or q4_0");
  if (o.format == "q4_0" && o.group_size != 32) throw Error("--format q4_0: the group size is 32 (Q4_0's block)");
  if (o.out.empty()) throw Error("--out: an output directory is required");
  const json cfg = make_config(o.preset, layers);
  const std::string cfg_path = write_config_json(o.out, cfg.dump(2));
  const ModelSpec spec = parse_model_config(cfg.dump(), cfg_path);

  const bool quant = o.format != "bf16";
  // q4_0: what a GGUF of Q4_0 blocks loads as (quant/gguf_blocks.h), the embedding (tied lm_head) included:
  // int4 g32 symmetric with f16 scales, so the backends run the same kernels as on such a GGUF.
  const QuantScheme q4_0{QuantKind::kInt4, 32, true, QuantMethod::kMinMax, DType::kF16};
  const QuantScheme embed_scheme = o.format == "q4_0" ? q4_0 : QuantScheme{QuantKind::kInt8, 0, true, QuantMethod::kMinMax, DType::kBF16};
  const QuantScheme lin_scheme = o.format == "q4_0" ? q4_0
                                 : o.format == "int4"
                                     ? QuantScheme{QuantKind::kInt4, o.group_size, false, QuantMethod::kMinMax, DType::kBF16}
                                     : QuantScheme{QuantKind::kInt8, o.group_size, true, QuantMethod::kMinMax, DType::kBF16};
  // int4 follows the default recipe: lm_head untied and int4; int8 and q4_0 keep it tied to the embedding.
  const std::vector<ModelTensor> tensors = model_tensors(spec, o.format == "int4");
  std::vector<PlannedTensor> plan;
  for (const ModelTensor& t : tensors) {
    PlannedTensor p{t.name, DType::kBF16, t.shape, std::nullopt};
    if (quant && t.kind == TensorKind::kEmbedding) p.quant = embed_scheme;
    if (quant && t.kind == TensorKind::kMatrix) p.quant = lin_scheme;
    plan.push_back(p);
  }
  G4CheckpointWriter w((fs::path(o.out) / "model.safetensors").string(), plan,
                       {{"g4.synthetic", "preset=" + o.preset + " format=" + o.format + " seed=" + std::to_string(o.seed)}});
  Progress prog("synth " + o.preset + " " + o.format, w.total_bytes(), "B", o.progress);
  for (size_t ti = 0; ti < plan.size(); ++ti) {
    const PlannedTensor& p = plan[ti];
    const int64_t rows = p.shape[0], cols = p.shape.size() == 2 ? p.shape[1] : 1;
    const int64_t chunk = std::max<int64_t>(1, (int64_t(2) << 20) / cols);
    for (int64_t r0 = 0, ci = 0; r0 < rows; r0 += chunk, ++ci) {
      const int64_t n = std::min(chunk, rows - r0);
      Rng rng{o.seed * 0x100000001b3ull ^ (uint64_t(ti) << 32) ^ uint64_t(ci)};
      rng.next();
      uint64_t bytes;
      if (p.quant) {
        synth_quant_chunk(w, p.name, cols, *p.quant, r0, n, rng);
        bytes = quant_code_bytes(p.quant->kind, n, cols) + quant_scale_bytes(*p.quant, n, cols) * (p.quant->symmetric ? 1 : 2);
      } else {
        std::vector<uint16_t> v(size_t(n * cols));
        const bool norm = p.shape.size() == 1;
        const bool scalar = p.name.size() >= 12 && p.name.compare(p.name.size() - 12, 12, "layer_scalar") == 0;
        const float half_width = kWeightStd * std::sqrt(3.0f);  // uniform with std kWeightStd
        for (auto& x : v)
          x = f32_to_bf16(scalar ? 1.0f : norm ? 1.0f + 0.1f * (rng.uniform() - 0.5f) : half_width * (2 * rng.uniform() - 1));
        bytes = v.size() * 2;
        w.write_plain(p.name, uint64_t(r0) * uint64_t(cols) * 2, v.data(), bytes);
      }
      prog.add(bytes);
    }
  }
  w.finish();
  prog.finish();
  return w.total_bytes();
}

}  // namespace g4
