// llama.cpp on g4's GGUF export: the shipped model (models/tiny-kjv) quantized by `g4 quantize` in the
// variants that give each GGUF type g4 exports (Q4_1, Q4_0, Q8_0; F32 matrices beside a Q8_0 embedding, from the
// model widened to f32) and exported by `g4 export --format gguf`, here again; llama.cpp's logits for those
// files (run once by hand with libllama, CPU, by bench/export_vs_llamacpp.sh; tests/data/gguf-llamacpp/README.md)
// are the reference. g4's logits (ref backend) on the source checkpoint and on the exported file must match
// llama.cpp's within what its CPU kernels change. For Q4_0 / Q4_1 / Q8_0 weights llama.cpp rounds the
// activations to 8 bits per block of 32; g4's cpu backend, which does the same, differs from g4's ref backend
// by as much on these checkpoints (max 0.14-0.15, mean 0.019-0.020) as llama.cpp does (max 0.12-0.23, mean
// 0.016-0.022; 2-core x86 dev machine, 2026-12-02); bounds max 0.3 / mean 0.04. F32 matrices keep f32
// activations: there llama.cpp and g4 differ by max 0.0028 / mean 0.00037 (GELU through llama.cpp's f16 table,
// summation order); bounds 0.01 / 0.001. A wrong export lands far outside: writing every rope_freqs factor as 1
// (rotating the 48 pairs the full layer leaves alone) gives 0.32 on the F32 file, leaving the post-norm weights
// without the embedding's sqrt(hidden) ratio 0.013 there; the Q4_0 export against the Q4_1 export's reference a
// mean of 0.30.
#include <filesystem>
#include <ostream>

#include "export_util.h"
#include "io/gguf.h"
#include "io/safetensors_writer.h"
#include "util/compare.h"

namespace g4 {
namespace {

using namespace export_test;
using testing_util::TempDir;

struct Bounds {
  double max_abs, mean_abs;
};

struct Variant {
  const char* name;   // tests/data/gguf-llamacpp/export-NAME.llama-logits.gguf
  const char* flags;  // g4 quantize flags
  Bounds bounds;
};

void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

struct LlamaLogits {
  std::vector<int32_t> tokens;
  std::vector<float> logits;  // [T, V]
};

LlamaLogits read_llama(const std::string& name) {
  GgufFile f(kData + "/gguf-llamacpp/export-" + name + ".llama-logits.gguf");
  const GgufTensor* lt = f.find_tensor("logits");
  const GgufTensor* pt = f.find_tensor("prompt");
  EXPECT_TRUE(lt && pt);
  LlamaLogits r;
  if (!lt || !pt) return r;
  const auto* p = reinterpret_cast<const int32_t*>(pt->data);
  r.tokens.assign(p, p + pt->numel());
  const auto* l = reinterpret_cast<const float*>(lt->data);
  r.logits.assign(l, l + lt->numel());
  return r;
}

double mean_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) s += testing_util::abs_diff(a[i], b[i]);
  return a.empty() ? 0 : s / double(a.size());
}

// The shipped model with its bf16 tensors widened to f32 (exact), in d: llama.cpp multiplies F32 matrices
// without rounding the activations.
std::string widened_model(const TempDir& d) {
  namespace fs = std::filesystem;
  const std::string out = d.file("f32-model");
  fs::create_directories(out);
  for (const auto& e : fs::directory_iterator(kTinyKjv))
    if (e.path().extension() != ".safetensors") fs::copy_file(e.path(), fs::path(out) / e.path().filename());
  SafetensorsFile f(kTinyKjv + "/model.safetensors");
  std::vector<std::vector<float>> data;
  std::vector<TensorToWrite> ts;
  for (const auto& [name, t] : f.tensors()) {
    EXPECT_EQ(t.dtype, DType::kBF16) << name;
    data.emplace_back(size_t(t.numel()));
    convert_to_f32(t.dtype, t.data, t.numel(), data.back().data());
  }
  size_t i = 0;
  for (const auto& [name, t] : f.tensors()) ts.push_back({name, DType::kF32, t.shape, data[i++].data()});
  write_safetensors(out + "/model.safetensors", ts);
  return out;
}

// Exports the variant; returns the checkpoint directory and the GGUF path inside d.
std::pair<std::string, std::string> make_export(const TempDir& d, const Variant& v) {
  const std::string q = d.file(std::string("q-") + v.name), gguf = d.file(std::string(v.name) + ".gguf");
  const std::string model = std::string(v.name) == "f32" ? widened_model(d) : kTinyKjv;
  auto r = run_g4("quantize -m " + model + " -o " + q + " " + v.flags);
  EXPECT_EQ(r.status, 0) << r.err;
  r = run_g4("export -m " + q + " --format gguf -o " + gguf);
  EXPECT_EQ(r.status, 0) << r.err;
  return {q, gguf};
}

class ExportLlamaCpp : public ::testing::TestWithParam<Variant> {};

TEST_P(ExportLlamaCpp, LogitsMatchLlamaCpp) {
  const Variant v = GetParam();
  const LlamaLogits want = read_llama(v.name);
  ASSERT_FALSE(want.tokens.empty());
  TempDir d;
  const auto [q, gguf] = make_export(d, v);
  for (const auto& [what, model] : {std::pair<const char*, std::string>{"source", q}, {"gguf", gguf}}) {
    const std::vector<float> got = ref_logits(model, want.tokens);
    const double mx = testing_util::max_abs_diff(got, want.logits).max, mean = mean_abs_diff(got, want.logits);
    std::printf("[ %s, g4 on the %s ] vs llama.cpp: max |diff| %.4f, mean %.4f\n", v.name, what, mx, mean);
    EXPECT_LE(mx, v.bounds.max_abs) << what;
    EXPECT_LE(mean, v.bounds.mean_abs) << what;
  }
}

// 48 tokens (the fixture's prompt and greedy tokens) for q4_1 and f32, its 16 prompt tokens for q4_0 and q8_0.
INSTANTIATE_TEST_SUITE_P(
    TinyKjv, ExportLlamaCpp,
    ::testing::Values(Variant{"q4_1", "", {0.3, 0.04}}, Variant{"q4_0", "--int4 sym", {0.3, 0.04}},
                      Variant{"q8_0", "--recipe int8", {0.3, 0.04}},
                      Variant{"f32", "--rule 'embed_tokens.*=int8' --rule '.*=bf16'", {0.01, 0.001}}),
    [](const auto& info) { return std::string(info.param.name); });

// The bounds tell exports apart: the Q4_0 export is a different quantization of the same model, and llama.cpp's
// logits for the Q4_1 export are outside them.
TEST(ExportLlamaCppPairing, OtherVariantIsOutsideTheBounds) {
  const LlamaLogits want = read_llama("q4_1");
  ASSERT_FALSE(want.tokens.empty());
  TempDir d;
  const auto [q, gguf] = make_export(d, {"q4_0", "--int4 sym", {}});
  const std::vector<float> got = ref_logits(gguf, want.tokens);
  const double mean = mean_abs_diff(got, want.logits);
  std::printf("[ q4_0 export vs llama.cpp's q4_1 logits ] mean |diff| %.4f\n", mean);
  EXPECT_GT(mean, 0.04);
}

}  // namespace
}  // namespace g4
