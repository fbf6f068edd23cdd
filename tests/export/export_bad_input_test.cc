// g4 export on inputs it cannot or must not convert: each is one "g4: error: ..." line and exit status 1,
// and nothing is left under the output name. Also the MLX reader's refusals (bits, modes, shapes).
#include <filesystem>
#include <fstream>
#include <map>

#include "export_util.h"
#include "util/flag_error.h"
#include "base/error.h"
#include "io/g4_checkpoint_writer.h"
#include "io/safetensors_writer.h"
#include "io/weight_store.h"

namespace g4 {
namespace {

using namespace export_test;
using testing_util::TempDir;
using testing_util::expect_flag_error;
namespace fs = std::filesystem;

struct Special {
  QuantScheme scheme;
  float multiplier = 1.0f;  // applied to the weights before quantizing (fp16 overflow cases)
};

// Copies the shipped model's side files and writes its weights as a g4 checkpoint: every tensor plain except
// those in `special`, quantized with their own scheme.
void write_checkpoint(const std::string& out, const std::map<std::string, Special>& special) {
  fs::create_directories(out);
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"})
    fs::copy_file(kTinyKjv + "/" + f, out + "/" + f);
  auto ws = WeightStore::open(kTinyKjv);
  std::vector<PlannedTensor> plan;
  for (const auto& [name, t] : ws->tensors()) {
    auto it = special.find(name);
    plan.push_back({name, t->dtype, t->shape, it == special.end() ? std::nullopt : std::optional(it->second.scheme)});
  }
  G4CheckpointWriter w(out + "/model.safetensors", plan);
  for (const auto& [name, t] : ws->tensors()) {
    auto it = special.find(name);
    if (it == special.end()) {
      w.write_plain(name, 0, t->data, t->nbytes);
      continue;
    }
    std::vector<float> f = tensor_to_f32(*t);
    for (float& x : f) x *= it->second.multiplier;
    OwnedQuantWeight q;
    quantize_tensor(it->second.scheme, f.data(), t->shape[0], t->shape[1], &q, name);
    w.write_quant(name, QuantChunk{0, t->shape[0], q.q.codes, q.q.scales, q.q.zeros});
  }
  w.finish();
}


const QuantScheme kInt4G32{QuantKind::kInt4, 32, false, QuantMethod::kMinMax, DType::kBF16};
const std::string kUp = "layers.0.mlp.up_proj.weight";

TEST(ExportBadInput, FloatCheckpointSaysHowToQuantize) {
  TempDir d;
  expect_flag_error("export -m " + kTinyKjv + " --format gguf -o " + d.file("x.gguf"), "g4 quantize -m");
  expect_flag_error("export -m " + kTinyKjv + " --format mlx -o " + d.file("x"), "g4 quantize -m");
  EXPECT_FALSE(fs::exists(d.file("x.gguf")));
}

TEST(ExportBadInput, GroupSizeNotExpressible) {
  TempDir d;
  write_checkpoint(d.file("q"), {{kUp, {{QuantKind::kInt4, 16, false, QuantMethod::kMinMax, DType::kBF16}}}});
  expect_flag_error("export -m " + d.file("q") + " --format gguf -o " + d.file("x.gguf"), "group size 16");
  expect_flag_error("export -m " + d.file("q") + " --format mlx -o " + d.file("x"), "group size 16");
  EXPECT_FALSE(fs::exists(d.file("x.gguf")));
  EXPECT_FALSE(fs::exists(d.file("x.gguf.tmp")));
}

TEST(ExportBadInput, AsymmetricInt8HasNoGgufForm) {
  TempDir d;
  write_checkpoint(d.file("q"), {{kUp, {{QuantKind::kInt8, 32, false, QuantMethod::kMinMax, DType::kBF16}}}});
  expect_flag_error("export -m " + d.file("q") + " --format gguf -o " + d.file("x.gguf"), "asymmetric int8");
  // MLX expresses it (bias per group): exported, then read back equal within the bias rounding.
  const auto r = run_g4("export -m " + d.file("q") + " --format mlx -o " + d.file("x") + " --scale-dtype f32");
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST(ExportBadInput, Fp16OverflowRefused) {
  TempDir d;
  // Weights of about 1e6: int4 scales near 1e5, beyond F16's 65504 but fine in BF16.
  write_checkpoint(d.file("q"), {{kUp, {kInt4G32, 2e7f}}});
  expect_flag_error("export -m " + d.file("q") + " --format gguf -o " + d.file("x.gguf"), "overflows F16");
  expect_flag_error("export -m " + d.file("q") + " --format mlx -o " + d.file("x"), "overflows F16");  // default f16
  EXPECT_FALSE(fs::exists(d.file("x.gguf")));
  const auto r = run_g4("export -m " + d.file("q") + " --format mlx --scale-dtype bf16 -o " + d.file("y"));
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST(ExportBadInput, FlagsAndPaths) {
  TempDir d;
  write_checkpoint(d.file("q"), {{kUp, {kInt4G32}}});
  expect_flag_error("export -m " + d.file("q") + " --format onnx -o " + d.file("x"), "--format");
  expect_flag_error("export -m " + d.file("q") + " --format mlx --scale-dtype f8 -o " + d.file("x"), "--scale-dtype");
  expect_flag_error("export -m " + d.file("q") + " --format gguf -o " + d.path(), "is a directory");
  expect_flag_error("export -m " + d.file("nope") + " --format gguf -o " + d.file("x.gguf"), "does not exist");
  expect_flag_error("export -m " + kData + "/gguf-llamacpp/kjv-q8_0.gguf --format mlx -o " + d.file("x"), "GGUF file");
}

// An MLX directory whose config.json asks for what g4 cannot read.
void write_mlx(const std::string& dir, const std::string& quant_json, int bits) {
  fs::create_directories(dir);
  std::ofstream(dir + "/config.json") << "{\"model_type\": \"gemma4_text\", \"quantization\": " << quant_json << "}";
  std::vector<uint32_t> w(size_t(2 * 64 * bits / 32), 0x12345678u);
  std::vector<uint16_t> s(4, f32_to_bf16(0.5f)), b(4, f32_to_bf16(-1.0f));
  write_safetensors(dir + "/model.safetensors", {{"model.layers.0.mlp.up_proj.weight", DType::kU32, {2, 64 * bits / 32}, w.data()},
                                                 {"model.layers.0.mlp.up_proj.scales", DType::kBF16, {2, 2}, s.data()},
                                                 {"model.layers.0.mlp.up_proj.biases", DType::kBF16, {2, 2}, b.data()}});
}

TEST(MlxReader, RefusesUnsupportedBitsAndModes) {
  TempDir d;
  write_mlx(d.file("b3"), R"({"group_size": 32, "bits": 3})", 3);
  EXPECT_THROW(WeightStore::open(d.file("b3")), Error);
  try {
    WeightStore::open(d.file("b3"));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3-bit quantization is not supported"), std::string::npos) << e.what();
  }
  write_mlx(d.file("fp4"), R"({"group_size": 32, "bits": 4, "mode": "mxfp4"})", 4);
  EXPECT_THROW(WeightStore::open(d.file("fp4")), Error);
  write_mlx(d.file("gs"), R"({"group_size": 48, "bits": 4})", 4);  // 64 columns: not a multiple of 48
  EXPECT_THROW(WeightStore::open(d.file("gs")), Error);
  write_mlx(d.file("ov"), R"({"group_size": 32, "bits": 4, "model.layers.0.mlp.up_proj": {"group_size": 32, "bits": 8}})", 4);
  EXPECT_THROW(WeightStore::open(d.file("ov")), Error);  // the override says 8 bits: shapes disagree
  write_mlx(d.file("ok"), R"({"group_size": 32, "bits": 4})", 4);
  EXPECT_NO_THROW(WeightStore::open(d.file("ok")));
  // The command line names the problem in one line.
  expect_flag_error("logits --model " + d.file("b3") + " --tokens 1 --out " + d.file("l.safetensors"), "3-bit");
}

}  // namespace
}  // namespace g4
