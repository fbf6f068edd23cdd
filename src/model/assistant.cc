#include "model/assistant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "backend/sampling.h"
#include "base/error.h"
#include "io/mapped_file.h"
#include "model/config_json.h"
#include "model/weight_loader.h"

namespace g4 {

using nlohmann::json;

AssistantSpec parse_assistant_config(const std::string& text, const std::string& src) {
  const json root = parse_config_object(text, src);
  const std::string mt = root.contains("model_type") && root["model_type"].is_string() ? root["model_type"].get<std::string>() : "";
  if (mt != "gemma4_assistant")
    throw Error(src + ": model_type '" + mt + "' is not a Gemma 4 assistant drafter (gemma4_assistant)");
  if (!root.contains("text_config") || !root["text_config"].is_object()) throw Error(src + ": no text_config object");
  json t = root["text_config"];
  // Every layer of an assistant shares the target's KV (transformers sets num_kv_shared_layers to the
  // layer count when absent and refuses anything else); the text-model parser knows no KV sharing.
  const json& nl = t.contains("num_hidden_layers") ? t["num_hidden_layers"] : json();
  if (t.contains("num_kv_shared_layers") && !t["num_kv_shared_layers"].is_null() && t["num_kv_shared_layers"] != 0 &&
      t["num_kv_shared_layers"] != nl)
    throw Error(src + ": num_kv_shared_layers must equal num_hidden_layers in an assistant drafter");
  t.erase("num_kv_shared_layers");
  if (t.contains("vocab_size_per_layer_input") && t["vocab_size_per_layer_input"].is_number() && t["vocab_size_per_layer_input"] != 0)
    throw Error(src + ": vocab_size_per_layer_input must be 0 in an assistant drafter");
  AssistantSpec a;
  a.text = text_model_spec(t, src);
  auto get_int = [&](const char* key, int def) {
    if (!root.contains(key) || root[key].is_null()) return def;
    if (!root[key].is_number_integer() || root[key].get<int64_t>() < 1 || root[key].get<int64_t>() > (1 << 20))
      throw Error(src + ": '" + key + "' must be a positive integer");
    return root[key].get<int>();
  };
  a.backbone_hidden = get_int("backbone_hidden_size", 1536);
  a.num_centroids = get_int("num_centroids", 2048);
  a.centroid_top_k = get_int("centroid_intermediate_top_k", 32);
  if (root.contains("use_ordered_embeddings") && !root["use_ordered_embeddings"].is_null()) {
    if (!root["use_ordered_embeddings"].is_boolean()) throw Error(src + ": 'use_ordered_embeddings' must be true or false");
    a.ordered_embeddings = root["use_ordered_embeddings"].get<bool>();
  }
  if (a.ordered_embeddings) {
    if (a.text.vocab_size % a.num_centroids != 0)
      throw Error(src + ": vocab_size " + std::to_string(a.text.vocab_size) + " is not a multiple of num_centroids " +
                  std::to_string(a.num_centroids));
    if (a.centroid_top_k > a.num_centroids) throw Error(src + ": centroid_intermediate_top_k exceeds num_centroids");
  }
  return a;
}

AssistantSpec load_assistant_config(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error("assistant drafter " + dir + ": not a directory");
  const fs::path cfg = fs::path(dir) / "config.json";
  if (!fs::exists(cfg, ec)) throw Error("assistant drafter " + dir + ": no config.json");
  return parse_assistant_config(read_text_file(cfg.string()), cfg.string());
}

std::unique_ptr<AssistantModel> AssistantModel::load(const std::string& path, const Model& target, const LoadOptions& opts) {
  auto m = std::unique_ptr<AssistantModel>(new AssistantModel(target));
  m->spec_ = load_assistant_config(path);
  const AssistantSpec& a = m->spec_;
  const ModelSpec& s = a.text;
  const ModelSpec& ts = target.spec();
  const std::string what = "assistant drafter " + path;

  // Does it fit the target?
  if (s.vocab_size != ts.vocab_size)
    throw Error(what + ": its vocabulary has " + std::to_string(s.vocab_size) + " tokens, the target's " +
                std::to_string(ts.vocab_size));
  if (a.backbone_hidden != ts.hidden_size)
    throw Error(what + ": it was made for a target of hidden size " + std::to_string(a.backbone_hidden) +
                " (backbone_hidden_size), the target's is " + std::to_string(ts.hidden_size));
  int tapped[2];
  tapped_layers(ts, tapped);

  const int64_t H = s.hidden_size, V = s.vocab_size, F = s.intermediate_size, Hq = s.n_heads, B = a.backbone_hidden;
  WeightLoader wl(path, target.backend(), opts, s.n_layers(), "loading assistant");
  for (int i = 0; i < s.n_layers(); ++i) {
    const LayerSpec& L = s.layers[size_t(i)];
    const std::string p = "layers." + std::to_string(i) + ".";
    Layer w;
    w.tap = L.sliding ? 0 : 1;
    w.target_layer = tapped[w.tap];
    if (w.target_layer < 0)
      throw Error(what + ": its layer " + std::to_string(i) + " reads the target's last " +
                  (L.sliding ? "sliding" : "full") + " attention layer, which the target does not have");
    const LayerSpec& TL = ts.layers[size_t(w.target_layer)];
    if (TL.head_dim != L.head_dim)
      throw Error(what + ": its layer " + std::to_string(i) + " has head_dim " + std::to_string(L.head_dim) +
                  " but the target layer " + std::to_string(w.target_layer) + " it reads has " + std::to_string(TL.head_dim));
    if (Hq % TL.n_kv_heads != 0)
      throw Error(what + ": its " + std::to_string(Hq) + " query heads are not a multiple of the target's " +
                  std::to_string(TL.n_kv_heads) + " KV heads of layer " + std::to_string(w.target_layer));
    // transformers' sliding mask for the drafter (bidirectional, flipped on the key axis) keeps the last
    // window + 1 keys, positions p - window - 1 .. p - 1 (tests/engine/assistant_hf_test.cc). With the
    // narrower of the two windows: the target keeps no more than its own (plus the ring's slack).
    w.window = L.sliding ? std::min(L.window, TL.window) + 1 : 0;
    const int64_t D = L.head_dim;
    w.input_norm = wl.pack(p + "input_layernorm.weight", {H}, WeightRole::kNorm);
    w.post_attn_norm = wl.pack(p + "post_attention_layernorm.weight", {H}, WeightRole::kNorm);
    w.pre_ffn_norm = wl.pack(p + "pre_feedforward_layernorm.weight", {H}, WeightRole::kNorm);
    w.post_ffn_norm = wl.pack(p + "post_feedforward_layernorm.weight", {H}, WeightRole::kNorm);
    w.q = wl.pack(p + "self_attn.q_proj.weight", {Hq * D, H}, WeightRole::kLinear);
    w.q_norm = wl.pack(p + "self_attn.q_norm.weight", {D}, WeightRole::kNorm);
    w.o = wl.pack(p + "self_attn.o_proj.weight", {H, Hq * D}, WeightRole::kLinear);
    w.gate = wl.pack(p + "mlp.gate_proj.weight", {F, H}, WeightRole::kLinear);
    w.up = wl.pack(p + "mlp.up_proj.weight", {F, H}, WeightRole::kLinear);
    w.down = wl.pack(p + "mlp.down_proj.weight", {H, F}, WeightRole::kLinear);
    w.layer_scalar = wl.store().find_weight(p + "layer_scalar") ? wl.scalar(p + "layer_scalar") : 1.0f;
    m->layers_.push_back(std::move(w));
  }
  m->pre_proj_ = wl.pack("pre_projection.weight", {H, 2 * B}, WeightRole::kLinear);
  m->post_proj_ = wl.pack("post_projection.weight", {B, H}, WeightRole::kLinear);
  m->final_norm_ = wl.pack("norm.weight", {H}, WeightRole::kNorm);
  // The head: a stored lm_head, else the tied embedding (as a linear: a quantizing recipe unties it).
  if (wl.store().find_weight("lm_head.weight")) m->lm_head_ = wl.pack("lm_head.weight", {V, H}, WeightRole::kLinear);
  else if (!s.tie_embeddings) wl.store().get_weight("lm_head.weight");  // throws: untied but absent
  else m->lm_head_ = wl.pack_as("lm_head.weight", "embed_tokens.weight", {V, H}, WeightRole::kLinear);
  if (a.ordered_embeddings) {
    m->centroids_ = wl.pack("masked_embedding.centroids.weight", {a.num_centroids, H}, WeightRole::kLinear);
    const TensorInfo& t = wl.store().get("masked_embedding.token_ordering");
    if (t.shape != std::vector<int64_t>{V} || (t.dtype != DType::kI64 && t.dtype != DType::kI32))
      throw Error(t.file + ": masked_embedding.token_ordering must be an I64 or I32 vector of " + std::to_string(V));
    m->token_ordering_.resize(size_t(V));
    for (int64_t i = 0; i < V; ++i) {
      int64_t x = 0;
      if (t.dtype == DType::kI64) {
        std::memcpy(&x, t.data + 8 * i, 8);
      } else {
        int32_t y = 0;
        std::memcpy(&y, t.data + 4 * i, 4);
        x = y;
      }
      if (x < 0 || x >= V) throw Error(t.file + ": masked_embedding.token_ordering holds " + std::to_string(x) + ", outside the vocabulary");
      m->token_ordering_[size_t(i)] = int32_t(x);
    }
  }
  wl.finish();
  return m;
}

AssistantModel::Step AssistantModel::step(int32_t token, const Tensor& h, const KvCache::Seq& kv, int64_t pos,
                                          const ForwardTaps& taps, int64_t row) const {
  const ModelSpec& s = spec_.text;
  Backend& be = target_.backend();
  const int64_t H = s.hidden_size, F = s.intermediate_size, Hq = s.n_heads, B = spec_.backbone_hidden, V = s.vocab_size;
  if (pos < 1) throw Error("assistant drafter: the target has run no position yet");
  if (token < 0 || token >= V) throw Error("assistant drafter: token " + std::to_string(token) + " is outside the vocabulary");

  // concat(target embedding * sqrt(hidden), h) as the two rows of one [2, B] tensor.
  Tensor in = be.empty({2, B});
  Tensor e = in.rows(0, 1), hrow = in.rows(1, 1);
  be.embed(target_.embedding(), {token}, target_.embed_scale(), e);
  be.copy(h, hrow);
  Tensor x = be.empty({1, H});
  be.matmul(in.view({1, 2 * B}), *pre_proj_, x);

  Tensor a = be.empty({1, H});
  be.rms_norm(x, layers_[0].input_norm.get(), s.rms_eps, a);
  for (size_t li = 0; li < layers_.size(); ++li) {
    const Layer& w = layers_[li];
    const LayerSpec& L = s.layers[li];
    const int64_t D = L.head_dim;
    if (taps.layer[w.tap] != w.target_layer || row < 0 || row >= taps.k[w.tap].dim(0))
      throw Error("assistant drafter: the target forward did not tap layer " + std::to_string(w.target_layer));
    Tensor q = be.empty({1, Hq, D});
    Tensor q2 = q.view({1, Hq * D}), qh = q.view({Hq, D});
    be.matmul(a, *w.q, q2);
    be.rms_norm(qh, w.q_norm.get(), s.rms_eps, qh);
    be.rope(q, pos, RopeSpec{L.rope_theta, L.rope_pairs});
    // Keys of positions < pos: the cache's, with position pos - 1 given as the "new" row (from the tap) so
    // the attention op's window ends there: a sliding layer sees positions pos - window .. pos - 1 (window
    // already one more than the layer's), as far as the target's ring holds them (no slack: one fewer).
    const KvLayer& cache = kv.layers[size_t(w.target_layer)];
    const int window = w.window > 0 && cache.ring ? int(std::min<int64_t>(w.window, cache.capacity)) : w.window;
    Tensor att = be.empty({1, Hq, D});
    be.attention(q, taps.k[w.tap].rows(row, 1), taps.v[w.tap].rows(row, 1), cache, pos - 1, window, att);
    Tensor o = be.empty({1, H});
    be.matmul(att.view({1, Hq * D}), *w.o, o);
    be.add_norm_scale_norm(x, o, *w.post_attn_norm, 1.0f, *w.pre_ffn_norm, s.rms_eps, a);
    Tensor g = be.empty({1, F}), u = be.empty({1, F});
    be.matmul_shared(a, {w.gate.get(), w.up.get()}, {&g, &u});
    be.gelu_mul(g, u, g);
    be.matmul(g, *w.down, o);
    if (li + 1 < layers_.size()) {
      be.add_norm_scale_norm(x, o, *w.post_ffn_norm, w.layer_scalar, *layers_[li + 1].input_norm, s.rms_eps, a);
    } else {
      be.add_rms_norm(x, o, *w.post_ffn_norm, s.rms_eps);
      be.scale(x, w.layer_scalar);
    }
  }
  Tensor y = be.empty({1, H});
  be.rms_norm(x, final_norm_.get(), s.rms_eps, y);
  Step out;
  out.hidden = be.empty({1, B});
  be.matmul(y, *post_proj_, out.hidden);
  out.logits = be.empty({1, V});
  be.matmul(y, *lm_head_, out.logits);
  if (spec_.ordered_embeddings) {
    out.centroids = be.empty({1, spec_.num_centroids});
    be.matmul(y, *centroids_, out.centroids);
  }
  return out;
}

std::vector<int64_t> AssistantModel::kept_tokens(const Step& st) const {
  const int64_t V = spec_.text.vocab_size, C = spec_.num_centroids, per = V / C;
  std::vector<float> c(static_cast<size_t>(C));
  target_.backend().download(st.centroids, c.data());
  std::vector<int> idx(static_cast<size_t>(C));
  for (int i = 0; i < int(C); ++i) idx[size_t(i)] = i;
  std::partial_sort(idx.begin(), idx.begin() + spec_.centroid_top_k, idx.end(),
                    [&](int l, int r) { return c[size_t(l)] > c[size_t(r)] || (c[size_t(l)] == c[size_t(r)] && l < r); });
  std::vector<int64_t> ids;
  ids.reserve(size_t(spec_.centroid_top_k * per));
  for (int k = 0; k < spec_.centroid_top_k; ++k)
    for (int64_t j = 0; j < per; ++j) ids.push_back(token_ordering_[size_t(int64_t(idx[size_t(k)]) * per + j)]);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::vector<float> AssistantModel::host_logits(const Step& st) const {
  Backend& be = target_.backend();
  const int64_t V = spec_.text.vocab_size;
  std::vector<float> logits(static_cast<size_t>(V));
  be.download(st.logits, logits.data());
  if (!spec_.ordered_embeddings) return logits;
  // Only the vocabulary slices of the top-k centroids keep their logits (computed here over the whole head,
  // the same values); the rest get min(kept) - 1.
  std::vector<char> keep(static_cast<size_t>(V), 0);
  float lo = INFINITY;
  for (int64_t t : kept_tokens(st)) {
    keep[size_t(t)] = 1;
    lo = std::min(lo, logits[size_t(t)]);
  }
  for (int64_t i = 0; i < V; ++i)
    if (!keep[size_t(i)]) logits[size_t(i)] = lo - 1.0f;
  return logits;
}

int32_t AssistantModel::greedy_token(const Step& st) const {
  // Greedy with no penalties: the backend's argmax (on cuda only the id crosses to the host).
  Backend& be = target_.backend();
  if (!spec_.ordered_embeddings) return be.sample_rows(st.logits, {RowSampling{}})[0];
  // The argmax of host_logits is the kept logit that is largest, the lowest id on ties: the kept logits are
  // gathered on the backend in ascending id order (the [1, V] row seen as V rows of one value) and the
  // backend's argmax takes the first of equal ones. The host gets the centroids' scores and one id.
  const std::vector<int64_t> ids = kept_tokens(st);
  const Tensor kept = be.gather_rows(st.logits.view({st.logits.numel(), 1}), ids);
  const int32_t j = be.sample_rows(kept.view({1, int64_t(ids.size())}), {RowSampling{}})[0];
  if (j < 0 || size_t(j) >= ids.size()) throw Error("assistant drafter: the backend chose no kept token");
  return int32_t(ids[size_t(j)]);
}

}  // namespace g4
