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

void generate_speculative(const Model& model, Session& session, std::vector<int32_t>& tokens, const std::vector<float>& first,
                          const GenerateOptions& opts, const Conversation::TokenCallback& on_token, GenerateResult& r,
                          Clock::time_point t0) {
  DraftStats& st = r.draft;
  Drafter& drafter = *opts.draft.drafter;
  const std::string backend = model.backend().name();
  const SamplingParams& sp = opts.sampling;
  const bool greedy = sp.temperature <= 0;
  const int64_t V = int64_t(first.size()), ctx = session.ctx_size();

  // The longest draft: asked for (or the backend's default, raised to --draft-min), within the in-place
  // rollback depth: a verify of k + 1 tokens rolls back at most k positions.
  if (opts.draft.max > 0 && opts.draft.min > opts.draft.max)
    throw Error("draft min " + std::to_string(opts.draft.min) + " is larger than draft max " + std::to_string(opts.draft.max));
  if (opts.draft.max < 0 || opts.draft.min < 0) throw Error("draft lengths must be >= 0");
  int max = opts.draft.max > 0 ? opts.draft.max : std::max(default_draft_max(backend), opts.draft.min);
  const int64_t in_place = session.cache().options().slack + 1;
  if (max > in_place) {
    st.events.push_back("draft length " + std::to_string(max) + " capped at " + std::to_string(in_place) +
                        " (the KV cache's rollback slack + 1)");
    max = int(in_place);
  }
  const int min = std::min(opts.draft.min, max);
  DraftControl ctl(max, min, default_verify_slope(backend), opts.draft.adaptive);
  st.draft_max = max;
  st.draft_min = min;
  st.drafted_at.assign(size_t(max), 0);
  st.accepted_at.assign(size_t(max), 0);

  std::mt19937_64 rng(sp.seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
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
  auto pick = [&](const float* row) {
    return greedy ? greedy_token(sp, row, V, tokens) : sample_from(token_distribution(sp, row, V, tokens), rng);
  };
  auto finish = [&] {
    st.final_length = ctl.length();
    if (!r.tokens.empty()) r.decode_s = seconds_since(t_decode);
    else r.prefill_s = seconds_since(t0);
  };

  // A drafter that reads the target's state gets every forward tapped; the prefill's last row comes first.
  ForwardTaps* taps = drafter.taps();
  if (taps && !taps->hidden.data) throw Error(std::string("the ") + drafter.name() + " drafter needs the prompt's forward tapped");
  int64_t tap_row = taps ? taps->hidden.dim(0) - 1 : -1;

  if (opts.max_new_tokens == 0) { r.reason = StopReason::kMaxTokens; return finish(); }
  if (!emit(pick(first.data()), session.pos())) return finish();

  std::vector<int32_t> shadow;  // while drafting is off: a proposal scored against the tokens produced
  size_t shadow_at = 0;
  // A drafter that can extend its proposals is asked for one token at a time while it keeps matching (the
  // proposal counts as `max` long, as when drafted whole); others propose whole.
  const bool lazy = drafter.extends();
  int shadow_len = 0;
  while (true) {
    const int64_t p0 = session.pos();  // the last emitted token is pending (not yet in the cache)
    const bool off = ctl.length() == 0;
    const int64_t room = std::min<int64_t>(opts.max_new_tokens - emitted - 1, ctx - p0 - 1);
    const int k = int(std::min<int64_t>(ctl.length(), room));
    std::vector<int32_t> drafts;
    const bool new_shadow = off && shadow.empty() && ctl.may_shadow();
    if (taps && (k > 0 || new_shadow)) drafter.at_target(session, tap_row);
    if (k > 0) {
      const Clock::time_point td = Clock::now();
      drafts = drafter.draft(tokens, k);
      ctl.time_draft(int(drafts.size()), seconds_since(td), false);
      if (int64_t(drafts.size()) > k) drafts.resize(size_t(k));
      if (int(drafts.size()) < std::max(min, 1)) drafts.clear();
    } else if (new_shadow) {
      const Clock::time_point td = Clock::now();
      shadow = drafter.draft(tokens, lazy ? 1 : max);
      ctl.time_draft(int(shadow.size()), seconds_since(td), true);
      if (int(shadow.size()) > max) shadow.resize(size_t(max));
      shadow_len = lazy && !shadow.empty() ? max : int(shadow.size());
      if (shadow_len < std::max(min, 1)) shadow.clear();
      shadow_at = 0;
    }
    for (const std::vector<int32_t>* v : {&drafts, &shadow})
      for (int32_t d : *v)
        if (d < 0 || d >= V) throw Error(std::string("the ") + drafter.name() + " drafter proposed token " + std::to_string(d) +
                                         ", outside the vocabulary of " + std::to_string(V));

    std::vector<int32_t> feed{tokens.back()};
    feed.insert(feed.end(), drafts.begin(), drafts.end());
    const Clock::time_point tf = Clock::now();
    const std::vector<float> rows = session.forward(feed, drafts.empty() ? LogitsMode::kLast : LogitsMode::kAll, 0, taps);
    ctl.time_forward(int(feed.size()), seconds_since(tf));
    if (drafts.empty()) {
      ++st.plain_steps;
      if (off) {
        ++st.off_steps;
        ctl.off_step(seconds_since(tf));
      }
    } else {
      ++st.verifies;
      st.drafted += int64_t(drafts.size());
      for (size_t j = 0; j < drafts.size(); ++j) ++st.drafted_at[j];
    }

    int decided = 0, accepted = 0, n_emit = 0;
    bool go = true;
    for (size_t j = 0; j <= drafts.size(); ++j) {
      const float* row = rows.data() + int64_t(j) * V;
      int32_t tok;
      const bool bonus = j == drafts.size();
      if (bonus) {
        tok = pick(row);
      } else {
        const int32_t x = drafts[j];
        ++decided;
        if (greedy) {
          tok = greedy_token(sp, row, V, tokens);
        } else {
          const TokenDistribution d = token_distribution(sp, row, V, tokens);
          tok = unit(rng) < d.prob(x) ? x : sample_from(d, rng, x);
        }
        if (tok == x) {
          ++accepted;
          ++st.accepted;
          ++st.accepted_at[j];
        }
      }
      ++n_emit;
      go = emit(tok, p0 + 1 + int64_t(j));
      if (!go || bonus || tok != drafts[j]) break;
    }
    if (!drafts.empty()) ctl.observe(int(drafts.size()), decided, accepted, false, emitted);
    if (drafts.empty() && !shadow.empty()) {  // a plain step: score the shadow proposal's next token
      if (tokens.back() != shadow[shadow_at]) {
        ctl.observe(shadow_len, int(shadow_at) + 1, int(shadow_at), true, emitted);
        shadow.clear();
      } else if (++shadow_at == shadow.size()) {
        if (int(shadow.size()) < shadow_len && !ctl.may_shadow()) {
          shadow_len = int(shadow.size());  // out of shadow budget: scored as far as it went
        } else if (int(shadow.size()) < shadow_len) {
          const Clock::time_point td = Clock::now();
          const std::vector<int32_t> more = drafter.extend(1);
          ctl.time_draft(int(more.size()), seconds_since(td), true);
          for (int32_t d : more)
            if (d < 0 || d >= V) throw Error(std::string("the ") + drafter.name() + " drafter proposed token " + std::to_string(d) +
                                             ", outside the vocabulary of " + std::to_string(V));
          shadow.insert(shadow.end(), more.begin(), more.begin() + std::min<std::ptrdiff_t>(std::ptrdiff_t(more.size()), 1));
          if (more.empty()) shadow_len = int(shadow.size());
        }
        if (shadow_at == shadow.size()) {
          ctl.observe(shadow_len, shadow_len, shadow_len, true, emitted);
          shadow.clear();
        }
      }
    }
    if (!off) shadow.clear();
    const int64_t keep = p0 + n_emit;  // the pending token and every emitted token but the last
    tap_row = n_emit - 1;               // the row of position keep - 1
    if (session.pos() > keep) st.recomputed += session.truncate(keep, opts.prefill_chunk);
    if (!go) break;
    ctl.update(emitted, st);
  }
  finish();
}

}  // namespace g4
