#include "base/progress.h"

#include <unistd.h>

#include <cstdio>

namespace g4 {

Progress::Progress(std::string label, uint64_t total, std::string unit, bool enabled)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), tty_(::isatty(2) != 0), enabled_(enabled) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() {
  if (!finished_ && tty_ && enabled_ && done_ > 0) std::fputc('\n', stderr);
}

std::string Progress::amount(double v, const std::string& unit) {
  char buf[64];
  if (unit != "B") {
    std::snprintf(buf, sizeof buf, "%.0f %s", v, unit.c_str());
    return buf;
  }
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return buf;
}

void Progress::add(uint64_t n) {
  done_ += n;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since >= (tty_ ? 0.25 : 10.0)) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  done_ = total_;
  draw(true);
  finished_ = true;
}

void Progress::draw(bool final) {
  if (!enabled_) return;
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double frac = total_ ? double(done_) / double(total_) : 1.0;
  const double rate = el > 0 ? double(done_) / el : 0;
  char eta[32] = "--:--";
  if (final) {
    std::snprintf(eta, sizeof eta, "%dm%02ds", int(el) / 60, int(el) % 60);
  } else if (rate > 0) {
    const int s = int(double(total_ - done_) / rate);
    std::snprintf(eta, sizeof eta, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
  }
  std::string bar(30, ' ');
  for (int i = 0; i < int(frac * 30); ++i) bar[size_t(i)] = '#';
  std::fprintf(stderr, "%s%s [%s] %3.0f%% %s / %s  %s/s  %s %s%s", tty_ ? "\r" : "", label_.c_str(), bar.c_str(),
               frac * 100, amount(double(done_), unit_).c_str(), amount(double(total_), unit_).c_str(),
               amount(rate, unit_).c_str(), final ? "in" : "ETA", eta, (final || !tty_) ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace g4
