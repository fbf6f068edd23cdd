// AssistantModel: Gemma 4's assistant drafter (Hugging Face model_type "gemma4_assistant", e.g.
// google/gemma-4-31B-it-assistant), a small Gemma 4 text model whose layers have only a query projection:
// they attend to the target's own KV cache (each layer to the target's last layer of its type, sliding or
// full). One draft step at the pending token's position p (not yet in the target's cache):
//   x = pre_projection(concat(target_embed(token) * sqrt(target hidden), h))
//   its layers over x (q-only attention on the target's keys/values of positions < p: all of them for
//   full layers, the last `window` + 1 for sliding ones, as transformers' mask; queries rotated at p),
//   y = norm(x); logits = lm_head(y) (tied to its embed_tokens; with use_ordered_embeddings only the
//   vocabulary slices of the top-k centroids keep their logits, the rest get min - 1);
//   h' = post_projection(y), the hidden state of the next step (which stays at position p).
// h of the first step is the target's final hidden state (after its final norm) at position p - 1.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/forward.h"
#include "model/model.h"

namespace g4 {

struct AssistantSpec {
  ModelSpec text;              // its own layers (head_dim, RoPE, window per layer), norms, vocabulary
  int backbone_hidden = 0;     // the target's hidden size it was trained with
  bool ordered_embeddings = false;
  int num_centroids = 0, centroid_top_k = 0;
};

// Parses an assistant's config.json text. Throws g4::Error naming `source` for another architecture or
// a feature the assistant does not have.
AssistantSpec parse_assistant_config(const std::string& json_text, const std::string& source);
// Reads DIR/config.json. Throws g4::Error when DIR is not a directory or holds no assistant config.
AssistantSpec load_assistant_config(const std::string& dir);

class AssistantModel {
 public:
  // Loads DIR (config.json + safetensors) for `target`, packed by the target's backend and quantized with
  // opts like the target. Throws g4::Error when it does not fit the target (vocabulary, backbone hidden
  // size, head dimensions, a layer type the target lacks) or is malformed.
  static std::unique_ptr<AssistantModel> load(const std::string& path, const Model& target, const LoadOptions& opts);

  // A step's results stay on the backend: the caller takes the greedy token (greedy_token: its id crosses to
  // the host, and with ordered embeddings the centroid scores) or the whole row (host_logits).
  struct Step {
    Tensor logits;     // [1, V], before the ordered embeddings' mask
    Tensor centroids;  // [1, num_centroids] with ordered embeddings, else empty
    Tensor hidden;     // [1, backbone_hidden]: h' for the next step
  };
  // One draft step for `token` at position `pos` of `kv` (the target's cache of that sequence, holding
  // positions < pos). h: [1, backbone_hidden]. taps/row: the target forward that computed position pos - 1
  // (its row `row` holds that position's keys and values of the tapped layers).
  Step step(int32_t token, const Tensor& h, const KvCache::Seq& kv, int64_t pos, const ForwardTaps& taps,
            int64_t row) const;
  // The step's logits [V] as the drafter proposes from them: with ordered embeddings only the vocabulary
  // slices of the top-k centroids keep their values, the rest get min(kept) - 1.
  std::vector<float> host_logits(const Step& s) const;
  // argmax of host_logits (the lowest id on ties).
  int32_t greedy_token(const Step& s) const;

  const AssistantSpec& spec() const { return spec_; }
  const Model& target() const { return target_; }

 private:
  struct Layer {
    std::unique_ptr<PackedWeight> input_norm, post_attn_norm, pre_ffn_norm, post_ffn_norm;
    std::unique_ptr<PackedWeight> q, q_norm, o, gate, up, down;
    float layer_scalar = 1.0f;
    int target_layer = 0;  // the target layer whose keys and values it reads
    int tap = 0;           // its index in ForwardTaps (0 sliding, 1 full)
    int window = 0;        // sliding: keys visible (the layer's window + 1, as transformers); 0: all
  };
  explicit AssistantModel(const Model& target) : target_(target) {}

  AssistantSpec spec_;
  const Model& target_;
  std::unique_ptr<PackedWeight> pre_proj_, post_proj_, final_norm_, lm_head_, centroids_;
  std::vector<int32_t> token_ordering_;  // ordered embeddings: [V], canonical token ids by centroid slice
  std::vector<Layer> layers_;
  // Ordered embeddings: the token ids of the top-k centroids' vocabulary slices, ascending.
  std::vector<int64_t> kept_tokens(const Step& s) const;
};

}  // namespace g4
