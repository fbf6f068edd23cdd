// What g4 run / chat report about themselves: the backend and thread count they used (the default
// backend is the best one built, never the scalar ref oracle), -t honoured, one warning for a context
// beyond the trained one, and status lines that never glue onto the streamed reply when stdout and
// stderr share a pipe.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "util/run_g4.h"
#include "util/run_command.h"
#include "util/paths.h"

namespace g4 {
namespace {

using testing_util::G4Result;
using testing_util::run_g4;
using testing_util::kTinyKjvModel;

nlohmann::json run_json(const std::string& flags) {
  const G4Result o = run_g4("run -m " + kTinyKjvModel + " -p hi -n 4 --temp 0 --json " + flags);
  EXPECT_EQ(o.status, 0) << o.err;
  return nlohmann::json::parse(o.out);
}

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

TEST(RunOutput, JsonNamesBackendAndThreads) {
  const nlohmann::json j = run_json("");
  ASSERT_TRUE(j.contains("backend")) << j.dump();
  ASSERT_TRUE(j.contains("threads")) << j.dump();
  // The default is the best backend built and usable: cuda with a GPU, else cpu; never ref.
  EXPECT_TRUE(j["backend"] == "cpu" || j["backend"] == "cuda") << j.dump();
  EXPECT_GE(j["threads"].get<int>(), 1);
  EXPECT_EQ(run_json("--backend ref")["backend"], "ref");
  EXPECT_EQ(run_json("--backend ref")["threads"], 1);

  // The load line (the timing line on stderr) names them too.
  const G4Result o = run_g4("run -m " + kTinyKjvModel + " -p hi -n 2 --backend cpu -t 2");
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.err.find("on cpu, 2 threads"), std::string::npos) << o.err;
}

TEST(RunOutput, ThreadsFlagSetsTheCpuThreadCount) {
  EXPECT_EQ(run_json("--backend cpu -t 1")["threads"], 1);
  EXPECT_EQ(run_json("--backend cpu -t 2")["threads"], 2);
  EXPECT_EQ(run_json("--backend cpu --threads 3")["threads"], 3);
  // Same answer whatever the thread count.
  EXPECT_EQ(run_json("--backend cpu -t 1")["tokens"], run_json("--backend cpu -t 3")["tokens"]);
  // bench agrees: same default backend, -t sets the threads it reports.
  const G4Result b = run_g4("bench -m " + kTinyKjvModel + " -p 4 -n 2 -r 1 -t 2 --json");
  ASSERT_EQ(b.status, 0) << b.err;
  const nlohmann::json bj = nlohmann::json::parse(b.out);
  EXPECT_EQ(bj["threads"], 2) << b.out;
  EXPECT_EQ(bj["ctx"], 4) << b.out;  // what the tests need: -p 4
  const G4Result bc = run_g4("bench -m " + kTinyKjvModel + " -p 4 -n 2 -r 1 -t 1 -c 300 --json");
  ASSERT_EQ(bc.status, 0) << bc.err;
  EXPECT_EQ(nlohmann::json::parse(bc.out)["ctx"], 300) << bc.out;
  EXPECT_EQ(bj["backend"], run_json("")["backend"]) << b.out;
  // G4_THREADS still applies when -t is not given; -t wins over it.
  const std::string env = "env G4_THREADS=3 ";
  const auto r = testing_util::run_command(env + G4_BINARY + " run -m " + kTinyKjvModel + " -p hi -n 2 --json --backend cpu 2>/dev/null");
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out)["threads"], 3);
  const auto r2 = testing_util::run_command(env + G4_BINARY + " run -m " + kTinyKjvModel + " -p hi -n 2 --json --backend cpu -t 1 2>/dev/null");
  ASSERT_EQ(r2.status, 0);
  EXPECT_EQ(nlohmann::json::parse(r2.out)["threads"], 1);
}

TEST(RunOutput, ChatAndServeHonourThreads) {
  const G4Result c = run_g4("chat -m " + kTinyKjvModel + " --backend cpu -t 3", "/exit\n");
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_NE(c.err.find("chat with tiny-kjv on cpu, 3 threads"), std::string::npos) << c.err;
  // serve prints its banner once listening; SIGINT after 3 s stops it cleanly.
  const auto s = testing_util::run_command("timeout --preserve-status -s INT 3 " + std::string(G4_BINARY) + " serve -m " + kTinyKjvModel +
                                           " --port 0 --backend cpu -t 3 2>&1");
  EXPECT_EQ(s.status, 0) << s.out;
  EXPECT_NE(s.out.find("g4 serve: tiny-kjv (cpu, 3 threads) on http://127.0.0.1:"), std::string::npos) << s.out;
}

TEST(RunOutput, ContextBeyondTrainingWarnsOnce) {
  // tiny-kjv was trained with max_position_embeddings 4096.
  G4Result o = run_g4("run -m " + kTinyKjvModel + " -p hi -n 2 -c 5000");
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(count(o.err, "g4: warning: "), 1u) << o.err;
  EXPECT_NE(o.err.find("--ctx-size 5000"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("4096"), std::string::npos) << o.err;

  o = run_g4("chat -m " + kTinyKjvModel + " -n 4 --temp 0 -c 5000", "hi\nand then\n/exit\n");
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(count(o.err, "g4: warning: "), 1u) << o.err;

  o = run_g4("run -m " + kTinyKjvModel + " -p hi -n 2 -c 4096");
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(count(o.err, "warning"), 0u) << o.err;
}

TEST(RunOutput, StatusLinesStartOnTheirOwnLineInOneStream) {
  const G4Result q = run_g4("run -m " + kTinyKjvModel + " -p 'In the beginning' --temp 0 -n 12 -q");
  ASSERT_EQ(q.status, 0) << q.err;
  const std::string reply = q.out;  // the text and its closing newline
  ASSERT_GT(reply.size(), 1u);

  const auto both = testing_util::run_command(std::string(G4_BINARY) + " run -m " + kTinyKjvModel +
                                              " -p 'In the beginning' --temp 0 -n 12 2>&1");
  ASSERT_EQ(both.status, 0) << both.out;
  const size_t at = both.out.find(reply);
  ASSERT_NE(at, std::string::npos) << both.out;
  const size_t stats = both.out.find("load ", at);
  ASSERT_NE(stats, std::string::npos) << both.out;
  EXPECT_EQ(stats, at + reply.size()) << "the timing line must follow the reply's newline:\n" << both.out;

  // chat: every "[load ...]" turn line starts a line of its own.
  const auto chat = testing_util::run_command("printf 'In the beginning\\nAnd then\\n/exit\\n' | " + std::string(G4_BINARY) +
                                              " chat -m " + kTinyKjvModel + " --temp 0 -n 8 2>&1");
  ASSERT_EQ(chat.status, 0) << chat.out;
  ASSERT_EQ(count(chat.out, "[load "), 2u) << chat.out;
  for (size_t p = chat.out.find("[load "); p != std::string::npos; p = chat.out.find("[load ", p + 1))
    EXPECT_EQ(chat.out[p - 1], '\n') << chat.out;
}

}  // namespace
}  // namespace g4
