#include "server/scheduler.h"

#include <algorithm>
#include <chrono>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "base/error.h"
#include "engine/token_pick.h"
#include "model/forward.h"

namespace g4 {

Scheduler::Scheduler(const Model& model, const KvCacheOptions& cache, SchedulerOptions opts, ServerStats* stats)
    : model_(model), kv_(model, cache), opts_(opts), stats_(stats), slots_(size_t(kv_.n_seq())) {
  if (opts_.prefill_cap < 1) throw Error("the prefill cap must be >= 1 token per step");
  if (opts_.draft.drafter) {
    for (int i = 0; i < int(slots_.size()); ++i) {
      Slot& s = slots_[size_t(i)];
      DraftOptions d = opts_.draft;
      d.drafter = opts_.draft.drafter->fork();
      s.view = std::make_unique<Session>(model_, kv_, i);
      s.spec = std::make_unique<SpeculativeStream>(d, model_.backend(), kv_.options().slack, model_.spec().vocab_size);
    }
  }
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(m_);
    stopping_ = true;
  }
  cancel_all();
  thread_.join();
}

void Scheduler::cancel_all() {
  std::lock_guard<std::mutex> lock(m_);
  for (Queued& q : queue_) q.ch->cancel();
  for (Slot& s : slots_)
    if (s.ch) s.ch->cancel();
  cv_.notify_all();
}

std::shared_ptr<JobChannel> Scheduler::submit(GenJob job) {
  validate(job.opts.sampling);
  if (job.opts.max_new_tokens < 0) throw Error("max new tokens must be >= 0");
  if (job.prompt.empty()) throw Error("nothing to generate from: the prompt is empty");
  if (int64_t(job.prompt.size()) >= kv_.ctx_size())
    throw Error("the prompt has " + std::to_string(job.prompt.size()) + " tokens, which does not fit the context of " +
                std::to_string(kv_.ctx_size()));
  const int64_t V = model_.spec().vocab_size;
  for (int32_t t : job.prompt)
    if (t < 0 || t >= V)
      throw Error("token id " + std::to_string(t) + " is out of range for the vocabulary of " + std::to_string(V));
  auto ch = std::make_shared<JobChannel>();
  std::lock_guard<std::mutex> lock(m_);
  const size_t free_slots = slots_.size() - size_t(busy_);
  if (stopping_ || queue_.size() >= opts_.queue_max + free_slots) return nullptr;
  queue_.push_back(Queued{std::move(job), ch});
  cv_.notify_all();
  return ch;
}

Scheduler::Load Scheduler::load() const {
  std::lock_guard<std::mutex> lock(m_);
  Load l;
  l.queued = queue_.size();
  l.busy = busy_;
  l.slots = int(slots_.size());
  l.kv_used = kv_used_;
  l.kv_capacity = kv_.ctx_size() * int64_t(slots_.size());
  return l;
}

namespace {

// Hands the heap's free pages back to the system (glibc keeps what finished requests freed, in every
// thread's arena). Measured with bench/serve_load.mjs: 1.0-1.4 MB of a burst's growth returned (docs/PERF.md).
void trim_heap() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace

void Scheduler::loop() {
  bool worked = false;  // a step ran since the heap was last trimmed
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(m_);
      const auto ready = [&] { return stopping_ || !queue_.empty() || busy_ > 0; };
      if (worked && !ready()) {
        // Idle after work: once a second has passed without a request (the HTTP threads have freed the
        // finished requests' buffers by then), trim the heap, outside the lock.
        if (!cv_.wait_for(lock, std::chrono::seconds(1), ready)) {
          lock.unlock();
          trim_heap();
          worked = false;
          continue;
        }
      }
      cv_.wait(lock, ready);
      if (stopping_ && queue_.empty() && busy_ == 0) return;
      // Waiting requests whose clients left never take a slot.
      for (auto it = queue_.begin(); it != queue_.end();) {
        if (it->ch->cancelled() || (it->job.client_gone && it->job.client_gone())) {
          it->ch->finish(StopReason::kCancelled);
          ++stats_->cancelled;
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      admit_locked();
    }
    step();
    worked = true;
  }
}

void Scheduler::admit_locked() {
  while (!queue_.empty() && busy_ < int(slots_.size())) {
    Queued q = std::move(queue_.front());
    queue_.pop_front();
    const std::vector<int32_t>& prompt = q.job.prompt;
    // The free slot that keeps the most of this prompt (at least its last token runs again, for logits).
    // When no slot holds at least half of the prompt, the request is a new conversation: it takes the
    // least recently used slot (an empty one first) so the other conversations keep their caches.
    auto keep_of = [&](int i) {
      int64_t keep = std::min<int64_t>(kv_.common_prefix(i, prompt), int64_t(prompt.size()) - 1);
      if (keep < kv_.pos(i) && !kv_.can_truncate_in_place(i, keep)) keep = 0;
      return keep;
    };
    int best = -1, lru = -1;
    int64_t best_keep = -1;
    for (int i = 0; i < int(slots_.size()); ++i) {
      const Slot& s = slots_[size_t(i)];
      if (s.ch) continue;
      const int64_t keep = keep_of(i);
      if (keep > best_keep || (keep == best_keep && s.last_used < slots_[size_t(best)].last_used)) {
        best = i;
        best_keep = keep;
      }
      if (lru < 0 || s.last_used < slots_[size_t(lru)].last_used) lru = i;
    }
    if (2 * best_keep < int64_t(prompt.size())) {
      best = lru;
      best_keep = keep_of(lru);
    }
    if (best_keep == 0) kv_.clear(best);
    else if (best_keep < kv_.pos(best)) kv_.truncate_in_place(best, best_keep);
    Slot& s = slots_[size_t(best)];
    s.ch = q.ch;
    s.job = std::move(q.job);
    s.sampler = std::make_unique<Sampler>(s.job.opts.sampling);
    s.feed.assign(s.job.prompt.begin() + std::ptrdiff_t(best_keep), s.job.prompt.end());
    s.history = s.job.prompt;
    s.generated.clear();
    if (s.spec) s.spec->restart();
    s.admitted = ++counter_;
    ++busy_;
    s.ch->start(best_keep);
    stats_->prompt_tokens += int64_t(s.job.prompt.size());  // `prompt` was moved into the slot
    stats_->cached_tokens += best_keep;
    if (best_keep > 0) ++stats_->cache_hits;
  }
  kv_used_ = 0;
  for (int i = 0; i < kv_.n_seq(); ++i) kv_used_ += kv_.pos(i);
}

void Scheduler::end(Slot& s, StopReason why) {
  if (why == StopReason::kCancelled) ++stats_->cancelled;
  else ++stats_->finished;
  if (s.spec) {
    s.spec->finish();
    s.ch->set_draft(s.spec->stats().drafted, s.spec->stats().accepted);
  }
  ending_.push_back({std::move(s.ch), why});  // told at the end of the step, once the counters are right
  s.ch.reset();
  s.job = GenJob{};
  s.sampler.reset();
  s.last_used = ++counter_;
  std::lock_guard<std::mutex> lock(m_);
  --busy_;
}

void Scheduler::fail_slot(int i, const std::string& message) {
  Slot& s = slots_[size_t(i)];
  std::shared_ptr<JobChannel> ch = std::move(s.ch);
  s.ch.reset();
  s.job = GenJob{};
  s.sampler.reset();
  kv_.clear(i);
  {
    std::lock_guard<std::mutex> lock(m_);
    --busy_;
  }
  ch->fail(message);
}

Scheduler::Outcome Scheduler::take(int i, PickedToken picked, int64_t vpos) {
  Slot& s = slots_[size_t(i)];
  Outcome o;
  const int32_t tok = picked.id;
  if (tok < 0) {
    o.go = false;
    o.error = "constrained decoding dead-ended: no token of the vocabulary continues the output (" +
              std::to_string(s.generated.size()) + " tokens generated)";
    return o;
  }
  s.generated.push_back(tok);
  s.history.push_back(tok);
  if (s.job.top_logprobs >= 0) s.ch->push(std::move(picked));
  else s.ch->push(tok);
  ++stats_->tokens;
  const auto& stops = s.job.opts.stop_ids;
  if (s.job.constraint) {
    try {
      s.job.constraint->accept(tok);  // pick_token only returns allowed tokens; this cannot fail
    } catch (const std::exception& e) {
      o.go = false;
      o.error = e.what();
      return o;
    }
  }
  o.go = false;
  if (s.ch->cancelled()) o.why = StopReason::kCancelled;
  else if (std::find(stops.begin(), stops.end(), tok) != stops.end()) o.why = StopReason::kStopToken;
  else if (s.job.constraint && s.job.constraint->finished()) o.why = StopReason::kStopToken;
  else if (s.job.stop_check && s.job.stop_check(s.generated)) o.why = StopReason::kStopToken;
  else if (vpos >= kv_.ctx_size()) o.why = StopReason::kContextFull;
  else if (int64_t(s.generated.size()) >= s.job.opts.max_new_tokens) o.why = StopReason::kMaxTokens;
  else o.go = true;
  return o;
}

void Scheduler::verify_slot(int i, const std::vector<float>& rows, double seconds) {
  Slot& s = slots_[size_t(i)];
  const int64_t V = model_.spec().vocab_size;
  const int64_t p0 = kv_.pos(i) - 1 - int64_t(s.drafts.size());  // the pending token's position
  PickedToken picked;
  Outcome o;
  int64_t vpos = p0 + 1;
  auto decide = [&](size_t j, int32_t draft) {
    picked = pick_token(*s.sampler, rows.data() + int64_t(j) * V, V, s.history, s.job.constraint.get(), s.job.banned, s.job.top_logprobs, draft);
    if (picked.id < 0) o = take(i, picked, vpos);  // the dead-end error
    return picked.id;
  };
  auto emit = [&](int32_t) {
    o = take(i, std::move(picked), vpos++);
    return o.go;
  };
  SpeculativeStream::Verdict v;
  try {
    v = s.spec->verify(s.drafts, seconds, int64_t(s.generated.size()), decide, emit);
    stats_->draft_tokens += int64_t(s.drafts.size());
    stats_->draft_accepted += v.accepted;
    // Roll back the rejected drafts: the cache keeps the pending token and every emitted token but the last.
    const int64_t keep = p0 + v.emitted;
    if (o.error.empty() && kv_.pos(i) > keep) s.spec->stats().recomputed += s.view->truncate(keep);
  } catch (const std::exception& e) {
    o.go = false;
    o.error = e.what();
  }
  if (!o.error.empty()) fail_slot(i, o.error);
  else if (!o.go) end(s, o.why);
  else s.feed = {s.generated.back()};
}

void Scheduler::step() {
  using Clock = std::chrono::steady_clock;
  const auto step_start = Clock::now();
  for (Slot& s : slots_)
    if (s.ch && (s.ch->cancelled() || (s.job.client_gone && s.job.client_gone()))) end(s, StopReason::kCancelled);

  // Decoding slots contribute one token each; prompts share the prefill budget.
  std::vector<SeqChunk> batch;
  std::vector<int> order;
  for (int i = 0; i < int(slots_.size()); ++i)
    if (slots_[size_t(i)].ch) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return slots_[size_t(a)].admitted < slots_[size_t(b)].admitted; });
  std::vector<int> in_batch;
  std::vector<int> prefilling;
  for (int i : order) {
    Slot& s = slots_[size_t(i)];
    if (s.feed.empty()) continue;
    if (s.generated.empty()) {
      prefilling.push_back(i);
      continue;
    }
    SeqChunk c{i, {s.feed[0]}, LogitsMode::kLast};
    if (s.spec) {  // the pending token and the slot's draft, logits for every row
      const int64_t p0 = kv_.pos(i);
      const int64_t room = std::min<int64_t>(s.job.opts.max_new_tokens - int64_t(s.generated.size()) - 1, kv_.ctx_size() - p0 - 1);
      try {
        s.drafts = s.spec->propose(*s.view, s.history, room);
      } catch (const std::exception& e) {
        fail_slot(i, e.what());
        continue;
      }
      c.tokens.insert(c.tokens.end(), s.drafts.begin(), s.drafts.end());
      if (!s.drafts.empty()) c.logits = LogitsMode::kAll;
      c.taps = s.spec->taps();
    }
    batch.push_back(std::move(c));
    in_batch.push_back(i);
  }
  // Prompts share the prefill budget equally; what a short one leaves goes to the longer ones.
  std::stable_sort(prefilling.begin(), prefilling.end(),
                   [&](int a, int b) { return slots_[size_t(a)].feed.size() < slots_[size_t(b)].feed.size(); });
  int64_t budget = opts_.prefill_cap;
  for (size_t k = 0; k < prefilling.size() && budget > 0; ++k) {
    Slot& s = slots_[size_t(prefilling[k])];
    const int64_t left = int64_t(prefilling.size() - k);
    const int64_t n = std::min<int64_t>(int64_t(s.feed.size()), (budget + left - 1) / left);
    budget -= n;
    SeqChunk c;
    c.seq = prefilling[k];
    c.tokens.assign(s.feed.begin(), s.feed.begin() + std::ptrdiff_t(n));
    c.logits = n == int64_t(s.feed.size()) ? LogitsMode::kLast : LogitsMode::kNone;
    if (s.spec && c.logits == LogitsMode::kLast) c.taps = s.spec->taps();  // the drafter starts from the prompt's last row
    batch.push_back(std::move(c));
    in_batch.push_back(prefilling[k]);
  }
  if (batch.empty()) {
    for (auto& [ch, why] : ending_) ch->finish(why);
    ending_.clear();
    return;
  }

  // When no slot choosing a token this step needs its logits rows (log probabilities, a constraint's mask,
  // a draft to verify), the backend chooses every token where the logits are (banned tokens excluded) and
  // only the ids come back.
  bool ids_only = true;
  for (size_t c = 0; c < batch.size(); ++c) {
    const Slot& s = slots_[size_t(in_batch[c])];
    const GenJob& j = s.job;
    if (batch[c].logits == LogitsMode::kAll ||
        (batch[c].logits == LogitsMode::kLast && (s.spec || j.constraint || j.top_logprobs >= 0)))
      ids_only = false;
  }
  std::vector<std::vector<float>> logits;
  std::vector<int32_t> ids;
  const auto t0 = Clock::now();
  try {
    if (ids_only) {
      std::vector<RowSampling> picks(batch.size());
      for (size_t c = 0; c < batch.size(); ++c) {
        Slot& s = slots_[size_t(in_batch[c])];
        if (batch[c].logits == LogitsMode::kLast) {
          picks[c] = s.sampler->next_row(s.history);
          picks[c].banned = s.job.banned;
        }
      }
      ids = forward_pick(model_, kv_, batch, picks);
    } else {
      logits = forward_batch(model_, kv_, batch);
    }
  } catch (const std::exception& e) {
    // Should not happen (jobs are validated at submit); fail the jobs of this step and forget their caches.
    for (auto& [ch, why] : ending_) ch->finish(why);
    ending_.clear();
    for (int i : in_batch) fail_slot(i, e.what());
    return;
  }

  const auto t1 = Clock::now();
  const double seconds = std::chrono::duration<double>(t1 - t0).count();
  stats_->forward_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
  // A drafting slot's monitor is given its rows' share of the step: alone it is the whole step (as in
  // `run`); in a batch the other slots' rows are not its cost. Proportional to rows is exact where a step
  // costs per row (CPUs) and pessimistic where it costs about the same for any few rows (a GPU reading the
  // weights), where drafting also gains least once batching already shares the weight reads.
  int64_t rows = 0;
  for (const SeqChunk& c : batch) rows += int64_t(c.tokens.size());
  const int64_t V = model_.spec().vocab_size;
  for (size_t c = 0; c < batch.size(); ++c) {
    const int i = in_batch[c];
    Slot& s = slots_[size_t(i)];
    // A decoding slot's chunk holds its draft beyond the one pending token `feed` has.
    s.feed.erase(s.feed.begin(), s.feed.begin() + std::ptrdiff_t(std::min(s.feed.size(), batch[c].tokens.size())));
    if (batch[c].logits == LogitsMode::kNone) continue;  // more of the prompt to read
    if (s.spec && !s.generated.empty()) {
      verify_slot(i, logits[c], seconds * double(batch[c].tokens.size()) / double(rows));
      continue;
    }
    if (s.job.opts.max_new_tokens == 0) {
      end(s, StopReason::kMaxTokens);
      continue;
    }
    if (s.spec) {
      try {
        s.spec->prompt_done();
      } catch (const std::exception& e) {
        fail_slot(i, e.what());
        continue;
      }
    }
    PickedToken picked;
    if (ids_only) picked.id = ids[c];
    else
      picked = pick_token(*s.sampler, logits[c].data(), V, s.history, s.job.constraint.get(), s.job.banned,
                          s.job.top_logprobs);
    const Outcome o = take(i, std::move(picked), kv_.pos(i));
    if (!o.error.empty()) fail_slot(i, o.error);
    else if (!o.go) end(s, o.why);
    else s.feed = {s.generated.back()};
  }
  {
    std::lock_guard<std::mutex> lock(m_);
    kv_used_ = 0;
    for (int i = 0; i < kv_.n_seq(); ++i) kv_used_ += kv_.pos(i);
  }
  // The step is counted before its requests finish, so a client that reads /metrics after its response sees
  // every step that served it.
  ++stats_->steps;
  stats_->step_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - step_start).count();
  for (auto& [ch, why] : ending_) ch->finish(why);
  ending_.clear();
}

}  // namespace g4
