// The g4 command line's own surface: every flag error is one "g4: error: ..." line and exit status 1,
// --help and g4 help exit 0, g4 --version names the version, commit, backends and CPU kernels.
#include <gtest/gtest.h>

#include <string>

#include "util/flag_error.h"
#include "util/run_g4.h"
#include "util/paths.h"

namespace g4 {
namespace {

using testing_util::expect_flag_error;
using testing_util::run_g4;
using testing_util::kTinyKjvModel;

TEST(CliFlags, EveryFlagErrorIsOneLineAndExitOne) {
  const std::string run = "run -m " + kTinyKjvModel + " -p hi ";
  expect_flag_error(run + "--temp abc", "'abc' is not a number");
  expect_flag_error(run + "--temp nan", "out of range");
  expect_flag_error(run + "-c 5", "'5' is out of range (16 to 1048576)");
  expect_flag_error(run + "-n 1.5", "'1.5' is not a whole number");
  expect_flag_error(run + "-t many", "--threads");
  // numeric flags whose ranges are checked later, or not at all, still say what is wrong with the value
  expect_flag_error(run + "--seed x", "--seed: 'x' is not a whole number");
  expect_flag_error(run + "--seed -2", "'-2' is out of range (-1 to ");
  expect_flag_error("bench -m " + kTinyKjvModel + " -d 1,deep", "--depth: '1,deep' is not a number");
  expect_flag_error("synth --preset tiny -o /nonexistent/x --group-size big", "--group-size: 'big' is not a number");
  expect_flag_error(run + "--frobnicate", "--frobnicate");
  expect_flag_error(run + "--temp", "--temp: needs a value");
  expect_flag_error(run + "--quantize int3", "int3");
  expect_flag_error("run -p hi", "--model");
  expect_flag_error("run -m " + kTinyKjvModel, "give -p TEXT or -f FILE");
  expect_flag_error("run -m " + kTinyKjvModel + " -f /dev/null", "the prompt file /dev/null is empty");
  expect_flag_error("run -m " + kTinyKjvModel + " -f -", "the prompt on standard input is empty");
  expect_flag_error("chat -m " + kTinyKjvModel + " --top-p 2", "out of range");
  expect_flag_error("serve -m " + kTinyKjvModel + " --port 99999", "out of range");
  expect_flag_error("bench -m " + kTinyKjvModel + " -r zero", "not a whole number");
  expect_flag_error("bench -m " + kTinyKjvModel + " -p 0 -n 0", "nothing to measure");
  expect_flag_error("logits --tokens 2", "--model");
  expect_flag_error("generate --model x --tokens 2 --out y --max-new-tokens 0", "out of range");
  expect_flag_error("frobnicate", "frobnicate");
  expect_flag_error("", "command");
  expect_flag_error("help nosuchcommand", "unknown command 'nosuchcommand'");
}

TEST(CliFlags, HelpExitsZero) {
  for (const std::string args : {"--help", "run --help", "chat --help", "serve -h", "help", "help run"}) {
    const testing_util::G4Result o = run_g4(args);
    EXPECT_EQ(o.status, 0) << args << "\n" << o.err;
    EXPECT_NE(o.out.find("Usage: g4"), std::string::npos) << args << "\n" << o.out;
    EXPECT_EQ(o.err, "") << args;
  }
  EXPECT_NE(run_g4("help run").out.find("--threads"), std::string::npos);
  EXPECT_NE(run_g4("help").out.find("perplexity"), std::string::npos);
}

TEST(CliFlags, VersionNamesBuildBackendsAndCpuKernels) {
  const testing_util::G4Result o = run_g4("--version");
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out.rfind("g4 ", 0), 0u) << o.out;
  EXPECT_NE(o.out.find("(git "), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("backends built: ref cpu"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("default backend: "), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("cpu kernels: "), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("generic"), std::string::npos) << o.out;  // every CPU runs the generic table
}

}  // namespace
}  // namespace g4
