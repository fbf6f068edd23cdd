// The assistant drafter: Gemma 4's official drafter model (model/assistant.h) as a Drafter. It reads the
// target's state: every target forward of the generation taps the final hidden state and the keys and
// values of the target's last sliding and last full layer (ForwardTaps), and each draft runs up to k
// assistant steps greedily (argmax) from the pending token, at the pending token's position, reading the
// target's KV cache; it writes none.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/drafter.h"
#include "model/assistant.h"
#include "model/forward.h"
#include "model/session.h"

namespace g4 {

class AssistantDrafter : public Drafter {
 public:
  explicit AssistantDrafter(std::shared_ptr<const AssistantModel> model) : model_(std::move(model)) {}
  // Loads DIR for `target` (AssistantModel::load). Throws g4::Error.
  static std::shared_ptr<AssistantDrafter> load(const std::string& dir, const Model& target, const LoadOptions& opts);

  std::vector<int32_t> draft(const std::vector<int32_t>& context, int max_n) override;
  const char* name() const override { return "assistant"; }
  ForwardTaps* taps() override { return &taps_; }
  void at_target(Session& session, int64_t row) override {
    session_ = &session;
    row_ = row;
  }

  bool extends() const override { return true; }
  std::vector<int32_t> extend(int n) override;
  // Shares the weights (AssistantModel::step is const); taps and the chain are its own.
  std::shared_ptr<Drafter> fork() const override { return std::make_shared<AssistantDrafter>(model_); }

  const AssistantModel& model() const { return *model_; }
  // With keep_first_logits(true), first_logits() holds the logits of the last draft's first step (tests
  // compare them with an oracle); otherwise only the drafted ids cross to the host.
  void keep_first_logits(bool on) { keep_first_ = on; }
  const std::vector<float>& first_logits() const { return first_logits_; }

 private:
  std::shared_ptr<const AssistantModel> model_;
  ForwardTaps taps_;
  Session* session_ = nullptr;
  int64_t row_ = -1;
  bool keep_first_ = false;
  std::vector<float> first_logits_;
  // The last proposal's chain, to extend it: its position, last token and hidden state, and its own copy of
  // the row of the target forward it read (later forwards refill the tap buffers). Buffers kept across drafts.
  int64_t chain_pos_ = -1;
  int32_t chain_tok_ = 0;
  Tensor chain_h_;
  ForwardTaps chain_taps_;
  // The recorded step (backends that record) and the caches it was recorded over.
  std::unique_ptr<StepRecording> rec_;
  std::vector<const void*> rec_key_;
  AssistantModel::Step rec_out_;
  std::vector<const void*> step_inputs(const KvCache::Seq& kv) const;
  std::vector<int32_t> run(int n);
};

}  // namespace g4
