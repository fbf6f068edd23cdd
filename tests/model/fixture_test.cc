// The whole model on the ref backend against transformers' own numbers (tests/data/hf-reference,
// copied from shared/fixtures, and tests/data/hf-extra). Rule from the fixtures README: max |diff| <= 1e-3 on prompt_logits
// and greedy_step_logits, identical greedy tokens.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/backend.h"
#include "io/safetensors.h"
#include "util/compare.h"
#include "util/fixture.h"
#include "model/model.h"
#include "model/sampler.h"
#include "model/session.h"

namespace g4 {
namespace {

using testing_util::Expected;
using testing_util::read_expected;

// Max |a - b| with the worst index, so a failure says where.
using testing_util::Diff;
Diff max_diff(const std::vector<float>& a, const std::vector<float>& b) { return testing_util::max_abs_diff(a, b); }

class FixtureTest : public ::testing::TestWithParam<const char*> {};

TEST_P(FixtureTest, PromptLogitsAndGreedyMatchTransformers) {
  const std::string dir = std::string(G4_TEST_DATA) + "/" + GetParam();
  const Expected e = read_expected(dir);
  auto be = make_backend("ref");
  auto model = Model::load(dir + "/model", *be);
  const int64_t V = model->spec().vocab_size;

  Session s(*model, int64_t(e.prompt.size() + e.greedy.size()));
  std::vector<float> logits = s.forward(e.prompt, LogitsMode::kAll);
  Diff d = max_diff(logits, e.prompt_logits);
  EXPECT_LE(d.max, 1e-3) << "prompt_logits worst at position " << d.at / size_t(V) << " token " << d.at % size_t(V)
                         << ": got " << logits[d.at] << " expected " << e.prompt_logits[d.at];

  // Greedy, step by step through the cache, from a fresh session that prefilled the prompt.
  Session g(*model, int64_t(e.prompt.size() + e.greedy.size()));
  std::vector<float> last = g.forward(e.prompt, LogitsMode::kLast);
  std::vector<float> steps;
  for (size_t i = 0; i < e.greedy.size(); ++i) {
    steps.insert(steps.end(), last.begin(), last.end());
    const int32_t tok = argmax(last.data(), V);
    ASSERT_EQ(tok, e.greedy[i]) << "greedy token " << i;
    last = g.forward({tok}, LogitsMode::kLast);
  }
  d = max_diff(steps, e.step_logits);
  EXPECT_LE(d.max, 1e-3) << "greedy_step_logits worst at step " << d.at / size_t(V) << " token " << d.at % size_t(V);
  std::printf("[ %s ] prompt max|diff| %.3g, steps max|diff| %.3g\n", GetParam(), max_diff(logits, e.prompt_logits).max,
              d.max);
}

// hf-reference: the three shared fixtures. hf-extra: made with the same oracle by
// tools/fixtures/more_fixtures.py (300-token prompt over a window of 4, GQA group 4 with KV heads in
// per_layer_config, multi-head attention with a window longer than the prompt and softcap 50).
INSTANTIATE_TEST_SUITE_P(HfReference, FixtureTest,
                         ::testing::Values("hf-reference/dense-31b-shape", "hf-reference/deep-small-window",
                                           "hf-reference/separate-v-no-softcap", "hf-extra/long-prompt-tiny-window",
                                           "hf-extra/gqa4-per-layer", "hf-extra/mha-wide-window"));

}  // namespace
}  // namespace g4
