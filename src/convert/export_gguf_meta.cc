#include "convert/export_gguf_meta.h"

#include <algorithm>
#include <set>

#include "base/error.h"
#include "io/mapped_file.h"

namespace g4 {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json parse_file(const fs::path& p) {
  try {
    return json::parse(read_text_file(p.string(), size_t(1) << 30));
  } catch (const json::exception& e) {
    throw Error(p.string() + ": not valid JSON: " + e.what());
  }
}

bool is_byte_piece(const std::string& s) {
  return s.size() == 6 && s.rfind("<0x", 0) == 0 && s[5] == '>' && std::isxdigit((unsigned char)s[3]) &&
         std::isxdigit((unsigned char)s[4]);
}

}  // namespace

GgufVocab read_vocab_for_gguf(const std::string& path, int64_t n_rows) {
  const json t = parse_file(path);
  if (!t.is_object() || !t.contains("model") || !t["model"].is_object() || !t["model"].contains("vocab") ||
      !t["model"]["vocab"].is_object())
    throw Error(path + ": no model.vocab object (g4 export needs a BPE tokenizer.json)");
  const json& m = t["model"];
  if (!m.contains("type") || m["type"] != "BPE") throw Error(path + ": model.type is not BPE");
  GgufVocab v;
  std::vector<bool> named;
  auto put = [&](int64_t id, const std::string& piece, int32_t type) {
    if (id < 0 || id >= n_rows)
      throw Error(path + ": token id " + std::to_string(id) + " ('" + piece + "') is outside the model's " +
                  std::to_string(n_rows) + "-row vocabulary");
    if (size_t(id) >= v.tokens.size()) {
      v.tokens.resize(size_t(id) + 1);
      v.types.resize(size_t(id) + 1, 5);
      named.resize(size_t(id) + 1, false);
    }
    v.tokens[size_t(id)] = piece;
    v.types[size_t(id)] = type;
    named[size_t(id)] = true;
  };
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
    if (!it.value().is_number_integer()) throw Error(path + ": vocab entry '" + it.key() + "' has no integer id");
    put(it.value().get<int64_t>(), it.key(), is_byte_piece(it.key()) ? 6 : 1);
  }
  static const std::set<std::string> kVisible = {"<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>",
                                                 "<|tool_response>", "<tool_response|>", "<|\"|>"};
  if (t.contains("added_tokens") && t["added_tokens"].is_array())
    for (const json& a : t["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
          !a["content"].is_string())
        throw Error(path + ": an added_tokens entry lacks an integer id or a content string");
      const std::string c = a["content"].get<std::string>();
      const bool special = a.contains("special") && a["special"] == true;
      put(a["id"].get<int64_t>(), c, special && !kVisible.count(c) ? 3 : 4);
    }
  v.tokens.resize(size_t(n_rows));
  v.types.resize(size_t(n_rows), 5);
  named.resize(size_t(n_rows), false);
  for (size_t i = 0; i < named.size(); ++i)
    if (!named[i]) v.tokens[i] = "[PAD" + std::to_string(i) + "]", v.types[i] = 5;
  if (m.contains("merges") && m["merges"].is_array())
    for (const json& mg : m["merges"]) {
      if (mg.is_string()) v.merges.push_back(mg.get<std::string>());
      else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string())
        v.merges.push_back(mg[0].get<std::string>() + " " + mg[1].get<std::string>());
      else throw Error(path + ": a merges entry is neither \"a b\" nor [\"a\", \"b\"]");
    }
  if (v.merges.empty()) throw Error(path + ": no BPE merges");
  return v;
}

void write_gguf_metadata(GgufWriter& w, const ExportSource& src, uint32_t file_type) {
  const ModelSpec& s = src.spec;
  const std::string p = "gemma4.";
  w.kv_str("general.architecture", "gemma4");
  w.kv_str("general.type", "model");
  w.kv_str("general.name", src.dir.filename().empty() ? src.dir.parent_path().filename().string() : src.dir.filename().string());
  const fs::path gc = src.dir / "generation_config.json";
  std::error_code ec;
  if (fs::exists(gc, ec)) {
    const json g = parse_file(gc);
    if (g.is_object()) {
      if (g.contains("top_k") && g["top_k"].is_number_integer()) w.kv_i32("general.sampling.top_k", g["top_k"].get<int32_t>());
      if (g.contains("top_p") && g["top_p"].is_number()) w.kv_f32("general.sampling.top_p", g["top_p"].get<float>());
      if (g.contains("temperature") && g["temperature"].is_number()) w.kv_f32("general.sampling.temp", g["temperature"].get<float>());
    }
  }
  w.kv_u32("general.quantization_version", 2);
  w.kv_u32("general.file_type", file_type);

  int d_full = 0, d_swa = 0, window = 0;
  float theta_full = 1e6f, theta_swa = 1e4f;
  std::vector<int32_t> kv;
  std::vector<bool> pattern;
  for (const LayerSpec& L : s.layers) {
    (L.sliding ? d_swa : d_full) = L.head_dim;
    (L.sliding ? theta_swa : theta_full) = L.rope_theta;
    window = std::max(window, L.window);
    kv.push_back(L.n_kv_heads);
    pattern.push_back(L.sliding);
    if (L.sliding && L.rope_pairs * 2 != L.head_dim)
      throw Error("layer with partial rotary on sliding attention: llama.cpp's gemma4 layout cannot express it");
  }
  if (d_swa == 0) d_swa = d_full;
  if (d_full == 0) d_full = d_swa;
  w.kv_u32(p + "block_count", uint32_t(s.n_layers()));
  w.kv_u32(p + "context_length", uint32_t(s.max_position));
  w.kv_u32(p + "embedding_length", uint32_t(s.hidden_size));
  w.kv_u32(p + "feed_forward_length", uint32_t(s.intermediate_size));
  w.kv_u32(p + "attention.head_count", uint32_t(s.n_heads));
  w.kv_arr_i32(p + "attention.head_count_kv", kv);
  w.kv_f32(p + "rope.freq_base", theta_full);
  w.kv_f32(p + "rope.freq_base_swa", theta_swa);
  w.kv_f32(p + "attention.layer_norm_rms_epsilon", s.rms_eps);
  w.kv_u32(p + "attention.key_length", uint32_t(d_full));
  w.kv_u32(p + "attention.value_length", uint32_t(d_full));
  if (s.final_softcap > 0) w.kv_f32(p + "final_logit_softcapping", s.final_softcap);
  w.kv_u32(p + "attention.sliding_window", uint32_t(window));
  w.kv_u32(p + "attention.shared_kv_layers", 0);
  w.kv_u32(p + "embedding_length_per_layer_input", 0);
  w.kv_arr_bool(p + "attention.sliding_window_pattern", pattern);
  w.kv_u32(p + "attention.key_length_swa", uint32_t(d_swa));
  w.kv_u32(p + "attention.value_length_swa", uint32_t(d_swa));
  w.kv_u32(p + "rope.dimension_count", uint32_t(d_full));
  w.kv_u32(p + "rope.dimension_count_swa", uint32_t(d_swa));

  const fs::path tj = src.dir / "tokenizer.json";
  if (!fs::exists(tj, ec)) {  // weights only (test fixtures): llama.cpp's vocabulary-less mode
    w.kv_u32(p + "vocab_size", uint32_t(s.vocab_size));
    w.kv_str("tokenizer.ggml.model", "no_vocab");
    return;
  }
  const GgufVocab v = read_vocab_for_gguf(tj.string(), s.vocab_size);
  auto id_of = [&](const std::string& piece) {
    for (size_t i = 0; i < v.tokens.size(); ++i)
      if (v.tokens[i] == piece) return int64_t(i);
    return int64_t(-1);
  };
  w.kv_str("tokenizer.ggml.model", "gemma4");
  w.kv_arr_str("tokenizer.ggml.tokens", v.tokens);
  w.kv_arr_f32("tokenizer.ggml.scores", std::vector<float>(v.tokens.size(), -1000.0f));
  w.kv_arr_i32("tokenizer.ggml.token_type", v.types);
  w.kv_arr_str("tokenizer.ggml.merges", v.merges);
  w.kv_u32("tokenizer.ggml.bos_token_id", uint32_t(s.bos_id));
  if (!s.eos_ids.empty()) w.kv_u32("tokenizer.ggml.eos_token_id", uint32_t(s.eos_ids[0]));
  if (const int64_t unk = id_of("<unk>"); unk >= 0) w.kv_u32("tokenizer.ggml.unknown_token_id", uint32_t(unk));
  if (const int64_t pad = id_of("<pad>"); pad >= 0) w.kv_u32("tokenizer.ggml.padding_token_id", uint32_t(pad));
  w.kv_bool("tokenizer.ggml.add_bos_token", true);
  w.kv_bool("tokenizer.ggml.add_sep_token", false);
  w.kv_bool("tokenizer.ggml.add_eos_token", false);
  std::string tmpl;
  if (fs::exists(src.dir / "chat_template.jinja", ec)) {
    tmpl = read_text_file((src.dir / "chat_template.jinja").string());
  } else if (fs::exists(src.dir / "tokenizer_config.json", ec)) {
    const json tc = parse_file(src.dir / "tokenizer_config.json");
    if (tc.is_object() && tc.contains("chat_template") && tc["chat_template"].is_string())
      tmpl = tc["chat_template"].get<std::string>();
  }
  if (!tmpl.empty()) w.kv_str("tokenizer.chat_template", tmpl);
  w.kv_bool("tokenizer.ggml.add_space_prefix", false);
}

}  // namespace g4
