// Token ids and text in and out of the binary: detokenize takes ids as tokenize prints them (spaces) as
// well as commas; "-" reads standard input for run -f, tokenize --text-file and perplexity; perplexity
// --text-file encodes with the model's own tokenizer (checkpoint directory or GGUF).
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "util/run_g4.h"
#include "util/temp_dir.h"
#include "util/paths.h"

namespace g4 {
namespace {

using testing_util::run_g4;
using testing_util::kTinyKjvModel;
using testing_util::kKjvQ8Gguf;
const std::string kText =
    "In the beginning God created the heaven and the earth.\nAnd the earth was without form, and void; "
    "and darkness was upon the face of the deep.\n";

TEST(TokenIo, DetokenizeTakesSpacesCommasOrBoth) {
  const auto t = run_g4("tokenize -m " + kTinyKjvModel + " --bos --text 'And God said'");
  ASSERT_EQ(t.status, 0) << t.err;
  ASSERT_NE(t.out.find(' '), std::string::npos) << t.out;
  std::string ids = t.out.substr(0, t.out.size() - 1), commas = ids;
  std::replace(commas.begin(), commas.end(), ' ', ',');
  std::string mixed = commas;
  mixed.replace(mixed.find(','), 1, " ,\t");
  for (const std::string& list : {ids, commas, mixed, " " + ids + "\n"}) {
    const auto d = run_g4("detokenize -m " + kTinyKjvModel + " --ids '" + list + "'");
    EXPECT_EQ(d.status, 0) << list << ": " << d.err;
    EXPECT_EQ(d.out, "<bos>And God said\n") << list;
  }
  // The output of tokenize fed to detokenize as is.
  const auto pipe = testing_util::run_command(std::string(G4_BINARY) + " detokenize -m " + kTinyKjvModel + " --skip-special --ids \"$(" +
                                              G4_BINARY + " tokenize -m " + kTinyKjvModel + " --text 'And God said')\" 2>&1");
  EXPECT_EQ(pipe.out, "And God said\n");
  for (const std::string bad : {"2,,3", "2,", ",2", "2 x", "2;3", "-2"}) {
    const auto d = run_g4("detokenize -m " + kTinyKjvModel + " --ids '" + bad + "'");
    EXPECT_EQ(d.status, 1) << bad;
    EXPECT_EQ(d.err.rfind("g4: error: --ids: ", 0), 0u) << bad << ": " << d.err;
    EXPECT_EQ(std::count(d.err.begin(), d.err.end(), '\n'), 1) << d.err;
  }
}

TEST(TokenIo, TokenizeReadsAGgufVocabularyAndStandardInput) {
  const auto dir = run_g4("tokenize -m " + kTinyKjvModel + " --text 'In the beginning'");
  const auto gguf = run_g4("tokenize -m " + kKjvQ8Gguf + " --text 'In the beginning'");
  const auto in = run_g4("tokenize -m " + kTinyKjvModel + " -f -", "In the beginning");
  ASSERT_EQ(dir.status, 0) << dir.err;
  EXPECT_EQ(gguf.status, 0) << gguf.err;
  EXPECT_EQ(gguf.out, dir.out);
  EXPECT_EQ(in.out, dir.out);
  const auto back = run_g4("detokenize -m " + kKjvQ8Gguf + " --ids '" + dir.out + "'");
  EXPECT_EQ(back.out, "In the beginning\n") << back.err;
}

TEST(TokenIo, RunReadsThePromptFromStandardInput) {
  const auto p = run_g4("run -m " + kTinyKjvModel + " --temp 0 -n 8 --json -p 'In the beginning'");
  const auto f = run_g4("run -m " + kTinyKjvModel + " --temp 0 -n 8 --json -f -", "In the beginning");
  ASSERT_EQ(f.status, 0) << f.err;
  EXPECT_EQ(nlohmann::json::parse(f.out)["tokens"], nlohmann::json::parse(p.out)["tokens"]);
}

// The JSON line perplexity prints last.
nlohmann::json ppl_json(const testing_util::G4Result& r) {
  EXPECT_EQ(r.status, 0) << r.err;
  const size_t at = r.out.rfind("{\"scored\"");
  return at == std::string::npos ? nlohmann::json() : nlohmann::json::parse(r.out.substr(at));
}

TEST(TokenIo, PerplexityOfATextEqualsThatOfItsTokens) {
  testing_util::TempDir d;
  d.write("text.txt", kText);
  const auto toks = run_g4("tokenize -m " + kTinyKjvModel + " --text-file " + d.file("text.txt"));
  ASSERT_EQ(toks.status, 0) << toks.err;
  d.write("toks.txt", toks.out);
  const std::string m = "perplexity -m " + kTinyKjvModel + " -c 16 ";
  const auto want = ppl_json(run_g4(m + "--tokens-file " + d.file("toks.txt")));
  ASSERT_GT(want["scored"].get<int>(), 20);
  EXPECT_EQ(ppl_json(run_g4(m + "--text-file " + d.file("text.txt"))), want);
  EXPECT_EQ(ppl_json(run_g4(m + "-f -", kText)), want);
  EXPECT_EQ(ppl_json(run_g4(m + "--tokens-file -", toks.out)), want);
  // A GGUF's own vocabulary gives the same tokens, so the same count scored (the weights are Q8_0).
  const auto g = ppl_json(run_g4("perplexity -m " + kKjvQ8Gguf + " -c 16 --text-file " + d.file("text.txt")));
  EXPECT_EQ(g["scored"], want["scored"]);
  EXPECT_NEAR(g["ppl"].get<double>(), want["ppl"].get<double>(), 0.05 * want["ppl"].get<double>());

  const auto none = run_g4("perplexity -m " + kTinyKjvModel);
  EXPECT_EQ(none.status, 1);
  EXPECT_EQ(none.err, "g4: error: perplexity: give one of --tokens-file or --text-file\n");
  const auto missing = run_g4("perplexity -m " + kTinyKjvModel + " --text-file " + d.file("nope.txt"));
  EXPECT_EQ(missing.err, "g4: error: cannot read text file " + d.file("nope.txt") + "\n");
}

}  // namespace
}  // namespace g4
