// Backend::sample_rows on the ref and cpu backends (the default: download, then backend/sampling.h) against
// Sampler::sample, through Sampler::next_row; the CUDA backend's device choice runs the same check in
// tests/backend_cuda/cuda_sample_rows_test.cc. Also: the host Sampler draws exactly as before the draw was
// split into next_row's uniform number and draw_token (uniform_real_distribution(0, total) on the same
// generator), so seeded runs keep their tokens.
#include <gtest/gtest.h>

#include <random>

#include "backend/backend.h"
#include "base/error.h"
#include "model/sampler.h"
#include "util/sample_rows_check.h"

namespace g4 {
namespace {

TEST(SampleRows, DefaultEqualsHostSamplerOnRefAndCpu) {
  for (const char* name : {"ref", "cpu"}) {
    auto be = make_backend(name, 2);
    int64_t n = 0;
    for (int64_t V : {1, 7, 1000}) n += test::check_sample_rows(*be, V, 12, 4, 3, uint32_t(V));
    n += test::check_sample_rows(*be, 20000, 2, 2, 4, 99);
    EXPECT_GT(n, 1000);
  }
}

TEST(SampleRows, RejectsARowCountMismatch) {
  auto be = make_backend("ref");
  Tensor t = be->empty({2, 5});
  std::vector<float> z(10, 0.f);
  be->upload(t, z.data());
  EXPECT_THROW(be->sample_rows(t, std::vector<RowSampling>(3)), Error);
  EXPECT_EQ(be->sample_rows(t, std::vector<RowSampling>(2)), (std::vector<int32_t>{0, 0}));
}

// The draw as it was: r = uniform_real_distribution<double>(0, total) straight from the generator.
int32_t legacy_sample(const SamplingParams& p, std::mt19937_64& rng, const std::vector<float>& l,
                      const std::vector<int32_t>& h) {
  if (p.temperature <= 0) return greedy_token(p, l.data(), int64_t(l.size()), h);
  const TokenDistribution d = token_distribution(p, l.data(), int64_t(l.size()), h);
  const double r = std::uniform_real_distribution<double>(0.0, d.total)(rng);
  double acc = 0;
  for (size_t i = 0; i < d.ids.size(); ++i)
    if (r < (acc += d.p[i])) return d.ids[i];
  return d.ids.back();
}

TEST(SampleRows, SamplerDrawsAsBefore) {
  std::mt19937 data(5);
  for (const test::ChoiceCase& c : test::choice_cases())
    for (uint64_t seed = 0; seed < 20; ++seed) {
      SamplingParams p = c.p;
      p.seed = seed;
      Sampler s(p);
      std::mt19937_64 legacy(seed);
      std::vector<int32_t> h;
      for (int step = 0; step < 10; ++step) {
        const std::vector<float> l = test::random_row(data, 300, test::RowKind(step % 3), 2.f);
        const int32_t want = legacy_sample(p, legacy, l, h);
        ASSERT_EQ(s.sample(l.data(), 300, h), want) << c.name << " seed " << seed << " step " << step;
        h.push_back(want);
      }
    }
}

}  // namespace
}  // namespace g4
