#include "engine/assistant_oracle.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/mapped_file.h"
#include "io/weight_store.h"

namespace g4::testing_util {

namespace {

std::vector<float> rmsnorm(const std::vector<float>& x, const std::vector<float>* w, float eps) {
  double ss = 0;
  for (float a : x) ss += double(a) * a;
  const double inv = 1.0 / std::sqrt(ss / double(x.size()) + eps);
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = float(x[i] * inv * (w ? (*w)[i] : 1.0));
  return y;
}

}  // namespace

AssistantOracle::Mat AssistantOracle::get(const std::string& dir, const std::string& name) const {
  auto ws = WeightStore::open(dir);
  const TensorInfo& t = ws->get(name);
  Mat m;
  m.rows = t.shape[0];
  m.cols = t.shape.size() > 1 ? t.shape[1] : 1;
  m.v = tensor_to_f32(t);
  return m;
}

std::vector<float> AssistantOracle::matvec(const Mat& m, const std::vector<float>& x) const {
  std::vector<float> y(static_cast<size_t>(m.rows));
  for (int64_t r = 0; r < m.rows; ++r) {
    double s = 0;
    for (int64_t c = 0; c < m.cols; ++c) s += double(m.v[size_t(r * m.cols + c)]) * x[size_t(c)];
    y[size_t(r)] = float(s);
  }
  return y;
}

AssistantOracle::AssistantOracle(const std::string& dir, const std::string& target_dir, const Model& target)
    : target_(target), dir_(dir) {
  const nlohmann::json cfg = nlohmann::json::parse(read_text_file(dir + "/config.json"));
  const nlohmann::json& t = cfg["text_config"];
  H = t["hidden_size"];
  V = t["vocab_size"];
  F = t["intermediate_size"];
  Hq = t["num_attention_heads"];
  B = cfg["backbone_hidden_size"];
  eps = t["rms_norm_eps"];
  const int window = t["sliding_window"];
  const ModelSpec& ts = target.spec();
  int last[2] = {-1, -1};
  for (int i = 0; i < ts.n_layers(); ++i) last[ts.layers[size_t(i)].sliding ? 0 : 1] = i;
  for (size_t i = 0; i < t["layer_types"].size(); ++i) {
    const bool sliding = t["layer_types"][i] == "sliding_attention";
    const std::string p = "layers." + std::to_string(i) + ".";
    Layer L;
    L.in = get(dir, p + "input_layernorm.weight");
    L.post_attn = get(dir, p + "post_attention_layernorm.weight");
    L.pre_ffn = get(dir, p + "pre_feedforward_layernorm.weight");
    L.post_ffn = get(dir, p + "post_feedforward_layernorm.weight");
    L.q = get(dir, p + "self_attn.q_proj.weight");
    L.q_norm = get(dir, p + "self_attn.q_norm.weight");
    L.o = get(dir, p + "self_attn.o_proj.weight");
    L.gate = get(dir, p + "mlp.gate_proj.weight");
    L.up = get(dir, p + "mlp.up_proj.weight");
    L.down = get(dir, p + "mlp.down_proj.weight");
    L.scalar = get(dir, p + "layer_scalar").v[0];
    L.target_layer = last[sliding ? 0 : 1];
    L.head_dim = sliding ? int(t["head_dim"]) : int(t["global_head_dim"]);
    L.window = sliding ? window : 0;
    const nlohmann::json& rp = t["rope_parameters"][sliding ? "sliding_attention" : "full_attention"];
    L.theta = rp["rope_theta"];
    const double partial = rp.contains("partial_rotary_factor") ? double(rp["partial_rotary_factor"]) : 1.0;
    L.rope_pairs = int(std::floor(partial * L.head_dim / 2.0));
    layers_.push_back(std::move(L));
  }
  pre_ = get(dir, "pre_projection.weight");
  post_ = get(dir, "post_projection.weight");
  norm_ = get(dir, "norm.weight");
  head_ = get(dir, "embed_tokens.weight");
  target_embed_ = get(target_dir, "embed_tokens.weight");
  if (cfg.value("use_ordered_embeddings", false)) {
    centroids_ = get(dir, "masked_embedding.centroids.weight");
    auto ws = WeightStore::open(dir);
    const TensorInfo& o = ws->get("masked_embedding.token_ordering");
    ordering_.resize(size_t(o.numel()));
    std::memcpy(ordering_.data(), o.data, ordering_.size() * 8);
    top_k_ = cfg["centroid_intermediate_top_k"];
    n_centroids_ = cfg["num_centroids"];
  }
}

AssistantOracle::Out AssistantOracle::step(int32_t token, const std::vector<float>& h, const KvCache::Seq& kv,
                                           int64_t pos) const {
  // inputs_embeds = concat(target embedding * its scale, h) -> pre_projection
  std::vector<float> in(static_cast<size_t>(2 * B));
  const float scale = target_.embed_scale();
  for (int64_t i = 0; i < B; ++i) in[size_t(i)] = target_embed_.v[size_t(int64_t(token) * B + i)] * scale;
  for (int64_t i = 0; i < B; ++i) in[size_t(B + i)] = h[size_t(i)];
  std::vector<float> x = matvec(pre_, in);
  for (const Layer& L : layers_) {
    const int64_t D = L.head_dim;
    const KvLayer& c = kv.layers[size_t(L.target_layer)];
    const int64_t Hkv = c.k.dim(1), group = Hq / Hkv;
    std::vector<float> q = matvec(L.q, rmsnorm(x, &L.in.v, eps));
    std::vector<float> att(static_cast<size_t>(Hq * D), 0.0f);
    // Sliding layers: the last window + 1 keys (transformers' flipped bidirectional mask), within the ring.
    const int64_t lo = L.window > 0 ? std::max<int64_t>({int64_t(0), pos - L.window - 1, c.ring ? pos - c.capacity : 0}) : 0;
    for (int64_t hd = 0; hd < Hq; ++hd) {
      std::vector<float> qh(q.begin() + hd * D, q.begin() + (hd + 1) * D);
      qh = rmsnorm(qh, &L.q_norm.v, eps);
      // RoPE, rotate-half pairs (d, d + D/2), the first rope_pairs rotating, at position pos.
      for (int d = 0; d < L.rope_pairs; ++d) {
        const float w = 1.0f / std::pow(L.theta, float(2 * d) / float(D));
        const float ang = float(pos) * w, cs = std::cos(ang), sn = std::sin(ang);
        const float a = qh[size_t(d)], b = qh[size_t(d + D / 2)];
        qh[size_t(d)] = a * cs - b * sn;
        qh[size_t(d + D / 2)] = b * cs + a * sn;
      }
      const int64_t kh = hd / group;
      std::vector<double> s;
      double mx = -1e300;
      for (int64_t p = lo; p < pos; ++p) {
        const int64_t slot = c.ring ? p % c.capacity : p;
        const float* k = static_cast<const float*>(c.k.data) + (slot * Hkv + kh) * D;
        double dot = 0;
        for (int64_t d = 0; d < D; ++d) dot += double(qh[size_t(d)]) * k[d];
        s.push_back(dot);
        mx = std::max(mx, dot);
      }
      double z = 0;
      for (double& e : s) z += (e = std::exp(e - mx));
      for (int64_t p = lo; p < pos; ++p) {
        const int64_t slot = c.ring ? p % c.capacity : p;
        const float* v = static_cast<const float*>(c.v.data) + (slot * Hkv + kh) * D;
        for (int64_t d = 0; d < D; ++d) att[size_t(hd * D + d)] += float(s[size_t(p - lo)] / z * v[d]);
      }
    }
    std::vector<float> o = rmsnorm(matvec(L.o, att), &L.post_attn.v, eps);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    const std::vector<float> a = rmsnorm(x, &L.pre_ffn.v, eps);
    std::vector<float> g = matvec(L.gate, a), u = matvec(L.up, a);
    for (size_t i = 0; i < g.size(); ++i) {
      const double t = g[i];
      g[i] = float(0.5 * t * (1 + std::tanh(0.7978845608028654 * (t + 0.044715 * t * t * t))) * u[i]);
    }
    const std::vector<float> d = rmsnorm(matvec(L.down, g), &L.post_ffn.v, eps);
    for (size_t i = 0; i < x.size(); ++i) x[i] = (x[i] + d[i]) * L.scalar;
  }
  const std::vector<float> y = rmsnorm(x, &norm_.v, eps);
  Out out;
  out.hidden = matvec(post_, y);
  out.logits = matvec(head_, y);
  if (!ordering_.empty()) {
    const std::vector<float> cl = matvec(centroids_, y);
    std::vector<int> idx(cl.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = int(i);
    std::sort(idx.begin(), idx.end(), [&](int a, int b) { return cl[size_t(a)] > cl[size_t(b)]; });
    const int64_t per = V / n_centroids_;
    std::vector<char> keep(static_cast<size_t>(V), 0);
    float lo = INFINITY;
    for (int k = 0; k < top_k_; ++k)
      for (int64_t j = 0; j < per; ++j) {
        const int64_t tok = ordering_[size_t(idx[size_t(k)] * per + j)];
        keep[size_t(tok)] = 1;
        lo = std::min(lo, out.logits[size_t(tok)]);
      }
    for (int64_t i = 0; i < V; ++i)
      if (!keep[size_t(i)]) out.logits[size_t(i)] = lo - 1;
  }
  return out;
}

}  // namespace g4::testing_util
