#include "server/job_channel.h"

#include <chrono>

namespace g4 {

JobChannel::Snapshot JobChannel::wait(size_t seen, int timeout_ms) {
  std::unique_lock<std::mutex> lock(m_);
  auto ready = [&] { return s_.done || s_.tokens.size() > seen; };
  if (timeout_ms < 0) cv_.wait(lock, ready);
  else cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), ready);
  return s_;
}

JobChannel::Snapshot JobChannel::wait_done() {
  std::unique_lock<std::mutex> lock(m_);
  cv_.wait(lock, [&] { return s_.done; });
  return s_;
}

void JobChannel::start(int64_t cached_tokens) {
  std::lock_guard<std::mutex> lock(m_);
  s_.cached_tokens = cached_tokens;
}

void JobChannel::push(int32_t token) {
  {
    std::lock_guard<std::mutex> lock(m_);
    s_.tokens.push_back(token);
  }
  cv_.notify_all();
}

void JobChannel::push(PickedToken token) {
  {
    std::lock_guard<std::mutex> lock(m_);
    s_.tokens.push_back(token.id);
    s_.logprobs.push_back(std::move(token));
  }
  cv_.notify_all();
}

void JobChannel::set_draft(int64_t drafted, int64_t accepted) {
  std::lock_guard<std::mutex> lock(m_);
  s_.drafting = true;
  s_.drafted = drafted;
  s_.accepted = accepted;
}

void JobChannel::finish(StopReason reason) {
  {
    std::lock_guard<std::mutex> lock(m_);
    s_.done = true;
    s_.reason = reason;
  }
  cv_.notify_all();
}

void JobChannel::fail(const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(m_);
    s_.done = true;
    s_.error = message.empty() ? "generation failed" : message;
  }
  cv_.notify_all();
}

}  // namespace g4
