// in_range(lo, hi): a CLI11 validator for numeric flags whose messages say what is wrong with the value:
// "'abc' is not a number", "'1.5' is not a whole number", "'5' is out of range (16 to 1048576)".
// (CLI::Range calls every unparsable value "not in range", and lets "nan" through a float range.)
#pragma once

#include <CLI/CLI.hpp>
#include <sstream>
#include <string>
#include <type_traits>

namespace g4 {

template <typename T>
CLI::Validator in_range(T lo, T hi) {
  std::ostringstream range;
  range << lo << " to " << hi;
  return CLI::Validator(
      [lo, hi, r = range.str()](std::string& s) -> std::string {
        T v{};
        if (!CLI::detail::lexical_cast(s, v))
          return "'" + s + "' is not " + (std::is_integral_v<T> ? "a whole number" : "a number");
        if (!(v >= lo && v <= hi)) return "'" + s + "' is out of range (" + r + ")";
        return "";
      },
      "[" + range.str() + "]");  // help shows e.g. INT:[16 to 1048576]
}

}  // namespace g4
