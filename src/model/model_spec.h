// ModelSpec: everything the forward pass needs to know about a Gemma 4 text model, as plain data.
// Per-layer differences (sliding or full attention, head_dim, KV heads, RoPE, K=V) are LayerSpec
// fields, never branches on model names. Parsed from a Hugging Face config.json (spec section 1).
#pragma once

#include <string>
#include <vector>

namespace g4 {

struct LayerSpec {
  bool sliding = true;      // sliding-window attention (else full/global attention)
  int head_dim = 0;         // D
  int n_kv_heads = 0;       // Hkv; GQA group = n_heads / n_kv_heads
  int window = 0;           // keys with pq - pk < window are visible; 0 = unlimited (full layers)
  float rope_theta = 0;     // RoPE base
  int rope_pairs = 0;       // rotated (d, d + D/2) pairs, d < rope_pairs; the rest pass through
  bool k_eq_v = false;      // no v_proj: V is the raw K projection (full layers of the 31B)
};

struct ModelSpec {
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int n_heads = 0;
  float rms_eps = 1e-6f;
  float final_softcap = 0;     // 0 = no final logit softcapping
  int bos_id = 2;
  std::vector<int> eos_ids;    // stop set from config (generation_config may extend it)
  int max_position = 0;
  bool tie_embeddings = true;
  std::vector<LayerSpec> layers;

  int n_layers() const { return int(layers.size()); }
};

// Parses config.json text. `source` names the file in error messages. Throws g4::Error.
ModelSpec parse_model_config(const std::string& json_text, const std::string& source);

// Reads DIR/config.json (or the config.json beside a .safetensors file), or the metadata of a GGUF file.
ModelSpec load_model_config(const std::string& model_path);

}  // namespace g4
