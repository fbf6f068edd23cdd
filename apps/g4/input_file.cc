#include "input_file.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "base/error.h"

namespace g4 {

std::string read_input(const std::string& path, const std::string& what) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
    if (std::cin.bad()) throw Error("cannot read the " + what + " from standard input");
    return ss.str();
  }
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error("cannot read " + what + " " + path + ": it is a directory");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read " + what + " " + path);
  ss << f.rdbuf();
  if (f.bad()) throw Error("cannot read " + what + " " + path);
  return ss.str();
}

}  // namespace g4
