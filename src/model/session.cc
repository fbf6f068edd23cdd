#include "model/session.h"

#include <algorithm>
#include <string>

#include "base/error.h"

namespace g4 {

namespace {
KvCacheOptions one_seq(KvCacheOptions o) {
  o.n_seq = 1;
  return o;
}
KvCacheOptions f32_cache(int64_t ctx_size) {
  KvCacheOptions o;
  o.ctx_size = ctx_size;
  return o;
}
}  // namespace

Session::Session(const Model& model, int64_t ctx_size) : Session(model, f32_cache(ctx_size)) {}

Session::Session(const Model& model, const KvCacheOptions& opts)
    : model_(model), own_(std::make_unique<KvCache>(model, one_seq(opts))), kv_(own_.get()) {}

Session::Session(const Model& model, KvCache& kv, int seq) : model_(model), kv_(&kv), seq_(seq) { kv.seq(seq); }

std::vector<float> Session::forward(const std::vector<int32_t>& tokens, LogitsMode mode, int64_t chunk, ForwardTaps* taps) {
  const int64_t n = int64_t(tokens.size());
  if (n == 0) return {};
  if (chunk <= 0 || chunk > n) chunk = n;
  std::vector<float> out;
  for (int64_t b = 0; b < n; b += chunk) {
    const int64_t e = std::min(n, b + chunk);
    SeqChunk c;
    c.seq = seq_;
    c.tokens.assign(tokens.begin() + b, tokens.begin() + e);
    c.logits = mode == LogitsMode::kAll ? LogitsMode::kAll : (e == n ? mode : LogitsMode::kNone);
    if (e == n) c.taps = taps;
    std::vector<float> l = std::move(forward_batch(model_, *kv_, {c})[0]);
    out.insert(out.end(), l.begin(), l.end());
  }
  return out;
}

int32_t Session::forward_pick(const std::vector<int32_t>& tokens, const RowSampling& pick, int64_t chunk) {
  const int64_t n = int64_t(tokens.size());
  if (n == 0) throw Error("nothing to run: no tokens");
  if (chunk <= 0 || chunk > n) chunk = n;
  const int64_t last = (n - 1) / chunk * chunk;  // the final chunk's first token
  if (last > 0) forward(std::vector<int32_t>(tokens.begin(), tokens.begin() + last), LogitsMode::kNone, chunk);
  SeqChunk c;
  c.seq = seq_;
  c.tokens.assign(tokens.begin() + last, tokens.end());
  return g4::forward_pick(model_, *kv_, {c}, {pick})[0];
}

std::vector<int32_t> Session::forward_pick_all(const std::vector<int32_t>& tokens, const RowSampling& pick,
                                               ForwardTaps* taps) {
  if (tokens.empty()) throw Error("nothing to run: no tokens");
  SeqChunk c;
  c.seq = seq_;
  c.tokens = tokens;
  c.logits = LogitsMode::kAll;
  c.taps = taps;
  return g4::forward_pick(model_, *kv_, {c}, {pick});
}

int64_t Session::truncate(int64_t n, int64_t chunk) {
  if (n < 0 || n > pos())
    throw Error("cannot roll back to " + std::to_string(n) + " positions: the sequence holds " + std::to_string(pos()));
  if (kv_->can_truncate_in_place(seq_, n)) {
    kv_->truncate_in_place(seq_, n);
    return 0;
  }
  const std::vector<int32_t> keep(tokens().begin(), tokens().begin() + n);
  reset();
  forward(keep, LogitsMode::kNone, chunk);
  return n;
}

}  // namespace g4
