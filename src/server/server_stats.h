// Counters the server keeps for its own report and for /metrics (Prometheus text). Updated from the HTTP
// threads and the scheduler thread without locks.
#pragma once

#include <atomic>
#include <cstdint>

namespace g4 {

struct ServerStats {
  std::atomic<int64_t> requests{0};        // completion requests received
  std::atomic<int64_t> errors{0};          // answered with an error status (503s included)
  std::atomic<int64_t> rejected{0};        // 503: every slot busy and the queue full
  std::atomic<int64_t> cancelled{0};       // stopped because the client left
  std::atomic<int64_t> finished{0};        // generations that ran to a stop, the token budget or the context end
  std::atomic<int64_t> tokens{0};          // tokens generated, all requests together (the server's work)
  std::atomic<int64_t> prompt_tokens{0};   // prompt tokens of the requests that started
  std::atomic<int64_t> cached_tokens{0};   // of those, reused from a slot's cache (not run again)
  std::atomic<int64_t> cache_hits{0};      // requests that reused at least one cached token
  std::atomic<int64_t> draft_tokens{0};    // speculative decoding: drafted tokens verified
  std::atomic<int64_t> draft_accepted{0};  // of those, accepted (emitted without a step of their own)
  // The scheduler's steps: how many ran, nanoseconds in the model's forward (token choice included) and in
  // the whole step (forward plus the host's bookkeeping: batch building, sampling, stop checks, hand-off).
  std::atomic<int64_t> steps{0};
  std::atomic<int64_t> forward_ns{0};
  std::atomic<int64_t> step_ns{0};
};

}  // namespace g4
