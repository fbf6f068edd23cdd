// g4 chat on a pseudo-terminal: line editing is on (the up arrow recalls the previous message, which plain
// line reading would send as escape bytes), and Ctrl-C at the prompt leaves with status 0.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "util/paths.h"

namespace g4 {
namespace {

using testing_util::kTinyKjvModel;

struct Pty {
  int fd = -1;
  pid_t pid = -1;
  std::string seen;

  // Reads until `want` has appeared after byte `from`, or the timeout.
  bool wait_for(const std::string& want, size_t from, int seconds = 30) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (seen.find(want, from) == std::string::npos) {
      if (std::chrono::steady_clock::now() > end) return false;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) return seen.find(want, from) != std::string::npos;
      seen.append(buf, size_t(n));
    }
    return true;
  }
  // Waits until the line editor has the terminal (canonical mode off; tcgetattr on the master reads the
  // slave's settings), so that typed keys reach it and are not echoed by the terminal driver.
  bool editing() {
    for (int i = 0; i < 300; ++i) {
      termios tio{};
      if (tcgetattr(fd, &tio) == 0 && !(tio.c_lflag & ICANON)) return true;
      usleep(10000);
    }
    return false;
  }
  void type(const std::string& s) {
    ASSERT_TRUE(editing()) << seen;
    ASSERT_EQ(write(fd, s.data(), s.size()), ssize_t(s.size()));
  }
};

TEST(ChatTerminal, UpArrowRecallsHistoryAndCtrlCLeaves) {
#ifndef G4_HAVE_LIBEDIT
  GTEST_SKIP() << "g4 was built without libedit (apt-get install libedit-dev)";
#endif
  Pty t;
  t.pid = forkpty(&t.fd, nullptr, nullptr, nullptr);
  ASSERT_GE(t.pid, 0);
  if (t.pid == 0) {
    execl(G4_BINARY, G4_BINARY, "chat", "-m", kTinyKjvModel.c_str(), "--temp", "0", "-n", "6", "-q", static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_TRUE(t.wait_for("> ", 0)) << t.seen;
  size_t mark = t.seen.size();
  t.type("In the beginning\r");
  ASSERT_TRUE(t.wait_for("\n> ", mark)) << t.seen;  // answered, prompting again
  mark = t.seen.size();
  t.type("\x1b[A");  // up arrow: the line editor puts the previous message back on the line
  EXPECT_TRUE(t.wait_for("In the beginning", mark, 10)) << t.seen;
  t.type("\r");
  ASSERT_TRUE(t.wait_for("\n> ", mark)) << t.seen;
  t.type("\x03");  // Ctrl-C at the prompt
  int st = 0;
  for (int i = 0; i < 100 && waitpid(t.pid, &st, WNOHANG) == 0; ++i) usleep(100000);
  if (waitpid(t.pid, &st, WNOHANG) == 0) {
    kill(t.pid, SIGKILL);
    waitpid(t.pid, &st, 0);
    ADD_FAILURE() << "g4 chat did not leave on Ctrl-C at the prompt\n" << t.seen;
  } else {
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  }
  close(t.fd);
  // Two answers, and no raw escape bytes sent as a message.
  EXPECT_EQ(t.seen.find("^[[A"), std::string::npos) << t.seen;
}

}  // namespace
}  // namespace g4
