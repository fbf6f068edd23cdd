// The conversation file of g4 chat's /save and /load: a JSON list of messages in OpenAI form,
// [{"role": "system" | "user" | "assistant", "content": "..."}, ...], which the chat template renders
// and which an OpenAI-style request can send unchanged.
#pragma once

#include <string>

#include "tokenizer/chat_template.h"

namespace g4 {

// Throws g4::Error naming the file when it cannot be written.
void save_chat(const std::string& path, const ChatJson& messages);
// Throws g4::Error naming the file and the message when it is not such a list.
ChatJson load_chat(const std::string& path);

}  // namespace g4
