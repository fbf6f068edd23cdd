// g4 tokenize / g4 detokenize through the real binary: output format, --bos, --json, and one-line errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>

#include "test_tokenizer.h"
#include "util/run_command.h"

namespace g4 {
namespace {

testing_util::CommandResult run(const std::string& args) {
  return testing_util::run_command(std::string(G4_BINARY) + " " + args + " 2>&1");
}

TEST(CliTokenize, EncodeDecodeAndErrors) {
  ASSERT_NE(test::gemma3_tokenizer(), nullptr);
  const std::string tok = "--tokenizer '" + test::gemma3_tokenizer_path() + "'";
  EXPECT_EQ(run("tokenize " + tok + " --text 'Hello world'").out, "9259 1902\n");
  EXPECT_EQ(run("tokenize " + tok + " --text 'Hello world' --json --bos").out, "[2,9259,1902]\n");
  EXPECT_EQ(run("tokenize " + tok + " --text '' --json").out, "[]\n");
  const std::string file = testing::TempDir() + "g4_cli_text.txt";
  std::ofstream(file) << "Hello world";
  EXPECT_EQ(run("tokenize " + tok + " --text-file '" + file + "'").out, "9259 1902\n");
  EXPECT_EQ(run("detokenize " + tok + " --ids 2,9259,1902").out, "<bos>Hello world\n");
  EXPECT_EQ(run("detokenize " + tok + " --ids 2,9259,1902 --skip-special").out, "Hello world\n");

  const std::vector<std::string> bad_args = {"tokenize " + tok, "tokenize --text hi", "tokenize " + tok + " --text a --text-file b",
                                "tokenize --tokenizer /nonexistent.json --text hi", "tokenize " + tok + " --text-file /nonexistent",
                                "detokenize " + tok + " --ids 1,x", "detokenize " + tok + " --ids 99999999"};
  for (const std::string& bad : bad_args) {
    const testing_util::CommandResult r = run(bad);
    EXPECT_NE(r.status, 0) << bad;
    EXPECT_EQ(r.out.rfind("g4: error: ", 0), 0u) << bad << " -> " << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << bad << " -> " << r.out;
  }
}

}  // namespace
}  // namespace g4
