// The listening socket's accept queue must hold a burst of connections while the server is busy. With
// cpp-httplib's compiled-in backlog of 5, connections beyond the sixth were dropped or answered with SYN
// cookies under load, and clients read a reset instead of a reply (the load test failed in CI that way).
// Deterministic check: freeze the server (SIGSTOP), open a burst of non-blocking connections, and count the
// handshakes the kernel completes on its own; the kernel stops completing them once the queue is full.
// A second server on the same port must fail to bind (SO_REUSEADDR, not SO_REUSEPORT).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "util/g4_server_process.h"
#include "util/run_command.h"

namespace {

constexpr int kBurst = 64;

// Starts a non-blocking connect to 127.0.0.1:port; returns the socket (-1 on failure).
int start_connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

// True when the handshake finished within the wait (writable and no pending error).
bool connected(int fd, int wait_ms) {
  pollfd p{fd, POLLOUT, 0};
  if (poll(&p, 1, wait_ms) != 1) return false;
  int err = 0;
  socklen_t len = sizeof err;
  return getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
}

TEST(ServerAcceptQueue, FrozenServerStillCompletesABurstOfHandshakes) {
  g4::testing_util::G4ServerProcess server(
      {"-m", std::string(G4_TEST_DATA) + "/../../models/tiny-kjv", "--backend", "cpu", "-t", "1", "-c", "128"});
  ASSERT_GT(server.port(), 0) << server.log();
  // Let the accept loop start, then freeze the whole process so nothing is accepted.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_EQ(kill(server.pid(), SIGSTOP), 0);
  std::vector<int> fds;
  for (int i = 0; i < kBurst; ++i) fds.push_back(start_connect(server.port()));
  int done = 0;
  for (int fd : fds) done += fd >= 0 && connected(fd, 300) ? 1 : 0;
  for (int fd : fds)
    if (fd >= 0) close(fd);
  ASSERT_EQ(kill(server.pid(), SIGCONT), 0);
  EXPECT_EQ(done, kBurst) << "the kernel completed only " << done << " of " << kBurst
                          << " handshakes for a frozen server: the listen backlog is too small";
  EXPECT_TRUE(server.alive()) << server.log();
}

TEST(ServerAcceptQueue, SecondServerOnTheSamePortFailsClearly) {
  g4::testing_util::G4ServerProcess first(
      {"-m", std::string(G4_TEST_DATA) + "/../../models/tiny-kjv", "--backend", "cpu", "-t", "1", "-c", "128"});
  ASSERT_GT(first.port(), 0) << first.log();
  const auto r = g4::testing_util::run_command("timeout 20 " + std::string(G4_BINARY) + " serve -m " + G4_TEST_DATA +
                                               "/../../models/tiny-kjv --backend cpu -t 1 -c 128 --port " +
                                               std::to_string(first.port()) + " 2>&1");
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("cannot listen on"), std::string::npos) << r.out;
  EXPECT_TRUE(first.alive());
}

}  // namespace
