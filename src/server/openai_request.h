// Parsing and validation of OpenAI-style request bodies (/v1/chat/completions, /v1/completions).
// Every field is checked for type and range (NaN and infinities included); a bad body becomes an
// ApiError with the HTTP status and the OpenAI error shape, never an exception escaping to the socket.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/json_grammar.h"
#include "model/sampler.h"

namespace g4 {

struct ApiError {
  int status = 400;
  std::string message;
  std::string param;                            // the offending field, when there is one
  std::string type = "invalid_request_error";
  nlohmann::json body() const;                  // {"error": {"message", "type", "param", "code"}}
};

struct CompletionRequest {
  bool chat = true;
  std::string model;
  nlohmann::json messages = nlohmann::json::array();  // chat: validated messages
  nlohmann::json tools = nlohmann::json::array();     // chat: function tools
  std::string prompt;                                  // completions: the raw prompt text
  bool stream = false;
  bool include_usage = false;                          // stream_options.include_usage
  bool enable_thinking = false;                        // chat_template_kwargs.enable_thinking / reasoning_effort
  int64_t max_tokens = -1;                             // -1: until a stop or the context ends
  bool ignore_eos = false;                             // llama-server's field: stop tokens are never sampled
  std::vector<std::string> stop;                       // up to 4 stop strings
  SamplingParams sampling;
  bool seed_given = false;   // "seed" set (and not -1)
  bool seed_random = false;  // "seed": -1, llama-server's "random": a seed of its own even under serve --seed
  // Log probabilities: -1 none, else how many alternatives per token (chat: logprobs + top_logprobs;
  // completions: logprobs N).
  int top_logprobs = -1;
  // Constrained decoding: response_format json_object / json_schema, or a forced tool call (tool_choice
  // "required" or a named function). Null: free generation.
  std::shared_ptr<const JsonGrammar> grammar;
  bool json_output = false;   // response_format asks for JSON: the reply's content is the generated text
  bool forced_tool = false;   // the grammar is a Gemma 4 tool call
  bool no_tool_calls = false; // tool_choice "none": the model may not open a tool call (its token is banned)
};

// Parses a request body. `chat` selects the endpoint's schema. Returns the request or sets *err.
std::optional<CompletionRequest> parse_completion_request(const std::string& body, bool chat,
                                                          const SamplingParams& defaults, ApiError* err);

}  // namespace g4
