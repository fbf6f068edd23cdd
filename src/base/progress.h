// A progress bar on stderr for long passes (quantize, synth): fraction, amount, rate and ETA, redrawn
// at most 4 times a second on a terminal; when stderr is not a terminal, one line every 10 seconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace g4 {

class Progress {
 public:
  // total: units of work (bytes when unit == "B", which prints KB/MB/GB).
  Progress(std::string label, uint64_t total, std::string unit = "B", bool enabled = true);
  ~Progress();
  void add(uint64_t n);
  void finish();  // prints the final line (elapsed time and mean rate)

  // "1.50 GB", "12.0 MB" (unit B) or "1234 tensors".
  static std::string amount(double v, const std::string& unit);

 private:
  void draw(bool final);

  std::string label_, unit_;
  uint64_t total_, done_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool tty_, enabled_, finished_ = false;
};

}  // namespace g4
