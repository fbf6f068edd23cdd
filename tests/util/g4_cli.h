// Runs the g4 binary with shell-quoted args (and optional stdin text), capturing its exit status, its
// standard output and its standard error separately.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include "util/run_command.h"
#include "util/temp_dir.h"

namespace g4::testing_util {

struct G4Output {
  int status = -1;
  std::string out, err;
};

inline G4Output run_g4_cli(const std::string& args, const std::string& stdin_text = "") {
  TempDir d;
  d.write("stdin", stdin_text);
  const CommandResult r = run_command(std::string(G4_BINARY) + " " + args + " <" + d.file("stdin") + " 2>" + d.file("stderr"));
  G4Output o;
  o.status = r.status;
  o.out = r.out;
  std::ifstream f(d.file("stderr"), std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  o.err = ss.str();
  return o;
}

}  // namespace g4::testing_util
