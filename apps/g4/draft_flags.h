// Speculative decoding flags of g4 run, g4 chat and g4 bench, named as llama.cpp's: --draft-max,
// --draft-min, --draft-ngram (prompt lookup), -md/--model-draft (the assistant drafter: not supported yet).
// And how run/chat/bench report what speculation did.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/draft_control.h"
#include "engine/drafter.h"

namespace g4 {

struct DraftFlags {
  int max = 0, min = 0;
  bool ngram = false;
  std::string model;  // -md
};

void add_draft_options(CLI::App* c, DraftFlags& f);
// The drafter the flags ask for (none without --draft-ngram). Throws g4::Error for -md (not supported
// yet), --draft-min above --draft-max, or draft lengths without a drafter.
DraftOptions draft_options(const DraftFlags& f);
// run --json's "draft" object, and the part of the timing line.
nlohmann::json draft_stats_json(const DraftStats& s);
std::string draft_stats_line(const DraftStats& s);

}  // namespace g4
