#include "token_list.h"

#include <climits>

#include "base/error.h"

namespace g4 {

namespace {
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
}  // namespace

std::vector<int32_t> parse_token_list(const std::string& s, const std::string& what) {
  std::vector<int32_t> out;
  auto bad = [&](const std::string& item) {
    return Error(what + ": '" + item + "' is not a token id (expected non-negative integers separated by commas or spaces)");
  };
  size_t i = 0;
  while (i < s.size() && is_space(s[i])) ++i;
  if (i == s.size()) return out;
  while (true) {
    size_t j = i;
    while (j < s.size() && s[j] != ',' && !is_space(s[j])) ++j;
    const std::string item = s.substr(i, j - i);
    if (item.empty() || item.size() > 10 || item.find_first_not_of("0123456789") != std::string::npos) throw bad(item);
    const int64_t v = std::stoll(item);
    if (v > INT32_MAX) throw Error(what + ": " + item + " is too large for a token id");
    out.push_back(int32_t(v));
    // One separator: whitespace with at most one comma in it.
    bool comma = false;
    for (; j < s.size() && (is_space(s[j]) || (s[j] == ',' && !comma)); ++j)
      if (s[j] == ',') comma = true;
    if (j == s.size()) {
      if (comma) throw bad("");
      return out;
    }
    i = j;
  }
}

}  // namespace g4
