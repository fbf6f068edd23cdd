// g4 tokenize / g4 detokenize through the real binary: output format, --bos, --json, and one-line errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>

#include "test_tokenizer.h"

namespace g4 {
namespace {

struct RunResult {
  int rc;
  std::string out;
};

RunResult run(const std::string& args) {
  const std::string cmd = std::string(G4_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  RunResult r{-1, ""};
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
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
    const RunResult r = run(bad);
    EXPECT_NE(r.rc, 0) << bad;
    EXPECT_EQ(r.out.rfind("g4: error: ", 0), 0u) << bad << " -> " << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << bad << " -> " << r.out;
  }
}

}  // namespace
}  // namespace g4
