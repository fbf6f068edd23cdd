#include "server/logprob_format.h"

#include <algorithm>

namespace g4 {

using nlohmann::json;

namespace {

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(int(c));
  return b;
}

}  // namespace

std::vector<size_t> shown_tokens(const std::vector<PickedToken>& lp, size_t from, size_t to,
                                 const std::vector<int32_t>& stop_ids) {
  std::vector<size_t> out;
  for (size_t i = from; i < std::min(to, lp.size()); ++i)
    if (std::find(stop_ids.begin(), stop_ids.end(), lp[i].id) == stop_ids.end()) out.push_back(i);
  return out;
}

json chat_logprobs(TextCodec& codec, const std::vector<PickedToken>& lp, const std::vector<size_t>& shown) {
  json content = json::array();
  for (size_t i : shown) {
    const PickedToken& p = lp[i];
    const std::string text = codec.token(p.id).text;
    json top = json::array();
    for (const TokenLogprob& t : p.top) {
      const std::string tt = codec.token(t.id).text;
      top.push_back({{"token", tt}, {"logprob", t.logprob}, {"bytes", bytes_of(tt)}});
    }
    content.push_back({{"token", text}, {"logprob", p.logprob}, {"bytes", bytes_of(text)}, {"top_logprobs", top}});
  }
  return content;
}

json completion_logprobs(TextCodec& codec, const std::vector<PickedToken>& lp, const std::vector<size_t>& shown,
                         size_t& offset) {
  json tokens = json::array(), logprobs = json::array(), tops = json::array(), offsets = json::array();
  for (size_t i : shown) {
    const PickedToken& p = lp[i];
    const std::string text = codec.token(p.id).text;
    tokens.push_back(text);
    logprobs.push_back(p.logprob);
    json top = json::object();
    for (const TokenLogprob& t : p.top) {
      const std::string tt = codec.token(t.id).text;
      if (!top.contains(tt)) top[tt] = t.logprob;  // two ids with one text: the likelier one
    }
    tops.push_back(top);
    offsets.push_back(offset);
    offset += text.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", logprobs}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

}  // namespace g4
