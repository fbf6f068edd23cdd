// Drafters for speculative decoding: something that guesses the next few tokens cheaply, so the target
// model can check several of them in one forward pass (engine/speculative.h). A drafter here is
// deterministic: it proposes tokens, not distributions (q is one-hot at the proposed token).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace g4 {

class Session;
struct ForwardTaps;

class Drafter {
 public:
  virtual ~Drafter() = default;
  // Up to max_n tokens guessed to follow `context` (everything the model has seen or produced so far).
  // May return fewer, or none.
  virtual std::vector<int32_t> draft(const std::vector<int32_t>& context, int max_n) = 0;
  virtual const char* name() const = 0;

  // Drafters that read the target's state (the assistant, engine/assistant_drafter.h): the buffer that
  // every target forward of a generation fills (null: the drafter needs none), and, before each draft,
  // the target's session and the row of that buffer holding position session.pos() - 1.
  virtual ForwardTaps* taps() { return nullptr; }
  virtual void at_target(Session& session, int64_t row) { (void)session, (void)row; }
  // Drafters whose proposals cost real work (the assistant) can continue their last proposal by n tokens,
  // exactly as a longer draft would have gone on, so proposals that are only scored (while drafting is
  // off) are computed one token at a time, as far as they keep matching. Empty: cannot continue.
  virtual bool extends() const { return false; }
  virtual std::vector<int32_t> extend(int n) { (void)n; return {}; }
  // A drafter of the same kind for another sequence (the server gives each slot its own): it shares what
  // is read-only (the assistant's weights) and keeps its own per-sequence state (taps, the proposal chain).
  // Throws g4::Error for a drafter that cannot (the default).
  virtual std::shared_ptr<Drafter> fork() const;
};

// Prompt lookup: finds the most recent earlier occurrence of the context's last n tokens (n from max_ngram
// down to min_ngram; the longest match wins) and proposes the tokens that followed it (a match that runs
// into the tail repeats: "a b a b" proposes "a b ...").
class NgramDrafter : public Drafter {
 public:
  explicit NgramDrafter(int max_ngram = 3, int min_ngram = 1);
  std::vector<int32_t> draft(const std::vector<int32_t>& context, int max_n) override;
  const char* name() const override { return "ngram"; }
  std::shared_ptr<Drafter> fork() const override { return std::make_shared<NgramDrafter>(*this); }

 private:
  int max_ngram_, min_ngram_;
};

// A drafter given as a function (tests, oracles).
class FunctionDrafter : public Drafter {
 public:
  using Fn = std::function<std::vector<int32_t>(const std::vector<int32_t>& context, int max_n)>;
  explicit FunctionDrafter(Fn fn) : fn_(std::move(fn)) {}
  std::vector<int32_t> draft(const std::vector<int32_t>& context, int max_n) override { return fn_(context, max_n); }
  const char* name() const override { return "function"; }
  std::shared_ptr<Drafter> fork() const override { return std::make_shared<FunctionDrafter>(fn_); }

 private:
  Fn fn_;
};

}  // namespace g4

namespace g4 {

// Speculative decoding settings of one generation (GenerateOptions::draft).
struct DraftOptions {
  std::shared_ptr<Drafter> drafter;  // null: plain decoding
  int max = 0;                       // longest draft; 0: the backend's default (engine/draft_control.h)
  int min = 0;                       // proposals shorter than this are not verified
  bool adaptive = true;              // false: always ask for `max` tokens (tests)
  // Seconds on a monotonic clock for the monitor's timings of drafts and target forwards (the reported
  // timings stay on the wall clock); empty: std::chrono::steady_clock. Tests give a fake one so that what
  // the monitor decides does not depend on the machine's load.
  std::function<double()> clock;
};

}  // namespace g4
