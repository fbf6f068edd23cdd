#include "engine/assistant_drafter.h"

#include "base/error.h"

namespace g4 {

std::shared_ptr<AssistantDrafter> AssistantDrafter::load(const std::string& dir, const Model& target, const LoadOptions& opts) {
  return std::make_shared<AssistantDrafter>(AssistantModel::load(dir, target, opts));
}

std::vector<int32_t> AssistantDrafter::draft(const std::vector<int32_t>& context, int max_n) {
  first_logits_.clear();
  if (max_n <= 0 || context.empty()) return {};
  if (!session_ || row_ < 0 || !taps_.hidden.data || row_ >= taps_.hidden.dim(0))
    throw Error("assistant drafter: no target state (the target forward before this draft was not tapped)");
  const int64_t pos = session_->pos();
  if (int64_t(context.size()) != pos + 1)
    throw Error("assistant drafter: the context holds " + std::to_string(context.size()) + " tokens, the target cache " +
                std::to_string(pos) + " + the pending one");
  // The chain keeps its own copy of row row_ of the taps: a recorded target step refills the tap tensors at
  // every replay, and extend() reads them after later forwards.
  Backend& be = model_->target().backend();
  auto own_row = [&](const Tensor& t) {
    if (!t.data) return Tensor{};
    std::vector<int64_t> shape = t.shape;
    shape[0] = 1;
    Tensor c = be.empty(shape);
    be.copy(t.rows(row_, 1), c);
    return c;
  };
  chain_taps_ = ForwardTaps{};
  chain_taps_.hidden = own_row(taps_.hidden);
  for (int i = 0; i < 2; ++i) {
    chain_taps_.layer[i] = taps_.layer[i];
    chain_taps_.k[i] = own_row(taps_.k[i]);
    chain_taps_.v[i] = own_row(taps_.v[i]);
  }
  chain_pos_ = pos;
  chain_row_ = 0;
  chain_tok_ = context.back();
  chain_h_ = chain_taps_.hidden;
  return run(max_n);
}

std::vector<int32_t> AssistantDrafter::extend(int n) {
  // The chain reads the target's cache below its position: still there while the target has not rolled
  // back below it nor written so far past it that the sliding rings overwrote the oldest key it reads.
  if (!session_ || chain_pos_ < 0 || session_->pos() < chain_pos_ ||
      session_->pos() - chain_pos_ >= session_->cache().options().slack)
    return {};
  return run(n);
}

std::vector<int32_t> AssistantDrafter::run(int n) {
  const KvCache::Seq& kv = session_->cache().seq(session_->seq());
  std::vector<int32_t> out;
  for (int j = 0; j < n; ++j) {
    AssistantModel::Step st = model_->step(chain_tok_, chain_h_, kv, chain_pos_, chain_taps_, chain_row_);
    if (keep_first_ && j == 0 && first_logits_.empty()) first_logits_ = model_->host_logits(st);
    chain_tok_ = model_->greedy_token(st);
    out.push_back(chain_tok_);
    chain_h_ = st.hidden;
  }
  return out;
}

}  // namespace g4
