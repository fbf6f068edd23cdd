// The g4 command line. Every error that comes from the outside (flags, files, metadata) ends here as
// one line on stderr, "g4: error: ...", and exit status 1; --help, g4 help and --version exit 0.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>

#include "base/error.h"
#include "commands.h"

namespace {

// A CLI11 parse error as one line, pointing at the help of the command whose flags were wrong.
std::string flag_error(CLI::App& app, const CLI::ParseError& e) {
  std::string cmd;
  for (const CLI::App* sub : app.get_subcommands()) cmd = sub->get_name();
  if (cmd.empty() && (e.get_name() == "RequiredError" || e.get_name() == "ExtrasError")) {
    const std::vector<std::string> extra = app.remaining();
    return extra.empty() ? "give a command (g4 help lists them)"
                         : "unknown command '" + extra.front() + "' (g4 help lists them)";
  }
  std::string msg = e.what();
  if (e.get_name() == "ArgumentMismatch" && msg.find(':') != std::string::npos)  // "--temp: 1 required ... missing"
    msg = msg.substr(0, msg.find(':')) + ": needs a value";
  // A value of a numeric flag without a range check ("Could not convert: --seed = x"): said as in_range says it.
  const std::string kConvert = "Could not convert: ";
  if (e.get_name() == "ConversionError" && msg.rfind(kConvert, 0) == 0 && msg.find(" = ") != std::string::npos) {
    const size_t eq = msg.find(" = ");
    msg = msg.substr(kConvert.size(), eq - kConvert.size()) + ": '" + msg.substr(eq + 3) + "' is not a number";
  }
  for (char& c : msg)
    if (c == '\n' || c == '\r') c = ' ';
  while (!msg.empty() && msg.back() == ' ') msg.pop_back();
  return msg + (cmd.empty() ? " (see g4 --help)" : " (see g4 help " + cmd + ")");
}

// llama.cpp's multi-letter short flags, which CLI11 cannot declare: rewritten to their long names.
std::vector<std::string> llama_cpp_aliases(int argc, char** argv) {
  static const std::pair<const char*, const char*> kAliases[] = {
      {"-ctk", "--cache-type-k"}, {"-ctv", "--cache-type-v"}, {"-np", "--parallel"}, {"-md", "--model-draft"}};
  std::vector<std::string> args(argv, argv + argc);
  for (std::string& a : args)
    for (const auto& [from, to] : kAliases)
      if (a == from) a = to;
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"g4: Gemma 4 inference engine", "g4"};
  app.require_subcommand(1);
  g4::Action action;
  g4::add_run_command(app, &action);
  g4::add_chat_command(app, &action);
  g4::add_serve_command(app, &action);
  g4::add_inspect_command(app, &action);
  g4::add_logits_commands(app, &action);
  g4::add_bench_command(app, &action);
  g4::add_convert_commands(app, &action);
  g4::add_export_command(app, &action);
  g4::add_perplexity_command(app, &action);
  g4::add_tokenize_commands(app, &action);
  g4::add_help_commands(app, &action);
  try {
    std::vector<std::string> args = llama_cpp_aliases(argc, argv);
    args.erase(args.begin());                 // CLI11 takes the arguments without the program name,
    std::reverse(args.begin(), args.end());  // last first
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::fprintf(stderr, "g4: error: %s\n", flag_error(app, e).c_str());
    return 1;
  }
  try {
    return action ? action() : 1;
  } catch (const g4::Error& e) {
    std::fprintf(stderr, "g4: error: %s\n", e.what());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "g4: error: out of memory\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "g4: error: %s\n", e.what());
  }
  return 1;
}
