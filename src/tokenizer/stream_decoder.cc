// See stream_decoder.h.
#include "tokenizer/stream_decoder.h"

#include "tokenizer/utf8.h"

namespace g4 {

void StreamDecoder::drain(std::string& out, bool final) {
  size_t i = 0;
  const auto* p = reinterpret_cast<const uint8_t*>(pending_.data());
  while (i < pending_.size()) {
    uint32_t cp;
    int len;
    const utf8::Next r = utf8::next(p + i, pending_.size() - i, &cp, &len);
    if (r == utf8::Next::kOk) {
      out.append(pending_, i, size_t(len));
      i += size_t(len);
    } else if (r == utf8::Next::kIncomplete && !final) {
      break;
    } else {
      out += utf8::kReplacement;
      ++i;
    }
  }
  pending_.erase(0, i);
}

std::string StreamDecoder::push(int32_t id) {
  std::string out;
  const int b = tok_->byte_value(id);  // validates id
  if (b >= 0) {
    pending_ += char(b);
    drain(out, false);
    return out;
  }
  if (skip_special_ && tok_->type(id) == TokenType::kControl) return out;
  drain(out, true);
  out += tok_->display_piece(id);
  return out;
}

std::string StreamDecoder::finish() {
  std::string out;
  drain(out, true);
  return out;
}

}  // namespace g4
