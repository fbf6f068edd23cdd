// g4 run / chat / bench (and serve, for its flag errors) with speculative decoding flags: --draft-ngram gives plain greedy's text and run
// --json reports tokens drafted and accepted per position; so does -md with a synthesized assistant
// (g4 synth --assistant-for); a missing assistant, two drafters and inconsistent draft lengths are one
// clear error.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "util/flag_error.h"
#include "util/run_g4.h"
#include "util/paths.h"
#include "util/temp_dir.h"

namespace g4 {
namespace {

using testing_util::expect_flag_error;
using testing_util::run_g4;
using testing_util::kTinyKjvModel;

TEST(DraftCli, BadDraftFlagsAreOneClearError) {
  // serve: on an address it cannot bind, so a flag error that went unnoticed fails instead of serving.
  for (const std::string cmd : {"run -p hi", "chat", "bench", "serve --host 256.0.0.1"}) {
    const std::string base = cmd.substr(0, cmd.find(' ')) + " -m " + kTinyKjvModel + cmd.substr(std::min(cmd.size(), cmd.find(' '))) + " ";
    expect_flag_error(base + "-md somewhere", "assistant drafter somewhere: not a directory");
    expect_flag_error(base + "--model-draft somewhere", "assistant drafter somewhere: not a directory");
    expect_flag_error(base + "-md somewhere --draft-ngram", "--model-draft and --draft-ngram: choose one drafter");
    expect_flag_error(base + "--draft-max 3", "need a drafter");
    expect_flag_error(base + "--draft-ngram --draft-max 2 --draft-min 3", "--draft-min 3 is larger than --draft-max 2");
    expect_flag_error(base + "--draft-ngram --draft-max x", "not a whole number");
  }
}

TEST(DraftCli, RunJsonReportsDraftsAndMatchesPlain) {
  const std::string run = "run -m " + kTinyKjvModel + " --backend cpu -t 1 --raw --temp 0 -n 400 --json -p "
                          "'And God said, Let there be light: and there was light. And God said, Let there be light: "
                          "and there was light. And God said'";
  const testing_util::G4Result plain = run_g4(run), spec = run_g4(run + " --draft-ngram --draft-max 3");
  ASSERT_EQ(plain.status, 0) << plain.err;
  ASSERT_EQ(spec.status, 0) << spec.err;
  const nlohmann::json p = nlohmann::json::parse(plain.out), s = nlohmann::json::parse(spec.out);
  EXPECT_EQ(s["tokens"], p["tokens"]);
  EXPECT_FALSE(p.contains("draft"));
  const nlohmann::json& d = s["draft"];
  EXPECT_EQ(d["draft_max"], 3);
  ASSERT_EQ(d["accepted_at"].size(), 3u);
  ASSERT_EQ(d["acceptance_at"].size(), 3u);
  EXPECT_GT(d["drafted"].get<int>(), 0);
  EXPECT_GT(d["accepted"].get<int>(), 0);
  EXPECT_EQ(d["recomputed"], 0);
  int acc = 0;
  for (const auto& a : d["accepted_at"]) acc += a.get<int>();
  EXPECT_EQ(acc, d["accepted"].get<int>());
}

TEST(DraftCli, RunWithASynthesizedAssistantMatchesPlain) {
  testing_util::TempDir d;
  const testing_util::G4Result sy = run_g4("synth --assistant-for " + kTinyKjvModel + " -o " + d.file("asst"));
  ASSERT_EQ(sy.status, 0) << sy.err;
  const std::string run = "run -m " + kTinyKjvModel + " --backend cpu -t 1 --raw --temp 0 -n 60 --json -p 'In the beginning'";
  const testing_util::G4Result plain = run_g4(run), spec = run_g4(run + " -md " + d.file("asst") + " --draft-max 3");
  ASSERT_EQ(plain.status, 0) << plain.err;
  ASSERT_EQ(spec.status, 0) << spec.err;
  const nlohmann::json p = nlohmann::json::parse(plain.out), s = nlohmann::json::parse(spec.out);
  EXPECT_EQ(s["tokens"], p["tokens"]);
  ASSERT_TRUE(s.contains("draft"));
  EXPECT_EQ(s["draft"]["draft_max"], 3);
}

// bench --verify-cost times verifies of n tokens against a one-token step; --oracle-draft runs greedy with a
// drafter that proposes the target's own continuation: every drafted token is accepted, the tokens are plain
// greedy's, and every verify checks k tokens.
TEST(DraftCli, BenchVerifyCostAndOracle) {
  const testing_util::G4Result o =
      run_g4("bench -m " + kTinyKjvModel + " --backend cpu -t 1 -p 8 -n 17 -r 1 --json --verify-cost 1,3 --oracle-draft 4");
  ASSERT_EQ(o.status, 0) << o.err;
  int verify_rows = 0, oracle_rows = 0;
  size_t at = 0;
  for (size_t nl; (nl = o.out.find('\n', at)) != std::string::npos; at = nl + 1) {
    const nlohmann::json j = nlohmann::json::parse(o.out.substr(at, nl - at));
    if (j.value("test", "") == "verify") {
      ++verify_rows;
      EXPECT_GT(j["ms"].get<double>(), 0) << j;
      if (j["n"] == 1) {
        EXPECT_EQ(j["ratio_to_step"].get<double>(), 1.0) << j;
      }
    } else if (j.value("test", "") == "oracle") {
      ++oracle_rows;
      EXPECT_EQ(j["k"], 4);
      EXPECT_TRUE(j["same_tokens"].get<bool>()) << j;
      const nlohmann::json& d = j["draft"];
      EXPECT_EQ(d["accepted"], d["drafted"]) << j;
      // 17 tokens: the first from the prompt, 3 verifies of 4 drafts giving 5 each, one plain step.
      EXPECT_EQ(d["drafted"], 12) << j;
      EXPECT_EQ(d["verifies"], 3) << j;
      EXPECT_EQ(d["plain_steps"], 1) << j;
    }
  }
  EXPECT_EQ(verify_rows, 2) << o.out;
  EXPECT_EQ(oracle_rows, 1) << o.out;
  expect_flag_error("bench -m " + kTinyKjvModel + " --verify-cost 0", "--verify-cost: 0 is out of range");
  expect_flag_error("bench -m " + kTinyKjvModel + " --oracle-draft 2 -n 1", "--oracle-draft needs -n");
  expect_flag_error("bench -m " + kTinyKjvModel + " -p 8 -n 4 -c 5", "--ctx-size 5 is smaller than the 8 positions the tests need");
}

}  // namespace
}  // namespace g4
