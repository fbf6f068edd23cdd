#include "bench_spec.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "engine/conversation.h"
#include "engine/drafter.h"
#include "model/session.h"

namespace g4 {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<VerifyCost> measure_verify_cost(const Model& model, KvCache& kv, const std::vector<int32_t>& fill,
                                            const std::vector<int>& ns, int64_t steps, int64_t chunk) {
  kv.clear(0);
  Session s(model, kv, 0);
  if (!fill.empty()) s.forward(fill, LogitsMode::kNone, chunk);
  const int32_t tok = fill.empty() ? 2 : fill.back();
  // As greedy speculative decoding runs them: the backend chooses the token of every row (one token: the
  // decode step's recording).
  const RowSampling greedy;
  auto run = [&](const std::vector<int32_t>& tokens) { s.forward_pick_all(tokens, greedy); };
  auto time_n = [&](int n) {
    const std::vector<int32_t> tokens(size_t(n), tok);
    for (int w = 0; w < 2; ++w) {  // warm-up: a backend that records does it at a length's second run
      run(tokens);
      s.truncate(s.pos() - n);
    }
    const double a = now_s();
    for (int64_t i = 0; i < steps; ++i) {
      run(tokens);
      s.truncate(s.pos() - n);
    }
    return (now_s() - a) / double(steps);
  };
  const double one = time_n(1);
  std::vector<VerifyCost> out;
  for (int n : ns) {
    const double t = n == 1 ? one : time_n(n);
    out.push_back({n, t * 1e3, t / one});
  }
  return out;
}

OracleRun run_oracle(const Model& model, const KvCacheOptions& cache, const std::vector<int32_t>& prompt, int64_t gen,
                     int k) {
  OracleRun r;
  r.k = k;
  GenerateOptions go;
  go.max_new_tokens = gen;
  // Each run three times on its conversation, the third timed: the first two record the backend's steps
  // (CUDA graphs of the one-token step and of each verify length, made at a length's second run: the last
  // drafts of a run are shorter, and each of those lengths runs once a generation), which a long generation
  // pays once; the third reuses the prompt's cache and the recordings. So both sides are steady-state rates.
  GenerateResult plain;
  {
    Conversation conv(model, cache);
    for (int w = 0; w < 2; ++w) conv.generate(prompt, go, nullptr);
    plain = conv.generate(prompt, go, nullptr);
  }
  const std::vector<int32_t> cont = plain.tokens;
  const size_t base = prompt.size();
  go.draft.drafter = std::make_shared<FunctionDrafter>([&](const std::vector<int32_t>& context, int max_n) {
    std::vector<int32_t> d;
    for (size_t i = context.size() - base; i < cont.size() && int(d.size()) < max_n; ++i) d.push_back(cont[i]);
    return d;
  });
  go.draft.max = k;
  go.draft.min = 1;
  go.draft.adaptive = false;
  Conversation conv(model, cache);
  for (int w = 0; w < 2; ++w) conv.generate(prompt, go, nullptr);
  const GenerateResult spec = conv.generate(prompt, go, nullptr);
  r.plain_tok_s = double(plain.tokens.size() - 1) / plain.decode_s;
  r.oracle_tok_s = double(spec.tokens.size() - 1) / spec.decode_s;
  r.same_tokens = spec.tokens == plain.tokens;
  r.stats = spec.draft;
  return r;
}

}  // namespace g4
