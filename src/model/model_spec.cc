#include "model/model_spec.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/gguf.h"
#include "io/mapped_file.h"
#include "model/config_json.h"
#include "model/gguf_spec.h"

namespace g4 {

using nlohmann::json;

namespace {

// Reads an integer key with a default; rejects wrong types and values outside [lo, hi].
int get_int(const json& j, const char* key, int def, int lo, int hi, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return def;
  const json& v = j[key];
  if (!v.is_number_integer()) throw Error(src + ": '" + key + "' must be an integer");
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi)
    throw Error(src + ": '" + key + "' = " + std::to_string(x) + " is outside [" + std::to_string(lo) + ", " +
                std::to_string(hi) + "]");
  return int(x);
}

double get_num(const json& j, const char* key, double def, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_number()) throw Error(src + ": '" + key + "' must be a number");
  const double x = j[key].get<double>();
  if (!std::isfinite(x)) throw Error(src + ": '" + key + "' is not finite");
  return x;
}

bool get_bool(const json& j, const char* key, bool def, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_boolean()) throw Error(src + ": '" + key + "' must be true or false");
  return j[key].get<bool>();
}

struct Rope {
  double theta;
  double partial;  // fraction of head_dim that rotates
  std::string type;
};

Rope parse_rope(const json& t, const char* layer_type, double def_theta, double def_partial,
                const std::string& def_type, const std::string& src) {
  Rope r{def_theta, def_partial, def_type};
  if (!t.contains("rope_parameters") || t["rope_parameters"].is_null()) return r;
  const json& rp = t["rope_parameters"];
  if (!rp.is_object()) throw Error(src + ": 'rope_parameters' must be an object");
  if (!rp.contains(layer_type)) return r;
  const json& p = rp[layer_type];
  if (!p.is_object()) throw Error(src + ": rope_parameters." + layer_type + " must be an object");
  r.theta = get_num(p, "rope_theta", def_theta, src);
  r.partial = get_num(p, "partial_rotary_factor", def_partial, src);
  if (p.contains("rope_type") && p["rope_type"].is_string()) r.type = p["rope_type"].get<std::string>();
  if (r.type != "default" && r.type != "proportional")
    throw Error(src + ": rope_type '" + r.type + "' for " + layer_type + " is not supported");
  if (get_num(p, "factor", 1.0, src) != 1.0)
    throw Error(src + ": rope scaling factor other than 1.0 for " + layer_type + " is not supported");
  if (r.type == "default" && r.partial != 1.0)
    throw Error(src + ": partial_rotary_factor with rope_type 'default' for " + layer_type + " is not supported");
  if (!(r.theta > 1.0)) throw Error(src + ": rope_theta for " + layer_type + " must be > 1");
  if (!(r.partial > 0.0 && r.partial <= 1.0))
    throw Error(src + ": partial_rotary_factor for " + layer_type + " must be in (0, 1]");
  return r;
}

}  // namespace

json parse_config_object(const std::string& text, const std::string& src) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(src + ": not valid JSON: " + e.what());
  }
  if (!root.is_object()) throw Error(src + ": top level is not a JSON object");
  return root;
}

ModelSpec parse_model_config(const std::string& text, const std::string& src) {
  return text_model_spec(parse_config_object(text, src), src);
}

ModelSpec text_model_spec(const json& root, const std::string& src) {
  const json& t = (root.contains("text_config") && root["text_config"].is_object()) ? root["text_config"] : root;

  if (t.contains("model_type") && t["model_type"].is_string()) {
    const std::string mt = t["model_type"].get<std::string>();
    if (mt != "gemma4_text" && mt != "gemma4")
      throw Error(src + ": model_type '" + mt + "' is not a Gemma 4 text model (gemma4_text)");
  }
  // Features of other family members that this engine does not implement yet: refuse, never guess.
  if (get_int(t, "hidden_size_per_layer_input", 0, 0, 1 << 20, src) != 0)
    throw Error(src + ": per-layer embeddings (hidden_size_per_layer_input > 0, Gemma 4 E2B/E4B) are not supported yet");
  if (get_int(t, "num_kv_shared_layers", 0, 0, 1 << 20, src) != 0)
    throw Error(src + ": KV sharing (num_kv_shared_layers > 0) is not supported yet");
  if (get_bool(t, "enable_moe_block", false, src))
    throw Error(src + ": mixture-of-experts (enable_moe_block) is not supported yet");
  if (get_bool(t, "use_double_wide_mlp", false, src))
    throw Error(src + ": use_double_wide_mlp is not supported yet");
  if (t.contains("hidden_activation") && t["hidden_activation"].is_string()) {
    const std::string act = t["hidden_activation"].get<std::string>();
    if (act != "gelu_pytorch_tanh" && act != "gelu_tanh")
      throw Error(src + ": hidden_activation '" + act + "' is not supported (expected gelu_pytorch_tanh)");
  }

  constexpr int kBig = 1 << 24;
  ModelSpec s;
  s.vocab_size = get_int(t, "vocab_size", 262144, 1, kBig, src);
  s.hidden_size = get_int(t, "hidden_size", 2304, 1, 1 << 17, src);
  s.intermediate_size = get_int(t, "intermediate_size", 9216, 1, 1 << 20, src);
  const int n_layers = get_int(t, "num_hidden_layers", 30, 1, 4096, src);
  s.n_heads = get_int(t, "num_attention_heads", 8, 1, 4096, src);
  const int kv_heads = get_int(t, "num_key_value_heads", 4, 1, 4096, src);
  const int head_dim = get_int(t, "head_dim", 256, 1, 1 << 14, src);
  const int global_head_dim = get_int(t, "global_head_dim", 512, 1, 1 << 14, src);
  const bool k_eq_v = get_bool(t, "attention_k_eq_v", false, src);
  int global_kv_heads = get_int(t, "num_global_key_value_heads", kv_heads, 1, 4096, src);
  if (!k_eq_v) global_kv_heads = kv_heads;  // transformers applies it only with K=V
  const int window = get_int(t, "sliding_window", 512, 1, 1 << 30, src);
  s.rms_eps = float(get_num(t, "rms_norm_eps", 1e-6, src));
  if (!(s.rms_eps > 0)) throw Error(src + ": rms_norm_eps must be positive");
  s.final_softcap = float(get_num(t, "final_logit_softcapping", 0.0, src));
  if (s.final_softcap < 0) throw Error(src + ": final_logit_softcapping must not be negative");
  s.bos_id = get_int(t, "bos_token_id", 2, 0, kBig, src);
  s.max_position = get_int(t, "max_position_embeddings", 131072, 1, 1 << 30, src);
  s.tie_embeddings = get_bool(t, "tie_word_embeddings", get_bool(root, "tie_word_embeddings", true, src), src);

  const json* eos = t.contains("eos_token_id") ? &t["eos_token_id"] : nullptr;
  if (eos && eos->is_number_integer()) s.eos_ids.push_back(eos->get<int>());
  else if (eos && eos->is_array())
    for (const json& e : *eos)
      if (e.is_number_integer()) s.eos_ids.push_back(e.get<int>());
  if (s.eos_ids.empty()) s.eos_ids.push_back(1);

  // Layer types: explicit list, else transformers' default pattern (every 6th full, last forced full).
  std::vector<bool> sliding(static_cast<size_t>(n_layers));
  if (t.contains("layer_types") && !t["layer_types"].is_null()) {
    const json& lt = t["layer_types"];
    if (!lt.is_array() || int(lt.size()) != n_layers)
      throw Error(src + ": layer_types must be a list of num_hidden_layers (" + std::to_string(n_layers) + ") strings");
    for (int i = 0; i < n_layers; ++i) {
      const std::string v = lt[size_t(i)].is_string() ? lt[size_t(i)].get<std::string>() : "";
      if (v == "sliding_attention") sliding[size_t(i)] = true;
      else if (v == "full_attention") sliding[size_t(i)] = false;
      else throw Error(src + ": layer_types[" + std::to_string(i) + "] must be sliding_attention or full_attention");
    }
  } else {
    for (int i = 0; i < n_layers; ++i) sliding[size_t(i)] = (i + 1) % 6 != 0;
    sliding[size_t(n_layers - 1)] = false;
  }

  const Rope rs = parse_rope(t, "sliding_attention", 10000.0, 1.0, "default", src);
  const Rope rf = parse_rope(t, "full_attention", 1000000.0, 0.25, "proportional", src);

  for (int i = 0; i < n_layers; ++i) {
    LayerSpec L;
    L.sliding = sliding[size_t(i)];
    L.head_dim = L.sliding ? head_dim : global_head_dim;
    L.n_kv_heads = L.sliding ? kv_heads : global_kv_heads;
    L.k_eq_v = !L.sliding && k_eq_v;
    L.window = L.sliding ? window : 0;
    s.layers.push_back(L);
  }

  // per_layer_config: {"5": {"head_dim": 64, "num_key_value_heads": 2}, ...}, keys possibly zero-padded.
  if (t.contains("per_layer_config") && !t["per_layer_config"].is_null()) {
    const json& plc = t["per_layer_config"];
    if (!plc.is_object()) throw Error(src + ": per_layer_config must be an object");
    for (auto it = plc.begin(); it != plc.end(); ++it) {
      int idx = -1;
      try {
        size_t used = 0;
        idx = std::stoi(it.key(), &used);
        if (used != it.key().size()) idx = -1;
      } catch (...) {
      }
      if (idx < 0 || idx >= n_layers)
        throw Error(src + ": per_layer_config key '" + it.key() + "' is not a layer index below " +
                    std::to_string(n_layers));
      if (!it.value().is_object()) throw Error(src + ": per_layer_config['" + it.key() + "'] must be an object");
      LayerSpec& L = s.layers[size_t(idx)];
      L.head_dim = get_int(it.value(), "head_dim", L.head_dim, 1, 1 << 14, src);
      if (L.k_eq_v || L.sliding)
        L.n_kv_heads = get_int(it.value(), "num_key_value_heads", L.n_kv_heads, 1, 4096, src);
    }
  }

  for (int i = 0; i < n_layers; ++i) {
    LayerSpec& L = s.layers[size_t(i)];
    const Rope& r = L.sliding ? rs : rf;
    L.rope_theta = float(r.theta);
    // Both "default" (partial 1.0) and "proportional" rotate the first partial*D/2 frequency pairs with
    // exponents over the full head_dim; the remaining pairs have frequency 0 (spec 2.5).
    L.rope_pairs = int(std::floor(r.partial * L.head_dim / 2.0));
    if (L.head_dim % 2 != 0) throw Error(src + ": layer " + std::to_string(i) + " head_dim must be even");
    if (s.n_heads % L.n_kv_heads != 0)
      throw Error(src + ": layer " + std::to_string(i) + ": num_attention_heads (" + std::to_string(s.n_heads) +
                  ") is not a multiple of its KV heads (" + std::to_string(L.n_kv_heads) + ")");
  }
  return s;
}

ModelSpec load_model_config(const std::string& model_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p(model_path);
  if (!fs::exists(p, ec)) throw Error("model path " + model_path + " does not exist");
  if (!fs::is_directory(p, ec) && is_gguf_file(model_path)) return model_spec_from_gguf(GgufFile(model_path));
  fs::path cfg = fs::is_directory(p, ec) ? p / "config.json" : p.parent_path() / "config.json";
  if (!fs::exists(cfg, ec)) throw Error("no config.json in " + (fs::is_directory(p, ec) ? p : p.parent_path()).string());
  return parse_model_config(read_text_file(cfg.string()), cfg.string());
}

}  // namespace g4
