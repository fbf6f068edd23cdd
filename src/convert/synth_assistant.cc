#include "convert/synth_assistant.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "base/dtype.h"
#include "base/error.h"
#include "convert/synth.h"
#include "io/safetensors_writer.h"
#include "model/model_spec.h"

namespace g4 {

using nlohmann::json;
namespace fs = std::filesystem;

uint64_t synth_assistant(const SynthAssistantOptions& o) {
  if (o.out.empty()) throw Error("--out: an output directory is required");
  if (o.layers < 1 || o.layers > 64) throw Error("--layers: an assistant has 1 to 64 layers");
  const ModelSpec t = load_model_config(o.target);
  int sl = -1, fl = -1;
  for (int i = 0; i < t.n_layers(); ++i) (t.layers[size_t(i)].sliding ? sl : fl) = i;
  if (sl < 0 || fl < 0) throw Error("--assistant-for: the target needs a sliding and a full attention layer");
  const LayerSpec &S = t.layers[size_t(sl)], &G = t.layers[size_t(fl)];
  if (o.heads % S.n_kv_heads != 0 || o.heads % G.n_kv_heads != 0)
    throw Error("--heads: " + std::to_string(o.heads) + " is not a multiple of the target's KV heads");
  if (o.centroids > 0 && (t.vocab_size % o.centroids != 0 || o.centroid_top_k > o.centroids))
    throw Error("--assistant-centroids: must divide the vocabulary of " + std::to_string(t.vocab_size) + " and be >= the top k");

  json types = json::array();
  for (int i = 0; i < o.layers; ++i) types.push_back(i + 1 == o.layers ? "full_attention" : "sliding_attention");
  json tc = {{"model_type", "gemma4_text"},
             {"vocab_size", t.vocab_size},
             {"hidden_size", o.hidden},
             {"intermediate_size", o.intermediate},
             {"num_hidden_layers", o.layers},
             {"num_attention_heads", o.heads},
             {"num_key_value_heads", S.n_kv_heads},
             {"head_dim", S.head_dim},
             {"global_head_dim", G.head_dim},
             {"attention_k_eq_v", G.k_eq_v},
             {"num_global_key_value_heads", G.n_kv_heads},
             {"num_kv_shared_layers", o.layers},
             {"sliding_window", S.window},
             {"layer_types", types},
             {"rms_norm_eps", t.rms_eps},
             {"hidden_activation", "gelu_pytorch_tanh"},
             {"hidden_size_per_layer_input", 0},
             {"vocab_size_per_layer_input", 0},
             {"final_logit_softcapping", nullptr},
             {"tie_word_embeddings", true},
             {"max_position_embeddings", t.max_position},
             {"rope_parameters",
              {{"sliding_attention", {{"rope_type", "default"}, {"rope_theta", S.rope_theta}}},
               {"full_attention",
                {{"rope_type", "proportional"},
                 {"partial_rotary_factor", double(2 * G.rope_pairs) / double(G.head_dim)},
                 {"rope_theta", G.rope_theta}}}}}};
  json cfg = {{"architectures", {"Gemma4AssistantForCausalLM"}},
              {"model_type", "gemma4_assistant"},
              {"backbone_hidden_size", t.hidden_size},
              {"use_ordered_embeddings", o.centroids > 0},
              {"num_centroids", o.centroids > 0 ? o.centroids : 2048},
              {"centroid_intermediate_top_k", o.centroid_top_k},
              {"tie_word_embeddings", true},
              {"text_config", tc},
              {"g4_synthetic", {{"assistant_for", o.target}, {"seed", o.seed}}}};

  write_config_json(o.out, cfg.dump(2));

  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<std::vector<uint16_t>> store;
  std::vector<TensorToWrite> out;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float base, float spread) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<uint16_t> v(static_cast<size_t>(n));
    for (auto& x : v) x = f32_to_bf16(base + spread * (2 * unit(rng) - 1));
    store.push_back(std::move(v));
    out.push_back({name, DType::kBF16, shape, store.back().data()});
  };
  const float w = 0.02f * std::sqrt(3.0f);  // uniform with std 0.02
  const int64_t H = o.hidden, F = o.intermediate, V = t.vocab_size, B = t.hidden_size;
  store.reserve(size_t(16 * o.layers + 8));
  add("model.embed_tokens.weight", {V, H}, 0, w);
  for (int i = 0; i < o.layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    const int64_t D = i + 1 == o.layers ? G.head_dim : S.head_dim;
    add(p + "input_layernorm.weight", {H}, 1, 0.05f);
    add(p + "post_attention_layernorm.weight", {H}, 1, 0.05f);
    add(p + "pre_feedforward_layernorm.weight", {H}, 1, 0.05f);
    add(p + "post_feedforward_layernorm.weight", {H}, 1, 0.05f);
    add(p + "self_attn.q_proj.weight", {o.heads * D, H}, 0, w);
    add(p + "self_attn.q_norm.weight", {D}, 1, 0.05f);
    add(p + "self_attn.o_proj.weight", {H, o.heads * D}, 0, w);
    add(p + "mlp.gate_proj.weight", {F, H}, 0, w);
    add(p + "mlp.up_proj.weight", {F, H}, 0, w);
    add(p + "mlp.down_proj.weight", {H, F}, 0, w);
    add(p + "layer_scalar", {1}, 1, 0);
  }
  add("model.norm.weight", {H}, 1, 0.05f);
  add("pre_projection.weight", {H, 2 * B}, 0, w);
  add("post_projection.weight", {B, H}, 0, w);
  std::vector<int64_t> order;
  if (o.centroids > 0) {
    add("masked_embedding.centroids.weight", {o.centroids, H}, 0, w);
    order.resize(size_t(V));
    for (int64_t i = 0; i < V; ++i) order[size_t(i)] = i;
    std::shuffle(order.begin(), order.end(), rng);
    out.push_back({"masked_embedding.token_ordering", DType::kI64, {V}, order.data()});
  }
  write_safetensors((fs::path(o.out) / "model.safetensors").string(), out,
                    {{"g4.synthetic", "assistant seed=" + std::to_string(o.seed)}});
  uint64_t bytes = 0;
  for (const auto& v : store) bytes += v.size() * 2;
  return bytes + order.size() * 8;
}

}  // namespace g4
