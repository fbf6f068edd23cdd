// Copies the tokenizer.ggml.* metadata out of a GGUF file (see gguf_tokenizer.h).
#include "io/gguf_tokenizer.h"

#include "base/error.h"

namespace g4 {

GgufTokenizerData read_gguf_tokenizer(const GgufFile& f) {
  const std::string k = "tokenizer.ggml.";
  GgufTokenizerData t;
  t.model = f.get_string(k + "model");
  if (f.has(k + "pre")) t.pre = f.get_string(k + "pre");
  for (std::string_view s : f.get_string_array(k + "tokens")) t.tokens.emplace_back(s);
  const int64_t n = int64_t(t.tokens.size());
  if (n == 0) throw Error(f.path() + ": metadata '" + k + "tokens' is empty");
  auto check_len = [&](const std::string& key, size_t len) {
    if (int64_t(len) != n)
      throw Error(f.path() + ": metadata '" + key + "' has " + std::to_string(len) + " entries for " +
                  std::to_string(n) + " tokens");
  };
  if (f.has(k + "scores")) {
    for (double s : f.get_float_array(k + "scores")) t.scores.push_back(float(s));
    check_len(k + "scores", t.scores.size());
  }
  if (f.has(k + "token_type")) {
    for (int64_t x : f.get_int_array(k + "token_type", INT32_MIN, INT32_MAX)) t.token_types.push_back(int32_t(x));
    check_len(k + "token_type", t.token_types.size());
  }
  if (f.has(k + "merges"))
    for (std::string_view s : f.get_string_array(k + "merges")) t.merges.emplace_back(s);
  auto id = [&](const char* name, int32_t* out) {
    if (f.has(k + name)) *out = int32_t(f.get_int(k + name, 0, n - 1));
  };
  id("bos_token_id", &t.bos_id);
  id("eos_token_id", &t.eos_id);
  id("eot_token_id", &t.eot_id);
  id("unknown_token_id", &t.unk_id);
  id("padding_token_id", &t.pad_id);
  auto flag = [&](const char* name, bool* out) {
    if (f.has(k + name)) *out = f.get_bool(k + name);
  };
  flag("add_bos_token", &t.add_bos);
  flag("add_eos_token", &t.add_eos);
  flag("add_space_prefix", &t.add_space_prefix);
  return t;
}

}  // namespace g4
