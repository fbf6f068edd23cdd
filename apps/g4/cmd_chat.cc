// g4 chat: an interactive multi-turn session whose history stays in the KV cache (each turn appends;
// nothing is re-processed). Line editing on a terminal, multi-line input, and commands: /help, /clear,
// /save FILE, /load FILE, /exit. Ctrl-C stops the current answer; Ctrl-C at the prompt, EOF or /exit
// leaves. A full context is reported and the session goes on (/clear makes room).
#include <algorithm>
#include <cstdio>

#include "base/error.h"
#include "chat_file.h"
#include "draft_flags.h"
#include "commands.h"
#include "line_reader.h"
#include "reply_printer.h"
#include "run_common.h"
#include "tokenizer/chat_output.h"
#include "tokenizer/chat_template.h"

namespace g4 {

namespace {

constexpr const char* kHelp =
    "commands:\n"
    "  /help         this text\n"
    "  /clear        forget the conversation and start a new one\n"
    "  /save FILE    write the conversation to FILE (a JSON list of {\"role\", \"content\"} messages)\n"
    "  /load FILE    replace the conversation with the one in FILE and continue it\n"
    "  /exit         leave (so do end of input and Ctrl-C at the prompt)\n"
    "multi-line input: end a line with \\ to go on to the next line, or type \"\"\" alone on a line to\n"
    "open a block and again to close it\n"
    "Ctrl-C while the model answers stops the answer\n";

// Status lines go to stderr; what was printed on stdout must come first.
void status(const std::string& s) {
  std::fflush(stdout);
  std::fprintf(stderr, "%s\n", s.c_str());
}

GenerateOptions with_draft(GenerateOptions go, const DraftOptions& draft) {
  go.draft = draft;
  return go;
}

class ChatSession {
 public:
  ChatSession(const ModelBundle& b, const RunOptions& ro, const PromptOpts& po, const DraftOptions& draft)
      : b_(b), po_(po), go_(with_draft(generate_options(ro, b), draft)), conv_(*b.model, kv_options(ro)),
        turn_end_(b.tokenizer->find("<turn|>")) {
    clear();
  }

  void clear() {
    conv_.reset();
    messages_ = ChatJson::array();
    if (!po_.system.empty()) messages_.push_back({{"role", "system"}, {"content", po_.system}});
    tail_ = Tail::kEmpty;
  }

  void user_turn(const std::string& text) {
    std::string turn;
    if (tail_ == Tail::kEmpty) {
      ChatJson msgs = messages_;
      msgs.push_back({{"role", "user"}, {"content", text}});
      turn = render(msgs, true);
    } else {
      // Continue the rendered conversation exactly as the template would lay it out.
      const bool closed = !conv_.tokens().empty() && turn_end_ && conv_.tokens().back() == *turn_end_;
      turn = std::string(tail_ == Tail::kRendered ? "" : closed ? "\n" : "<turn|>\n") + "<|turn>user\n" + text +
             "<turn|>\n<|turn>model\n" + (po_.think ? "" : "<|channel>thought\n<channel|>");
    }
    const std::vector<int32_t> ids = b_.tokenizer->encode(turn, false);
    if (!fits(ids)) return;
    messages_.push_back({{"role", "user"}, {"content", text}});
    reply(ids);
  }

  void save(const std::string& path) const {
    save_chat(path, messages_);
    status("saved " + std::to_string(messages_.size()) + " messages to " + path);
  }

  void load(const std::string& path) {
    ChatJson msgs = load_chat(path);
    const bool answer = msgs.back()["role"] == "user";
    const std::vector<int32_t> ids = b_.tokenizer->encode(render(msgs, answer), false);
    clear();
    if (!fits(ids)) return;
    messages_ = msgs;
    status("loaded " + std::to_string(msgs.size()) + " messages from " + path);
    if (answer) {
      reply(ids);  // the conversation ends with a question: answer it
    } else {
      GenerateOptions prefill = go_;
      prefill.max_new_tokens = 0;
      conv_.append_and_generate(ids, prefill, nullptr);
      tail_ = Tail::kRendered;
    }
  }

 private:
  // After kRendered the conversation ends "<turn|>\n" as the template writes it; after kReplied it ends
  // where the model's reply stopped.
  enum class Tail { kEmpty, kRendered, kReplied };

  std::string render(const ChatJson& msgs, bool generation_prompt) const {
    ChatOptions co;
    co.enable_thinking = po_.think;
    co.add_generation_prompt = generation_prompt;
    return render_gemma4_chat(msgs, co);
  }

  // False (and says so) when ids and one reply token do not fit in what is left of the context.
  bool fits(const std::vector<int32_t>& ids) {
    const int64_t need = int64_t(conv_.tokens().size() + ids.size()) + 1;
    if (need <= conv_.ctx_size()) return true;
    status("g4: the conversation is full: it needs " + std::to_string(need) + " tokens but the context size is " +
           std::to_string(conv_.ctx_size()) + "; /clear starts a new one (-c sets a larger context)");
    return false;
  }

  void reply(const std::vector<int32_t>& ids) {
    ReplyPrinter printer(*b_.tokenizer, po_.stops, stdout);
    const GenerateResult r = conv_.append_and_generate(ids, go_, [&](int32_t id) {
      if (std::find(b_.stop_ids.begin(), b_.stop_ids.end(), id) != b_.stop_ids.end()) return true;
      return printer.push(id) && !g_interrupted;
    });
    printer.finish();
    std::printf("\n");
    tail_ = Tail::kReplied;
    const ParsedOutput p = parse_gemma4_output(b_.tokenizer->decode(r.tokens, false));
    messages_.push_back({{"role", "assistant"}, {"content", p.content}});
    if (!po_.quiet) status("[" + stats_line(b_, r) + "]");
    if (!po_.quiet && go_.draft.drafter) status("[" + draft_stats_line(r.draft) + "]");
    if (r.reason == StopReason::kContextFull)
      status("g4: the context is full (context size " + std::to_string(conv_.ctx_size()) +
             "); /clear starts a new conversation (-c sets a larger context)");
  }

  const ModelBundle& b_;
  const PromptOpts& po_;
  const GenerateOptions go_;
  Conversation conv_;
  const std::optional<int32_t> turn_end_;
  ChatJson messages_;
  Tail tail_ = Tail::kEmpty;
};

// Runs one /command; false when the session should end.
bool command(ChatSession& chat, const std::string& line) {
  const size_t sp = line.find(' ');
  const std::string name = line.substr(0, sp);
  std::string arg = sp == std::string::npos ? "" : line.substr(sp + 1);
  while (!arg.empty() && arg.back() == ' ') arg.pop_back();
  while (!arg.empty() && arg.front() == ' ') arg.erase(arg.begin());
  if (name == "/exit" || name == "/quit") return false;
  try {
    if (name == "/help") {
      std::fputs(kHelp, stdout);
    } else if (name == "/clear") {
      chat.clear();
      status("new conversation");
    } else if (name == "/save" || name == "/load") {
      if (arg.empty()) throw Error(name + " needs a file name");
      name == "/save" ? chat.save(arg) : chat.load(arg);
    } else {
      throw Error("unknown command " + name + "; /help lists the commands");
    }
  } catch (const Error& e) {
    status(std::string("g4: error: ") + e.what());
  }
  return true;
}

int run_chat(const RunOptions& ro, const PromptOpts& po, const DraftFlags& df) {
  DraftOptions draft = draft_options(df);  // flag errors before the model loads
  ModelBundle b = load_bundle(ro, po.quiet);
  load_draft_model(draft, df, *b.model, LoadOptions{ro.quantize});
  ChatSession chat(b, ro, po, draft);
  install_sigint();
  LineReader in(&g_interrupted);
  if (!po.quiet)
    status("chat with " + b.name + " on " + backend_summary(*b.backend) + ": /help lists commands; Ctrl-C stops an answer; /exit, EOF or Ctrl-C at the prompt leaves");
  while (true) {
    std::printf("\n");
    g_interrupted = false;
    const std::optional<std::string> msg = in.read_message("> ", "... ");
    if (!msg || g_interrupted) break;
    if (msg->empty()) continue;
    if ((*msg)[0] == '/') {
      if (!command(chat, *msg)) break;
      continue;
    }
    chat.user_turn(*msg);
  }
  std::printf("\n");
  return 0;
}

}  // namespace

void add_chat_command(CLI::App& app, Action* action) {
  static RunOptions ro;
  static PromptOpts po;
  static DraftFlags df;
  CLI::App* c = app.add_subcommand("chat", "interactive multi-turn chat in the terminal (/help inside lists commands)");
  add_run_options(c, ro);
  add_prompt_options(c, po);
  add_draft_options(c, df);
  c->callback([action] { *action = [] { return run_chat(ro, po, df); }; });
}

}  // namespace g4
