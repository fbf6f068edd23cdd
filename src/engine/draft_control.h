// Adaptive draft length for speculative decoding. An acceptance monitor keeps, per draft position j, how
// often a draft token there was accepted once every earlier one was (decayed, so it follows the text);
// with the measured cost of a verify of n tokens relative to a one-token step it picks the draft length
// that gives the most tokens per unit of time, or 0 (drafting off) when no length beats plain decoding.
// While off, the loop keeps scoring the drafter's proposals against the tokens actually produced (free
// for a cheap drafter), so drafting comes back when the text turns repetitive again.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace g4 {

struct DraftStats {
  int64_t verifies = 0;           // target forwards that checked at least one draft token
  int64_t drafted = 0, accepted = 0;
  std::vector<int64_t> drafted_at, accepted_at;  // per draft position
  int64_t plain_steps = 0;        // one-token steps (no draft proposed, too short, or drafting off)
  int64_t off_steps = 0;          // plain steps taken because the monitor had turned drafting off
  int64_t recomputed = 0;         // positions recomputed by rollbacks (0 while drafts stay within the slack)
  int draft_max = 0, draft_min = 0, final_length = 0;
  std::vector<std::string> events;  // what the monitor changed, and why (the first few)
  int64_t events_dropped = 0;
};

class DraftControl {
 public:
  // `max`: the longest draft; `min`: shorter proposals are not verified; `slope`: the default cost of each
  // extra verified token relative to a one-token step, until measured. adaptive = false: always `max`.
  DraftControl(int max, int min, double slope, bool adaptive);

  // The draft length to ask for now (0: drafting is off).
  int length() const { return length_; }
  // A draft of `drafted` tokens of which the first `decided` were judged and the first `accepted` of those
  // taken (accepted == decided, or the one after was rejected). shadow: scored while drafting was off.
  void observe(int drafted, int decided, int accepted, bool shadow, int64_t at_token);
  // Seconds a target forward of n tokens took.
  void time_forward(int n, double seconds);
  // Seconds the drafter took to propose `tokens` tokens (a draft's cost counts them); shadow: a proposal
  // scored while drafting was off, paid from the shadow budget.
  void time_draft(int tokens, double seconds, bool shadow);
  // A plain step of `seconds` taken while drafting was off: adds to the shadow budget.
  void off_step(double seconds);
  // While off: whether a shadow proposal may be drafted (or extended) now. The time spent drafting them is
  // held to about a tenth of the plain steps' time, so scoring an expensive drafter (the assistant, about a
  // third of a step for the tiny model on a CPU) costs little; a free one (n-gram) is always scored.
  bool may_shadow() const { return shadow_credit_ >= 0; }
  // Re-picks the length from what was observed; logs a change into stats.
  void update(int64_t at_token, DraftStats& stats);
  // Expected tokens produced by one verify with k draft tokens, and its cost in one-token steps (the
  // verify and, once measured, the drafting of the k tokens).
  double expected_tokens(int k) const;
  double cost(int k) const;

 private:
  int best_length() const;
  int max_, min_;
  double slope_;
  bool adaptive_;
  int length_;
  std::vector<double> reach_, acc_;   // decayed counts per draft position
  std::vector<double> time_;          // seconds of a forward of n = 1 .. max + 1 tokens: a rising floor
  std::vector<int> timed_;
  double draft_token_ = 0;            // seconds per drafted token: a rising floor
  int draft_timed_ = 0;
  double shadow_credit_ = 0;          // seconds the shadow proposals may still spend
  int64_t observed_ = 0;
};

// Default longest draft per backend: long where a verify of several tokens costs about one step (GPUs),
// short where cost grows with the tokens verified (CPUs, the scalar reference).
int default_draft_max(const std::string& backend);
// Default cost of one extra verified token relative to a one-token step.
double default_verify_slope(const std::string& backend);

}  // namespace g4
