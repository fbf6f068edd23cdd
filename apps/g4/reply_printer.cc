#include "reply_printer.h"

#include "engine/stop_strings.h"

namespace g4 {

namespace {
const std::string kChannelName = "thought\n";
}  // namespace

ReplyPrinter::ReplyPrinter(const Tokenizer& tok, std::vector<std::string> stops, FILE* out)
    : tok_(tok), dec_(tok, true), stops_(std::move(stops)), out_(out) {
  if (auto id = tok.find("<|channel>")) channel_open_ = *id;
  if (auto id = tok.find("<channel|>")) channel_close_ = *id;
}

bool ReplyPrinter::push(int32_t id) {
  if (stopped_) return false;
  if (id == channel_open_) {
    text_ += "[thinking] ";
    in_header_ = true;
    header_.clear();
  } else if (id == channel_close_) {
    end_channel_header();
    text_ += "\n[answer] ";
  } else {
    const std::string piece = dec_.push(id);
    text_ += in_header_ ? take_channel_header(piece) : piece;
  }
  emit(false);
  return !stopped_;
}

std::string ReplyPrinter::take_channel_header(const std::string& piece) {
  header_ += piece;
  if (header_.size() < kChannelName.size() && kChannelName.compare(0, header_.size(), header_) == 0) return "";
  in_header_ = false;
  if (header_.compare(0, kChannelName.size(), kChannelName) == 0) return header_.substr(kChannelName.size());
  return header_;
}

void ReplyPrinter::end_channel_header() {
  // A block that ends while its text could still be the name ("thought" and nothing else): drop that text.
  in_header_ = false;
  header_.clear();
}

void ReplyPrinter::finish() {
  if (!stopped_) {
    const std::string tail = dec_.finish();
    text_ += in_header_ ? take_channel_header(tail) : tail;
    end_channel_header();
  }
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
