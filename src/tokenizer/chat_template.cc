// Native rendering of google-gemma-4-31B-it.jinja. Each function mirrors one macro of the template and keeps
// its quirks (what is trimmed, where commas go, dictsort key order, Python str() of non-strings), because the
// goal is byte equality with the Jinja rendering, not a cleaner format.
#include "tokenizer/chat_template.h"

#include <set>

#include "base/error.h"
#include "tokenizer/py_value.h"
#include "tokenizer/utf8.h"

namespace g4 {

namespace {

using py::Json;
constexpr const char* kQ = "<|\"|>";  // Gemma 4's string delimiter token

std::string trim(const std::string& s) { return std::string(utf8::py_strip(s)); }
std::string trim_value(const Json* v) { return trim(py::str_or_empty(v)); }

std::string format_argument(const Json& a, bool escape_keys) {
  if (a.is_string()) return kQ + a.get<std::string>() + kQ;
  if (a.is_boolean()) return a.get<bool>() ? "true" : "false";
  if (a.is_object()) {
    std::string out = "{";
    bool first = true;
    for (const auto& [k, v] : py::dictsort(a, "argument")) {
      if (!first) out += ",";
      first = false;
      out += escape_keys ? kQ + k + kQ : k;
      out += ":" + format_argument(*v, escape_keys);
    }
    return out + "}";
  }
  if (a.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < a.size(); ++i) out += (i ? "," : "") + format_argument(a[i], escape_keys);
    return out + "]";
  }
  return py::str(a);
}

std::string quoted_list(const Json& v, const char* what) {
  std::string out;
  const std::vector<Json> items = py::iterate(v, what);
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ",";
    out += kQ;
    out += py::str(items[i]);
    out += kQ;
  }
  return out;
}

void format_parameters(const Json& properties, std::string& out) {
  static const std::set<std::string> kStandard = {"description", "type", "properties", "required", "nullable"};
  bool found_first = false;
  for (const auto& [key, vp] : py::dictsort(properties, "tool parameter properties")) {
    if (kStandard.count(key)) continue;
    const Json& value = *vp;
    bool add_comma = false;
    auto comma = [&] {
      if (add_comma) out += ",";
      else add_comma = true;
    };
    if (found_first) out += ",";
    found_first = true;
    out += key + ":{";
    if (const Json* d = py::get(value, "description"); py::truthy(d)) {
      out += std::string("description:") + kQ + py::str(*d) + kQ;
      add_comma = true;
    }
    const std::string type = py::upper(py::get(value, "type"));
    if (type == "STRING") {
      if (const Json* e = py::get(value, "enum"); py::truthy(e)) {
        comma();
        out += "enum:" + format_argument(*e, true);
      }
    } else if (type == "ARRAY") {
      const Json* items = py::get(value, "items");
      if (items && items->is_object() && !items->empty()) {
        comma();
        out += "items:{";
        bool ff = false;
        for (const auto& [ik, iv] : py::dictsort(*items, "items")) {
          if (iv->is_null()) continue;
          if (ff) out += ",";
          ff = true;
          if (ik == "properties") {
            out += "properties:{";
            if (iv->is_object()) format_parameters(*iv, out);
            out += "}";
          } else if (ik == "required") {
            out += "required:[" + quoted_list(*iv, "items.required") + "]";
          } else if (ik == "type") {
            if (iv->is_string()) {
              out += "type:" + format_argument(Json(py::upper(iv)), true);
            } else {
              Json ups = Json::array();
              for (const Json& t : py::iterate(*iv, "items.type")) ups.push_back(py::upper(&t));
              out += "type:" + format_argument(ups, true);
            }
          } else {
            out += ik + ":" + format_argument(*iv, true);
          }
        }
        out += "}";
      }
    }
    if (py::truthy(py::get(value, "nullable"))) {
      comma();
      out += "nullable:true";
    }
    if (type == "OBJECT") {
      const Json* props = py::get(value, "properties");
      if (props && props->is_object()) {
        comma();
        out += "properties:{";
        format_parameters(*props, out);
        out += "}";
      } else if (value.is_object()) {
        comma();
        out += "properties:{";
        format_parameters(value, out);
        out += "}";
      }
      if (const Json* r = py::get(value, "required"); py::truthy(r)) {
        comma();
        out += "required:[" + quoted_list(*r, "required") + "]";
      }
    }
    comma();
    out += std::string("type:") + kQ + type + kQ + "}";
  }
}

std::string format_function_declaration(const Json& tool) {
  const Json* fn = py::get(tool, "function");
  if (!fn) throw Error("chat template: a tool has no \"function\"");
  std::string out = "declaration:" + py::str_or_empty(py::get(*fn, "name")) + "{description:" + kQ +
                    py::str_or_empty(py::get(*fn, "description")) + kQ;
  const Json* params = py::get(*fn, "parameters");
  if (py::truthy(params)) {
    out += ",parameters:{";
    if (const Json* p = py::get(*params, "properties"); py::truthy(p)) {
      out += "properties:{";
      format_parameters(*p, out);
      out += "},";
    }
    if (const Json* r = py::get(*params, "required"); py::truthy(r)) out += "required:[" + quoted_list(*r, "required") + "],";
    if (const Json* t = py::get(*params, "type"); py::truthy(t)) out += std::string("type:") + kQ + py::upper(t) + kQ + "}";
  }
  if (fn->is_object() && fn->contains("response")) {
    const Json& rd = (*fn)["response"];
    out += ",response:{";
    if (const Json* d = py::get(rd, "description"); py::truthy(d)) out += std::string("description:") + kQ + py::str(*d) + kQ + ",";
    if (const Json* t = py::get(rd, "type"); py::upper(t) == "OBJECT") out += std::string("type:") + kQ + py::upper(t) + kQ + "}";
  }
  return out + "}";
}

std::string strip_thinking(const std::string& text) {
  std::string result;
  size_t start = 0;
  while (true) {  // Python: for part in text.split('<channel|>')
    const size_t end = text.find("<channel|>", start);
    const std::string part = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    const size_t open = part.find("<|channel>");
    result += open == std::string::npos ? part : part.substr(0, open);
    if (end == std::string::npos) break;
    start = end + 10;
  }
  return trim(result);
}

std::string tool_response_block(const Json& name, const Json& response) {
  if (!name.is_string()) throw Error("chat template: a tool response has no tool name (give \"name\" or a matching tool_call_id)");
  std::string out = "<|tool_response>response:" + name.get<std::string>() + "{";
  if (response.is_object()) {
    bool first = true;
    for (const auto& [k, v] : py::dictsort(response, "tool response")) {
      out += (first ? "" : ",") + k + ":" + format_argument(*v, false);
      first = false;
    }
  } else {
    out += "value:" + format_argument(response, false);
  }
  return out + "}<tool_response|>";
}

const std::string& role_of(const Json& m) {
  const Json* r = py::get(m, "role");
  if (!r || !r->is_string()) throw Error("chat template: every message needs a string \"role\"");
  return r->get_ref<const std::string&>();
}

}  // namespace

std::string render_gemma4_chat(const ChatJson& messages, const ChatOptions& opt) {
  if (!messages.is_array() || messages.empty()) throw Error("chat template: messages must be a non-empty list");
  std::string out = opt.bos_token;
  std::string prev_type;  // ns.prev_message_type; "" is None
  size_t first = 0;
  const bool tools = py::truthy(&opt.tools);
  const std::string& role0 = role_of(messages[0]);
  const bool system_first = role0 == "system" || role0 == "developer";
  if (opt.enable_thinking || tools || system_first) {
    out += "<|turn>system\n";
    if (opt.enable_thinking) {
      out += "<|think|>\n";
      prev_type = "think";
    }
    if (system_first) {
      out += trim_value(py::get(messages[0], "content"));
      first = 1;
    }
    if (tools) {
      for (const Json& tool : py::iterate(opt.tools, "tools")) out += "<|tool>" + trim(format_function_declaration(tool)) + "<tool|>";
      prev_type = "tool";
    }
    out += "<turn|>\n";
  }
  const size_t n = messages.size();
  ptrdiff_t last_user = -1;
  for (size_t i = first; i < n; ++i)
    if (role_of(messages[i]) == "user") last_user = ptrdiff_t(i);

  for (size_t i = first; i < n; ++i) {
    const Json& msg = messages[i];
    const std::string& mrole = role_of(msg);
    if (mrole == "tool") continue;  // emitted by the forward scan of the assistant message before it
    prev_type.clear();
    const std::string role = mrole == "assistant" ? "model" : mrole;
    std::string prev_nt;  // role of the previous non-tool message
    for (size_t j = i; j-- > first;) {
      if (role_of(messages[j]) != "tool") {
        prev_nt = role_of(messages[j]);
        break;
      }
    }
    if (!(role == "model" && prev_nt == "assistant")) out += "<|turn>" + role + "\n";

    const Json* tool_calls = py::get(msg, "tool_calls");
    const Json* thinking = py::get(msg, "reasoning");
    if (!py::truthy(thinking)) thinking = py::get(msg, "reasoning_content");
    if (py::truthy(thinking) && ptrdiff_t(i) > last_user && py::truthy(tool_calls)) {
      if (!thinking->is_string()) throw Error("chat template: reasoning must be a string");
      out += "<|channel>thought\n" + thinking->get<std::string>() + "\n<channel|>";
    }
    if (py::truthy(tool_calls)) {
      for (const Json& tc : py::iterate(*tool_calls, "tool_calls")) {
        const Json* fn = py::get(tc, "function");
        const Json* name = fn ? py::get(*fn, "name") : nullptr;
        if (!name || !name->is_string()) throw Error("chat template: a tool call needs function.name");
        out += "<|tool_call>call:" + name->get<std::string>() + "{";
        const Json* args = py::get(*fn, "arguments");
        if (args && args->is_object()) {
          bool f = true;
          for (const auto& [k, v] : py::dictsort(*args, "arguments")) {
            out += (f ? "" : ",") + k + ":" + format_argument(*v, false);
            f = false;
          }
        } else if (args && args->is_string()) {
          out += args->get<std::string>();
        }
        out += "}<tool_call|>";
      }
      prev_type = "tool_call";
    }
    bool responded = false;
    if (const Json* trs = py::get(msg, "tool_responses"); py::truthy(trs)) {
      for (const Json& tr : py::iterate(*trs, "tool_responses")) {
        const Json* nm = py::get(tr, "name");
        const Json* resp = py::get(tr, "response");
        out += tool_response_block(nm ? *nm : Json("unknown"), resp ? *resp : Json());
        responded = true;
        prev_type = "tool_response";
      }
    } else if (py::truthy(tool_calls)) {
      for (size_t k = i + 1; k < n && role_of(messages[k]) == "tool"; ++k) {
        const Json& follow = messages[k];
        // follow.get('name') | default('unknown'): a missing name is None, not 'unknown'.
        const Json* fname = py::get(follow, "name");
        Json name = fname ? *fname : Json();
        const Json* fid = py::get(follow, "tool_call_id");
        for (const Json& tc : py::iterate(*tool_calls, "tool_calls")) {
          const Json* tid = py::get(tc, "id");
          const bool same = (tid ? *tid : Json()) == (fid ? *fid : Json());
          if (same) name = tc["function"]["name"];
        }
        const Json* body = py::get(follow, "content");
        if (body && body->is_array()) {
          std::string s;
          for (const Json& part : *body)
            if (const Json* t = py::get(part, "type"); t && *t == "text")
              if (const Json* tx = py::get(part, "text"); tx) s += py::str(*tx);
          out += tool_response_block(name, Json(s));
        } else {
          out += tool_response_block(name, body ? *body : Json());
        }
        responded = true;
        prev_type = "tool_response";
      }
    }
    const Json* content = py::get(msg, "content");
    if (content && content->is_string()) {
      out += role == "model" ? strip_thinking(content->get<std::string>()) : trim(content->get<std::string>());
    } else if (content && (content->is_array() || content->is_object())) {
      for (const Json& item : py::iterate(*content, "content")) {
        const std::string type = py::str_or_empty(py::get(item, "type"));
        if (type == "text") {
          const std::string text = py::str_or_empty(py::get(item, "text"));
          out += role == "model" ? strip_thinking(text) : trim(text);
        } else if (type == "image" || type == "audio" || type == "video") {
          out += "<|" + type + "|>";
          prev_type = type;
        }
      }
    }
    if (prev_type == "tool_call" && !responded) out += "<|tool_response>";
    else if (!(responded && !py::truthy(content))) out += "<turn|>\n";
  }
  if (opt.add_generation_prompt && prev_type != "tool_response" && prev_type != "tool_call") {
    out += "<|turn>model\n";
    if (!opt.enable_thinking) out += "<|channel>thought\n<channel|>";
  }
  return out;
}

}  // namespace g4
