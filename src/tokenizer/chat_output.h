// Parses what a Gemma 4 model generated (decoded with special tokens kept) back into thinking text, answer
// text and tool calls. Grammar: optional `<|channel>[thought\n]...<channel|>` thinking blocks, plain answer
// text, and `<|tool_call>call:NAME{key:value,...}<tool_call|>` with strings delimited by `<|"|>`; generation
// ends at a stop token (<turn|>, <|tool_response>, <eos>), whose text is dropped with everything after it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace g4 {

struct ToolCall {
  std::string name;
  nlohmann::ordered_json arguments;  // an object; if the call's body cannot be parsed, its raw text as a string
};

struct ParsedOutput {
  std::string thinking;  // thought-channel contents, "thought\n" header removed; blocks joined by "\n"
  std::string content;   // the answer, surrounding whitespace trimmed
  std::vector<ToolCall> tool_calls;
};

ParsedOutput parse_gemma4_output(std::string_view text);

// Parses Gemma 4's tool-argument syntax ({key:value,...}, [..], <|"|>strings<|"|>, numbers, true/false/null)
// as one value. Throws g4::Error on malformed input.
nlohmann::ordered_json parse_gemma4_value(std::string_view text);

}  // namespace g4
