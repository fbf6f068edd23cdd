#include "token_list.h"

#include "base/error.h"

namespace g4 {

std::vector<int32_t> parse_token_list(const std::string& s) {
  std::vector<int32_t> out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string item = s.substr(i, j - i);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (item.empty() || item.size() > 10 || item.find_first_not_of("0123456789") != std::string::npos)
      throw Error("--tokens: '" + item + "' is not a token id (expected comma-separated non-negative integers)");
    const int64_t v = std::stoll(item);
    if (v > INT32_MAX) throw Error("--tokens: " + item + " is too large for a token id");
    out.push_back(int32_t(v));
    i = j + 1;
  }
  return out;
}

}  // namespace g4
