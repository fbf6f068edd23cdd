#include "server/metrics.h"

#include <cstdio>

namespace g4 {

namespace {

void add(std::string& out, const char* name, const char* type, const char* help, double value) {
  char v[64];
  std::snprintf(v, sizeof v, "%.17g", value);
  out += std::string("# HELP g4_") + name + " " + help + "\n# TYPE g4_" + name + " " + type + "\ng4_" + name + " " + v + "\n";
}

}  // namespace

std::string metrics_text(const ServerStats& s, const Scheduler::Load& l) {
  std::string o;
  add(o, "requests_total", "counter", "Completion requests received.", double(s.requests.load()));
  add(o, "requests_errors_total", "counter", "Requests answered with an error status (503s included).", double(s.errors.load()));
  add(o, "requests_rejected_total", "counter", "Requests refused with 503 because the queue was full.", double(s.rejected.load()));
  add(o, "requests_cancelled_total", "counter", "Generations stopped because the client left.", double(s.cancelled.load()));
  add(o, "requests_finished_total", "counter", "Generations that ran to their end.", double(s.finished.load()));
  add(o, "prompt_tokens_total", "counter", "Prompt tokens of the requests that started.", double(s.prompt_tokens.load()));
  add(o, "prompt_tokens_cached_total", "counter", "Prompt tokens reused from a slot's cache.", double(s.cached_tokens.load()));
  add(o, "prompt_cache_hits_total", "counter", "Requests that reused at least one cached prompt token.", double(s.cache_hits.load()));
  add(o, "tokens_generated_total", "counter", "Tokens generated.", double(s.tokens.load()));
  add(o, "draft_tokens_total", "counter", "Speculative decoding: drafted tokens verified.", double(s.draft_tokens.load()));
  add(o, "draft_accepted_tokens_total", "counter", "Speculative decoding: drafted tokens accepted.", double(s.draft_accepted.load()));
  add(o, "steps_total", "counter", "Scheduler steps run (one batched forward each).", double(s.steps.load()));
  add(o, "step_forward_seconds_total", "counter", "Time in the steps' forward passes (token choice included).",
      double(s.forward_ns.load()) * 1e-9);
  add(o, "step_seconds_total", "counter", "Time in the steps, forward and host bookkeeping together.",
      double(s.step_ns.load()) * 1e-9);
  add(o, "queue_length", "gauge", "Requests waiting for a slot.", double(l.queued));
  add(o, "slots_busy", "gauge", "Slots generating or reading a prompt.", double(l.busy));
  add(o, "slots_total", "gauge", "Slots (--parallel).", double(l.slots));
  add(o, "kv_cache_used_positions", "gauge", "KV cache positions held, all slots together.", double(l.kv_used));
  add(o, "kv_cache_capacity_positions", "gauge", "KV cache positions, all slots together.", double(l.kv_capacity));
  add(o, "kv_cache_usage_ratio", "gauge", "Used over capacity.", l.kv_capacity > 0 ? double(l.kv_used) / double(l.kv_capacity) : 0.0);
  return o;
}

}  // namespace g4
