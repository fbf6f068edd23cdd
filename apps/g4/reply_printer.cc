#include "reply_printer.h"

#include "engine/stop_strings.h"

namespace g4 {

ReplyPrinter::ReplyPrinter(const Tokenizer& tok, std::vector<std::string> stops, FILE* out)
    : tok_(tok), dec_(tok, true), stops_(std::move(stops)), out_(out) {
  if (auto id = tok.find("<|channel>")) channel_open_ = *id;
  if (auto id = tok.find("<channel|>")) channel_close_ = *id;
}

bool ReplyPrinter::push(int32_t id) {
  if (stopped_) return false;
  if (id == channel_open_) text_ += "[thinking] ";
  else if (id == channel_close_) text_ += "\n[answer] ";
  else text_ += dec_.push(id);
  emit(false);
  return !stopped_;
}

void ReplyPrinter::finish() {
  if (!stopped_) text_ += dec_.finish();
  emit(true);
}

void ReplyPrinter::emit(bool final) {
  const size_t cut = find_stop(text_, stops_);
  if (cut != std::string::npos) {
    text_.resize(cut);
    stopped_ = true;
  }
  size_t end = text_.size();
  if (!final && !stopped_) end -= std::min(end - printed_, stop_prefix_hold(text_, stops_));
  if (end > printed_ && out_) {
    std::fwrite(text_.data() + printed_, 1, end - printed_, out_);
    std::fflush(out_);
  }
  printed_ = std::max(printed_, end);
}

}  // namespace g4
