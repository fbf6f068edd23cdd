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
