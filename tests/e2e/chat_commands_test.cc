// g4 chat's commands and input through the binary with piped standard input (plain line reading):
// /help, /clear, /save and /load (a reloaded conversation continues exactly as a fresh render of it
// would), multi-line input, and a full context that is reported while the session goes on.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "tokenizer/chat_template.h"
#include "util/run_g4.h"
#include "util/temp_dir.h"
#include "util/paths.h"

namespace g4 {
namespace {

using testing_util::run_g4;
using testing_util::kTinyKjvModel;
const std::string kChat = "chat -m " + kTinyKjvModel + " --temp 0 -n 12 -q";

// The replies of a chat transcript: the text after each "> " prompt that precedes a reply line.
std::vector<std::string> replies(const std::string& out) {
  std::vector<std::string> r;
  size_t i = 0;
  while ((i = out.find("\n> ", i)) != std::string::npos) {
    i += 3;
    const size_t e = out.find('\n', i);
    if (e == std::string::npos) break;
    if (e > i) r.push_back(out.substr(i, e - i));
  }
  return r;
}

std::vector<int> prompt_sizes(std::string err) {
  std::vector<int> v;
  std::smatch m;
  while (std::regex_search(err, m, std::regex("prompt ([0-9]+) tokens"))) {
    v.push_back(std::stoi(m[1]));
    err = m.suffix();
  }
  return v;
}

TEST(ChatCommands, HelpListsCommandsAndMultiLineInput) {
  const auto r = run_g4(kChat, "/help\n/exit\n");
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* c : {"/help", "/clear", "/save FILE", "/load FILE", "/exit", "\\", "\"\"\""})
    EXPECT_NE(r.out.find(c), std::string::npos) << c << "\n" << r.out;
  const auto bad = run_g4(kChat, "/bogus\n/exit\n");
  EXPECT_EQ(bad.status, 0);
  EXPECT_NE(bad.err.find("g4: error: unknown command /bogus"), std::string::npos) << bad.err;
}

TEST(ChatCommands, ClearStartsANewConversation) {
  const auto one = run_g4(kChat, "In the beginning\n");
  const auto r = run_g4("chat -m " + kTinyKjvModel + " --temp 0 -n 12", "In the beginning\n/clear\nIn the beginning\n");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto rep = replies(r.out);
  ASSERT_EQ(rep.size(), 2u) << r.out;
  EXPECT_EQ(rep[0], replies(one.out).at(0));
  EXPECT_EQ(rep[1], rep[0]);  // the same answer from an empty cache, not a continuation
  EXPECT_EQ(prompt_sizes(r.err), (std::vector<int>{16, 16})) << r.err;
}

TEST(ChatCommands, MultiLineInputIsOneMessage) {
  // Both forms send "In the\nbeginning" as one user turn: the same reply and prompt size as each other.
  const auto a = run_g4("chat -m " + kTinyKjvModel + " --temp 0 -n 12", "In the\\\nbeginning\n");
  const auto b = run_g4("chat -m " + kTinyKjvModel + " --temp 0 -n 12", "\"\"\"\nIn the\nbeginning\n\"\"\"\n");
  ASSERT_EQ(a.status, 0) << a.err;
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_EQ(prompt_sizes(a.err).size(), 1u) << a.err;
  EXPECT_EQ(prompt_sizes(a.err), prompt_sizes(b.err));
  const auto single = run_g4("run -m " + kTinyKjvModel + " --temp 0 -n 12 -q -p \"$(printf 'In the\\nbeginning')\"");
  ASSERT_EQ(single.status, 0) << single.err;
  EXPECT_NE(a.out.find(single.out.substr(0, single.out.size() - 1)), std::string::npos) << a.out << "\n" << single.out;
  EXPECT_NE(b.out.find(single.out.substr(0, single.out.size() - 1)), std::string::npos) << b.out;
}

TEST(ChatCommands, SaveThenLoadContinuesTheConversation) {
  testing_util::TempDir d;
  const std::string file = d.file("conv.json");
  const auto s = run_g4(kChat, "In the beginning\n/save " + file + "\n");
  ASSERT_EQ(s.status, 0) << s.err;
  const auto saved = nlohmann::ordered_json::parse(std::ifstream(file));
  ASSERT_EQ(saved.size(), 2u) << saved.dump();
  EXPECT_EQ(saved[0], (nlohmann::ordered_json{{"role", "user"}, {"content", "In the beginning"}}));
  EXPECT_EQ(saved[1]["role"], "assistant");
  EXPECT_EQ(saved[1]["content"], replies(s.out).at(0));

  // /load, then a new turn: the reply equals the one for the whole conversation rendered by the template.
  const auto l = run_g4(kChat, "/load " + file + "\nAnd then?\n");
  ASSERT_EQ(l.status, 0) << l.err;
  ChatJson msgs = saved;
  msgs.push_back({{"role", "user"}, {"content", "And then?"}});
  const std::string text = render_gemma4_chat(msgs).substr(5);  // --raw puts <bos> first itself
  testing_util::TempDir t;
  t.write("prompt.txt", text);
  const auto want = run_g4("run -m " + kTinyKjvModel + " --temp 0 -n 12 -q --raw -f " + t.file("prompt.txt"));
  ASSERT_EQ(want.status, 0) << want.err;
  ASSERT_EQ(replies(l.out).size(), 1u) << l.out;
  EXPECT_EQ(replies(l.out)[0] + "\n", want.out);

  // A conversation that ends with a question is answered on /load.
  std::ofstream(d.file("q.json")) << R"([{"role": "user", "content": "In the beginning"}])";
  const auto q = run_g4(kChat, "/load " + d.file("q.json") + "\n");
  ASSERT_EQ(q.status, 0) << q.err;
  EXPECT_EQ(replies(q.out), std::vector<std::string>{saved[1]["content"].get<std::string>()});

  // Bad files: one error line each, and the session goes on.
  std::ofstream(d.file("bad.json")) << R"([{"role": "robot", "content": "x"}])";
  for (const std::string& bad : {d.file("missing.json"), d.file("bad.json")}) {
    const auto b = run_g4(kChat, "/load " + bad + "\nIn the beginning\n");
    EXPECT_EQ(b.status, 0);
    EXPECT_NE(b.err.find("g4: error: "), std::string::npos) << b.err;
    EXPECT_EQ(replies(b.out).size(), 1u) << b.out;
  }
  const auto nodir = run_g4(kChat, "/save " + d.file("no/such/dir.json") + "\n");
  EXPECT_NE(nodir.err.find("g4: error: cannot write"), std::string::npos) << nodir.err;
}

TEST(ChatCommands, FullContextIsReportedAndClearMakesRoom) {
  // 40 tokens: the first turn (16) and its reply fill it; the second turn cannot fit.
  const auto r = run_g4("chat -m " + kTinyKjvModel + " --temp 0 -n 30 -c 40 -q", "In the beginning\nAnd then?\n/clear\nIn the beginning\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("/clear starts a new"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the conversation is full"), std::string::npos) << r.err;
  const auto rep = replies(r.out);
  ASSERT_EQ(rep.size(), 2u) << r.out;  // after /clear the session answers again
  EXPECT_EQ(rep[0], rep[1]);
  // Status lines come after what stdout already held: stdout is flushed before each.
  const auto both = testing_util::run_command(std::string(G4_BINARY) + " chat -m " + kTinyKjvModel +
                                              " --temp 0 -n 30 -c 40 -q 2>&1 <<'EOF'\nIn the beginning\nAnd then?\nEOF");
  const size_t reply_at = both.out.find(rep[0]), full_at = both.out.find("the context is full");
  ASSERT_NE(full_at, std::string::npos) << both.out;
  EXPECT_LT(reply_at, full_at) << both.out;
}

}  // namespace
}  // namespace g4
