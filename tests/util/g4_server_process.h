// Starts the g4 binary's `serve` on port 0 for a test, reads the bound port from its start-up line and
// stops it (SIGTERM) when the object dies. Loopback only: the server's default host is 127.0.0.1.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace g4::testing_util {

// A running `g4 serve` on a free loopback port; its stderr is drained by a thread so the server never blocks on a full pipe.
class G4ServerProcess {
 public:
  explicit G4ServerProcess(const std::vector<std::string>& serve_args) {
    std::vector<std::string> args = {G4_BINARY, "serve", "--port", "0"};
    args.insert(args.end(), serve_args.begin(), serve_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    if (posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) != 0) throw std::runtime_error("spawn");
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    fd_ = fds[0];
    char c;
    while (port_ == 0 && read(fd_, &c, 1) == 1) {  // "g4 serve: NAME on http://127.0.0.1:PORT (...)"
      log_ += c;
      if (c != '\n' && c != '\r') continue;
      const size_t at = log_.find("http://127.0.0.1:");
      if (at != std::string::npos) port_ = std::atoi(log_.c_str() + at + 17);
    }
    drain_ = std::thread([this] {
      char buf[4096];
      ssize_t n;
      while ((n = read(fd_, buf, sizeof buf)) > 0) {
        std::lock_guard<std::mutex> g(log_mu_);
        log_.append(buf, size_t(n));
      }
    });
  }
  ~G4ServerProcess() {
    kill(pid_, SIGTERM);
    kill(pid_, SIGCONT);  // a test may have stopped it (SIGSTOP); a stopped process never handles SIGTERM
    int st = 0;
    waitpid(pid_, &st, 0);
    drain_.join();
    close(fd_);
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool alive() const { return kill(pid_, 0) == 0; }
  std::string log() {
    std::lock_guard<std::mutex> g(log_mu_);
    return log_;
  }
  int64_t rss_bytes() const {  // VmRSS of the server process
    std::ifstream f("/proc/" + std::to_string(pid_) + "/status");
    std::string key;
    while (f >> key) {
      if (key == "VmRSS:") {
        int64_t kb = 0;
        f >> kb;
        return kb * 1024;
      }
      std::getline(f, key);
    }
    return -1;
  }

 private:
  pid_t pid_ = 0;
  int fd_ = -1;
  int port_ = 0;
  std::string log_;
  std::mutex log_mu_;
  std::thread drain_;
};

}  // namespace g4::testing_util
