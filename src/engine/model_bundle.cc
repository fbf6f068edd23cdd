#include "engine/model_bundle.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/gguf.h"
#include "io/gguf_tokenizer.h"
#include "io/mapped_file.h"
#include "tokenizer/chat_template.h"

namespace g4 {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool is_gguf(const std::string& path) {
  std::error_code ec;
  return !fs::is_directory(path, ec) && is_gguf_file(path);
}

fs::path model_dir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) ? fs::path(path) : fs::path(path).parent_path();
}

bool is_gemma4_control_piece(const std::string& piece) {
  for (const SpecialTokenSlot& t : kGemma4SpecialTokens)
    if (piece == t.piece) return true;
  return false;
}

Tokenizer tokenizer_from_gguf(const std::string& path) {
  GgufFile f(path);
  GgufTokenizerData d = read_gguf_tokenizer(f);
  if (d.model != "gemma4" && d.model != "llama")
    throw Error(path + ": tokenizer.ggml.model '" + d.model + "' is not a SentencePiece-style BPE vocabulary");
  if (d.merges.empty()) throw Error(path + ": the GGUF vocabulary has no merges (tokenizer.ggml.merges)");
  TokenizerModel m;
  m.pieces = d.tokens;
  m.types.reserve(d.tokens.size());
  for (size_t i = 0; i < d.tokens.size(); ++i) {
    const int t = d.token_types.empty() ? 1 : d.token_types[i];
    m.types.push_back(t >= 1 && t <= 6 ? TokenType(t) : TokenType::kNormal);
    // llama.cpp's converter types most of Gemma 4's control tokens (<|turn>, <turn|>, <|think|>, ...) as
    // normal or user-defined tokens; Gemma 4's tokenizer.json has them special. Trust their text.
    if (d.model == "gemma4" && is_gemma4_control_piece(d.tokens[i])) m.types.back() = TokenType::kControl;
  }
  for (const std::string& mg : d.merges) {
    const size_t sp = mg.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 >= mg.size())
      throw Error(path + ": merge '" + mg + "' is not two pieces separated by one space");
    m.merges.emplace_back(mg.substr(0, sp), mg.substr(sp + 1));
  }
  m.prepend_metaspace = d.add_space_prefix;
  m.unk_id = d.unk_id;
  m.bos_id = d.bos_id;
  if (d.eos_id >= 0) m.eos_ids.push_back(d.eos_id);
  if (d.eot_id >= 0) m.eos_ids.push_back(d.eot_id);
  return Tokenizer(std::move(m));
}

// The sampling defaults llama.cpp's converter copies out of generation_config.json (general.sampling.*),
// read as load() reads that file: a key left out takes transformers' default. No key: greedy.
SamplingParams gguf_sampling(const std::string& path) {
  GgufFile f(path);
  SamplingParams p;
  static const char* kKeys[] = {"temp", "top_k", "top_p", "min_p", "penalty_repeat", "penalty_last_n"};
  bool any = false;
  for (const char* k : kKeys) any = any || f.has(std::string("general.sampling.") + k);
  if (!any) return p;
  auto num = [&](const char* k, float def) {
    const std::string key = std::string("general.sampling.") + k;
    return f.has(key) ? float(f.get_float(key)) : def;
  };
  p.temperature = num("temp", 1.0f);
  // llama.cpp reads top_k <= 0 as off and penalty_last_n -1 as the whole context.
  p.top_k = f.has("general.sampling.top_k")
                ? int(std::max<int64_t>(0, f.get_int("general.sampling.top_k", INT32_MIN, INT32_MAX)))
                : 0;
  p.top_p = num("top_p", 1.0f);
  p.min_p = num("min_p", 0.0f);
  p.repeat_penalty = num("penalty_repeat", 1.0f);
  if (f.has("general.sampling.penalty_last_n"))
    p.repeat_last_n = f.get_int("general.sampling.penalty_last_n", -1, INT32_MAX);
  if (p.repeat_last_n < 0) p.repeat_last_n = INT32_MAX;
  try {
    validate(p);
  } catch (const Error& e) {
    throw Error(path + ": general.sampling.*: " + e.what());
  }
  return p;
}

void add_ids(const json& v, std::vector<int32_t>* out) {
  if (v.is_number_integer()) out->push_back(v.get<int32_t>());
  else if (v.is_array())
    for (const json& x : v)
      if (x.is_number_integer()) out->push_back(x.get<int32_t>());
}

}  // namespace

Tokenizer load_tokenizer(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error("model path " + path + " does not exist");
  if (is_gguf(path)) return tokenizer_from_gguf(path);
  const fs::path tj = model_dir(path) / "tokenizer.json";
  if (!fs::exists(tj, ec)) throw Error("no tokenizer.json in " + model_dir(path).string());
  return Tokenizer::from_json_file(tj.string());
}

ModelBundle ModelBundle::load(const std::string& path, const std::string& backend_name, const LoadOptions& opts,
                              int threads) {
  const auto t0 = std::chrono::steady_clock::now();
  ModelBundle b;
  b.path = path;
  b.name = fs::path(path).filename().string();
  if (b.name.empty()) b.name = fs::path(path).parent_path().filename().string();
  b.tokenizer = std::make_unique<Tokenizer>(load_tokenizer(path));
  b.backend = make_backend(backend_name, threads);
  b.model = Model::load(path, *b.backend, opts);
  const int32_t V = b.model->spec().vocab_size;
  if (b.tokenizer->vocab_size() > V)
    throw Error(path + ": the tokenizer has " + std::to_string(b.tokenizer->vocab_size()) +
                " tokens but the model's vocabulary is " + std::to_string(V));

  // Stop set: config eos ids, generation_config eos ids, and the Gemma 4 turn/tool-response closers.
  for (int id : b.model->spec().eos_ids) b.stop_ids.push_back(id);
  const fs::path gc = model_dir(path) / "generation_config.json";
  std::error_code ec;
  if (is_gguf(path)) {
    b.sampling = gguf_sampling(path);
  } else if (fs::exists(gc, ec)) {
    json g;
    try {
      g = json::parse(read_text_file(gc.string()));
    } catch (const json::exception& e) {
      throw Error(gc.string() + ": not valid JSON: " + e.what());
    }
    if (!g.is_object()) throw Error(gc.string() + ": not a JSON object");
    if (g.contains("eos_token_id")) add_ids(g["eos_token_id"], &b.stop_ids);
    auto num = [&](const char* k, float def) {
      return g.contains(k) && g[k].is_number() ? g[k].get<float>() : def;
    };
    b.sampling.temperature = num("temperature", 1.0f);
    b.sampling.top_k = g.contains("top_k") && g["top_k"].is_number_integer() ? g["top_k"].get<int>() : 0;
    b.sampling.top_p = num("top_p", 1.0f);
    b.sampling.min_p = num("min_p", 0.0f);
    b.sampling.repeat_penalty = num("repetition_penalty", 1.0f);
    if (g.contains("do_sample") && g["do_sample"].is_boolean() && !g["do_sample"].get<bool>()) b.sampling.temperature = 0;
    try {
      validate(b.sampling);
    } catch (const Error& e) {
      throw Error(gc.string() + ": " + e.what());
    }
  }
  for (const char* piece : {"<turn|>", "<|tool_response>"})
    if (auto id = b.tokenizer->find(piece)) b.stop_ids.push_back(*id);
  std::sort(b.stop_ids.begin(), b.stop_ids.end());
  b.stop_ids.erase(std::unique(b.stop_ids.begin(), b.stop_ids.end()), b.stop_ids.end());
  b.stop_ids.erase(std::remove_if(b.stop_ids.begin(), b.stop_ids.end(), [V](int32_t id) { return id < 0 || id >= V; }),
                   b.stop_ids.end());
  b.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return b;
}

}  // namespace g4
