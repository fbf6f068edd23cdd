// The whole model on the CUDA backend against transformers' numbers (tests/data/hf-reference).
// Precise mode (f32 GEMMs) must hold the ref backend's bound: max |diff| <= 1e-3 on prompt and greedy
// step logits, identical greedy tokens. Fast mode (bf16/tf32 tensor cores for the prompt) is held to
// max |diff| <= 5e-2 on prompt logits and the same greedy tokens when decoding from its own prefill.
#include <cmath>
#include <cstring>

#include "cuda_test_util.h"
#include "io/safetensors.h"
#include "util/fixture.h"
#include "model/model.h"
#include "model/sampler.h"
#include "model/session.h"

namespace g4::test {
namespace {

using testing_util::Expected;
using testing_util::read_expected;

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    if (!(d <= m)) m = d;
  }
  return m;
}

class CudaFixtureTest : public CudaTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(CudaFixtureTest, MatchesTransformers) {
  const std::string dir = test_data_dir() + "/hf-reference/" + GetParam();
  const Expected e = read_expected(dir);
  for (bool precise : {true, false}) {
    CudaBackend& be = precise ? *precise_ : *fast_;
    auto model = Model::load(dir + "/model", be);
    const int64_t V = model->spec().vocab_size, ctx = int64_t(e.prompt.size() + e.greedy.size());
    Session s(*model, ctx);
    const auto logits = s.forward(e.prompt, LogitsMode::kAll);
    const double dp = max_abs_diff(logits, e.prompt_logits);
    EXPECT_LE(dp, precise ? 1e-3 : 5e-2) << GetParam() << (precise ? " precise" : " fast") << " prompt logits";

    Session g(*model, ctx);
    std::vector<float> last = g.forward(e.prompt, LogitsMode::kLast), steps;
    for (size_t i = 0; i < e.greedy.size(); ++i) {
      steps.insert(steps.end(), last.begin(), last.end());
      const int32_t tok = argmax(last.data(), V);
      ASSERT_EQ(tok, e.greedy[i]) << GetParam() << (precise ? " precise" : " fast") << " greedy token " << i;
      last = g.forward({tok}, LogitsMode::kLast);
    }
    const double ds = max_abs_diff(steps, e.step_logits);
    if (precise) {
      EXPECT_LE(ds, 1e-3) << GetParam() << " precise greedy step logits";
    }
    std::printf("[ %s %s ] prompt max|diff| %.3g, steps max|diff| %.3g\n", GetParam(), precise ? "precise" : "fast", dp, ds);
  }
}

INSTANTIATE_TEST_SUITE_P(HfReference, CudaFixtureTest,
                         ::testing::Values("dense-31b-shape", "deep-small-window", "separate-v-no-softcap"));

// Chunked prefill mixing the GEMV (T <= 4) and GEMM paths must agree with one ref pass.
TEST_F(CudaTest, ChunkedForwardMatchesRef) {
  const std::string dir = test_data_dir() + "/hf-reference/deep-small-window";
  auto ref_model = Model::load(dir + "/model", ref_);
  auto cuda_model = Model::load(dir + "/model", *precise_);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 41; ++i) tokens.push_back(int32_t((i * 7919 + 13) % ref_model->spec().vocab_size));
  Session sr(*ref_model, 64), sc(*cuda_model, 64);
  const auto want = sr.forward(tokens, LogitsMode::kAll);
  for (int64_t chunk : {3, 5, 41}) {
    sc.reset();
    const auto got = sc.forward(tokens, LogitsMode::kAll, chunk);
    EXPECT_LE(max_abs_diff(got, want), 1e-3) << "chunk " << chunk;
  }
}

}  // namespace
}  // namespace g4::test
