#include "chat_file.h"

#include <fstream>

#include "base/error.h"

namespace g4 {

void save_chat(const std::string& path, const ChatJson& messages) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw Error("cannot write " + path);
  f << messages.dump(2) << "\n";
  f.close();
  if (!f) throw Error("cannot write " + path);
}

ChatJson load_chat(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read " + path);
  ChatJson j;
  try {
    j = ChatJson::parse(f);
  } catch (const ChatJson::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
  if (!j.is_array()) throw Error(path + ": not a JSON list of messages");
  if (j.empty()) throw Error(path + ": the conversation is empty");
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string at = path + ": message " + std::to_string(i);
    const ChatJson& m = j[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      throw Error(at + " is not an object with string \"role\" and \"content\"");
    const std::string role = m["role"];
    if (role != "system" && role != "user" && role != "assistant")
      throw Error(at + ": role '" + role + "' is not system, user or assistant");
    if (role == "system" && i != 0) throw Error(at + ": a system message can only come first");
  }
  return j;
}

}  // namespace g4
