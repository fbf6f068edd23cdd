// UTF-8 helpers shared by the tokenizer, the streaming detokenizer and the chat template. Validity follows
// RFC 3629 (no overlongs, no surrogates, nothing above U+10FFFF), the same rule Rust's str and Python use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace g4::utf8 {

enum class Next { kOk, kIncomplete, kInvalid };

// Classifies the bytes at p[0..n): a complete valid character (*len bytes, code point *cp), a valid but
// unfinished prefix (more bytes could complete it), or invalid at p[0]. n must be >= 1.
Next next(const uint8_t* p, size_t n, uint32_t* cp, int* len);

// Length in bytes of the character at s[i] when valid, else 1 (an invalid byte is its own "character").
int char_len(std::string_view s, size_t i);

bool is_valid(std::string_view s);
void append(std::string& out, uint32_t cp);

// Python's str.isspace() (what Jinja's trim filter strips): Unicode White_Space plus \x1c-\x1f.
bool is_py_space(uint32_t cp);
// Python str.strip() with no arguments.
std::string_view py_strip(std::string_view s);

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
inline constexpr std::string_view kMetaspace = "\xE2\x96\x81";    // U+2581 '▁'

}  // namespace g4::utf8
