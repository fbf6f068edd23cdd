// Speculative decoding flags of g4 run, g4 chat, g4 serve and g4 bench, named as llama.cpp's: --draft-max,
// --draft-min, --draft-ngram (prompt lookup), -md/--model-draft (Gemma 4's assistant drafter).
// And how run/chat/bench report what speculation did.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/draft_control.h"
#include "engine/drafter.h"
#include "model/model.h"

namespace g4 {

struct DraftFlags {
  int max = 0, min = 0;
  bool ngram = false;
  std::string model;  // -md
};

void add_draft_options(CLI::App* c, DraftFlags& f);
// The drafter the flags ask for (none without --draft-ngram or -md; -md's is loaded by load_draft_model,
// once the target is loaded). Throws g4::Error for both drafters at once, --draft-min above --draft-max,
// or draft lengths without a drafter.
DraftOptions draft_options(const DraftFlags& f);
// With -md: loads the assistant drafter for `target` (quantized as opts says) into o.drafter. Throws
// g4::Error when it is malformed or does not fit the target.
void load_draft_model(DraftOptions& o, const DraftFlags& f, const Model& target, const LoadOptions& opts);
// run --json's "draft" object, and the part of the timing line.
nlohmann::json draft_stats_json(const DraftStats& s);
std::string draft_stats_line(const DraftStats& s);

}  // namespace g4
