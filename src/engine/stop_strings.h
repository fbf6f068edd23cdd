// Stop strings over streamed text: where the first one starts, and how much of the text's tail must
// be held back because the next token may complete one. Shared by the CLI and the server.
#pragma once

#include <string>
#include <vector>

namespace g4 {

// Earliest position where any stop string starts in text, or std::string::npos.
size_t find_stop(const std::string& text, const std::vector<std::string>& stops);

// Length of the longest suffix of text that is a proper prefix of some stop string.
size_t stop_prefix_hold(const std::string& text, const std::vector<std::string>& stops);

// Bytes of a trailing incomplete UTF-8 sequence (held back so every chunk sent is valid UTF-8).
size_t utf8_incomplete_tail(const std::string& s);

}  // namespace g4
