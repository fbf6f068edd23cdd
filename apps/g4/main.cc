// The g4 command line. Every error that comes from the outside (flags, files, metadata) ends here as
// one line on stderr and a non-zero exit status.
#include <cstdio>
#include <exception>

#include "base/error.h"
#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"g4: Gemma 4 inference engine"};
  app.require_subcommand(1);
  g4::Action action;
  g4::add_run_command(app, &action);
  g4::add_chat_command(app, &action);
  g4::add_serve_command(app, &action);
  g4::add_inspect_command(app, &action);
  g4::add_logits_commands(app, &action);
  g4::add_bench_command(app, &action);
  g4::add_convert_commands(app, &action);
  g4::add_perplexity_command(app, &action);
  g4::add_tokenize_commands(app, &action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
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
