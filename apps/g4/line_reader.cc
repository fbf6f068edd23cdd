#include "line_reader.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#ifdef G4_HAVE_LIBEDIT
#include <editline/readline.h>
#else
// Without libedit the reader never edits; these stand-ins are never called.
static int (*rl_getc_function)(FILE*) = nullptr;
static int rl_catch_signals = 0;
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

namespace {

const std::atomic<bool>* g_reader_interrupted = nullptr;

// libedit's key reader: one byte from the terminal; end of input once interrupted.
int read_key(FILE* f) {
  while (!(g_reader_interrupted && *g_reader_interrupted)) {
    unsigned char c;
    const ssize_t n = ::read(fileno(f), &c, 1);
    if (n == 1) return c;
    if (n == 0 || errno != EINTR) break;
  }
  return EOF;
}

}  // namespace

LineReader::LineReader(const std::atomic<bool>* interrupted)
    : editing_(kHaveLibedit && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
  if (!editing_) return;
  g_reader_interrupted = interrupted;
  rl_getc_function = read_key;
  rl_catch_signals = 0;  // g4's own SIGINT handler stays in place (libedit's would re-raise it to the group)
  using_history();
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
