// Whole-model runs of quantized fixtures (tests/data/hf-reference) against transformers' fp32 logits.
// Bounds, from the weight error each scheme implies on these random-weight models (a worst case; the
// fixtures README quotes transformers itself at cosine ~0.9998 for int8 g32 and ~0.96 for int4 g32 on
// dense-31b-shape):
//  - int8 sym g32: step = absmax/127.5 ~ 2.5 sigma/127.5 per group, so the rms weight error is ~0.6% of
//    the weights'; through 6 layers the logits move by a few percent at most: cosine >= 0.999 and the
//    argmax agrees on >= 90% of positions (only near-ties may flip).
//  - int4 asym g32: step = range/15, ~17x the int8 error (~9% rms per weight); on random weights this is
//    what transformers measures at 0.96: we require cosine >= 0.93 and top-1 >= 60%.
//  - sensitive (HQQ int4, int8 v_proj/down_proj in the outer quarters): measured cosine 0.980, top-1 0.90
//    on dense-31b-shape where default gives 0.971 / 0.875; its bound, cosine >= 0.975 and top-1 >= 85%,
//    is one the default recipe fails (and SensitiveBeatsDefault compares the two on three fixtures).
// Measured values are printed and recorded in docs/QUANT.md.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "convert/quantize_model.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/session.h"

namespace g4 {
namespace {

namespace fs = std::filesystem;

struct Metrics {
  double cosine = 0, top1 = 0, kl = 0;
};

Metrics compare(const std::vector<float>& ref, const std::vector<float>& got, int64_t V) {
  Metrics m;
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    dot += double(ref[i]) * got[i];
    na += double(ref[i]) * ref[i];
    nb += double(got[i]) * got[i];
  }
  m.cosine = dot / std::sqrt(na * nb);
  const size_t T = ref.size() / size_t(V);
  for (size_t t = 0; t < T; ++t) {
    const float* a = ref.data() + t * size_t(V);
    const float* b = got.data() + t * size_t(V);
    size_t ia = 0, ib = 0;
    double ma = a[0], mb = b[0];
    for (size_t v = 0; v < size_t(V); ++v) {
      if (a[v] > a[ia]) ia = v;
      if (b[v] > b[ib]) ib = v;
      ma = std::max(ma, double(a[v]));
      mb = std::max(mb, double(b[v]));
    }
    m.top1 += ia == ib;
    double za = 0, zb = 0;
    for (size_t v = 0; v < size_t(V); ++v) {
      za += std::exp(a[v] - ma);
      zb += std::exp(b[v] - mb);
    }
    double kl = 0;  // KL(P_ref || P_quant)
    for (size_t v = 0; v < size_t(V); ++v) {
      const double la = a[v] - ma - std::log(za), lb = b[v] - mb - std::log(zb);
      kl += std::exp(la) * (la - lb);
    }
    m.kl += kl;
  }
  m.top1 /= double(T);
  m.kl /= double(T);
  return m;
}

std::vector<float> read_floats(const SafetensorsFile& f, const char* name) {
  const TensorInfo& t = *f.find(name);
  std::vector<float> v(size_t(t.numel()));
  convert_to_f32(t.dtype, t.data, v.size(), v.data());
  return v;
}

std::vector<int32_t> read_ints(const SafetensorsFile& f, const char* name) {
  const TensorInfo& t = *f.find(name);
  std::vector<int32_t> v(size_t(t.numel()));
  std::memcpy(v.data(), t.data, t.nbytes);
  return v;
}

struct QuantCase {
  const char* fixture;
  const char* recipe;
  double min_cosine, min_top1;
};

class QuantizedFixture : public ::testing::TestWithParam<QuantCase> {};

TEST_P(QuantizedFixture, LogitsCloseToFloatReference) {
  const QuantCase c = GetParam();
  const std::string dir = std::string(G4_TEST_DATA) + "/hf-reference/" + c.fixture;
  SafetensorsFile expected(dir + "/expected.safetensors");
  const std::vector<int32_t> prompt = read_ints(expected, "prompt");
  const std::vector<float> ref = read_floats(expected, "prompt_logits");

  const fs::path out = fs::temp_directory_path() /
                       ("g4_qfix_" + std::to_string(::getpid()) + "_" + c.fixture + "_" + c.recipe);
  QuantizeOptions o;
  o.model = dir + "/model";
  o.out = out.string();
  o.recipe = c.recipe;
  o.progress = false;
  const QuantizeSummary sum = quantize_checkpoint(o);
  EXPECT_GT(sum.quantized, 0);
  EXPECT_LT(sum.bytes_out, sum.bytes_in);

  auto be = make_backend("ref");
  auto model = Model::load(out.string(), *be);
  const int64_t V = model->spec().vocab_size;
  Session s(*model, int64_t(prompt.size()));
  const std::vector<float> got = s.forward(prompt, LogitsMode::kAll);
  const Metrics m = compare(ref, got, V);
  std::printf("%s %s: cosine %.6f top-1 %.3f KL %.5f (%lu -> %lu bytes)\n", c.fixture, c.recipe, m.cosine, m.top1,
              m.kl, (unsigned long)sum.bytes_in, (unsigned long)sum.bytes_out);
  EXPECT_GE(m.cosine, c.min_cosine);
  EXPECT_GE(m.top1, c.min_top1);

  // On-the-fly quantization of the float checkpoint runs the same quantizer: identical logits.
  if (std::string(c.recipe) != "sensitive") {
    LoadOptions lo;
    lo.quantize = std::string(c.recipe) == "default" ? "int4" : "int8";
    auto fly = Model::load(o.model, *be, lo);
    Session s2(*fly, int64_t(prompt.size()));
    EXPECT_EQ(s2.forward(prompt, LogitsMode::kAll), got) << "on-the-fly " << lo.quantize << " differs from g4 quantize";
  }
  fs::remove_all(out);
}

INSTANTIATE_TEST_SUITE_P(HfReference, QuantizedFixture,
                         ::testing::Values(QuantCase{"dense-31b-shape", "int8", 0.999, 0.9},
                                           QuantCase{"dense-31b-shape", "default", 0.93, 0.6},
                                           QuantCase{"dense-31b-shape", "sensitive", 0.975, 0.85},
                                           QuantCase{"separate-v-no-softcap", "int8", 0.999, 0.9},
                                           QuantCase{"deep-small-window", "int8", 0.999, 0.9}),
                         [](const auto& info) {
                           std::string n = std::string(info.param.fixture) + "_" + info.param.recipe;
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

// The sensitive recipe (HQQ int4, int8 v_proj/down_proj in the first and last quarter of the layers) must
// be measurably better than the default one on the same fixture: lower KL to the float reference and a
// higher cosine, on every fixture tried.
TEST(QuantizedRecipes, SensitiveBeatsDefault) {
  for (const char* fixture : {"dense-31b-shape", "deep-small-window", "separate-v-no-softcap"}) {
    const std::string dir = std::string(G4_TEST_DATA) + "/hf-reference/" + fixture;
    SafetensorsFile expected(dir + "/expected.safetensors");
    const std::vector<int32_t> prompt = read_ints(expected, "prompt");
    const std::vector<float> ref = read_floats(expected, "prompt_logits");
    Metrics m[2];
    for (int i = 0; i < 2; ++i) {
      const char* recipe = i == 0 ? "default" : "sensitive";
      const fs::path out = fs::temp_directory_path() /
                           ("g4_qcmp_" + std::to_string(::getpid()) + "_" + fixture + "_" + recipe);
      QuantizeOptions o;
      o.model = dir + "/model";
      o.out = out.string();
      o.recipe = recipe;
      o.progress = false;
      quantize_checkpoint(o);
      auto be = make_backend("ref");
      auto model = Model::load(out.string(), *be);
      Session s(*model, int64_t(prompt.size()));
      m[i] = compare(ref, s.forward(prompt, LogitsMode::kAll), model->spec().vocab_size);
      fs::remove_all(out);
    }
    std::printf("%s: default cosine %.5f KL %.5f; sensitive cosine %.5f KL %.5f\n", fixture, m[0].cosine, m[0].kl,
                m[1].cosine, m[1].kl);
    EXPECT_LT(m[1].kl, m[0].kl) << fixture;
    EXPECT_GT(m[1].cosine, m[0].cosine) << fixture;
  }
}

}  // namespace
}  // namespace g4
