// Scheduler: continuous batching over N slots (the sequences of one KvCache). One thread owns the model
// and the cache. Each step, every slot that is decoding contributes its last token, slots still reading
// their prompt contribute a chunk (at most prefill_cap prompt tokens per step over all slots, shared
// equally, so a long prompt never stalls the other streams and a short prompt is not stuck behind a
// long one), and one forward_batch runs
// them all, reading the weights once; then each slot picks its token with its own Sampler through
// pick_token (engine/token_pick.h: the request's constraint, banned tokens and log probabilities). A request joins at the
// next step and leaves when it stops (stop token, stop check, token budget, context end, cancellation).
//
// Speculative decoding (SchedulerOptions::draft, engine/speculative.h): each slot has its own drafter
// (Drafter::fork) and a SpeculativeStream with its own acceptance monitor, which carries over from one
// request to the next (SpeculativeStream::restart). A decoding slot's
// chunk is then its pending token plus the draft, with logits for every row; the rows are decided left to
// right through pick_token with the draft (so greedy answers are plain greedy's, sampling is distributed
// as plain sampling, and the job's constraint, banned tokens and logprobs apply to every emitted token),
// each emitted token passes the same stop checks in the same order as a plain one, and the rejected
// positions are rolled back from the slot's cache (in place: drafts stay within the ring's slack).
//
// Prompt cache: a new request takes the free slot whose cached tokens share the longest prefix with its
// prompt (ties: the least recently used; when no slot holds half of the prompt, the least recently used
// slot, so one conversation does not evict another's cache for a few shared tokens), rolls the rest back (exact, KvCache::truncate_in_place; a
// rollback deeper than the ring's slack clears the slot instead) and only runs the remainder. Replies
// never depend on other requests: every sequence's logits are those of the sequence run alone.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/conversation.h"
#include "engine/speculative.h"
#include "engine/token_mask.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "server/job_channel.h"
#include "server/server_stats.h"

namespace g4 {

struct SchedulerOptions {
  int64_t prefill_cap = 512;  // prompt tokens per step, all slots together (>= 1)
  size_t queue_max = 64;      // requests waiting for a slot; beyond that submit() refuses
  DraftOptions draft;         // draft.drafter set: speculative decoding in every slot
};

struct GenJob {
  std::vector<int32_t> prompt;
  GenerateOptions opts;  // sampling (its seed already chosen), stop ids, max_new_tokens; prefill_chunk unused
  // Called on the scheduler thread after each token with every token generated so far: true ends the job
  // as kStopToken (a stop string completed). May be empty.
  std::function<bool(const std::vector<int32_t>&)> stop_check;
  // Called on the scheduler thread once per step while the job waits or runs: true cancels it (the client
  // hung up). May be empty.
  std::function<bool()> client_gone;
  // Constrained decoding (may be null): only tokens it allows are sampled, and the job ends (kStopToken)
  // once its value is finished. When no token may continue, the job fails with a message saying so.
  std::shared_ptr<TokenConstraint> constraint;
  std::vector<int32_t> banned;  // tokens never sampled (tool_choice "none": the tool-call opener)
  int top_logprobs = -1;        // >= 0: push each token with its log probability and this many alternatives
};

class Scheduler {
 public:
  // cache.n_seq is the number of slots. Throws g4::Error when the cache cannot be built.
  Scheduler(const Model& model, const KvCacheOptions& cache, SchedulerOptions opts, ServerStats* stats);
  ~Scheduler();  // cancels every job and joins the thread

  // Validates the job (token ids, sampling, prompt length) and throws g4::Error for a bad one; returns
  // nullptr when every slot is busy and the queue is full; else the job's channel.
  std::shared_ptr<JobChannel> submit(GenJob job);
  // Cancels every queued and running job (shutdown).
  void cancel_all();

  struct Load {
    size_t queued = 0;
    int busy = 0, slots = 0;
    int64_t kv_used = 0, kv_capacity = 0;  // positions held, over all sequences
  };
  Load load() const;
  int64_t ctx_size() const { return kv_.ctx_size(); }

 private:
  struct Queued {
    GenJob job;
    std::shared_ptr<JobChannel> ch;
  };
  struct Slot {
    std::shared_ptr<JobChannel> ch;  // null: free
    GenJob job;
    std::unique_ptr<Sampler> sampler;
    std::vector<int32_t> feed;       // tokens to run next (the prompt's rest, or the last sampled token)
    std::vector<int32_t> history;    // prompt + generated (for the penalties)
    std::vector<int32_t> generated;
    uint64_t admitted = 0;           // admission order
    uint64_t last_used = 0;          // for the least-recently-used tie break
    // Speculative decoding: the slot's sequence as a Session (what drafters that read the target's cache
    // are given), its stream (its own drafter and monitor), and the draft being verified this step.
    std::unique_ptr<Session> view;
    std::unique_ptr<SpeculativeStream> spec;
    std::vector<int32_t> drafts;
  };
  // What one emitted token did to its job: nothing (go), ended it (why), or failed it (error).
  struct Outcome {
    bool go = true;
    StopReason why = StopReason::kMaxTokens;
    std::string error;
  };

  void loop();
  // Under m_: moves queued jobs into free slots, dropping those already cancelled.
  void admit_locked();
  // Runs one step over the active slots (without m_ held).
  void step();
  void end(Slot& s, StopReason why);
  // Hands a picked token to slot i's job and runs the stop checks of plain decoding, in order. vpos: the
  // positions the slot's cache held when the token's logits were computed.
  Outcome take(int i, PickedToken picked, int64_t vpos);
  // Verifies slot i's draft from its rows (chunk of the pending token + draft), emits what is accepted,
  // rolls the rejected positions back, and ends or continues the job.
  void verify_slot(int i, const std::vector<float>& rows, double seconds);
  // Ends slot i's job with an error and forgets its cache.
  void fail_slot(int i, const std::string& message);

  const Model& model_;
  KvCache kv_;
  SchedulerOptions opts_;
  ServerStats* stats_;
  std::vector<Slot> slots_;
  uint64_t counter_ = 0;
  std::vector<std::pair<std::shared_ptr<JobChannel>, StopReason>> ending_;  // jobs that ended this step

  mutable std::mutex m_;
  std::condition_variable cv_;
  std::deque<Queued> queue_;
  int busy_ = 0;
  int64_t kv_used_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace g4
