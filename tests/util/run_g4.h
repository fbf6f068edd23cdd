// Runs the g4 binary for a CLI test with arguments (shell-quoted by the caller) and optional standard
// input, and returns its exit status, standard output and standard error separately.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include "util/run_command.h"
#include "util/temp_dir.h"

namespace g4::testing_util {

struct G4Result {
  int status = -1;
  std::string out, err;
};

inline G4Result run_g4(const std::string& args, const std::string& stdin_text = "") {
  TempDir d;
  d.write("stdin", stdin_text);
  const CommandResult c = run_command(std::string(G4_BINARY) + " " + args + " <" + d.file("stdin") + " 2>" + d.file("stderr"));
  G4Result r;
  r.status = c.status;
  r.out = c.out;
  std::ifstream f(d.file("stderr"), std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  r.err = ss.str();
  return r;
}

}  // namespace g4::testing_util
