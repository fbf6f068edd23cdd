// The whole model on the CUDA backend against transformers' numbers (tests/data/hf-reference).
// Precise mode (f32 GEMMs) must hold the ref backend's bound: every element within 1e-3 on prompt and greedy
// step logits, identical greedy tokens. Fast mode (bf16/f16 tensor cores for the prompt) is held to 5e-2
// per element on prompt logits and on the step logits decoded from its own prefill (float weights decode
// through f32 GEMVs; the bf16 rounding comes in through the prompt's KV), and the same greedy tokens.
#include <cmath>
#include <cstring>

#include <algorithm>

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
  return testing_util::max_abs_diff(a, b).max;
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
    EXPECT_LE(ds, precise ? 1e-3 : 5e-2) << GetParam() << (precise ? " precise" : " fast") << " greedy step logits";
    std::printf("[ %s %s ] prompt max|diff| %.3g, steps max|diff| %.3g\n", GetParam(), precise ? "precise" : "fast", dp, ds);
  }
}

INSTANTIATE_TEST_SUITE_P(HfReference, CudaFixtureTest,
                         ::testing::Values("dense-31b-shape", "deep-small-window", "separate-v-no-softcap"));

// Chunked prefill mixing the GEMV (T <= 4) and GEMM paths must agree with one ref pass, in both modes
// (fast: the bound of its prompt logits above).
TEST_F(CudaTest, ChunkedForwardMatchesRef) {
  const std::string dir = test_data_dir() + "/hf-reference/deep-small-window";
  auto ref_model = Model::load(dir + "/model", ref_);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 41; ++i) tokens.push_back(int32_t((i * 7919 + 13) % ref_model->spec().vocab_size));
  Session sr(*ref_model, 64);
  const auto want = sr.forward(tokens, LogitsMode::kAll);
  for (bool precise : {true, false}) {
    auto cuda_model = Model::load(dir + "/model", precise ? *precise_ : *fast_);
    Session sc(*cuda_model, 64);
    for (int64_t chunk : {3, 5, 41}) {
      sc.reset();
      const auto got = sc.forward(tokens, LogitsMode::kAll, chunk);
      EXPECT_TRUE(testing_util::all_close(got, want, precise ? 1e-3 : 5e-2))
          << (precise ? "precise" : "fast") << " chunk " << chunk;
    }
  }
}

// Greedy decoding on dense-31b-shape with a varied continuation. The fixture's own continuation is 24
// copies of token 298, which a decoder stuck on one token would also produce: this random-weight model
// repeats the last token under plain greedy from any prompt tried, so the argmax is taken after a
// repeat penalty of 2 (the sampler at temperature 0; g4 generate --repeat-penalty 2 on the ref backend
// gives 8 distinct ids: 391 x3, 449 x2, 664 x2, 158, 203 x3, 354, 666 x9, 426 x3). The ref backend's
// tokens, checked here to hold at least 6 distinct ids, are CUDA's in precise mode; fast mode, fed the
// ref's tokens, must pick the same next token at all but near-ties (>= 22 of 24 steps).
TEST_F(CudaTest, GreedyVariedTokensMatchRef) {
  const std::string dir = test_data_dir() + "/hf-reference/dense-31b-shape/model";
  auto ref_model = Model::load(dir, ref_);
  const int64_t V = ref_model->spec().vocab_size;
  const std::vector<int32_t> prompt = {2, 17, 99, 5, 200, 31, 7, 7, 8, 9};
  const int n = 24;
  SamplingParams sp;
  sp.temperature = 0;
  sp.repeat_penalty = 2.0f;
  // The argmax at each step, feeding `forced` (or the argmax itself when null).
  auto greedy = [&](const Model& m, const std::vector<int32_t>* forced = nullptr) {
    Session s(m, int64_t(prompt.size()) + n);
    Sampler sampler(sp);
    std::vector<float> last = s.forward(prompt, LogitsMode::kLast);
    std::vector<int32_t> out, history = prompt;
    for (int i = 0; i < n; ++i) {
      out.push_back(sampler.sample(last.data(), V, history));
      history.push_back(forced ? (*forced)[size_t(i)] : out.back());
      last = s.forward({history.back()}, LogitsMode::kLast);
    }
    return out;
  };
  const std::vector<int32_t> want = greedy(*ref_model);
  std::vector<int32_t> distinct = want;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  ASSERT_GE(distinct.size(), 6u) << "the prompt no longer gives a varied continuation";
  for (bool precise : {true, false}) {
    auto m = Model::load(dir, precise ? *precise_ : *fast_);
    if (precise) {
      EXPECT_EQ(greedy(*m), want) << "precise";
    } else {
      const std::vector<int32_t> got = greedy(*m, &want);
      int same = 0;
      for (int i = 0; i < n; ++i) same += got[size_t(i)] == want[size_t(i)];
      EXPECT_GE(same, 22) << "fast";
    }
  }
}

}  // namespace
}  // namespace g4::test
