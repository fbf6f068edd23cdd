// config.json reading shared by the text-model and assistant-drafter parsers (inside g4_model only: it
// exposes nlohmann::json, which the public headers keep out).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "model/model_spec.h"

namespace g4 {

// Parses `text`; throws g4::Error "SRC: not valid JSON: ..." or "SRC: top level is not a JSON object".
nlohmann::json parse_config_object(const std::string& text, const std::string& src);

// parse_model_config on an already parsed object: its text_config when it has one, else the object itself.
ModelSpec text_model_spec(const nlohmann::json& root, const std::string& src);

}  // namespace g4
