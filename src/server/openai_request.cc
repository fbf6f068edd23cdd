#include "server/openai_request.h"

#include <cmath>

#include "base/error.h"

namespace g4 {

using nlohmann::json;

json ApiError::body() const {
  json e = {{"message", message}, {"type", type}, {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", nullptr}};
  return json{{"error", e}};
}

namespace {

struct Bad {
  ApiError e;
};

[[noreturn]] void fail(const std::string& param, const std::string& msg, int status = 400) {
  throw Bad{ApiError{status, msg, param}};
}

double number(const json& v, const std::string& name, double lo, double hi) {
  if (!v.is_number()) fail(name, "'" + name + "' must be a number");
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    fail(name, "'" + name + "' must be between " + json(lo).dump() + " and " + json(hi).dump());
  return x;
}

int64_t integer(const json& v, const std::string& name, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) fail(name, "'" + name + "' must be an integer");
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)) fail(name, "'" + name + "' is too large");
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) fail(name, "'" + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return x;
}

// Message content: a string, null, or an array of {"type": "text", "text": ...} parts.
void check_content(const json& c, const std::string& where, bool allow_null) {
  if (c.is_string() || (allow_null && c.is_null())) return;
  if (!c.is_array()) fail(where, "'" + where + "' must be a string or an array of content parts");
  for (const json& part : c) {
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
      fail(where, "each content part in '" + where + "' needs a string 'type'");
    const std::string t = part["type"].get<std::string>();
    if (t != "text") fail(where, "content part type '" + t + "' is not supported (text only)");
    if (!part.contains("text") || !part["text"].is_string()) fail(where, "a text part in '" + where + "' needs 'text'");
  }
}

void check_messages(const json& msgs) {
  if (!msgs.is_array() || msgs.empty()) fail("messages", "'messages' must be a non-empty array");
  for (size_t i = 0; i < msgs.size(); ++i) {
    const std::string w = "messages[" + std::to_string(i) + "]";
    const json& m = msgs[i];
    if (!m.is_object()) fail(w, "'" + w + "' must be an object");
    if (!m.contains("role") || !m["role"].is_string()) fail(w + ".role", "'" + w + ".role' must be a string");
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "developer" && role != "user" && role != "assistant" && role != "tool")
      fail(w + ".role", "unknown role '" + role + "' in " + w);
    const bool has_calls = m.contains("tool_calls") && !m["tool_calls"].is_null();
    if (!m.contains("content") && !has_calls) fail(w + ".content", "'" + w + "' has no content");
    if (m.contains("content")) check_content(m["content"], w + ".content", role == "assistant");
    if (has_calls) {
      if (role != "assistant") fail(w + ".tool_calls", "only assistant messages carry tool_calls");
      if (!m["tool_calls"].is_array()) fail(w + ".tool_calls", "'tool_calls' must be an array");
      for (const json& tc : m["tool_calls"]) {
        if (!tc.is_object() || !tc.contains("function") || !tc["function"].is_object() ||
            !tc["function"].contains("name") || !tc["function"]["name"].is_string())
          fail(w + ".tool_calls", "each tool call needs function.name");
        if (tc["function"].contains("arguments") && !tc["function"]["arguments"].is_string() &&
            !tc["function"]["arguments"].is_object())
          fail(w + ".tool_calls", "function.arguments must be a JSON string or object");
      }
    }
  }
}

void check_tools(const json& tools) {
  if (!tools.is_array()) fail("tools", "'tools' must be an array");
  for (size_t i = 0; i < tools.size(); ++i) {
    const json& t = tools[i];
    const std::string w = "tools[" + std::to_string(i) + "]";
    if (!t.is_object() || t.value("type", "") != "function" || !t.contains("function") || !t["function"].is_object())
      fail(w, "'" + w + "' must be {\"type\": \"function\", \"function\": {...}}");
    if (!t["function"].contains("name") || !t["function"]["name"].is_string() ||
        t["function"]["name"].get<std::string>().empty())
      fail(w + ".function.name", "'" + w + ".function.name' must be a non-empty string");
  }
}

// tool_choice: "auto", "none" (the tool-call token is banned), "required" (one
// call to any of the tools) or {"type": "function", "function": {"name": X}} (one call to X); the last two
// through a grammar over Gemma 4's tool-call syntax with each function's parameters schema.
void parse_tool_choice(const json& tc, CompletionRequest& r) {
  std::vector<std::pair<std::string, json>> functions;
  auto params_of = [](const json& tool) {
    const json& f = tool["function"];
    return f.contains("parameters") ? f["parameters"] : json(nullptr);
  };
  if (tc.is_string() && (tc == "auto" || tc == "none" || tc == "required")) {
    if (tc == "none") {  // the tools stay in the prompt (as with OpenAI; the prompt cache sees the same prefix)
      r.no_tool_calls = true;
      return;
    }
    if (tc == "auto") return;
    if (r.tools.empty()) fail("tool_choice", "tool_choice 'required' needs at least one tool in 'tools'");
    for (const json& t : r.tools) functions.push_back({t["function"]["name"].get<std::string>(), params_of(t)});
  } else if (tc.is_object()) {
    if (tc.value("type", "") != "function" || !tc.contains("function") || !tc["function"].is_object() ||
        !tc["function"].contains("name") || !tc["function"]["name"].is_string())
      fail("tool_choice", "'tool_choice' must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
    const std::string name = tc["function"]["name"].get<std::string>();
    for (const json& t : r.tools)
      if (t["function"]["name"] == name) functions.push_back({name, params_of(t)});
    if (functions.empty()) fail("tool_choice", "tool_choice names the function '" + name + "', which is not in 'tools'");
  } else {
    fail("tool_choice", "'tool_choice' must be auto, none, required or an object");
  }
  try {
    r.grammar = JsonGrammar::tool_call(functions);
  } catch (const Error& e) {
    fail("tools", std::string("cannot force this tool call: ") + e.what());
  }
  r.forced_tool = true;
}

// response_format: {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "json_schema":
// {"name", "schema", "strict"}}; the JSON kinds compile into a grammar (a schema it cannot compile is a 400).
void parse_response_format(const json& rf, CompletionRequest& r) {
  if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
    fail("response_format", "'response_format' must be an object with a string 'type'");
  const std::string type = rf["type"].get<std::string>();
  if (type == "text") return;
  if (type == "json_object") {
    r.grammar = JsonGrammar::any_object();
  } else if (type == "json_schema") {
    if (!rf.contains("json_schema") || !rf["json_schema"].is_object())
      fail("response_format.json_schema", "'response_format.json_schema' must be an object holding 'schema'");
    const json& js = rf["json_schema"];
    if (js.contains("name") && !js["name"].is_string()) fail("response_format.json_schema.name", "'name' must be a string");
    bool strict = false;
    if (js.contains("strict") && !js["strict"].is_null()) {
      if (!js["strict"].is_boolean()) fail("response_format.json_schema.strict", "'strict' must be a boolean");
      strict = js["strict"].get<bool>();
    }
    const json schema = js.contains("schema") ? js["schema"] : json::object();
    try {
      r.grammar = JsonGrammar::from_schema(schema, strict);
    } catch (const Error& e) {
      fail("response_format.json_schema.schema", std::string("cannot use this JSON schema: ") + e.what());
    }
  } else {
    fail("response_format.type", "'response_format.type' must be text, json_object or json_schema");
  }
  r.json_output = true;
}

CompletionRequest parse(const std::string& body, bool chat, const SamplingParams& defaults) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception&) {
    fail("", "the request body is not valid JSON");
  }
  if (!j.is_object()) fail("", "the request body must be a JSON object");
  CompletionRequest r;
  r.chat = chat;
  r.sampling = defaults;
  if (j.contains("model") && !j["model"].is_null()) {
    if (!j["model"].is_string()) fail("model", "'model' must be a string");
    r.model = j["model"].get<std::string>();
  }
  if (chat) {
    if (!j.contains("messages")) fail("messages", "'messages' is required");
    check_messages(j["messages"]);
    r.messages = j["messages"];
    if (j.contains("tools") && !j["tools"].is_null()) {
      check_tools(j["tools"]);
      r.tools = j["tools"];
    }
    if (j.contains("tool_choice") && !j["tool_choice"].is_null()) parse_tool_choice(j["tool_choice"], r);
    if (j.contains("chat_template_kwargs") && j["chat_template_kwargs"].is_object()) {
      const json& k = j["chat_template_kwargs"];
      if (k.contains("enable_thinking")) {
        if (!k["enable_thinking"].is_boolean()) fail("chat_template_kwargs.enable_thinking", "must be a boolean");
        r.enable_thinking = k["enable_thinking"].get<bool>();
      }
    }
    if (j.contains("reasoning_effort") && !j["reasoning_effort"].is_null()) {
      if (!j["reasoning_effort"].is_string()) fail("reasoning_effort", "'reasoning_effort' must be a string");
      const std::string e = j["reasoning_effort"].get<std::string>();
      if (e != "none" && e != "minimal" && e != "low" && e != "medium" && e != "high")
        fail("reasoning_effort", "'reasoning_effort' must be none, minimal, low, medium or high");
      r.enable_thinking = e != "none";
    }
  } else {
    if (!j.contains("prompt")) fail("prompt", "'prompt' is required");
    const json& p = j["prompt"];
    if (p.is_string()) r.prompt = p.get<std::string>();
    else if (p.is_array() && p.size() == 1 && p[0].is_string()) r.prompt = p[0].get<std::string>();
    else fail("prompt", "'prompt' must be a string (or an array holding one string)");
  }
  if (j.contains("stream") && !j["stream"].is_null()) {
    if (!j["stream"].is_boolean()) fail("stream", "'stream' must be a boolean");
    r.stream = j["stream"].get<bool>();
  }
  if (j.contains("stream_options") && j["stream_options"].is_object() && j["stream_options"].contains("include_usage")) {
    if (!j["stream_options"]["include_usage"].is_boolean()) fail("stream_options.include_usage", "must be a boolean");
    r.include_usage = j["stream_options"]["include_usage"].get<bool>();
  }
  for (const char* key : {"max_tokens", "max_completion_tokens"})
    if (j.contains(key) && !j[key].is_null()) r.max_tokens = integer(j[key], key, 1, int64_t(1) << 30);
  if (j.contains("ignore_eos") && !j["ignore_eos"].is_null()) {
    if (!j["ignore_eos"].is_boolean()) fail("ignore_eos", "'ignore_eos' must be a boolean");
    r.ignore_eos = j["ignore_eos"].get<bool>();
  }
  if (j.contains("n") && !j["n"].is_null() && integer(j["n"], "n", 1, 1) != 1) fail("n", "only n = 1 is supported");
  if (j.contains("temperature") && !j["temperature"].is_null())
    r.sampling.temperature = float(number(j["temperature"], "temperature", 0, 2));
  if (j.contains("top_p") && !j["top_p"].is_null()) {
    r.sampling.top_p = float(number(j["top_p"], "top_p", 0, 1));
    if (r.sampling.top_p <= 0) fail("top_p", "'top_p' must be greater than 0");
  }
  if (j.contains("top_k") && !j["top_k"].is_null()) r.sampling.top_k = int(integer(j["top_k"], "top_k", 0, 1 << 20));
  if (j.contains("min_p") && !j["min_p"].is_null()) r.sampling.min_p = float(number(j["min_p"], "min_p", 0, 1));
  if (j.contains("presence_penalty") && !j["presence_penalty"].is_null())
    r.sampling.presence_penalty = float(number(j["presence_penalty"], "presence_penalty", -2, 2));
  if (j.contains("frequency_penalty") && !j["frequency_penalty"].is_null())
    r.sampling.frequency_penalty = float(number(j["frequency_penalty"], "frequency_penalty", -2, 2));
  if (j.contains("repetition_penalty") && !j["repetition_penalty"].is_null())
    r.sampling.repeat_penalty = float(number(j["repetition_penalty"], "repetition_penalty", 0.01, 10));
  if (j.contains("seed") && !j["seed"].is_null()) {
    const int64_t seed = integer(j["seed"], "seed", INT64_MIN, INT64_MAX);
    r.sampling.seed = uint64_t(seed);
    (seed == -1 ? r.seed_random : r.seed_given) = true;
  }
  if (chat) {
    bool want = false;
    if (j.contains("logprobs") && !j["logprobs"].is_null()) {
      if (!j["logprobs"].is_boolean()) fail("logprobs", "'logprobs' must be a boolean");
      want = j["logprobs"].get<bool>();
    }
    if (j.contains("top_logprobs") && !j["top_logprobs"].is_null()) {
      const int64_t n = integer(j["top_logprobs"], "top_logprobs", 0, 20);
      if (!want) fail("top_logprobs", "'top_logprobs' needs 'logprobs': true");
      r.top_logprobs = int(n);
    } else if (want) {
      r.top_logprobs = 0;
    }
  } else if (j.contains("logprobs") && !j["logprobs"].is_null()) {
    r.top_logprobs = int(integer(j["logprobs"], "logprobs", 0, 20));
  }
  if (j.contains("response_format") && !j["response_format"].is_null() && !r.forced_tool)
    parse_response_format(j["response_format"], r);
  if (j.contains("stop") && !j["stop"].is_null()) {
    const json& s = j["stop"];
    if (s.is_string()) r.stop.push_back(s.get<std::string>());
    else if (s.is_array() && s.size() <= 4) {
      for (const json& x : s) {
        if (!x.is_string()) fail("stop", "'stop' entries must be strings");
        r.stop.push_back(x.get<std::string>());
      }
    } else fail("stop", "'stop' must be a string or an array of at most 4 strings");
    for (const auto& x : r.stop)
      if (x.empty()) fail("stop", "'stop' strings must not be empty");
  }
  return r;
}

}  // namespace

std::optional<CompletionRequest> parse_completion_request(const std::string& body, bool chat,
                                                          const SamplingParams& defaults, ApiError* err) {
  try {
    return parse(body, chat, defaults);
  } catch (const Bad& b) {
    *err = b.e;
  } catch (const json::exception& e) {  // a type surprise deep in a field: still the client's fault
    *err = ApiError{400, std::string("malformed request: ") + e.what(), ""};
  }
  return std::nullopt;
}

}  // namespace g4
