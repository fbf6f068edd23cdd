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
  // The chain keeps its own copy of row row_ of the taps, in buffers that live as long as the drafter (a
  // recorded draft step reads them there): a recorded target step refills the tap tensors at every replay,
  // and extend() reads the row after later forwards.
  Backend& be = model_->target().backend();
  auto fit = [&](Tensor& mine, const std::vector<int64_t>& shape) {  // kept unless the shape changed
    if (!mine.data || mine.shape != shape) mine = be.empty(shape);
  };
  auto own_row = [&](const Tensor& t, Tensor& mine) {
    if (!t.data) {
      mine = Tensor{};
      return;
    }
    std::vector<int64_t> shape = t.shape;
    shape[0] = 1;
    fit(mine, shape);
    be.copy(t.rows(row_, 1), mine);
  };
  own_row(taps_.hidden, chain_taps_.hidden);
  for (int i = 0; i < 2; ++i) {
    chain_taps_.layer[i] = taps_.layer[i];
    own_row(taps_.k[i], chain_taps_.k[i]);
    own_row(taps_.v[i], chain_taps_.v[i]);
  }
  fit(chain_h_, chain_taps_.hidden.shape);
  be.copy(chain_taps_.hidden, chain_h_);
  chain_pos_ = pos;
  chain_tok_ = context.back();
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

// What a recorded step bakes in: the drafter's buffers and the target layers' caches it reads.
std::vector<const void*> AssistantDrafter::step_inputs(const KvCache::Seq& kv) const {
  std::vector<const void*> key = {chain_h_.data, chain_taps_.hidden.data};
  for (int i = 0; i < 2; ++i) key.insert(key.end(), {chain_taps_.k[i].data, chain_taps_.v[i].data});
  for (int i = 0; i < 2; ++i)
    if (chain_taps_.layer[i] >= 0) {
      const KvLayer& l = kv.layers[size_t(chain_taps_.layer[i])];
      key.insert(key.end(), {l.k.data, l.v.data, reinterpret_cast<const void*>(l.capacity)});
    }
  return key;
}

std::vector<int32_t> AssistantDrafter::run(int n) {
  const KvCache::Seq& kv = session_->cache().seq(session_->seq());
  Backend& be = model_->target().backend();
  std::vector<int32_t> out;
  for (int j = 0; j < n; ++j) {
    // One step at the chain's position from chain_h_ (the hidden state it continues from). Where the backend
    // records (cuda), the step is recorded once per cache and replayed with the token and position: its
    // inputs are the drafter's own buffers (chain_h_, chain_taps_), read at replay time.
    AssistantModel::Step st;
    const std::vector<const void*> key = step_inputs(kv);
    if (!rec_ || rec_key_ != key) {
      rec_.reset();
      if (std::unique_ptr<StepRecording> rec = be.begin_step_recording(1, {chain_pos_})) {
        rec_out_ = model_->step(chain_tok_, chain_h_, kv, chain_pos_, chain_taps_, 0);  // recorded, not run
        be.end_step_recording(*rec);
        rec_ = std::move(rec);
        rec_key_ = key;
      }
    }
    if (rec_) {
      be.replay_step(*rec_, {chain_tok_}, {chain_pos_});
      st = rec_out_;
    } else {
      st = model_->step(chain_tok_, chain_h_, kv, chain_pos_, chain_taps_, 0);
    }
    if (keep_first_ && j == 0 && first_logits_.empty()) first_logits_ = model_->host_logits(st);
    chain_tok_ = model_->greedy_token(st);
    out.push_back(chain_tok_);
    be.copy(st.hidden, chain_h_);
  }
  return out;
}

}  // namespace g4
