// UTF-8 classification by the RFC 3629 table of valid byte ranges; see utf8.h.
#include "tokenizer/utf8.h"

namespace g4::utf8 {

Next next(const uint8_t* p, size_t n, uint32_t* cp, int* len) {
  const uint8_t b0 = p[0];
  if (b0 < 0x80) {
    *cp = b0;
    *len = 1;
    return Next::kOk;
  }
  int need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  uint32_t c;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2, c = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3, c = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4, c = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return Next::kInvalid;
  }
  for (int k = 1; k < need; ++k) {
    if (size_t(k) >= n) return Next::kIncomplete;
    const uint8_t b = p[k];
    const uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) return Next::kInvalid;
    c = (c << 6) | (b & 0x3F);
  }
  *cp = c;
  *len = need;
  return Next::kOk;
}

int char_len(std::string_view s, size_t i) {
  uint32_t cp;
  int len;
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + i;
  return next(p, s.size() - i, &cp, &len) == Next::kOk ? len : 1;
}

bool is_valid(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    int len;
    if (next(p + i, s.size() - i, &cp, &len) != Next::kOk) return false;
    i += size_t(len);
  }
  return true;
}

void append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

bool is_py_space(uint32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
  switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

std::string_view py_strip(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t b = 0, e = s.size();
  while (b < e) {
    uint32_t cp;
    int len;
    if (next(p + b, e - b, &cp, &len) != Next::kOk || !is_py_space(cp)) break;
    b += size_t(len);
  }
  while (e > b) {
    // Step back to the start of the last character (continuation bytes are 10xxxxxx).
    size_t s0 = e - 1;
    while (s0 > b && (p[s0] & 0xC0) == 0x80 && e - s0 < 4) --s0;
    uint32_t cp;
    int len;
    if (next(p + s0, e - s0, &cp, &len) != Next::kOk || size_t(len) != e - s0 || !is_py_space(cp)) break;
    e = s0;
  }
  return s.substr(b, e - b);
}

}  // namespace g4::utf8
