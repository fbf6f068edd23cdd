#include "model/session.h"

#include <algorithm>

#include "base/error.h"

namespace g4 {

Session::Session(const Model& model, int64_t ctx_size) : model_(model), be_(model.backend()), ctx_size_(ctx_size) {
  if (ctx_size <= 0) throw Error("context size must be positive, got " + std::to_string(ctx_size));
  for (const LayerSpec& L : model.spec().layers) {
    const bool ring = L.window > 0 && L.window < ctx_size;
    const int64_t cap = ring ? L.window : ctx_size;
    kv_.push_back(be_.make_kv_layer(cap, L.n_kv_heads, L.head_dim, ring));
  }
}

std::vector<float> Session::forward(const std::vector<int32_t>& tokens, LogitsMode mode, int64_t chunk) {
  const ModelSpec& s = model_.spec();
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= s.vocab_size)
      throw Error("token id " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                  " is out of range for the vocabulary of " + std::to_string(s.vocab_size));
  if (pos_ + int64_t(tokens.size()) > ctx_size_)
    throw Error("context overflow: " + std::to_string(pos_) + " positions used + " + std::to_string(tokens.size()) +
                " new tokens exceed the context size of " + std::to_string(ctx_size_));
  if (tokens.empty()) return {};
  const int64_t n = int64_t(tokens.size());
  if (chunk <= 0 || chunk > n) chunk = n;
  std::vector<float> out;
  for (int64_t b = 0; b < n; b += chunk) {
    const int64_t e = std::min(n, b + chunk);
    std::vector<int32_t> piece(tokens.begin() + b, tokens.begin() + e);
    const bool last_chunk = e == n;
    const LogitsMode m = mode == LogitsMode::kAll ? LogitsMode::kAll : (last_chunk ? mode : LogitsMode::kNone);
    std::vector<float> l = forward_chunk(piece, m);
    out.insert(out.end(), l.begin(), l.end());
  }
  return out;
}

std::vector<float> Session::forward_chunk(const std::vector<int32_t>& tokens, LogitsMode mode) {
  const int64_t T = int64_t(tokens.size());
  Tensor logits;
  if (T == 1 && mode == LogitsMode::kLast) {
    // Decode: record the step once (where the backend can), then replay it with each new token and
    // position. The recording reads both at replay time, so it stays valid for the whole session.
    if (!step_) {
      std::unique_ptr<StepRecording> rec = be_.begin_step_recording();
      if (rec) {
        Tensor l = enqueue_chunk(tokens, pos_, mode);  // recorded, not run
        be_.end_step_recording(*rec);
        step_ = std::move(rec);
        step_logits_ = l;
      }
    }
    if (step_) {
      be_.replay_step(*step_, tokens[0], pos_);
      logits = step_logits_;
    }
  }
  if (!logits.data) logits = enqueue_chunk(tokens, pos_, mode);
  pos_ += T;
  if (mode == LogitsMode::kNone) return {};
  std::vector<float> host(size_t(logits.numel()));
  be_.download(logits, host.data());
  return host;
}

Tensor Session::enqueue_chunk(const std::vector<int32_t>& tokens, int64_t p0, LogitsMode mode) {
  const ModelSpec& s = model_.spec();
  const int64_t T = int64_t(tokens.size()), H = s.hidden_size, F = s.intermediate_size, Hq = s.n_heads;

  Tensor x = be_.empty({T, H});
  be_.embed(model_.embedding(), tokens, model_.embed_scale(), x);
  Tensor a = be_.empty({T, H});

  // a holds the normed input of the next block: the first layer's input norm runs here, the others are
  // fused into the residual step that closes the block before them (add_norm_scale_norm).
  be_.rms_norm(x, model_.layer(0).input_norm.get(), s.rms_eps, a);
  for (int li = 0; li < s.n_layers(); ++li) {
    const LayerSpec& L = s.layers[size_t(li)];
    const LayerWeights& w = model_.layer(li);
    const int64_t D = L.head_dim, Hkv = L.n_kv_heads;

    // Attention block: q, k, v projections of a = norm(x); per-head norms; RoPE on q and k only.
    Tensor q = be_.empty({T, Hq, D});
    Tensor k_raw = be_.empty({T, Hkv, D});
    Tensor q2 = q.view({T, Hq * D}), k2 = k_raw.view({T, Hkv * D});
    Tensor v_raw = k_raw;  // K=V layers: V is the raw (un-normed, un-rotated) K projection
    Tensor v2;
    if (w.v) {
      v_raw = be_.empty({T, Hkv, D});
      v2 = v_raw.view({T, Hkv * D});
      be_.matmul_shared(a, {w.q.get(), w.k.get(), w.v.get()}, {&q2, &k2, &v2});
    } else {
      be_.matmul_shared(a, {w.q.get(), w.k.get()}, {&q2, &k2});
    }
    Tensor k = be_.empty({T, Hkv, D});
    Tensor v = be_.empty({T, Hkv, D});
    be_.qkv_norm_rope(q, k_raw, v_raw, *w.q_norm, *w.k_norm, s.rms_eps, p0, RopeSpec{L.rope_theta, L.rope_pairs}, k, v);

    Tensor att = be_.empty({T, Hq, D});
    be_.attention(q, k, v, kv_[size_t(li)], p0, L.window, att);
    be_.kv_append(kv_[size_t(li)], k, v, p0);
    Tensor o = be_.empty({T, H});
    be_.matmul(att.view({T, Hq * D}), *w.o, o);
    be_.add_norm_scale_norm(x, o, *w.post_attn_norm, 1.0f, *w.pre_ffn_norm, s.rms_eps, a);

    // MLP block (GeGLU), then the layer scalar on the whole residual stream.
    Tensor g = be_.empty({T, F});
    Tensor u = be_.empty({T, F});
    be_.matmul_shared(a, {w.gate.get(), w.up.get()}, {&g, &u});
    be_.gelu_mul(g, u, g);
    be_.matmul(g, *w.down, o);
    if (li + 1 < s.n_layers()) {
      be_.add_norm_scale_norm(x, o, *w.post_ffn_norm, w.layer_scalar, *model_.layer(li + 1).input_norm, s.rms_eps, a);
    } else {
      be_.add_rms_norm(x, o, *w.post_ffn_norm, s.rms_eps);
      be_.scale(x, w.layer_scalar);
    }
  }
  if (mode == LogitsMode::kNone) return {};

  Tensor rows = mode == LogitsMode::kAll ? x : be_.slice_rows(x, T - 1, 1);
  const int64_t R = rows.dim(0);
  Tensor y = be_.empty({R, H});
  be_.rms_norm(rows, &model_.final_norm(), s.rms_eps, y);
  Tensor logits = be_.empty({R, int64_t(s.vocab_size)});
  be_.matmul(y, model_.lm_head(), logits);
  if (s.final_softcap > 0) be_.softcap(logits, s.final_softcap);
  return logits;
}

}  // namespace g4
