// Quantized whole models on the CUDA backend against the ref backend running the same quantized weights,
// element by element, in precise and fast modes: an int4 g4 checkpoint (g4 quantize, recipe default: int4
// g32 asymmetric layers, int8 embedding), a Q4_0 GGUF (the layers' matrices in llama.cpp's Q4_0, written by
// tests/util/hf_to_gguf.h), and a float checkpoint quantized while loading (--quantize int4).
//
// Bounds (absolute, per logit) scale the float model's validated ones (cuda_model_test.cc: precise 1e-3,
// fast 5e-2 on the prompt) by each path's per-matmul error relative to the float path's (cuda_ops_test.cc):
//  - prompt, precise: f32 GEMM on the dequantized weights, the float path's arithmetic: 1e-3.
//  - prompt, fast: bf16 GEMM, x and the dequantized weight both rounded to bf16 where the float model's
//    weights were bf16 already: sqrt(2) x 5e-2 = 7e-2.
//  - decode steps (T = 1, teacher-forced with the ref's greedy tokens), precise: the f16 GEMV, 4e-3 per
//    matmul against the bf16 GEMM's 1e-2: 0.4 x 7e-2 = 3e-2, on top of the precise prompt's KV.
//  - decode steps, fast: the fast prompt's KV (7e-2) and the dp4a GEMV's 2e-2 per matmul (2x the bf16
//    GEMM's): 7e-2 + 2 x 7e-2 = 0.2.
// The greedy tokens of precise mode equal the ref's; fast mode picks the ref's next token at >= 90% of steps.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <unistd.h>

#include "backend/cuda/kernels.h"
#include "convert/quantize_model.h"
#include "cuda_test_util.h"
#include "io/safetensors.h"
#include "model/forward.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/sampler.h"
#include "model/session.h"
#include "util/compare.h"
#include "util/fixture.h"
#include "util/hf_to_gguf.h"

namespace g4::test {
namespace {

namespace fs = std::filesystem;

float max_abs(const std::vector<float>& v) {
  float m = 0.f;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

struct Source {
  const char* name;
  // Writes the model into dir (when it needs a file) and loads it on be.
  std::unique_ptr<Model> (*load)(const std::string& fixture, const std::string& dir, Backend& be);
};

std::unique_ptr<Model> load_int4_checkpoint(const std::string& fixture, const std::string& dir, Backend& be) {
  const std::string out = dir + "/int4";
  if (!fs::exists(out)) {
    QuantizeOptions o;
    o.model = fixture;
    o.out = out;
    o.recipe = "default";
    o.progress = false;
    quantize_checkpoint(o);
  }
  return Model::load(out, be);
}

std::unique_ptr<Model> load_q4_0_gguf(const std::string& fixture, const std::string& dir, Backend& be) {
  const std::string out = dir + "/q4_0.gguf";
  if (!fs::exists(out)) {
    HfToGgufOptions o;
    o.q4_0 = true;
    GgufBuilder::write(out, hf_to_gguf(fixture, o).bytes());
  }
  return Model::load(out, be);
}

std::unique_ptr<Model> load_quantize_int4(const std::string& fixture, const std::string&, Backend& be) {
  LoadOptions lo;
  lo.quantize = "int4";
  return Model::load(fixture, be, lo);
}

const Source kSources[] = {{"int4 checkpoint", load_int4_checkpoint},
                           {"Q4_0 GGUF", load_q4_0_gguf},
                           {"--quantize int4", load_quantize_int4}};

class CudaQuantModelTest : public CudaTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(CudaQuantModelTest, QuantizedModelsMatchRefPerElement) {
  const std::string fixture_dir = test_data_dir() + "/hf-reference/" + GetParam();
  const testing_util::Expected e = testing_util::read_expected(fixture_dir);
  const std::string fixture = fixture_dir + "/model";
  const fs::path dir = fs::temp_directory_path() / ("g4_cuda_quant_" + std::to_string(::getpid()) + "_" + GetParam());
  fs::create_directories(dir);
  const std::vector<int32_t>& prompt = e.prompt;
  const int n = 16;
  const int64_t ctx = int64_t(prompt.size()) + n;
  for (const Source& src : kSources) {
    auto ref_model = src.load(fixture, dir.string(), ref_);
    const int64_t V = ref_model->spec().vocab_size;
    // The ref backend: prompt logits, greedy tokens and the logits before each of them.
    Session rs(*ref_model, ctx);
    const std::vector<float> ref_prompt = rs.forward(prompt, LogitsMode::kAll);
    std::vector<float> last(ref_prompt.end() - V, ref_prompt.end()), ref_steps;
    std::vector<int32_t> greedy;
    for (int i = 0; i < n; ++i) {
      ref_steps.insert(ref_steps.end(), last.begin(), last.end());
      greedy.push_back(argmax(last.data(), V));
      last = rs.forward({greedy.back()}, LogitsMode::kLast);
    }
    for (bool precise : {true, false}) {
      const std::string what = std::string(GetParam()) + " " + src.name + (precise ? " precise" : " fast");
      auto m = src.load(fixture, dir.string(), precise ? *precise_ : *fast_);
      Session s(*m, ctx);
      const std::vector<float> got_prompt = s.forward(prompt, LogitsMode::kAll);
      EXPECT_TRUE(testing_util::all_close(got_prompt, ref_prompt, precise ? 1e-3 : 7e-2)) << what << " prompt logits";
      std::vector<float> cur(got_prompt.end() - V, got_prompt.end()), steps;
      int same = 0;
      for (int i = 0; i < n; ++i) {
        steps.insert(steps.end(), cur.begin(), cur.end());
        same += argmax(cur.data(), V) == greedy[size_t(i)];
        cur = s.forward({greedy[size_t(i)]}, LogitsMode::kLast);  // teacher-forced with the ref's tokens
      }
      EXPECT_TRUE(testing_util::all_close(steps, ref_steps, precise ? 3e-2 : 0.2)) << what << " step logits";
      if (precise) EXPECT_EQ(same, n) << what << " greedy tokens";
      else EXPECT_GE(same, n * 9 / 10) << what << " greedy tokens";
      std::printf("[ %s ] prompt max|diff| %.3g, steps max|diff| %.3g, greedy %d/%d\n", what.c_str(),
                  testing_util::max_abs_diff(got_prompt, ref_prompt).max,
                  testing_util::max_abs_diff(steps, ref_steps).max, same, n);
    }
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(HfReference, CudaQuantModelTest,
                         ::testing::Values("dense-31b-shape", "deep-small-window", "separate-v-no-softcap"));

// The deep-small-window fixture (sliding window 8) quantized to int4 on `be`.
std::unique_ptr<Model> int4_deep_small_window(Backend& be) {
  LoadOptions lo;
  lo.quantize = "int4";
  return Model::load(test_data_dir() + "/hf-reference/deep-small-window/model", be, lo);
}

// A verify (several new tokens of one sequence in one forward, logits at every position) computes each
// position exactly as one-token steps do in fast mode, below gemm_mma_min_tokens (10): the int4 GEMV sums each
// token alone in the K order of one token (gemv_q8.cu; 4-token groups), and attention splits its keys as for
// one query (attn_decode_suits), so greedy speculation reproduces plain greedy bit for bit. From the
// tensor-core kernel's threshold (G4_CUDA_MMA_MIN_T lowers it) the per-chunk terms are summed in another
// order and a last-bit difference can flip a later int8 rounding of the activations: within 5e-2 of the
// largest logit (that bound still catches a token mixed up with another). After a prompt that crosses the
// fixture's sliding window.
TEST_F(CudaTest, VerifyLogitsEqualOneTokenSteps) {
  auto m = int4_deep_small_window(*fast_);
  const int64_t V = m->spec().vocab_size;
  std::vector<int32_t> prompt;
  for (int i = 0; i < 40; ++i) prompt.push_back(int32_t((i * 7919 + 13) % V));
  for (int n : {2, 3, 4, 5, 9}) {
    std::vector<int32_t> next;
    for (int i = 0; i < n; ++i) next.push_back(int32_t((i * 104729 + 7) % V));
    const bool exact = n < cuda::gemm_mma_min_tokens();
    Session a(*m, 64), b(*m, 64);
    a.forward(prompt, LogitsMode::kNone);
    b.forward(prompt, LogitsMode::kNone);
    const std::vector<float> verify = a.forward(next, LogitsMode::kAll);
    ASSERT_EQ(verify.size(), size_t(n * V));
    for (int i = 0; i < n; ++i) {
      const std::vector<float> step = b.forward({next[size_t(i)]}, LogitsMode::kLast);
      const std::vector<float> row(verify.begin() + i * V, verify.begin() + (i + 1) * V);
      const double bound = exact ? 0.0 : 5e-2 * std::max(1.0, double(max_abs(step)));
      EXPECT_LE(testing_util::max_abs_diff(row, step).max, bound) << "verify of " << n << ", position " << i;
    }
  }
}

// Verifies of 2 .. kMaxRecordedTokens tokens are recorded once per length (at its second run) and replayed at later positions
// (speculative decoding's steps, rolled back after each): every replay, across the sliding window's ring
// many times, gives each row bit for bit the logits of one-token steps over the same tokens, with the
// backend's default cache (bf16, derived keys) and a slack that keeps every rollback in place; the
// greedy token of every row chosen on the device (forward_pick_all) is that row's argmax.
TEST_F(CudaTest, RecordedVerifiesReplayAtLaterPositions) {
  auto m = int4_deep_small_window(*fast_);
  const int64_t V = m->spec().vocab_size;
  ASSERT_LT(kMaxRecordedTokens, cuda::gemm_mma_min_tokens());  // the GEMV path: exact against one-token steps
  KvCacheOptions o;
  o.ctx_size = 256;
  o.k_type = o.v_type = DType::kBF16;
  o.derive_k = true;
  o.slack = kMaxRecordedTokens;
  Session a(*m, o), b(*m, o);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 5; ++i) prompt.push_back(int32_t((i * 7919 + 13) % V));
  a.forward(prompt, LogitsMode::kNone);
  b.forward(prompt, LogitsMode::kNone);
  int replays = 0;
  for (int step = 0; step < 50; ++step) {
    const int n = 2 + step % (kMaxRecordedTokens - 1);
    replays += step >= 2 * (kMaxRecordedTokens - 1);  // a length's first run is eager, its second records
    std::vector<int32_t> next;
    for (int i = 0; i < n; ++i) next.push_back(int32_t((step * 104729 + i * 7919 + 7) % V));
    const int64_t p0 = a.pos();
    const bool pick = step % 2 == 1;
    const std::vector<float> rows = pick ? std::vector<float>{} : a.forward(next, LogitsMode::kAll);
    const std::vector<int32_t> ids = pick ? a.forward_pick_all(next, RowSampling{}) : std::vector<int32_t>{};
    for (int i = 0; i < n; ++i) {
      const std::vector<float> one = b.forward({next[size_t(i)]}, LogitsMode::kLast);
      if (pick) {
        EXPECT_EQ(ids[size_t(i)], argmax(one.data(), V)) << "verify of " << n << " at " << p0 << ", row " << i;
      } else {
        const std::vector<float> row(rows.begin() + int64_t(i) * V, rows.begin() + int64_t(i + 1) * V);
        EXPECT_EQ(testing_util::max_abs_diff(row, one).max, 0.0) << "verify of " << n << " at " << p0 << ", row " << i;
      }
    }
    const int64_t keep = p0 + 1 + step % n;  // as if step % n drafts were accepted
    EXPECT_EQ(a.truncate(keep), 0);
    EXPECT_EQ(b.truncate(keep), 0);
  }
  EXPECT_GT(a.pos(), 8 * m->spec().layers[0].window);
  EXPECT_GT(replays, 30);
}

// A decode step of N sequences at different positions (each op launched once for all of them) computes every
// sequence bit for bit as its own one-token step does, in fast mode, with the backend's default cache (bf16,
// full layers' keys derived from values) and prompts that cross the sliding window, below the tensor-core
// kernel's threshold (see VerifyLogitsEqualOneTokenSteps for the bound above it).
void batched_decode_vs_solo(Model& m, int N) {
  const int64_t V = m.spec().vocab_size;
  const int steps = 6;
  KvCacheOptions o;
  o.ctx_size = 96;
  o.n_seq = N;
  const bool exact = N < cuda::gemm_mma_min_tokens();
  o.k_type = o.v_type = DType::kBF16;
  o.derive_k = true;
  o.slack = 4;
  auto tok = [&](int i, int j) { return int32_t((i * 7919 + j * 104729 + 13) % V); };
  std::vector<std::vector<int32_t>> prompts{size_t(N)};
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < 3 + 5 * i; ++j) prompts[size_t(i)].push_back(tok(i, j));
  KvCache kv(m, o);
  for (int i = 0; i < N; ++i) forward_batch(m, kv, {{i, prompts[size_t(i)], LogitsMode::kNone}});
  std::vector<std::vector<std::vector<float>>> batched{size_t(N)};
  for (int s = 0; s < steps; ++s) {
    std::vector<SeqChunk> batch;
    for (int i = 0; i < N; ++i) batch.push_back({i, {tok(i, 1000 + s)}, LogitsMode::kLast});
    const auto out = forward_batch(m, kv, batch);
    for (int i = 0; i < N; ++i) batched[size_t(i)].push_back(out[size_t(i)]);
  }
  ASSERT_TRUE(kv_layer_specs(m.spec(), o)[5].k_from_v);
  for (int i = 0; i < N; ++i) {
    KvCacheOptions one = o;
    one.n_seq = 1;
    Session alone(m, one);
    alone.forward(prompts[size_t(i)], LogitsMode::kNone);
    for (int s = 0; s < steps; ++s) {
      const std::vector<float> step = alone.forward({tok(i, 1000 + s)}, LogitsMode::kLast);
      const double bound = exact ? 0.0 : 5e-2 * std::max(1.0, double(max_abs(step)));
      EXPECT_LE(testing_util::max_abs_diff(batched[size_t(i)][size_t(s)], step).max, bound)
          << N << " sequences: sequence " << i << " step " << s;
    }
  }
}

TEST_F(CudaTest, BatchedDecodeEqualsSoloSteps) {
  auto m = int4_deep_small_window(*fast_);
  batched_decode_vs_solo(*m, 4);
  batched_decode_vs_solo(*m, 8);
}

}  // namespace
}  // namespace g4::test
