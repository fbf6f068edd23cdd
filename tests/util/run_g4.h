// Runs the g4 binary for a CLI test with arguments (shell-quoted by the caller) and optional standard
// input, and returns its exit status, standard output and standard error separately.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "util/run_command.h"

namespace g4::testing_util {

struct G4Result {
  int status = -1;
  std::string out, err;
};

inline G4Result run_g4(const std::string& args, const std::string& stdin_text = "") {
  char errfile[] = "/tmp/g4-cli-err-XXXXXX";
  char infile[] = "/tmp/g4-cli-in-XXXXXX";
  const int efd = mkstemp(errfile);
  const int ifd = mkstemp(infile);
  G4Result r;
  if (efd < 0 || ifd < 0) return r;
  close(efd);
  const bool wrote = ::write(ifd, stdin_text.data(), stdin_text.size()) == ssize_t(stdin_text.size());
  close(ifd);
  if (wrote) {
    const CommandResult c =
        run_command(std::string(G4_BINARY) + " " + args + " <" + infile + " 2>" + errfile);
    r.status = c.status;
    r.out = c.out;
    if (FILE* e = std::fopen(errfile, "rb")) {
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, e)) > 0) r.err.append(buf, n);
      std::fclose(e);
    }
  }
  std::remove(errfile);
  std::remove(infile);
  return r;
}

}  // namespace g4::testing_util
