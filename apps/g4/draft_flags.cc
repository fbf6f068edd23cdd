#include "draft_flags.h"

#include <cstdio>

#include "base/error.h"
#include "engine/assistant_drafter.h"
#include "model/assistant.h"
#include "flag_check.h"

namespace g4 {

void add_draft_options(CLI::App* c, DraftFlags& f) {
  c->add_flag("--draft-ngram", f.ngram,
              "speculative decoding with prompt lookup: draft the tokens that followed the last matching n-gram (n = 3..1) "
              "of the prompt and output, verify them in one forward pass");
  c->add_option("--draft-max", f.max, "longest draft (0 = the backend's default: 8 on cuda, 4 on cpu, 3 on ref); "
                "the monitor shortens it or turns drafting off when it does not pay; capped at the KV cache's "
                "rollback slack + 1 and, on cuda, at 8 (its longest verify computed exactly as one-token steps)")
      ->check(in_range(0, 256));
  c->add_option("--draft-min", f.min, "do not verify drafts shorter than this")->check(in_range(0, 256));
  c->add_option("--model-draft", f.model,
                "speculative decoding with Gemma 4's assistant drafter (a gemma4_assistant model directory made for "
                "the target), also -md");
}

DraftOptions draft_options(const DraftFlags& f) {
  if (!f.model.empty() && f.ngram) throw Error("--model-draft and --draft-ngram: choose one drafter");
  if (!f.model.empty()) load_assistant_config(f.model);  // a missing or foreign drafter: before the target loads
  if (!f.ngram && f.model.empty() && (f.max > 0 || f.min > 0))
    throw Error("--draft-max and --draft-min need a drafter: add --draft-ngram or --model-draft DIR");
  if (f.max > 0 && f.min > f.max)
    throw Error("--draft-min " + std::to_string(f.min) + " is larger than --draft-max " + std::to_string(f.max));
  DraftOptions o;
  if (f.ngram) o.drafter = std::make_shared<NgramDrafter>();
  o.max = f.max;
  o.min = f.min;
  return o;
}

void load_draft_model(DraftOptions& o, const DraftFlags& f, const Model& target, const LoadOptions& opts) {
  if (!f.model.empty()) o.drafter = AssistantDrafter::load(f.model, target, opts);
}

nlohmann::json draft_stats_json(const DraftStats& s) {
  nlohmann::json rate = nlohmann::json::array();
  for (size_t j = 0; j < s.drafted_at.size(); ++j)
    rate.push_back(s.drafted_at[j] > 0 ? double(s.accepted_at[j]) / double(s.drafted_at[j]) : 0.0);
  nlohmann::json events = s.events;
  if (s.events_dropped > 0) events.push_back("(" + std::to_string(s.events_dropped) + " more changes)");
  return {{"draft_max", s.draft_max},
          {"draft_min", s.draft_min},
          {"verifies", s.verifies},
          {"drafted", s.drafted},
          {"accepted", s.accepted},
          {"acceptance", s.drafted > 0 ? double(s.accepted) / double(s.drafted) : 0.0},
          {"drafted_at", s.drafted_at},
          {"accepted_at", s.accepted_at},
          {"acceptance_at", rate},
          {"plain_steps", s.plain_steps},
          {"off_steps", s.off_steps},
          {"recomputed", s.recomputed},
          {"final_length", s.final_length},
          {"events", events}};
}

std::string draft_stats_line(const DraftStats& s) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "draft: %lld/%lld accepted in %lld verifies, by position",
                static_cast<long long>(s.accepted), static_cast<long long>(s.drafted), static_cast<long long>(s.verifies));
  std::string line = buf;
  for (size_t j = 0; j < s.drafted_at.size(); ++j) {
    std::snprintf(buf, sizeof buf, " %.0f%%", s.drafted_at[j] > 0 ? 100.0 * double(s.accepted_at[j]) / double(s.drafted_at[j]) : 0.0);
    line += buf;
  }
  line += s.final_length == 0 ? ", drafting ended off" : ", ending at length " + std::to_string(s.final_length);
  return line;
}

}  // namespace g4
