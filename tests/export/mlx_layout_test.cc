// The MLX export checked against MLX's documented format, independently of the exporter's code: codes are
// unpacked from the uint32 words by hand (element j of a row in word j / (32 / bits) at bit offset
// (j % (32 / bits)) * bits, as mlx/ops.cpp pack_and_quantize packs them), scales and biases are read by hand
// (w = scale * q + bias), and compared with the g4 source checkpoint read by hand as docs/CHECKPOINT.md
// describes it. Tensor names are those mlx-lm's gemma4 model holds after sanitize; config.json carries the keys
// mlx-lm reads. Plus the reader side: a hand-made MLX directory read by g4 equals the hand formula.
#include <nlohmann/json.hpp>
#include <filesystem>
#include <fstream>
#include <set>

#include "export_util.h"
#include "io/mapped_file.h"
#include "io/safetensors_writer.h"
#include "io/weight_store.h"

namespace g4 {
namespace {

using namespace export_test;
using nlohmann::json;
using testing_util::TempDir;
namespace fs = std::filesystem;

float bf16(const uint8_t* p, int64_t i) {
  uint16_t h;
  std::memcpy(&h, p + 2 * i, 2);
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Source weight (r, k) of a g4 checkpoint tensor read by hand (CHECKPOINT.md): w = (q - z) * s.
double g4_weight(const SafetensorsFile& f, const json& desc, const std::string& name, int64_t r, int64_t k) {
  const bool int4 = desc["kind"] == "int4", sym = desc["symmetric"].get<bool>();
  const int64_t cols = desc["shape"][1], gs = desc["group_size"];
  const TensorInfo& codes = *f.find(name + ".codes");
  const TensorInfo& scales = *f.find(name + ".scales");
  double q;
  if (int4) {
    const uint8_t b = codes.data[r * cols / 2 + k / 2];
    q = (k % 2) ? b >> 4 : b & 15;
  } else {
    q = int8_t(codes.data[r * cols + k]);
  }
  const int64_t g = r * (cols / gs) + k / gs;
  const double s = bf16(scales.data, g);
  const double z = sym ? (int4 ? 8 : 0) : bf16(f.find(name + ".zeros")->data, g);
  return (q - z) * s;
}

class MlxLayout : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ASSERT_EQ(run_g4("quantize -m " + kTinyKjv + " -o " + dir_->file("q")).status, 0);
    const auto r = run_g4("export -m " + dir_->file("q") + " --format mlx -o " + dir_->file("mlx"));
    ASSERT_EQ(r.status, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  static TempDir* dir_;
};
TempDir* MlxLayout::dir_ = nullptr;

TEST_F(MlxLayout, ConfigHasTheKeysMlxLmReads) {
  const json c = json::parse(read_text_file(dir_->file("mlx/config.json")));
  EXPECT_EQ(c["model_type"], "gemma4");  // mlx_lm/models/gemma4.py, the text model under language_model
  EXPECT_EQ(c["vocab_size"], 4096);      // gemma4.ModelArgs overrides text_config's vocab_size with this
  EXPECT_EQ(c["text_config"]["tie_word_embeddings"], false);  // lm_head stored: mlx-lm builds it only when untied
  const json& q = c["quantization"];
  EXPECT_EQ(q["group_size"], 32);
  EXPECT_EQ(q["bits"], 4);
  EXPECT_EQ(q["mode"], "affine");
  // The int8 per-row embedding (192 columns) becomes 8-bit groups of 64, the per-row scale repeated.
  EXPECT_EQ(q["language_model.model.embed_tokens"], json({{"group_size", 64}, {"bits", 8}}));
  EXPECT_EQ(q.size(), 4u) << q.dump();  // group_size, bits, mode and the one override
  EXPECT_EQ(c["quantization_config"], q);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"})
    EXPECT_TRUE(fs::exists(dir_->file("mlx/") + f)) << f;
}

TEST_F(MlxLayout, NamesAreMlxLmGemma4AfterSanitize) {
  SafetensorsFile f(dir_->file("mlx/model.safetensors"));
  std::set<std::string> want;
  const std::string m = "language_model.model.";
  auto quantized = [&](const std::string& module) {
    for (const char* s : {".weight", ".scales", ".biases"}) want.insert(module + s);
  };
  quantized(m + "embed_tokens");
  quantized("language_model.lm_head");
  want.insert(m + "norm.weight");
  for (int i = 0; i < 6; ++i) {
    const std::string l = m + "layers." + std::to_string(i) + ".";
    for (const char* n : {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                          "post_feedforward_layernorm", "self_attn.q_norm", "self_attn.k_norm"})
      want.insert(l + n + ".weight");
    want.insert(l + "layer_scalar");
    for (const char* p : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"})
      quantized(l + p);
    if (i != 5) quantized(l + "self_attn.v_proj");  // layer 5 is full attention with K = V: no v_proj
  }
  std::set<std::string> got;
  for (const auto& [name, t] : f.tensors()) got.insert(name);
  EXPECT_EQ(got, want);
  EXPECT_EQ(f.metadata().at("format"), "mlx");
}

TEST_F(MlxLayout, PackedCodesScalesAndBiasesMatchTheSource) {
  SafetensorsFile src(dir_->file("q/model.safetensors"));
  SafetensorsFile mlx(dir_->file("mlx/model.safetensors"));
  const json c = json::parse(read_text_file(dir_->file("mlx/config.json")));
  const json tensors = json::parse(src.metadata().at("g4.quant"))["tensors"];
  int checked = 0;
  for (auto it = tensors.begin(); it != tensors.end(); ++it) {
    const std::string name = it.key();
    const json& d = it.value();
    const std::string module = name == "lm_head.weight" ? "language_model.lm_head"
                                                         : "language_model.model." + name.substr(0, name.size() - 7);
    const json& qc = c["quantization"].contains(module) ? c["quantization"][module] : c["quantization"];
    const int bits = qc["bits"];
    const int64_t gs = qc["group_size"], rows = d["shape"][0], cols = d["shape"][1];
    EXPECT_EQ(bits, d["kind"] == "int4" ? 4 : 8) << name;
    const TensorInfo& w = *mlx.find(module + ".weight");
    const TensorInfo& s = *mlx.find(module + ".scales");
    const TensorInfo& b = *mlx.find(module + ".biases");
    ASSERT_EQ(w.dtype, DType::kU32) << name;
    ASSERT_EQ(w.shape, (std::vector<int64_t>{rows, cols * bits / 32})) << name;
    ASSERT_EQ(s.shape, (std::vector<int64_t>{rows, cols / gs})) << name;
    ASSERT_EQ(b.shape, s.shape) << name;
    // Asymmetric tensors: --scale-dtype (default F16); symmetric ones keep the source's BF16 (bias exact).
    const DType want_dtype = d["symmetric"].get<bool>() ? DType::kBF16 : DType::kF16;
    ASSERT_EQ(s.dtype, want_dtype) << name;
    ASSERT_EQ(b.dtype, want_dtype) << name;
    auto param = [&](const TensorInfo& t, int64_t i) {
      uint16_t h;
      std::memcpy(&h, t.data + 2 * i, 2);
      return t.dtype == DType::kBF16 ? double(bf16(t.data, i)) : double(f16_to_f32(h));
    };
    const int per_word = 32 / bits;
    double worst_rel = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < cols; ++k) {
        uint32_t word;
        std::memcpy(&word, w.data + 4 * (r * (cols / per_word) + k / per_word), 4);
        const uint32_t q = (word >> ((k % per_word) * bits)) & ((1u << bits) - 1);
        const double scale = param(s, r * (cols / gs) + k / gs), bias = param(b, r * (cols / gs) + k / gs);
        const double got = scale * q + bias, want = g4_weight(src, d, name, r, k);
        // The only rounding is the bias -s*z to f16: at most half an ulp, 2^-11 of |bias|; bf16 scales are
        // exact in f16 (a rounded scale would show here as a larger difference).
        ASSERT_LE(std::fabs(got - want), std::ldexp(std::fabs(bias), -11) + 1e-12)
            << name << " (" << r << ", " << k << "): mlx " << got << " vs g4 " << want;
        if (scale != 0) worst_rel = std::max(worst_rel, std::fabs(got - want) / scale);
      }
    if (bits == 8) {
      EXPECT_EQ(worst_rel, 0) << name << ": symmetric int8 must be exact";
    }
    ++checked;
  }
  EXPECT_EQ(checked, 6 * 7 - 1 + 2);  // 41 linears (one K=V layer) + embedding + lm_head
}

TEST_F(MlxLayout, PlainTensorsAreCopiedByteForByte) {
  SafetensorsFile src(dir_->file("q/model.safetensors"));
  SafetensorsFile mlx(dir_->file("mlx/model.safetensors"));
  int n = 0;
  for (const auto& [name, t] : src.tensors()) {
    if (name.find(".codes") != std::string::npos || name.find(".scales") != std::string::npos ||
        name.find(".zeros") != std::string::npos)
      continue;
    std::string canon;
    ASSERT_TRUE(WeightStore::canonical_name(name, &canon));
    const TensorInfo* m = mlx.find("language_model.model." + canon);
    ASSERT_NE(m, nullptr) << canon;
    EXPECT_EQ(m->dtype, t.dtype);
    EXPECT_EQ(m->shape, t.shape);
    ASSERT_EQ(m->nbytes, t.nbytes);
    EXPECT_EQ(std::memcmp(m->data, t.data, t.nbytes), 0) << canon;
    ++n;
  }
  EXPECT_EQ(n, 6 * 7 + 1);  // 6 norms + layer_scalar per layer, final norm
}

// The reader: a directory written here by hand (8-bit asymmetric with a zero-scale group, 4-bit symmetric)
// reads back as w = scale * q + bias for every element.
TEST(MlxReader, HandWrittenDirectoryDequantizesAsDocumented) {
  TempDir d;
  const int64_t rows = 3, cols = 64;
  std::vector<uint32_t> w8(size_t(rows * cols / 4)), w4(size_t(rows * cols / 8));
  std::vector<uint8_t> q8(size_t(rows * cols)), q4(size_t(rows * cols));
  uint32_t x = 12345;
  auto rnd = [&] { return x = x * 1664525u + 1013904223u, x >> 8; };
  for (int64_t i = 0; i < rows * cols; ++i) {
    q8[size_t(i)] = uint8_t(rnd());
    q4[size_t(i)] = uint8_t(rnd() & 15);
    w8[size_t(i / 4)] |= uint32_t(q8[size_t(i)]) << (8 * (i % 4));
    w4[size_t(i / 8)] |= uint32_t(q4[size_t(i)]) << (4 * (i % 8));
  }
  std::vector<uint16_t> s8, b8, s4, b4;
  for (int64_t g = 0; g < rows * 2; ++g) {
    const float s = g == 3 ? 0.0f : 0.01f * float(g + 1);
    s8.push_back(f32_to_bf16(s));
    b8.push_back(f32_to_bf16(g == 3 ? 0.75f : -0.3f * float(g) + 0.1f));
    s4.push_back(f32_to_bf16(0.02f * float(g + 1)));
    b4.push_back(f32_to_bf16(-8 * 0.02f * float(g + 1)));  // exactly -8 s: symmetric
  }
  std::ofstream(d.file("config.json")) << R"({"model_type": "gemma4_text", "quantization": {"group_size": 32, "bits": 4,
      "model.layers.0.mlp.up_proj": {"group_size": 32, "bits": 8}}})";
  write_safetensors(d.file("model.safetensors"),
                    {{"model.layers.0.mlp.up_proj.weight", DType::kU32, {rows, cols / 4}, w8.data()},
                     {"model.layers.0.mlp.up_proj.scales", DType::kBF16, {rows, 2}, s8.data()},
                     {"model.layers.0.mlp.up_proj.biases", DType::kBF16, {rows, 2}, b8.data()},
                     {"model.layers.0.mlp.down_proj.weight", DType::kU32, {rows, cols / 8}, w4.data()},
                     {"model.layers.0.mlp.down_proj.scales", DType::kBF16, {rows, 2}, s4.data()},
                     {"model.layers.0.mlp.down_proj.biases", DType::kBF16, {rows, 2}, b4.data()}});
  auto ws = WeightStore::open(d.path());
  const StoredWeight& up = ws->get_weight("layers.0.mlp.up_proj.weight");
  const StoredWeight& down = ws->get_weight("layers.0.mlp.down_proj.weight");
  ASSERT_TRUE(up.quant && down.quant);
  EXPECT_EQ(up.quant->kind, QuantKind::kInt8);
  EXPECT_EQ(down.quant->kind, QuantKind::kInt4);
  EXPECT_EQ(down.quant->zeros, nullptr) << "bias = -8 scale is symmetric int4";
  EXPECT_EQ(down.quant->scale_dtype, DType::kBF16);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(*up.quant, r, row.data());
    for (int64_t k = 0; k < cols; ++k) {
      const int64_t g = r * 2 + k / 32;
      const double want = double(bf16_to_f32(s8[size_t(g)])) * q8[size_t(r * cols + k)] + bf16_to_f32(b8[size_t(g)]);
      EXPECT_NEAR(row[size_t(k)], want, 4e-7 * (std::fabs(want) + 1)) << "8-bit (" << r << ", " << k << ")";
    }
    dequantize_row(*down.quant, r, row.data());
    for (int64_t k = 0; k < cols; ++k) {
      const int64_t g = r * 2 + k / 32;
      const float want = bf16_to_f32(s4[size_t(g)]) * float(q4[size_t(r * cols + k)]) + bf16_to_f32(b4[size_t(g)]);
      EXPECT_EQ(row[size_t(k)], want) << "4-bit (" << r << ", " << k << ")";
    }
  }
}

}  // namespace
}  // namespace g4
