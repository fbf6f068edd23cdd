// Error reporting. Anything that comes from outside the process (files, metadata, flags, requests)
// is validated and, when wrong, throws g4::Error with one line a user can act on. Apps catch it at
// the top and exit non-zero. G4_CHECK guards internal invariants and is always on.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace g4 {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

[[noreturn]] void internal_error(const char* file, int line, const std::string& what);

// a * b, throwing Error(what) instead of overflowing. Sizes computed from untrusted shapes go through here.
uint64_t checked_mul(uint64_t a, uint64_t b, const std::string& what);
uint64_t checked_add(uint64_t a, uint64_t b, const std::string& what);

}  // namespace g4

#define G4_CHECK(cond, msg)                                   \
  do {                                                        \
    if (!(cond)) ::g4::internal_error(__FILE__, __LINE__, msg); \
  } while (0)
