// g4 run: one prompt, streamed answer, timings. g4 chat: an interactive multi-turn session whose
// history stays in the KV cache (each turn appends; nothing is re-processed); Ctrl-C stops the
// current answer, Ctrl-C at the prompt (or EOF, or /exit) leaves.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/error.h"
#include "commands.h"
#include "draft_flags.h"
#include "engine/conversation.h"
#include "reply_printer.h"
#include "run_options.h"
#include "tokenizer/chat_output.h"
#include "tokenizer/chat_template.h"

namespace g4 {

namespace {

std::atomic<bool> g_interrupted{false};

void on_sigint(int) { g_interrupted = true; }

void install_sigint() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked read returns so the prompt loop can leave
  sigaction(SIGINT, &sa, nullptr);
}

struct PromptOpts {
  std::string prompt, prompt_file, system;
  std::vector<std::string> stops;
  bool raw = false, think = false, quiet = false, json = false;
};

std::string stats_line(const ModelBundle& b, const GenerateResult& r) {
  char buf[320];
  const double pf = r.prefill_s > 0 ? double(r.prompt_tokens) / r.prefill_s : 0;
  const double dc = r.decode_s > 0 && r.tokens.size() > 1 ? double(r.tokens.size() - 1) / r.decode_s : 0;
  std::snprintf(buf, sizeof buf,
                "load %.2f s on %s | prompt %lld tokens, %.1f tok/s | time to first token %.3f s | %zu tokens, %.1f tok/s | %s",
                b.load_seconds, backend_summary(*b.backend).c_str(), static_cast<long long>(r.prompt_tokens), pf, r.prefill_s, r.tokens.size(), dc,
                stop_reason_name(r.reason));
  return buf;
}

int run_once(const RunOptions& ro, const PromptOpts& po, const DraftFlags& df) {
  std::string text = po.prompt;
  if (!po.prompt_file.empty()) {
    std::ifstream f(po.prompt_file, std::ios::binary);
    if (!f) throw Error("cannot read prompt file " + po.prompt_file);
    std::stringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  }
  GenerateOptions go;
  go.draft = draft_options(df);
  ModelBundle b = load_bundle(ro, po.quiet || po.json);
  go.sampling = sampling_from(ro, b);
  go.max_new_tokens = ro.max_new_tokens;
  go.stop_ids = b.stop_ids;
  go.prefill_chunk = ro.prefill_chunk;

  std::vector<int32_t> prompt;
  if (po.raw) {
    prompt = b.tokenizer->encode(text, true);
  } else {
    ChatJson msgs = ChatJson::array();
    if (!po.system.empty()) msgs.push_back({{"role", "system"}, {"content", po.system}});
    msgs.push_back({{"role", "user"}, {"content", text}});
    ChatOptions co;
    co.enable_thinking = po.think;
    prompt = b.tokenizer->encode(render_gemma4_chat(msgs, co), false);
  }
  Conversation conv(*b.model, kv_options(ro));
  install_sigint();
  ReplyPrinter printer(*b.tokenizer, po.stops, po.json ? nullptr : stdout);
  GenerateResult r = conv.generate(prompt, go, [&](int32_t id) {
    if (std::find(b.stop_ids.begin(), b.stop_ids.end(), id) != b.stop_ids.end()) return true;
    return printer.push(id) && !g_interrupted;
  });
  printer.finish();
  if (po.json) {
    const ParsedOutput p = parse_gemma4_output(b.tokenizer->decode(r.tokens, false));
    nlohmann::json calls = nlohmann::json::array();
    for (const auto& c : p.tool_calls) calls.push_back({{"name", c.name}, {"arguments", nlohmann::json::parse(c.arguments.dump())}});
    nlohmann::json j = {{"text", printer.text()},
                        {"thinking", p.thinking},
                        {"content", po.raw ? printer.text() : p.content},
                        {"tool_calls", calls},
                        {"tokens", r.tokens},
                        {"stop_reason", printer.stopped_by_string() ? "stop_string" : stop_reason_name(r.reason)},
                        {"prompt_tokens", r.prompt_tokens},
                        {"backend", b.backend->name()},
                        {"threads", b.backend->threads()},
                        {"load_s", b.load_seconds},
                        {"ttft_s", r.prefill_s},
                        {"prefill_tok_s", r.prefill_s > 0 ? double(r.prompt_tokens) / r.prefill_s : 0.0},
                        {"decode_tok_s", r.decode_s > 0 && r.tokens.size() > 1 ? double(r.tokens.size() - 1) / r.decode_s : 0.0}};
    if (go.draft.drafter) j["draft"] = draft_stats_json(r.draft);
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("\n");
    std::fflush(stdout);  // the reply's newline reaches a shared pipe before the timing line
    if (!po.quiet) std::fprintf(stderr, "%s\n", stats_line(b, r).c_str());
    if (!po.quiet && go.draft.drafter) std::fprintf(stderr, "%s\n", draft_stats_line(r.draft).c_str());
  }
  return 0;
}

int run_chat(const RunOptions& ro, const PromptOpts& po, const DraftFlags& df) {
  GenerateOptions go;
  go.draft = draft_options(df);
  ModelBundle b = load_bundle(ro, po.quiet);
  go.sampling = sampling_from(ro, b);
  go.max_new_tokens = ro.max_new_tokens;
  go.stop_ids = b.stop_ids;
  go.prefill_chunk = ro.prefill_chunk;
  Conversation conv(*b.model, kv_options(ro));
  install_sigint();
  const std::optional<int32_t> turn_end = b.tokenizer->find("<turn|>");
  if (!po.quiet)
    std::fprintf(stderr, "chat with %s on %s: Ctrl-C stops an answer; /exit, EOF or Ctrl-C at the prompt leaves\n",
                 b.name.c_str(), backend_summary(*b.backend).c_str());
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
      std::fflush(stdout);
      std::fprintf(stderr, "\ng4: %s (start a new chat for more room: -c raises the context)\n", e.what());
      break;
    }
    printer.finish();
    std::printf("\n");
    std::fflush(stdout);  // the reply's newline before the timing line, in order on a shared pipe
    if (!po.quiet) std::fprintf(stderr, "[%s]\n", stats_line(b, r).c_str());
    if (!po.quiet && go.draft.drafter) std::fprintf(stderr, "[%s]\n", draft_stats_line(r.draft).c_str());
    first = false;
  }
  std::printf("\n");
  return 0;
}

}  // namespace

void add_run_commands(CLI::App& app, Action* action) {
  static RunOptions ro_run, ro_chat;
  static PromptOpts po_run, po_chat;
  static DraftFlags df_run, df_chat;
  for (int which = 0; which < 2; ++which) {
    const bool chat = which == 1;
    RunOptions& ro = chat ? ro_chat : ro_run;
    PromptOpts& po = chat ? po_chat : po_run;
    DraftFlags& df = chat ? df_chat : df_run;
    CLI::App* c = chat ? app.add_subcommand("chat", "interactive multi-turn chat in the terminal")
                       : app.add_subcommand("run", "answer one prompt, streaming the text");
    add_run_options(c, ro);
    add_draft_options(c, df);
    if (!chat) {
      auto* p = c->add_option("-p,--prompt", po.prompt, "the prompt text");
      auto* f = c->add_option("-f,--file", po.prompt_file, "read the prompt from this file");
      p->excludes(f);
      c->add_flag("--raw", po.raw, "send the prompt as is (<bos> + text), without the chat template");
      c->add_flag("--json", po.json, "print one JSON object (text, thinking, tool calls, timings) instead of streaming");
    }
    c->add_option("--system", po.system, "system prompt");
    c->add_flag("--think", po.think, "enable thinking (the model reasons in a thought channel first)");
    c->add_option("--stop", po.stops, "stop when this text appears (repeatable)");
    c->add_flag("-q,--quiet", po.quiet, "print only the generated text (no load line or timings)");
    c->callback([action, chat, &ro, &po, &df] {
      if (!chat && po.prompt.empty() && po.prompt_file.empty()) throw CLI::ValidationError("--prompt", "give -p TEXT or -f FILE");
      *action = [chat, &ro, &po, &df] { return chat ? run_chat(ro, po, df) : run_once(ro, po, df); };
    });
  }
}

}  // namespace g4
