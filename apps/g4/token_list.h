// Parses "2,17,99" into token ids. Throws g4::Error on anything else (empty items, signs, junk).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace g4 {

std::vector<int32_t> parse_token_list(const std::string& s);

}  // namespace g4
