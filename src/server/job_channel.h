// JobChannel: what one generation request and the scheduler share. The scheduler thread pushes each
// sampled token and finally the reason it stopped; the HTTP handler thread waits for them (to stream them
// or to answer at the end) and may cancel. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "engine/conversation.h"
#include "engine/token_pick.h"

namespace g4 {

class JobChannel {
 public:
  struct Snapshot {
    std::vector<int32_t> tokens;  // every token generated so far
    std::vector<PickedToken> logprobs;  // parallel to tokens when the job asked for log probabilities
    bool done = false;
    StopReason reason = StopReason::kMaxTokens;
    std::string error;            // set when the step failed (done is then true)
    int64_t cached_tokens = 0;    // prompt tokens reused from the slot's cache (known once started)
    bool drafting = false;        // speculative decoding ran (drafted / accepted known once done)
    int64_t drafted = 0, accepted = 0;  // draft tokens verified, and of those accepted
  };

  // Handler side: blocks until more than `seen` tokens exist or the job is done, or until `timeout_ms`
  // passes (< 0: no timeout).
  Snapshot wait(size_t seen, int timeout_ms = -1);
  // Handler side: blocks until the job is done.
  Snapshot wait_done();
  // Handler side: asks the scheduler to stop this job at its next step (it finishes with kCancelled).
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

  // Scheduler side.
  void start(int64_t cached_tokens);
  void push(int32_t token);
  void push(PickedToken token);  // with its log probabilities
  // Before finish: what speculative decoding did for this job.
  void set_draft(int64_t drafted, int64_t accepted);
  void finish(StopReason reason);
  void fail(const std::string& message);

 private:
  mutable std::mutex m_;
  std::condition_variable cv_;
  Snapshot s_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace g4
