// LineReader: the input side of g4 chat. On a terminal it edits lines with libedit (arrow keys, history
// of this session); otherwise (input piped from a file or a test) it reads plain lines with getline and
// prints the prompt itself, so scripts see the same prompts. read_message() joins multi-line input:
// a line ending in a backslash continues on the next line, and a line holding only """ opens a block
// that runs until the next such line.
#pragma once

#include <atomic>
#include <optional>
#include <string>

namespace g4 {

class LineReader {
 public:
  // Line editing when stdin and stdout are both terminals. While `interrupted` is set (by a SIGINT
  // handler installed without SA_RESTART) an editing read ends as at end of input, also when the signal
  // came just before the read began.
  explicit LineReader(const std::atomic<bool>* interrupted = nullptr);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // One line without its newline, or nothing at end of input (or when a read was interrupted).
  std::optional<std::string> read_line(const std::string& prompt);
  // One message: a line, or several joined with '\n' (see above); recorded in the history as a whole.
  std::optional<std::string> read_message(const std::string& prompt, const std::string& more_prompt);
  bool editing() const { return editing_; }

 private:
  bool editing_ = false;
};

}  // namespace g4
