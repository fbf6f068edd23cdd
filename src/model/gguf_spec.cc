// gemma4 GGUF metadata -> ModelSpec. Keys as llama.cpp's convert_hf_to_gguf.py writes them (spec 5.4).
// Features of other family members (per-layer embeddings, KV sharing, MoE) are refused, never guessed.
#include "model/gguf_spec.h"

#include <cmath>

#include "base/dtype.h"
#include "base/error.h"

namespace g4 {

namespace {

constexpr int64_t kBig = int64_t(1) << 30;

// A key that llama.cpp accepts either as one integer or as a per-layer array.
std::vector<int64_t> int_or_array(const GgufFile& f, const std::string& key, int n_layers, int64_t lo, int64_t hi) {
  const GgufValue* v = f.find(key);
  if (!v) throw Error(f.path() + ": metadata '" + key + "' is missing");
  if (v->type != GgufType::kArray) return std::vector<int64_t>(size_t(n_layers), f.get_int(key, lo, hi));
  std::vector<int64_t> a = f.get_int_array(key, lo, hi);
  if (int(a.size()) != n_layers)
    throw Error(f.path() + ": metadata '" + key + "' has " + std::to_string(a.size()) + " entries for " +
                std::to_string(n_layers) + " layers");
  return a;
}

int64_t uniform(const GgufFile& f, const std::string& key, const std::vector<int64_t>& a, const char* why) {
  for (int64_t x : a)
    if (x != a[0]) throw Error(f.path() + ": metadata '" + key + "' differs between layers, " + why);
  return a[0];
}

int64_t opt_int(const GgufFile& f, const std::string& key, int64_t def, int64_t lo, int64_t hi) {
  return f.has(key) ? f.get_int(key, lo, hi) : def;
}

// Number of rotating pairs of full layers from rope_freqs.weight [D/2]: ggml divides the frequency of
// pair d by factor[d], so 1.0 keeps a pair and a huge divisor (1e30 from the converter) stops it.
// Anything else would be a real frequency scaling that this engine's RopeSpec cannot express.
int rope_pairs_from_freqs(const GgufFile& f, int head_dim) {
  const GgufTensor* t = f.find_tensor("rope_freqs.weight");
  if (!t) return head_dim / 2;
  const std::string what = f.path() + ": tensor 'rope_freqs.weight'";
  DType dt;
  if (t->type == uint32_t(GgmlType::kF32)) dt = DType::kF32;
  else if (t->type == uint32_t(GgmlType::kF16)) dt = DType::kF16;
  else if (t->type == uint32_t(GgmlType::kBF16)) dt = DType::kBF16;
  else throw Error(what + " has type " + ggml_type_name(t->type) + "; expected F32");
  if (t->ne.size() != 1 || t->ne[0] != head_dim / 2)
    throw Error(what + " has " + std::to_string(t->numel()) + " elements; full layers need head_dim/2 = " +
                std::to_string(head_dim / 2));
  std::vector<float> v(size_t(head_dim / 2));
  convert_to_f32(dt, t->data, v.size(), v.data());
  int pairs = 0;
  while (pairs < int(v.size()) && v[size_t(pairs)] == 1.0f) ++pairs;
  for (size_t d = size_t(pairs); d < v.size(); ++d)
    if (!(v[d] >= 1e20f))
      throw Error(what + "[" + std::to_string(d) + "] = " + std::to_string(v[d]) +
                  ": only proportional RoPE (ones, then divisors >= 1e20 that stop the rotation) is supported");
  return pairs;
}

}  // namespace

ModelSpec model_spec_from_gguf(const GgufFile& f) {
  const std::string src = f.path();
  const std::string arch = f.has("general.architecture") ? f.get_string("general.architecture") : "";
  if (arch != "gemma4") throw Error(src + ": general.architecture is '" + arch + "'; expected 'gemma4'");
  const std::string p = "gemma4.";

  if (opt_int(f, p + "embedding_length_per_layer_input", 0, 0, kBig) != 0)
    throw Error(src + ": per-layer embeddings (" + p + "embedding_length_per_layer_input > 0, Gemma 4 E2B/E4B) are "
                "not supported yet");
  if (opt_int(f, p + "attention.shared_kv_layers", 0, 0, kBig) != 0)
    throw Error(src + ": KV sharing (" + p + "attention.shared_kv_layers > 0) is not supported yet");
  if (opt_int(f, p + "expert_count", 0, 0, kBig) != 0)
    throw Error(src + ": mixture-of-experts (" + p + "expert_count > 0) is not supported yet");
  if (f.has(p + "rope.scaling.type") && f.get_string(p + "rope.scaling.type") != "none")
    throw Error(src + ": RoPE scaling '" + f.get_string(p + "rope.scaling.type") + "' is not supported");

  ModelSpec s;
  const int n_layers = int(f.get_int(p + "block_count", 1, 4096));
  s.hidden_size = int(f.get_int(p + "embedding_length", 1, 1 << 17));
  s.intermediate_size = int(uniform(f, p + "feed_forward_length",
                                    int_or_array(f, p + "feed_forward_length", n_layers, 1, 1 << 20),
                                    "which g4 does not support (double-wide MLP)"));
  s.n_heads = int(uniform(f, p + "attention.head_count",
                          int_or_array(f, p + "attention.head_count", n_layers, 1, 4096),
                          "which Gemma 4 does not do"));
  const std::vector<int64_t> kv_heads = int_or_array(f, p + "attention.head_count_kv", n_layers, 1, 4096);
  const int64_t d_full = f.get_int(p + "attention.key_length", 2, 1 << 14);
  const int64_t d_swa = opt_int(f, p + "attention.key_length_swa", d_full, 2, 1 << 14);
  if (opt_int(f, p + "attention.value_length", d_full, 1, 1 << 14) != d_full ||
      opt_int(f, p + "attention.value_length_swa", d_swa, 1, 1 << 14) != d_swa)
    throw Error(src + ": value_length must equal key_length (Gemma 4 has equal K and V head sizes)");
  const int64_t window = f.get_int(p + "attention.sliding_window", 1, kBig);
  const std::vector<bool> sliding = f.get_bool_array(p + "attention.sliding_window_pattern");
  if (int(sliding.size()) != n_layers)
    throw Error(src + ": metadata '" + p + "attention.sliding_window_pattern' has " + std::to_string(sliding.size()) +
                " entries for " + std::to_string(n_layers) + " layers");

  s.rms_eps = float(f.get_float(p + "attention.layer_norm_rms_epsilon"));
  if (!(s.rms_eps > 0) || !std::isfinite(s.rms_eps)) throw Error(src + ": layer_norm_rms_epsilon must be positive");
  s.final_softcap = f.has(p + "final_logit_softcapping") ? float(f.get_float(p + "final_logit_softcapping")) : 0.0f;
  if (!(s.final_softcap >= 0) || !std::isfinite(s.final_softcap))
    throw Error(src + ": final_logit_softcapping must be a finite non-negative number");
  s.max_position = int(opt_int(f, p + "context_length", 131072, 1, kBig));

  const double theta_full = f.has(p + "rope.freq_base") ? f.get_float(p + "rope.freq_base") : 10000.0;
  const double theta_swa = f.get_float(p + "rope.freq_base_swa");
  if (!(theta_full > 1.0) || !(theta_swa > 1.0) || !std::isfinite(theta_full) || !std::isfinite(theta_swa))
    throw Error(src + ": rope.freq_base and rope.freq_base_swa must be finite and > 1");
  // ggml rotates the first n_rot dims as (d, d + n_rot/2) pairs; the canonical layout pairs (d, d + D/2),
  // so only n_rot == head_dim has the same meaning.
  const int64_t rot_full = opt_int(f, p + "rope.dimension_count", d_full, 0, 1 << 14);
  const int64_t rot_swa = opt_int(f, p + "rope.dimension_count_swa", rot_full, 0, 1 << 14);
  if (rot_full != d_full || rot_swa != d_swa)
    throw Error(src + ": rope.dimension_count (" + std::to_string(rot_full) + ") / rope.dimension_count_swa (" +
                std::to_string(rot_swa) + ") must equal the head sizes (" + std::to_string(d_full) + " / " +
                std::to_string(d_swa) + "); partial rotation is expressed through rope_freqs.weight");
  bool any_full = false;
  for (bool sl : sliding) any_full |= !sl;
  const int full_pairs = any_full ? rope_pairs_from_freqs(f, int(d_full)) : int(d_full / 2);

  const GgufTensor* emb = f.find_tensor("token_embd.weight");
  if (!emb || emb->ne.size() != 2) throw Error(src + ": tensor 'token_embd.weight' is missing or not a matrix");
  if (emb->ne[1] < 1 || emb->ne[1] > (1 << 24)) throw Error(src + ": token_embd.weight has an absurd vocabulary size");
  s.vocab_size = int(emb->ne[1]);
  s.tie_embeddings = f.find_tensor("output.weight") == nullptr;

  const std::string tk = "tokenizer.ggml.";
  s.bos_id = int(opt_int(f, tk + "bos_token_id", 2, 0, s.vocab_size - 1));
  for (const char* k : {"eos_token_id", "eot_token_id"})
    if (f.has(tk + k)) {
      const int id = int(f.get_int(tk + k, 0, s.vocab_size - 1));
      if (s.eos_ids.empty() || s.eos_ids[0] != id) s.eos_ids.push_back(id);
    }
  if (s.eos_ids.empty()) s.eos_ids.push_back(1);

  for (int i = 0; i < n_layers; ++i) {
    LayerSpec L;
    L.sliding = sliding[size_t(i)];
    L.head_dim = int(L.sliding ? d_swa : d_full);
    L.n_kv_heads = int(kv_heads[size_t(i)]);
    L.window = L.sliding ? int(window) : 0;
    L.rope_theta = float(L.sliding ? theta_swa : theta_full);
    L.rope_pairs = L.sliding ? L.head_dim / 2 : full_pairs;
    // Gemma 4 full layers without a V projection use the raw K projection as V (spec 2.4).
    L.k_eq_v = !L.sliding && f.find_tensor("blk." + std::to_string(i) + ".attn_v.weight") == nullptr;
    if (L.head_dim % 2 != 0) throw Error(src + ": layer " + std::to_string(i) + " head size must be even");
    if (s.n_heads % L.n_kv_heads != 0)
      throw Error(src + ": layer " + std::to_string(i) + ": head_count (" + std::to_string(s.n_heads) +
                  ") is not a multiple of its head_count_kv (" + std::to_string(L.n_kv_heads) + ")");
    s.layers.push_back(L);
  }
  return s;
}

}  // namespace g4
