// Chunked prefill: a prompt split into pieces of any size (1, odd, equal to and larger than the
// window) must give the logits of one-shot prefill and of token-by-token decoding, within 1e-4.
// The sliding layers' ring holds exactly `window` slots, so chunks larger than the window exercise
// the path where attention reads the chunk's own keys rather than the cache.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "backend/backend.h"
#include "base/error.h"
#include "model/model.h"
#include "model/session.h"
#include "util/compare.h"

namespace g4 {
namespace {

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  return testing_util::max_abs_diff(a, b).max;
}

class ChunkedTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ChunkedTest, AnyChunkingMatchesOneShotAndDecode) {
  const std::string dir = std::string(G4_TEST_DATA) + "/hf-reference/" + GetParam() + "/model";
  auto be = make_backend("ref");
  auto model = Model::load(dir, *be);
  const int V = model->spec().vocab_size;
  int window = 0;
  for (const auto& L : model->spec().layers) window = std::max(window, L.window);

  // A prompt that crosses the window many times: 6 windows plus a ragged tail.
  std::mt19937 rng(7);
  std::vector<int32_t> prompt(size_t(6 * window + 5));
  for (auto& t : prompt) t = int32_t(rng() % uint32_t(V));
  prompt[0] = 2;
  const int64_t n = int64_t(prompt.size());

  Session one(*model, n);
  const std::vector<float> ref = one.forward(prompt, LogitsMode::kAll);
  ASSERT_EQ(ref.size(), size_t(n) * size_t(V));

  for (int64_t chunk : {int64_t(1), int64_t(3), int64_t(window - 1), int64_t(window), int64_t(window + 1),
                        int64_t(2 * window + 3), n - 1}) {
    Session s(*model, n);
    const std::vector<float> got = s.forward(prompt, LogitsMode::kAll, chunk);
    EXPECT_LE(max_abs_diff(got, ref), 1e-4) << "chunk " << chunk;
    EXPECT_EQ(s.pos(), n);
  }

  // Uneven pieces fed by separate calls, then the last-position logits only.
  Session s(*model, n);
  std::vector<float> pieces;
  int64_t at = 0;
  for (int64_t len : {int64_t(5), int64_t(2 * window + 1), int64_t(1), int64_t(window)}) {
    std::vector<int32_t> part(prompt.begin() + at, prompt.begin() + at + len);
    const std::vector<float> l = s.forward(part, LogitsMode::kAll);
    pieces.insert(pieces.end(), l.begin(), l.end());
    at += len;
  }
  std::vector<int32_t> rest(prompt.begin() + at, prompt.end());
  const std::vector<float> last = s.forward(rest, LogitsMode::kLast, 4);
  ASSERT_EQ(last.size(), size_t(V));
  const std::vector<float> ref_head(ref.begin(), ref.begin() + std::ptrdiff_t(pieces.size()));
  EXPECT_LE(max_abs_diff(pieces, ref_head), 1e-4);
  const std::vector<float> ref_last(ref.end() - V, ref.end());
  EXPECT_LE(max_abs_diff(last, ref_last), 1e-4);
}

TEST(SessionTest, RejectsBadTokensAndContextOverflow) {
  const std::string dir = std::string(G4_TEST_DATA) + "/hf-reference/dense-31b-shape/model";
  auto be = make_backend("ref");
  auto model = Model::load(dir, *be);
  Session s(*model, 4);
  EXPECT_THROW(s.forward({2, model->spec().vocab_size}, LogitsMode::kLast), Error);
  EXPECT_THROW(s.forward({2, -1}, LogitsMode::kLast), Error);
  EXPECT_EQ(s.pos(), 0);  // a rejected call changes nothing
  s.forward({2, 5, 6}, LogitsMode::kNone);
  EXPECT_THROW(s.forward({7, 8}, LogitsMode::kLast), Error);
  EXPECT_EQ(s.pos(), 3);
  EXPECT_EQ(s.forward({7}, LogitsMode::kLast).size(), size_t(model->spec().vocab_size));
  EXPECT_THROW(Session(*model, 0), Error);
}

INSTANTIATE_TEST_SUITE_P(HfReference, ChunkedTest,
                         ::testing::Values("dense-31b-shape", "deep-small-window", "separate-v-no-softcap"));

}  // namespace
}  // namespace g4
