// g4 run: one prompt, streamed answer, timings; Ctrl-C stops the answer.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "commands.h"
#include "draft_flags.h"
#include "input_file.h"
#include "reply_printer.h"
#include "run_common.h"
#include "tokenizer/chat_output.h"
#include "tokenizer/chat_template.h"

namespace g4 {

namespace {

int run_once(const RunOptions& ro, const PromptOpts& po, const DraftFlags& df) {
  const std::string text = po.prompt_file.empty() ? po.prompt : read_input(po.prompt_file, "prompt file");
  if (text.empty())  // (as -p '' is)
    throw Error(po.prompt_file == "-" ? "the prompt on standard input is empty" : "the prompt file " + po.prompt_file + " is empty");
  DraftOptions draft = draft_options(df);  // flag errors before the model loads
  ModelBundle b = load_bundle(ro, po.quiet || po.json);
  load_draft_model(draft, df, *b.model, LoadOptions{ro.quantize});
  GenerateOptions go = generate_options(ro, b);
  go.draft = draft;

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

}  // namespace

void add_run_command(CLI::App& app, Action* action) {
  static RunOptions ro;
  static PromptOpts po;
  static DraftFlags df;
  CLI::App* c = app.add_subcommand("run", "answer one prompt, streaming the text");
  add_run_options(c, ro);
  add_draft_options(c, df);
  auto* p = c->add_option("-p,--prompt", po.prompt, "the prompt text");
  auto* f = c->add_option("-f,--file", po.prompt_file, "read the prompt from this file (- reads standard input)");
  p->excludes(f);
  c->add_flag("--raw", po.raw, "send the prompt as is (<bos> + text), without the chat template");
  c->add_flag("--json", po.json, "print one JSON object (text, thinking, tool calls, timings) instead of streaming");
  add_prompt_options(c, po);
  c->callback([action] {
    if (po.prompt.empty() && po.prompt_file.empty()) throw CLI::ValidationError("--prompt", "give -p TEXT or -f FILE");
    *action = [] { return run_once(ro, po, df); };
  });
}

}  // namespace g4
