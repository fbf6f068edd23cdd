#include "engine/speculative.h"

#include <algorithm>
#include <random>
#include <string>

#include "base/error.h"
#include "engine/draft_control.h"
#include "model/sampler.h"

namespace g4 {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

SpeculativeStream::Lengths SpeculativeStream::lengths(const DraftOptions& o, const Backend& backend, int64_t slack) {
  // The longest draft: asked for (or the backend's default, raised to --draft-min), within the in-place
  // rollback depth (a verify of k + 1 tokens rolls back at most k positions) and within the longest verify
  // the backend computes exactly as one-token steps (else greedy speculation could leave plain greedy's path).
  if (o.max > 0 && o.min > o.max)
    throw Error("draft min " + std::to_string(o.min) + " is larger than draft max " + std::to_string(o.max));
  if (o.max < 0 || o.min < 0) throw Error("draft lengths must be >= 0");
  Lengths l;
  l.max = o.max > 0 ? o.max : std::max(default_draft_max(backend.name()), o.min);
  const int64_t in_place = slack + 1;
  if (l.max > in_place) {
    l.capped = "draft length " + std::to_string(l.max) + " capped at " + std::to_string(in_place) +
               " (the KV cache's rollback slack + 1)";
    l.max = int(in_place);
  }
  const int exact = backend.exact_step_tokens() - 1;
  if (l.max > exact) {
    l.capped = "draft length " + std::to_string(l.max) + " capped at " + std::to_string(exact) + " (" + backend.name() +
               " computes a verify of at most " + std::to_string(exact + 1) + " tokens exactly as one-token steps)";
    l.max = exact;
  }
  l.min = std::min(o.min, l.max);
  return l;
}

SpeculativeStream::SpeculativeStream(const DraftOptions& o, const Backend& backend, int64_t slack, int64_t vocab)
    : drafter_(o.drafter), clock_(o.clock), V_(vocab), len_(lengths(o, backend, slack)),
      ctl_(len_.max, len_.min, default_verify_slope(backend.name()), o.adaptive) {
  if (!drafter_) throw Error("speculative decoding without a drafter");
  if (!clock_) clock_ = [] { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); };
  taps_ = drafter_->taps();
  restart();
}

void SpeculativeStream::restart() {
  st_ = DraftStats{};
  if (!len_.capped.empty()) st_.events.push_back(len_.capped);
  st_.draft_max = len_.max;
  st_.draft_min = len_.min;
  st_.drafted_at.assign(size_t(len_.max), 0);
  st_.accepted_at.assign(size_t(len_.max), 0);
  off_ = false;
  tap_row_ = -1;
  shadow_.clear();
  shadow_at_ = 0;
  shadow_len_ = 0;
}

void SpeculativeStream::prompt_done() {
  // A drafter that reads the target's state gets every forward tapped; the prefill's last row comes first.
  if (taps_ && !taps_->hidden.data) throw Error(std::string("the ") + drafter_->name() + " drafter needs the prompt's forward tapped");
  tap_row_ = taps_ ? taps_->hidden.dim(0) - 1 : -1;
}

void SpeculativeStream::check_vocab(const std::vector<int32_t>& tokens) const {
  for (int32_t d : tokens)
    if (d < 0 || d >= V_)
      throw Error(std::string("the ") + drafter_->name() + " drafter proposed token " + std::to_string(d) +
                  ", outside the vocabulary of " + std::to_string(V_));
}

std::vector<int32_t> SpeculativeStream::propose(Session& session, const std::vector<int32_t>& tokens, int64_t room) {
  Drafter& drafter = *drafter_;
  const int max = len_.max, min = len_.min;
  off_ = ctl_.length() == 0;
  const int k = int(std::max<int64_t>(0, std::min<int64_t>(ctl_.length(), room)));
  std::vector<int32_t> drafts;
  const bool new_shadow = off_ && shadow_.empty() && ctl_.may_shadow();
  if (taps_ && (k > 0 || new_shadow)) drafter.at_target(session, tap_row_);
  if (k > 0) {
    const double td = clock_();
    drafts = drafter.draft(tokens, k);
    ctl_.time_draft(int(drafts.size()), clock_() - td, false);
    if (int64_t(drafts.size()) > k) drafts.resize(size_t(k));
    if (int(drafts.size()) < std::max(min, 1)) drafts.clear();
  } else if (new_shadow) {
    const double td = clock_();
    shadow_ = drafter.draft(tokens, drafter.extends() ? 1 : max);
    ctl_.time_draft(int(shadow_.size()), clock_() - td, true);
    if (int(shadow_.size()) > max) shadow_.resize(size_t(max));
    shadow_len_ = drafter.extends() && !shadow_.empty() ? max : int(shadow_.size());
    if (shadow_len_ < std::max(min, 1)) shadow_.clear();
    shadow_at_ = 0;
  }
  check_vocab(drafts);
  check_vocab(shadow_);
  return drafts;
}

SpeculativeStream::Verdict SpeculativeStream::verify(const std::vector<int32_t>& drafts, double seconds, int64_t emitted_before,
                                                     const std::function<int32_t(size_t, int32_t)>& decide,
                                                     const std::function<bool(int32_t)>& emit) {
  ctl_.time_forward(int(drafts.size()) + 1, seconds);
  if (drafts.empty()) {
    ++st_.plain_steps;
    if (off_) {
      ++st_.off_steps;
      ctl_.off_step(seconds);
    }
  } else {
    ++st_.verifies;
    st_.drafted += int64_t(drafts.size());
    for (size_t j = 0; j < drafts.size(); ++j) ++st_.drafted_at[j];
  }

  Verdict v;
  int decided = 0;
  int32_t last = -1;
  for (size_t j = 0; j <= drafts.size(); ++j) {
    const bool bonus = j == drafts.size();
    const int32_t tok = decide(j, bonus ? -1 : drafts[j]);
    if (tok < 0) {  // the caller ends generation here (a constraint that allows no token)
      v.go = false;
      break;
    }
    if (!bonus) {
      ++decided;
      if (tok == drafts[j]) {
        ++v.accepted;
        ++st_.accepted;
        ++st_.accepted_at[j];
      }
    }
    ++v.emitted;
    last = tok;
    v.go = emit(tok);
    if (!v.go || bonus || tok != drafts[j]) break;
  }
  const int64_t emitted = emitted_before + v.emitted;
  if (!drafts.empty()) ctl_.observe(int(drafts.size()), decided, v.accepted, false, emitted);
  if (drafts.empty() && !shadow_.empty() && last >= 0) {  // a plain step: score the shadow proposal's next token
    if (last != shadow_[shadow_at_]) {
      ctl_.observe(shadow_len_, int(shadow_at_) + 1, int(shadow_at_), true, emitted);
      shadow_.clear();
    } else if (++shadow_at_ == shadow_.size()) {
      if (int(shadow_.size()) < shadow_len_ && !ctl_.may_shadow()) {
        shadow_len_ = int(shadow_.size());  // out of shadow budget: scored as far as it went
      } else if (int(shadow_.size()) < shadow_len_) {
        const double td = clock_();
        const std::vector<int32_t> more = drafter_->extend(1);
        ctl_.time_draft(int(more.size()), clock_() - td, true);
        check_vocab(more);
        shadow_.insert(shadow_.end(), more.begin(), more.begin() + std::min<std::ptrdiff_t>(std::ptrdiff_t(more.size()), 1));
        if (more.empty()) shadow_len_ = int(shadow_.size());
      }
      if (shadow_at_ == shadow_.size()) {
        ctl_.observe(shadow_len_, shadow_len_, shadow_len_, true, emitted);
        shadow_.clear();
      }
    }
  }
  if (!off_) shadow_.clear();
  tap_row_ = v.emitted - 1;  // the row of position (pending + emitted) - 1, the last kept one
  if (v.go) ctl_.update(emitted, st_);
  return v;
}

void generate_speculative(const Model& model, Session& session, std::vector<int32_t>& tokens, const std::vector<float>& first,
                          const GenerateOptions& opts, const Conversation::TokenCallback& on_token, GenerateResult& r,
                          Clock::time_point t0) {
  const SamplingParams& sp = opts.sampling;
  const int64_t V = int64_t(first.size()), ctx = session.ctx_size();
  SpeculativeStream stream(opts.draft, model.backend(), session.cache().options().slack, V);

  std::mt19937_64 rng(sp.seed);
  int64_t emitted = 0;
  Clock::time_point t_decode = t0;
  // Emits one token through plain decoding's checks, in its order; false when generation ends there.
  // vpos: the positions the cache held when the token's logits were computed, as in plain decoding.
  auto emit = [&](int32_t tok, int64_t vpos) {
    if (emitted == 0) {
      r.prefill_s = seconds_since(t0);
      t_decode = Clock::now();
    }
    tokens.push_back(tok);
    r.tokens.push_back(tok);
    ++emitted;
    if (on_token && !on_token(tok)) { r.reason = StopReason::kCancelled; return false; }
    if (std::find(opts.stop_ids.begin(), opts.stop_ids.end(), tok) != opts.stop_ids.end()) {
      r.reason = StopReason::kStopToken;
      return false;
    }
    if (vpos >= ctx) { r.reason = StopReason::kContextFull; return false; }
    if (emitted == opts.max_new_tokens) { r.reason = StopReason::kMaxTokens; return false; }
    return true;
  };
  auto decide = [&](const float* row, int32_t draft) { return accept_draft(sp, row, V, tokens, draft, rng); };
  // Greedy verifies let the backend choose every row's token where the logits are (on a GPU only the ids
  // come back; greedy acceptance is the argmax, accept_draft's choice); sampling needs the rows on the host.
  const bool ids_only = sp.temperature <= 0 && !opts.host_sampling;
  auto greedy_pick = [&] {
    RowSampling r;
    r.params = sp;
    r.history = tokens;
    return r;
  };
  auto finish = [&] {
    stream.finish();
    r.draft = stream.stats();
    if (!r.tokens.empty()) r.decode_s = seconds_since(t_decode);
    else r.prefill_s = seconds_since(t0);
  };

  stream.prompt_done();
  if (opts.max_new_tokens == 0) { r.reason = StopReason::kMaxTokens; return finish(); }
  if (!emit(decide(first.data(), -1), session.pos())) return finish();

  while (true) {
    const int64_t p0 = session.pos();  // the last emitted token is pending (not yet in the cache)
    const std::vector<int32_t> drafts =
        stream.propose(session, tokens, std::min<int64_t>(opts.max_new_tokens - emitted - 1, ctx - p0 - 1));
    std::vector<int32_t> feed{tokens.back()};
    feed.insert(feed.end(), drafts.begin(), drafts.end());
    const double tf = stream.now();
    std::vector<float> rows;
    std::vector<int32_t> ids;
    if (ids_only) ids = session.forward_pick_all(feed, greedy_pick(), stream.taps());
    else rows = session.forward(feed, drafts.empty() ? LogitsMode::kLast : LogitsMode::kAll, 0, stream.taps());
    const double seconds = stream.now() - tf;
    int64_t vpos = p0 + 1;
    const auto decide_row = [&](size_t j, int32_t draft) { return ids_only ? ids[j] : decide(rows.data() + int64_t(j) * V, draft); };
    const SpeculativeStream::Verdict v =
        stream.verify(drafts, seconds, emitted, decide_row, [&](int32_t tok) { return emit(tok, vpos++); });
    const int64_t keep = p0 + v.emitted;  // the pending token and every emitted token but the last
    if (session.pos() > keep) stream.stats().recomputed += session.truncate(keep, opts.prefill_chunk);
    if (!v.go) break;
  }
  finish();
}

}  // namespace g4
