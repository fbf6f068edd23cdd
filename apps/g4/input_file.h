// Reads the whole of a file named on the command line; "-" reads standard input.
#pragma once

#include <string>

namespace g4 {

// Throws g4::Error "cannot read WHAT PATH" (what: "prompt file", ...) when it cannot be opened or read.
std::string read_input(const std::string& path, const std::string& what);

}  // namespace g4
