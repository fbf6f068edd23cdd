#include "engine/draft_control.h"

#include <algorithm>
#include <cstdio>

#include "base/error.h"

namespace g4 {

namespace {
constexpr double kDecay = 0.95;       // per observation at a position: the monitor follows the last ~20 drafts
constexpr int64_t kWarmup = 8;        // observations before the length changes at all
constexpr double kMinGain = 1.05;     // drafting must beat plain decoding by this factor to stay on
constexpr size_t kMaxEvents = 16;
constexpr double kShadowShare = 0.1;  // of the plain steps' time while off, for drafting shadow proposals
constexpr double kShadowBurst = 16;   // the budget holds at most this many plain steps' share
}  // namespace

int default_draft_max(const std::string& backend) {
  if (backend == "cuda") return 8;
  if (backend == "ref") return 3;
  return 4;
}

double default_verify_slope(const std::string& backend) {
  if (backend == "cuda") return 0.05;
  if (backend == "ref") return 1.0;
  return 0.5;
}

DraftControl::DraftControl(int max, int min, double slope, bool adaptive)
    : max_(max), min_(min), slope_(slope), adaptive_(adaptive), length_(max),
      reach_(size_t(std::max(max, 0)), 2.0), acc_(size_t(std::max(max, 0)), 1.0),
      time_(size_t(std::max(max, 0)) + 1, 0.0), timed_(size_t(std::max(max, 0)) + 1, 0) {
  if (max < 0 || min < 0) throw Error("draft lengths must be >= 0");
  if (min > max) throw Error("--draft-min " + std::to_string(min) + " is larger than --draft-max " + std::to_string(max));
  // Start where the prior (half the drafts accepted, the backend's default cost) says: drafting on where a
  // verify is cheap, off (proposals scored for free until they prove worth it) where it is not.
  if (adaptive_) {
    length_ = 0;
    length_ = best_length();
  }
}

void DraftControl::observe(int drafted, int decided, int accepted, bool /*shadow*/, int64_t /*at_token*/) {
  decided = std::min({decided, drafted, max_});
  for (int j = 0; j < decided; ++j) {
    reach_[size_t(j)] = reach_[size_t(j)] * kDecay + 1;
    acc_[size_t(j)] = acc_[size_t(j)] * kDecay + (j < accepted ? 1 : 0);
  }
  if (decided > 0) ++observed_;
}

void DraftControl::time_forward(int n, double seconds) {
  if (n < 1 || n > max_ + 1 || !(seconds > 0)) return;
  double& t = time_[size_t(n - 1)];
  // A floor that rises 5% per sample: a forward slowed by the machine (a descheduled thread) is ignored,
  // a lasting rise (a longer context) is followed within a few samples.
  t = timed_[size_t(n - 1)]++ == 0 ? seconds : std::min(t * 1.05, seconds);
}

void DraftControl::time_draft(int tokens, double seconds, bool shadow) {
  if (shadow) shadow_credit_ -= std::max(seconds, 0.0);
  if (tokens < 1 || !(seconds > 0)) return;
  const double per = seconds / tokens;
  draft_token_ = draft_timed_++ == 0 ? per : std::min(draft_token_ * 1.05, per);
}

void DraftControl::off_step(double seconds) {
  if (seconds > 0) shadow_credit_ = std::min(shadow_credit_ + kShadowShare * seconds, kShadowBurst * kShadowShare * seconds);
}

double DraftControl::expected_tokens(int k) const {
  double e = 1, reach = 1;
  for (int j = 0; j < k && j < max_; ++j) {
    reach *= acc_[size_t(j)] / reach_[size_t(j)];
    e += reach;
  }
  return e;
}

double DraftControl::cost(int k) const {
  if (k <= 0) return 1;
  double c = k <= max_ && timed_[0] >= 2 && timed_[size_t(k)] >= 2 ? time_[size_t(k)] / time_[0] : 1 + slope_ * k;
  if (draft_timed_ >= 2 && timed_[0] >= 2) c += k * draft_token_ / time_[0];
  return c;
}

int DraftControl::best_length() const {
  // Drafting off gives one token per step plus the shadow proposals' drafting: at most kShadowShare of a
  // step, less for a drafter cheaper than that (nothing for n-gram).
  const double off_cost = 1 + (draft_timed_ >= 2 && timed_[0] >= 2 ? std::min(kShadowShare, draft_token_ / time_[0]) : 0.0);
  int best = 0;
  double best_rate = kMinGain / off_cost;  // tokens per step-cost that drafting must beat
  for (int k = std::max(min_, 1); k <= max_; ++k) {
    const double rate = expected_tokens(k) / cost(k);
    if (rate > best_rate) best = k, best_rate = rate;
  }
  // Hysteresis: the current length stays unless the best beats it by the same margin.
  const double current = length_ > 0 ? expected_tokens(length_) / cost(length_) : 1.0 / off_cost;
  return best_rate > current * kMinGain ? best : length_;
}

void DraftControl::update(int64_t at_token, DraftStats& stats) {
  if (!adaptive_ || observed_ < kWarmup) return;
  const int best = best_length();
  if (best == length_) return;
  if (stats.events.size() < kMaxEvents) {
    char buf[200];
    if (best == 0)
      std::snprintf(buf, sizeof buf, "token %lld: drafting off (%d tokens would give %.2f per verify at %.2fx a step)",
                    static_cast<long long>(at_token), length_ > 0 ? length_ : max_, expected_tokens(length_ > 0 ? length_ : max_),
                    cost(length_ > 0 ? length_ : max_));
    else
      std::snprintf(buf, sizeof buf, "token %lld: draft length %d -> %d (%.2f tokens per verify at %.2fx a step)",
                    static_cast<long long>(at_token), length_, best, expected_tokens(best), cost(best));
    stats.events.push_back(buf);
  } else {
    ++stats.events_dropped;
  }
  length_ = best;
}

}  // namespace g4
