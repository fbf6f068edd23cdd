// Gemma 4's assistant drafter against transformers itself. tests/data/assistant-hf was made by
// tools/oracle/make_assistant_fixture.py with transformers 5.17's Gemma4AssistantForCausalLM: two random
// assistants for the shipped tiny model saved by save_pretrained (bf16; one with ordered embeddings), and
// for a 200-token prompt (past the sliding window of 128) the target's hidden state that transformers'
// candidate generator feeds (hidden_states[-1]), the pending token, and 4 chained draft steps at the pending
// token's position (logits, post_projection output, argmax). Checked on ref and cpu:
// - g4's loader reads the checkpoint transformers wrote (per_layer_config, model.* names, tied head);
// - g4's target forward gives the same pending token and tapped hidden state; the draft position is the
//   pending token's;
// - every step's logits and hidden state equal transformers' within 1e-4 of the largest value (both compute
//   in f32 on the same bf16 weights; measured ~1e-6), and draft() proposes transformers' tokens;
// - the bound separates: what transformers gives with another reading (sliding window one key shorter, no
//   window, position p - 1, the target's hidden state before its final norm) is outside it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/assistant_drafter.h"
#include "engine/model_bundle.h"
#include "io/safetensors.h"
#include "util/fixture.h"
#include "util/paths.h"

namespace g4 {
namespace {

using testing_util::read_tensor;
using testing_util::kTinyKjvModel;

const std::string kData = std::string(G4_TEST_DATA) + "/assistant-hf";
constexpr float kBound = 1e-4f;  // of the largest |value|

// max |got - want| / max |want|
double rel_diff(const float* got, const float* want, size_t n) {
  double d = 0, m = 1e-6;
  for (size_t i = 0; i < n; ++i) {
    d = std::max(d, std::fabs(double(got[i]) - double(want[i])));
    m = std::max(m, std::fabs(double(want[i])));
  }
  return d / m;
}

std::vector<float> to_host(Backend& be, const Tensor& t) {
  std::vector<float> v(size_t(t.numel()));
  be.download(t, v.data());
  return v;
}

int32_t argmax(const std::vector<float>& v) { return int32_t(std::max_element(v.begin(), v.end()) - v.begin()); }

void check(const std::string& backend, const std::string& variant) {
  const SafetensorsFile f(kData + "/" + variant + "_fixture.safetensors");
  const std::vector<int32_t> prompt = read_tensor<int32_t>(f, "prompt");
  const int32_t pending = read_tensor<int32_t>(f, "pending").at(0);
  const int64_t position = read_tensor<int32_t>(f, "position").at(0);
  const std::vector<float> target_hidden = read_tensor<float>(f, "target_hidden");
  const std::vector<float> logits = read_tensor<float>(f, "logits"), hidden = read_tensor<float>(f, "hidden");
  const std::vector<int32_t> tokens = read_tensor<int32_t>(f, "tokens");
  ASSERT_EQ(read_tensor<int32_t>(f, "hidden_is_final_normed").at(0), 1) << "transformers feeds a hidden state other than the final-normed one";

  ModelBundle b = ModelBundle::load(kTinyKjvModel, backend, LoadOptions{}, 1);
  const Model& m = *b.model;
  auto drafter = AssistantDrafter::load(kData + "/" + variant, m, LoadOptions{});
  const size_t V = size_t(m.spec().vocab_size), B = size_t(m.spec().hidden_size), S = tokens.size();
  ASSERT_EQ(logits.size(), S * V);
  ASSERT_EQ(hidden.size(), S * B);
  ASSERT_GT(prompt.size(), 128u);  // past the window

  Session s(m, int64_t(prompt.size()) + 8);
  ForwardTaps& taps = *drafter->taps();
  const std::vector<float> tl = s.forward(prompt, LogitsMode::kLast, 0, &taps);
  const int64_t row = taps.hidden.dim(0) - 1;
  const std::string what = backend + " " + variant;
  EXPECT_EQ(argmax(tl), pending) << what;
  EXPECT_EQ(s.pos(), position) << what << ": the draft position is the pending token's";
  const std::vector<float> th = to_host(m.backend(), taps.hidden.rows(row, 1));
  const double dh = rel_diff(th.data(), target_hidden.data(), B);
  EXPECT_LE(dh, kBound) << what << " target hidden";

  int32_t tok = pending;
  Tensor ht = taps.hidden.rows(row, 1);
  double worst = 0;
  std::vector<float> first;
  for (size_t j = 0; j < S; ++j) {
    const AssistantModel::Step st = drafter->model().step(tok, ht, s.cache().seq(0), s.pos(), taps, row);
    const std::vector<float> sh = to_host(m.backend(), st.hidden), sl = drafter->model().host_logits(st);
    const double dl = rel_diff(sl.data(), logits.data() + j * V, V);
    const double dd = rel_diff(sh.data(), hidden.data() + j * B, B);
    EXPECT_LE(dl, kBound) << what << " step " << j << " logits";
    EXPECT_LE(dd, kBound) << what << " step " << j << " hidden";
    EXPECT_EQ(argmax(sl), tokens[j]) << what << " step " << j;
    EXPECT_EQ(drafter->model().greedy_token(st), tokens[j]) << what << " step " << j << " (chosen on the backend)";
    worst = std::max({worst, dl, dd});
    if (j == 0) first = sl;
    tok = tokens[j];
    ht = st.hidden;
  }
  std::printf("[ %s ] target hidden %.3g, draft steps worst %.3g (relative to the largest value)\n", what.c_str(), dh, worst);

  // draft() from the generation's state proposes the same tokens.
  std::vector<int32_t> context = prompt;
  context.push_back(pending);
  drafter->at_target(s, row);
  EXPECT_EQ(drafter->draft(context, int(S)), tokens) << what;

  // Another reading of transformers would be caught: its own logits under each is outside the bound.
  for (const char* alt : {"alt_logits_win127", "alt_logits_nowindow", "alt_logits_pos_minus1", "alt_logits_prenorm_hidden"}) {
    if (!f.find(alt)) continue;
    const std::vector<float> a = read_tensor<float>(f, alt);
    const double d = rel_diff(a.data(), logits.data(), V);
    EXPECT_GT(d, 10 * kBound) << what << " " << alt << " is not told apart from transformers' reading";
    EXPECT_GT(rel_diff(first.data(), a.data(), V), 10 * kBound) << what << " g4 matches " << alt;
    std::printf("[ %s ] %s differs by %.3g\n", what.c_str(), alt, d);
  }
}

TEST(AssistantTransformers, PlainRef) { check("ref", "assistant"); }
TEST(AssistantTransformers, PlainCpu) { check("cpu", "assistant"); }
TEST(AssistantTransformers, OrderedRef) { check("ref", "assistant_ordered"); }
TEST(AssistantTransformers, OrderedCpu) { check("cpu", "assistant_ordered"); }

}  // namespace
}  // namespace g4
