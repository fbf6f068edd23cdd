// Log probabilities in the OpenAI reply shapes. Tokens are shown as the codec decodes them alone (a byte
// token: its byte; `bytes` always holds the exact bytes, `token` may carry U+FFFD where the bytes are
// not UTF-8 on their own). Stop tokens are left out, as the reply's text leaves them out.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "engine/token_pick.h"
#include "server/text_codec.h"

namespace g4 {

// Which of tokens[from, to) a reply shows: all but stop tokens.
std::vector<size_t> shown_tokens(const std::vector<PickedToken>& lp, size_t from, size_t to,
                                 const std::vector<int32_t>& stop_ids);

// Chat: the entries of choices[].logprobs.content for `shown`:
// [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}].
nlohmann::json chat_logprobs(TextCodec& codec, const std::vector<PickedToken>& lp, const std::vector<size_t>& shown);

// Completions (legacy): {tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}, the
// offsets counted in bytes from `offset` (the length of the text already sent). Advances `offset`.
nlohmann::json completion_logprobs(TextCodec& codec, const std::vector<PickedToken>& lp,
                                   const std::vector<size_t>& shown, size_t& offset);

}  // namespace g4
