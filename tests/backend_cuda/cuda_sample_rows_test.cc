// CudaBackend::sample_rows (the choice on the device, sample.cu) against Sampler::sample on the host, with the
// check of tests/util/sample_rows_check.h: the same token for every seed, parameter set and row, on small
// vocabularies (many seeds, ties, -infinity) and on Gemma 4's 262,144 (fewer). Only a draw landing within
// rounding of a boundary between two tokens may differ; over these draws none does.
#include "cuda_test_util.h"
#include "model/model.h"
#include "model/sampler.h"
#include "model/session.h"
#include "util/sample_rows_check.h"

namespace g4::test {
namespace {

TEST_F(CudaTest, SampleRowsEqualsHostSampler) {
  int64_t n = 0;
  for (int64_t V : {1, 7, 1000, 5000}) n += check_sample_rows(*fast_, V, 12, 4, 3, uint32_t(V));
  EXPECT_GT(n, 1000);
}

TEST_F(CudaTest, SampleRowsEqualsHostSamplerAtGemmaVocabulary) {
  check_sample_rows(*fast_, 262144, 1, 3, 6, 262144);  // the host sorts 262,144 ids per whole-vocabulary draw
}

// Rows that are all plain greedy take one launch pair for every row (sample_rows' argmax_rows): each row's
// token is its own argmax, lowest id on ties, across rows of ties, -infinity and normal logits.
TEST_F(CudaTest, SampleRowsAllGreedyRowsTakeEachRowsArgmax) {
  std::mt19937 rng(5);
  for (int64_t V : {1, 7, 5000, 262144})
    for (int64_t R : {1, 3, 9}) {
      std::vector<float> all;
      for (int64_t r = 0; r < R; ++r) {
        const std::vector<float> row = random_row(rng, V, RowKind(r % 3), r % 2 ? 4.f : 1.f);
        all.insert(all.end(), row.begin(), row.end());
      }
      Tensor t = fast_->empty({R, V});
      fast_->upload(t, all.data());
      std::vector<RowSampling> picks(static_cast<size_t>(R));
      picks.back().params.top_k = 1, picks.back().params.temperature = 0.8f;  // greedy by top-k 1
      const std::vector<int32_t> got = fast_->sample_rows(t, picks);
      ASSERT_EQ(int64_t(got.size()), R);
      for (int64_t r = 0; r < R; ++r) {
        const float* row = all.data() + r * V;
        EXPECT_EQ(got[size_t(r)], int32_t(std::max_element(row, row + V) - row))
            << "V " << V << " row " << r << " of " << R;
      }
    }
}

TEST_F(CudaTest, SampleRowsRejectsARowCountMismatch) {
  Tensor t = fast_->empty({2, 5});
  std::vector<float> z(10, 0.f);
  fast_->upload(t, z.data());
  EXPECT_THROW(fast_->sample_rows(t, std::vector<RowSampling>(3)), Error);
}

// Generation on the CUDA backend: tokens chosen on the device (Session::forward_pick, which replays the
// recorded decode step and then chooses) equal tokens sampled on the host from the same steps' logits.
TEST_F(CudaTest, DecodeWithDeviceChoiceEqualsHostSampling) {
  auto model = Model::load(test_data_dir() + "/hf-reference/dense-31b-shape/model", *fast_);
  const int64_t V = model->spec().vocab_size;
  const std::vector<int32_t> prompt = {2, 17, 99, 5, 200, 31, 7, 7, 8, 9};
  std::vector<SamplingParams> params(4);
  params[0].repeat_penalty = 2.0f;
  params[1].temperature = 1.0f, params[1].top_k = 64, params[1].top_p = 0.95f;
  params[2].temperature = 1.5f, params[2].min_p = 0.02f, params[2].presence_penalty = 0.5f;
  params[3].temperature = 3.0f;
  for (size_t pi = 0; pi < params.size(); ++pi)
    for (uint64_t seed : {1u, 2u}) {
      SamplingParams sp = params[pi];
      sp.seed = seed;
      std::vector<int32_t> got, want;
      for (bool device : {true, false}) {
        Session s(*model, int64_t(prompt.size()) + 20);
        Sampler sampler(sp);
        std::vector<int32_t> history = prompt, in = prompt;
        std::vector<int32_t>& out = device ? got : want;
        for (int i = 0; i < 16; ++i) {
          int32_t t;
          if (device) {
            t = s.forward_pick(in, sampler.next_row(history));
          } else {
            const std::vector<float> l = s.forward(in, LogitsMode::kLast);
            t = sampler.sample(l.data(), V, history);
          }
          out.push_back(t);
          history.push_back(t);
          in = {t};
        }
      }
      EXPECT_EQ(got, want) << "params " << pi << " seed " << seed;
    }
}

}  // namespace
}  // namespace g4::test
