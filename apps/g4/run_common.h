// What g4 run and g4 chat share: the prompt flags, Ctrl-C handling, generation options from the run
// flags, and the timing line printed after a reply.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "engine/conversation.h"
#include "engine/model_bundle.h"
#include "run_options.h"

namespace g4 {

struct PromptOpts {
  std::string prompt, prompt_file, system;
  std::vector<std::string> stops;
  bool raw = false, think = false, quiet = false, json = false;
};

// Set by SIGINT once install_sigint() ran; the generation loops poll it.
extern std::atomic<bool> g_interrupted;
// SIGINT sets g_interrupted; no SA_RESTART, so a blocked read returns and the prompt loop can leave.
void install_sigint();

// The flags both commands take: --system, --think, --stop, -q.
void add_prompt_options(CLI::App* c, PromptOpts& po);
GenerateOptions generate_options(const RunOptions& ro, const ModelBundle& b);
// "load 0.12 s | prompt 16 tokens, ... | eos"
std::string stats_line(const ModelBundle& b, const GenerateResult& r);

}  // namespace g4
