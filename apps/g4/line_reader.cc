#include "line_reader.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#ifdef G4_HAVE_LIBEDIT
#include <editline/readline.h>
#else
// Without libedit the reader never edits; these stand-ins are never called.
static char* readline(const char*) { return nullptr; }
static void add_history(const char*) {}
static void using_history() {}
static void clear_history() {}
#endif

namespace g4 {

#ifdef G4_HAVE_LIBEDIT
constexpr bool kHaveLibedit = true;
#else
constexpr bool kHaveLibedit = false;
#endif

LineReader::LineReader() : editing_(kHaveLibedit && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
  if (editing_) using_history();
}

LineReader::~LineReader() {
  if (editing_) clear_history();
}

std::optional<std::string> LineReader::read_line(const std::string& prompt) {
  if (editing_) {
    std::fflush(stdout);
    char* s = readline(prompt.c_str());
    if (!s) return std::nullopt;
    std::string line(s);
    std::free(s);
    return line;
  }
  std::fputs(prompt.c_str(), stdout);
  std::fflush(stdout);
  std::string line;
  if (!std::getline(std::cin, line)) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::optional<std::string> LineReader::read_message(const std::string& prompt, const std::string& more_prompt) {
  std::optional<std::string> first = read_line(prompt);
  if (!first) return std::nullopt;
  std::string msg;
  if (*first == "\"\"\"") {
    // A block: every line up to the closing """ (end of input closes it too).
    bool any = false;
    while (std::optional<std::string> l = read_line(more_prompt)) {
      if (*l == "\"\"\"") break;
      if (any) msg += '\n';
      msg += *l;
      any = true;
    }
  } else {
    std::string line = *first;
    while (!line.empty() && line.back() == '\\') {
      line.pop_back();
      msg += line + '\n';
      std::optional<std::string> l = read_line(more_prompt);
      if (!l) {
        line.clear();
        break;
      }
      line = *l;
    }
    msg += line;
  }
  if (editing_ && !msg.empty()) add_history(msg.c_str());
  return msg;
}

}  // namespace g4
