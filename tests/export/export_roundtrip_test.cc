// g4 export round trip: the shipped model (models/tiny-kjv) and the HF reference fixtures, quantized by
// `g4 quantize`, exported to GGUF and to MLX by `g4 export`, loaded back by g4 (its GGUF reader and its MLX
// directory reader) give logits close to the quantized source on the ref backend: within 1e-3 (observed: equal)
// for MLX with f32 scales and biases, where every weight is exported exactly; within 0.02 for GGUF and MLX's
// default f16 biases, whose only change is rounding the offset -s*z (16 significant bits) to f16 (11 bits):
// at most 2^-11 of it per weight, which moves the shipped model's logits (std 3.4) by about 8e-3.
#include <cmath>

#include "export_util.h"

namespace g4 {
namespace {

using namespace export_test;
using testing_util::TempDir;

struct Case {
  const char* name;
  std::string model, tokens_file, tokens_name;
  std::string recipe;
};

void round_trip(const Case& c) {
  TempDir d;
  const std::string q = d.file("q"), gguf = d.file("m.gguf"), mlx = d.file("mlx");
  auto r = g4("quantize -m " + c.model + " -o " + q + " --recipe " + c.recipe);
  ASSERT_EQ(r.status, 0) << r.out;
  r = g4("export -m " + q + " --format gguf -o " + gguf);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("largest weight change"), std::string::npos) << r.out;
  std::printf("[ %s gguf ] %s", c.name, r.out.substr(r.out.find("largest")).c_str());
  r = g4("export -m " + q + " --format mlx -o " + mlx);
  ASSERT_EQ(r.status, 0) << r.out;
  std::printf("[ %s mlx  ] %s", c.name, r.out.substr(r.out.find("largest")).c_str());
  r = g4("export -m " + q + " --format mlx --scale-dtype f32 -o " + mlx + "32");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("largest weight change: 0 (every weight exported exactly)"), std::string::npos) << r.out;

  const std::vector<int32_t> tokens = read_i32(c.tokens_file, c.tokens_name);
  const std::vector<float> src = ref_logits(q, tokens);
  const double dg = max_abs_diff(ref_logits(gguf, tokens), src);
  const double dm = max_abs_diff(ref_logits(mlx, tokens), src);
  const double d32 = max_abs_diff(ref_logits(mlx + "32", tokens), src);
  std::printf("[ %s ] max |logit - source|: gguf %.3g, mlx (f16) %.3g, mlx (f32) %.3g (%zu logits)\n", c.name, dg, dm,
              d32, src.size());
  EXPECT_LE(d32, 1e-3) << "MLX export, f32 scales and biases";
  EXPECT_LE(dg, 0.02) << "GGUF export";
  EXPECT_LE(dm, 0.02) << "MLX export, f16 biases";
}

TEST(ExportRoundTrip, TinyKjvDefaultRecipe) {
  round_trip({"tiny-kjv default", kTinyKjv, kData + "/tiny-kjv/expected.safetensors", "prompt", "default"});
}

TEST(ExportRoundTrip, TinyKjvSensitiveRecipe) {  // int8 g32 v_proj/down_proj beside HQQ int4: MLX per-layer overrides
  round_trip({"tiny-kjv sensitive", kTinyKjv, kData + "/tiny-kjv/expected.safetensors", "prompt", "sensitive"});
}

class ExportFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(ExportFixture, RoundTrip) {
  const std::string dir = kData + "/hf-reference/" + GetParam();
  round_trip({GetParam(), dir + "/model", dir + "/expected.safetensors", "prompt", "default"});
}

INSTANTIATE_TEST_SUITE_P(HfReference, ExportFixture,
                         ::testing::Values("dense-31b-shape", "separate-v-no-softcap", "deep-small-window"));

}  // namespace
}  // namespace g4
