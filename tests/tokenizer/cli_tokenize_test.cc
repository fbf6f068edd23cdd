// g4 tokenize / g4 detokenize through the real binary: output format, --bos, --json, and one-line errors.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>

#include "test_tokenizer.h"
#include "util/flag_error.h"
#include "util/run_g4.h"

namespace g4 {
namespace {

using testing_util::G4Result;
using testing_util::run_g4;

// The text g4 writes to standard output, checking that nothing went to standard error.
std::string out_of(const std::string& args) {
  const G4Result r = run_g4(args);
  EXPECT_EQ(r.status, 0) << args << " -> " << r.err;
  EXPECT_EQ(r.err, "") << args;
  return r.out;
}

TEST(CliTokenize, EncodeDecodeAndErrors) {
  ASSERT_NE(test::gemma3_tokenizer(), nullptr);
  const std::string tok = "--tokenizer '" + test::gemma3_tokenizer_path() + "'";
  EXPECT_EQ(out_of("tokenize " + tok + " --text 'Hello world'"), "9259 1902\n");
  EXPECT_EQ(out_of("tokenize " + tok + " --text 'Hello world' --json --bos"), "[2,9259,1902]\n");
  EXPECT_EQ(out_of("tokenize " + tok + " --text '' --json"), "[]\n");
  const std::string file = testing::TempDir() + "g4_cli_text.txt";
  std::ofstream(file) << "Hello world";
  EXPECT_EQ(out_of("tokenize " + tok + " --text-file '" + file + "'"), "9259 1902\n");
  EXPECT_EQ(out_of("detokenize " + tok + " --ids 2,9259,1902"), "<bos>Hello world\n");
  EXPECT_EQ(out_of("detokenize " + tok + " --ids 2,9259,1902 --skip-special"), "Hello world\n");

  const std::vector<std::string> bad_args = {"tokenize " + tok, "tokenize --text hi", "tokenize " + tok + " --text a --text-file b",
                                "tokenize --tokenizer /nonexistent.json --text hi", "tokenize " + tok + " --text-file /nonexistent",
                                "detokenize " + tok + " --ids 1,x", "detokenize " + tok + " --ids 99999999"};
  for (const std::string& bad : bad_args) testing_util::expect_flag_error(bad, "g4: error: ");
}

}  // namespace
}  // namespace g4
