#include "engine/assistant_drafter.h"

#include <algorithm>

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
  const KvCache::Seq& kv = session_->cache().seq(session_->seq());
  std::vector<int32_t> out;
  int32_t tok = context.back();
  Tensor h = taps_.hidden.rows(row_, 1);
  for (int j = 0; j < max_n; ++j) {
    AssistantModel::Step st = model_->step(tok, h, kv, pos, taps_, row_);
    tok = int32_t(std::max_element(st.logits.begin(), st.logits.end()) - st.logits.begin());
    if (j == 0) first_logits_ = std::move(st.logits);
    out.push_back(tok);
    h = st.hidden;
  }
  return out;
}

}  // namespace g4
