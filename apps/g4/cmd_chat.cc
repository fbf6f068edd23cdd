// g4 chat: an interactive multi-turn session whose history stays in the KV cache (each turn appends;
// nothing is re-processed); Ctrl-C stops the current answer, Ctrl-C at the prompt (or EOF, or /exit)
// leaves.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "base/error.h"
#include "commands.h"
#include "reply_printer.h"
#include "run_common.h"
#include "tokenizer/chat_template.h"

namespace g4 {

namespace {

int run_chat(const RunOptions& ro, const PromptOpts& po) {
  ModelBundle b = load_bundle(ro, po.quiet);
  const GenerateOptions go = generate_options(ro, b);
  Conversation conv(*b.model, ro.ctx_size);
  install_sigint();
  const std::optional<int32_t> turn_end = b.tokenizer->find("<turn|>");
  if (!po.quiet) std::fprintf(stderr, "chat with %s: Ctrl-C stops an answer; /exit, EOF or Ctrl-C at the prompt leaves\n",
                              b.name.c_str());
  bool first = true;
  while (true) {
    std::fprintf(stdout, "\n> ");
    std::fflush(stdout);
    g_interrupted = false;
    std::string line;
    if (!std::getline(std::cin, line) || g_interrupted || line == "/exit") break;
    if (line.empty()) continue;
    std::string turn;
    if (first) {
      ChatJson msgs = ChatJson::array();
      if (!po.system.empty()) msgs.push_back({{"role", "system"}, {"content", po.system}});
      msgs.push_back({{"role", "user"}, {"content", line}});
      ChatOptions co;
      co.enable_thinking = po.think;
      turn = render_gemma4_chat(msgs, co);
    } else {
      // Continue the rendered conversation exactly as the template would lay it out.
      const bool closed = !conv.tokens().empty() && turn_end && conv.tokens().back() == *turn_end;
      turn = std::string(closed ? "" : "<turn|>") + "\n<|turn>user\n" + line + "<turn|>\n<|turn>model\n" +
             (po.think ? "" : "<|channel>thought\n<channel|>");
    }
    const std::vector<int32_t> ids = b.tokenizer->encode(turn, false);
    ReplyPrinter printer(*b.tokenizer, po.stops, stdout);
    GenerateResult r;
    try {
      r = conv.append_and_generate(ids, go, [&](int32_t id) {
        if (std::find(b.stop_ids.begin(), b.stop_ids.end(), id) != b.stop_ids.end()) return true;
        return printer.push(id) && !g_interrupted;
      });
    } catch (const Error& e) {
      std::fprintf(stderr, "\ng4: %s (start a new chat for more room: -c raises the context)\n", e.what());
      break;
    }
    printer.finish();
    std::printf("\n");
    if (!po.quiet) std::fprintf(stderr, "[%s]\n", stats_line(b, r).c_str());
    first = false;
  }
  std::printf("\n");
  return 0;
}

}  // namespace

void add_chat_command(CLI::App& app, Action* action) {
  static RunOptions ro;
  static PromptOpts po;
  CLI::App* c = app.add_subcommand("chat", "interactive multi-turn chat in the terminal");
  add_run_options(c, ro);
  add_prompt_options(c, po);
  c->callback([action] { *action = [] { return run_chat(ro, po); }; });
}

}  // namespace g4
