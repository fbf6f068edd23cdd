// Parses token ids as g4 tokenize prints them ("2 17 99") or comma-separated ("2,17,99"): items are
// separated by commas, whitespace (spaces, tabs, newlines) or both. Throws g4::Error, naming `what`
// (the flag or file), on anything else (empty items between commas, signs, junk, ids above 2^31-1).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace g4 {

std::vector<int32_t> parse_token_list(const std::string& s, const std::string& what = "--tokens");

}  // namespace g4
