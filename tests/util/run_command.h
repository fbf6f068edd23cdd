// Runs a shell command line for a test (the caller adds any redirections, e.g. "2>&1") and returns its
// exit status and everything it wrote to its standard output.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace g4::testing_util {

struct CommandResult {
  int status = -1;  // the exit code; -1 when the command could not start or did not exit normally
  std::string out;
};

inline CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace g4::testing_util
