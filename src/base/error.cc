#include "base/error.h"

namespace g4 {

void internal_error(const char* file, int line, const std::string& what) {
  throw Error(std::string("internal error at ") + file + ":" + std::to_string(line) + ": " + what);
}

uint64_t checked_mul(uint64_t a, uint64_t b, const std::string& what) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw Error(what + ": size overflows 64 bits");
  return r;
}

uint64_t checked_add(uint64_t a, uint64_t b, const std::string& what) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) throw Error(what + ": size overflows 64 bits");
  return r;
}

}  // namespace g4
