#include "convert/export_mlx_config.h"

#include <string>

#include "base/error.h"

namespace g4 {

using nlohmann::ordered_json;

namespace {

// The one value of `get` over the layers of one kind (sliding or full); -1 when there are none.
template <class F>
int uniform(const ModelSpec& s, bool sliding, const char* what, F get) {
  int v = -1;
  for (const LayerSpec& L : s.layers) {
    if (L.sliding != sliding) continue;
    if (v >= 0 && get(L) != v)
      throw Error(std::string("the ") + (sliding ? "sliding" : "full") + " layers differ in " + what +
                  "; mlx-lm's config has one value for all of them, so this model cannot be exported to MLX");
    v = get(L);
  }
  return v;
}

}  // namespace

void complete_mlx_text_config(ordered_json& t, const ModelSpec& s) {
  auto fill = [&](const char* key, const ordered_json& v) {
    if (!t.contains(key) || t[key].is_null()) t[key] = v;
  };
  const int d_swa = uniform(s, true, "head_dim", [](const LayerSpec& L) { return L.head_dim; });
  const int d_full = uniform(s, false, "head_dim", [](const LayerSpec& L) { return L.head_dim; });
  const int kv_swa = uniform(s, true, "KV heads", [](const LayerSpec& L) { return L.n_kv_heads; });
  const int kv_full = uniform(s, false, "KV heads", [](const LayerSpec& L) { return L.n_kv_heads; });
  const int pairs_full = uniform(s, false, "rotary pairs", [](const LayerSpec& L) { return L.rope_pairs; });
  const int window = uniform(s, true, "window", [](const LayerSpec& L) { return L.window; });
  bool k_eq_v = false;
  for (const LayerSpec& L : s.layers) k_eq_v |= L.k_eq_v;
  if (k_eq_v && uniform(s, false, "K = V", [](const LayerSpec& L) { return int(L.k_eq_v); }) != 1)
    throw Error("only some full layers have K = V; mlx-lm's config cannot express it");
  if (!k_eq_v && kv_swa >= 0 && kv_full >= 0 && kv_swa != kv_full)
    throw Error("full layers without K = V have their own KV head count; mlx-lm's config cannot express it");

  // per_layer_config (newer transformers) is not read by mlx-lm: its values go into the flat keys.
  if (t.contains("per_layer_config")) {
    t.erase("per_layer_config");
    if (d_swa > 0) t["head_dim"] = d_swa;
    if (d_full > 0) t["global_head_dim"] = d_full;
    if (kv_swa > 0) t["num_key_value_heads"] = kv_swa;
    if (kv_full > 0) t[k_eq_v ? "num_global_key_value_heads" : "num_key_value_heads"] = kv_full;
  }
  fill("hidden_size", s.hidden_size);
  fill("intermediate_size", s.intermediate_size);
  fill("num_hidden_layers", s.n_layers());
  fill("num_attention_heads", s.n_heads);
  fill("vocab_size", s.vocab_size);
  fill("rms_norm_eps", s.rms_eps);
  fill("max_position_embeddings", s.max_position);
  fill("head_dim", d_swa > 0 ? d_swa : d_full);
  fill("global_head_dim", d_full > 0 ? d_full : d_swa);
  fill("num_key_value_heads", kv_swa > 0 ? kv_swa : kv_full);
  if (k_eq_v) fill("num_global_key_value_heads", kv_full);
  fill("attention_k_eq_v", k_eq_v);
  if (window > 0) fill("sliding_window", window);
  // g4 reads a missing softcap as none; mlx-lm's default is 30 unless the key holds null.
  if (!t.contains("final_logit_softcapping")) t["final_logit_softcapping"] = nullptr;
  if (s.final_softcap == 0) t["final_logit_softcapping"] = nullptr;
  // Features g4 refuses when set, so they are off here; mlx-lm's defaults turn two of them on.
  fill("hidden_size_per_layer_input", 0);
  fill("num_kv_shared_layers", 0);
  fill("use_double_wide_mlp", false);
  fill("enable_moe_block", false);
  if (!t.contains("layer_types") || t["layer_types"].is_null()) {
    ordered_json types = ordered_json::array();
    for (const LayerSpec& L : s.layers) types.push_back(L.sliding ? "sliding_attention" : "full_attention");
    t["layer_types"] = types;
  }
  if (!t.contains("rope_parameters") || t["rope_parameters"].is_null()) {
    ordered_json rp = ordered_json::object();
    for (const LayerSpec& L : s.layers) {
      const char* kind = L.sliding ? "sliding_attention" : "full_attention";
      if (rp.contains(kind)) continue;
      if (L.sliding) rp[kind] = {{"rope_theta", L.rope_theta}, {"rope_type", "default"}};
      else
        rp[kind] = {{"partial_rotary_factor", double(pairs_full) * 2.0 / double(L.head_dim)},
                    {"rope_theta", L.rope_theta},
                    {"rope_type", "proportional"}};
    }
    t["rope_parameters"] = rp;
  }
}

}  // namespace g4
