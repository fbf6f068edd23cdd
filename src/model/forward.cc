#include "model/forward.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>

#include "base/error.h"

namespace g4 {

namespace {

void validate(const Model& model, KvCache& kv, const std::vector<SeqChunk>& batch) {
  const int64_t V = model.spec().vocab_size;
  std::set<int> seen;
  for (const SeqChunk& c : batch) {
    kv.seq(c.seq);  // throws for an id out of range
    if (!seen.insert(c.seq).second) throw Error("sequence " + std::to_string(c.seq) + " appears twice in one batch");
    if (c.tokens.empty()) throw Error("sequence " + std::to_string(c.seq) + ": empty chunk");
    for (size_t i = 0; i < c.tokens.size(); ++i)
      if (c.tokens[i] < 0 || c.tokens[i] >= V)
        throw Error("token id " + std::to_string(c.tokens[i]) + " at index " + std::to_string(i) +
                    " is out of range for the vocabulary of " + std::to_string(V));
    const int64_t pos = kv.pos(c.seq);
    if (pos + int64_t(c.tokens.size()) > kv.ctx_size())
      throw Error("context overflow: " + std::to_string(pos) + " positions used + " + std::to_string(c.tokens.size()) +
                  " new tokens exceed the context size of " + std::to_string(kv.ctx_size()));
  }
}

// The ops of one step; returns the logits tensor [R, V] of the rows asked for (empty when none are).
Tensor enqueue(const Model& model, KvCache& kv, const std::vector<SeqChunk>& batch) {
  const ModelSpec& s = model.spec();
  Backend& be = model.backend();
  std::vector<int32_t> tokens;
  std::vector<SeqRows> seqs;  // each chunk's rows and positions; the cache pointers are set per layer
  for (const SeqChunk& c : batch) {
    seqs.push_back(SeqRows{int64_t(tokens.size()), int64_t(c.tokens.size()), kv.pos(c.seq), nullptr});
    tokens.insert(tokens.end(), c.tokens.begin(), c.tokens.end());
  }
  const int64_t T = int64_t(tokens.size()), H = s.hidden_size, F = s.intermediate_size, Hq = s.n_heads;
  int tap_layer[2] = {-1, -1};
  for (const SeqChunk& c : batch)
    if (c.taps) tapped_layers(s, tap_layer);

  Tensor x = be.empty({T, H});
  be.embed(model.embedding(), tokens, model.embed_scale(), x);
  Tensor a = be.empty({T, H});

  // a holds the normed input of the next block: the first layer's input norm runs here, the others are
  // fused into the residual step that closes the block before them (add_norm_scale_norm).
  be.rms_norm(x, model.layer(0).input_norm.get(), s.rms_eps, a);
  for (int li = 0; li < s.n_layers(); ++li) {
    const LayerSpec& L = s.layers[size_t(li)];
    const LayerWeights& w = model.layer(li);
    const int64_t D = L.head_dim, Hkv = L.n_kv_heads;

    // Attention block: q, k, v projections of a = norm(x) over every row of the batch.
    Tensor q = be.empty({T, Hq, D});
    Tensor k_raw = be.empty({T, Hkv, D});
    Tensor q2 = q.view({T, Hq * D}), k2 = k_raw.view({T, Hkv * D});
    Tensor v_raw = k_raw;  // K=V layers: V is the raw (un-normed, un-rotated) K projection
    if (w.v) {
      v_raw = be.empty({T, Hkv, D});
      Tensor v2 = v_raw.view({T, Hkv * D});
      be.matmul_shared(a, {w.q.get(), w.k.get(), w.v.get()}, {&q2, &k2, &v2});
    } else {
      be.matmul_shared(a, {w.q.get(), w.k.get()}, {&q2, &k2});
    }
    Tensor k = be.empty({T, Hkv, D});
    Tensor v = be.empty({T, Hkv, D});
    Tensor att = be.empty({T, Hq, D});
    // Each chunk at its sequence's positions, all sequences in one call per op: per-head norms, RoPE on q
    // and k, attention, cache write.
    for (size_t c = 0; c < batch.size(); ++c) seqs[c].cache = &kv.seq(batch[c].seq).layers[size_t(li)];
    be.qkv_norm_rope(q, k_raw, v_raw, *w.q_norm, *w.k_norm, s.rms_eps, seqs, RopeSpec{L.rope_theta, L.rope_pairs}, k, v);
    be.attend_and_append(q, k, v, seqs, L.window, att);
    for (size_t c = 0; c < batch.size(); ++c)
      if (batch[c].taps)
        for (int t = 0; t < 2; ++t)
          if (tap_layer[t] == li) {
            batch[c].taps->layer[t] = li;
            batch[c].taps->k[t] = k.rows(seqs[c].row0, seqs[c].n);
            batch[c].taps->v[t] = v.rows(seqs[c].row0, seqs[c].n);
          }
    Tensor o = be.empty({T, H});
    be.matmul(att.view({T, Hq * D}), *w.o, o);
    be.add_norm_scale_norm(x, o, *w.post_attn_norm, 1.0f, *w.pre_ffn_norm, s.rms_eps, a);

    // MLP block (GeGLU), then the layer scalar on the whole residual stream.
    Tensor g = be.empty({T, F});
    Tensor u = be.empty({T, F});
    be.matmul_shared(a, {w.gate.get(), w.up.get()}, {&g, &u});
    be.gelu_mul(g, u, g);
    be.matmul(g, *w.down, o);
    if (li + 1 < s.n_layers()) {
      be.add_norm_scale_norm(x, o, *w.post_ffn_norm, w.layer_scalar, *model.layer(li + 1).input_norm, s.rms_eps, a);
    } else {
      be.add_rms_norm(x, o, *w.post_ffn_norm, s.rms_eps);
      be.scale(x, w.layer_scalar);
    }
  }

  for (size_t c = 0; c < batch.size(); ++c)
    if (batch[c].taps) {
      const int64_t n = int64_t(batch[c].tokens.size());
      batch[c].taps->hidden = be.empty({n, H});
      be.rms_norm(x.rows(seqs[c].row0, n), &model.final_norm(), s.rms_eps, batch[c].taps->hidden);
    }

  // Only the rows whose logits are asked for go through the final norm and lm_head.
  std::vector<int64_t> want;
  for (size_t c = 0; c < batch.size(); ++c) {
    const int64_t n = int64_t(batch[c].tokens.size());
    if (batch[c].logits == LogitsMode::kAll)
      for (int64_t i = 0; i < n; ++i) want.push_back(seqs[c].row0 + i);
    else if (batch[c].logits == LogitsMode::kLast)
      want.push_back(seqs[c].row0 + n - 1);
  }
  if (want.empty()) return {};
  Tensor rows = int64_t(want.size()) == T ? x : be.gather_rows(x, want);
  const int64_t R = rows.dim(0);
  Tensor y = be.empty({R, H});
  be.rms_norm(rows, &model.final_norm(), s.rms_eps, y);
  Tensor logits = be.empty({R, int64_t(s.vocab_size)});
  be.matmul(y, model.lm_head(), logits);
  if (s.final_softcap > 0) be.softcap(logits, s.final_softcap);
  return logits;
}

}  // namespace

void tapped_layers(const ModelSpec& s, int out[2]) {
  out[0] = out[1] = -1;
  for (int i = 0; i < s.n_layers(); ++i) out[s.layers[size_t(i)].sliding ? 0 : 1] = i;
}

namespace {

// Validates and runs one step (replaying its recording where there is one); returns
// the logits tensor of the rows asked for, on the backend (empty when none are).
Tensor run_step(const Model& model, KvCache& kv, const std::vector<SeqChunk>& batch) {
  validate(model, kv, batch);
  Backend& be = model.backend();
  if (batch.empty()) return {};
  Tensor logits;
  const SeqChunk& c0 = batch[0];
  const int n = int(c0.tokens.size());
  // Steps the backend may record (where it can): a decode step or a verify of one sequence, once per
  // sequence, number of tokens and whether it is tapped (for one token, every row is the last one: kLast and
  // kAll share the recording), and a decode step of several sequences (one token each, none tapped), once
  // per set of sequences in the step's order. Each is recorded at its second run (the first runs eagerly),
  // then replayed with each new set of tokens and first positions, which the recording reads at replay time;
  // a tapped one refills the taps it was recorded with.
  KvCache::Recorded* r = nullptr;
  if (batch.size() == 1) {
    const bool recordable = n >= 1 && n <= kMaxRecordedTokens &&
                            (c0.logits == LogitsMode::kAll || (c0.logits == LogitsMode::kLast && n == 1));
    KvCache::Seq& sq = kv.seq(c0.seq);
    if (recordable) r = c0.taps ? &sq.tapped[n - 1] : &sq.steps[n - 1];
  } else if (batch.size() <= size_t(kMaxRecordedSeqs)) {
    std::vector<int> ids;
    for (const SeqChunk& c : batch)
      if (c.tokens.size() == 1 && c.logits != LogitsMode::kNone && !c.taps) ids.push_back(c.seq);
    if (ids.size() == batch.size()) r = &kv.batch_step(ids);
  }
  if (r) {
    std::vector<int32_t> tokens;
    std::vector<int64_t> pos;
    for (const SeqChunk& c : batch) {
      tokens.insert(tokens.end(), c.tokens.begin(), c.tokens.end());
      pos.push_back(kv.pos(c.seq));
    }
    const bool ran_before = std::exchange(r->ran, true);
    if (!r->rec && ran_before) {
      std::unique_ptr<StepRecording> rec = be.begin_step_recording(int(tokens.size()), pos);
      if (rec) {
        Tensor l = enqueue(model, kv, batch);  // recorded, not run
        be.end_step_recording(*rec);
        r->rec = std::move(rec);
        r->logits = l;
        if (c0.taps) r->taps = *c0.taps;
      }
    }
    if (r->rec) {
      be.replay_step(*r->rec, tokens, pos);
      logits = r->logits;
      if (c0.taps) *c0.taps = r->taps;
    }
  }
  if (!logits.data) logits = enqueue(model, kv, batch);
  for (const SeqChunk& c : batch) kv.note_written(c.seq, c.tokens);
  return logits;
}

}  // namespace

std::vector<std::vector<float>> forward_batch(const Model& model, KvCache& kv, const std::vector<SeqChunk>& batch) {
  std::vector<std::vector<float>> out(batch.size());
  const Tensor logits = run_step(model, kv, batch);
  if (!logits.data) return out;
  std::vector<float> host(size_t(logits.numel()));
  model.backend().download(logits, host.data());
  const size_t V = size_t(model.spec().vocab_size);
  size_t at = 0;
  for (size_t c = 0; c < batch.size(); ++c) {
    const size_t rows = batch[c].logits == LogitsMode::kAll ? batch[c].tokens.size() : batch[c].logits == LogitsMode::kLast ? 1 : 0;
    out[c].assign(host.begin() + std::ptrdiff_t(at * V), host.begin() + std::ptrdiff_t((at + rows) * V));
    at += rows;
  }
  return out;
}

std::vector<int32_t> forward_pick(const Model& model, KvCache& kv, const std::vector<SeqChunk>& batch,
                                  const std::vector<RowSampling>& picks) {
  if (picks.size() != batch.size())
    throw Error("forward_pick: " + std::to_string(picks.size()) + " choices for " + std::to_string(batch.size()) + " chunks");
  std::vector<RowSampling> rows;
  for (size_t c = 0; c < batch.size(); ++c) {
    if (batch[c].logits == LogitsMode::kLast) rows.push_back(picks[c]);
    if (batch[c].logits != LogitsMode::kAll) continue;
    if (picks[c].params.temperature > 0)
      throw Error("forward_pick: a chunk with a token at every row chooses greedily (temperature 0)");
    // Row i follows the chunk's tokens 1 .. i: they join the history its penalties read.
    RowSampling r = picks[c];
    for (size_t i = 0; i < batch[c].tokens.size(); ++i) {
      if (i > 0) r.history.push_back(batch[c].tokens[i]);
      rows.push_back(r);
    }
  }
  std::vector<int32_t> out;
  const Tensor logits = run_step(model, kv, batch);
  if (!logits.data) {
    for (const SeqChunk& c : batch) out.insert(out.end(), c.logits == LogitsMode::kAll ? c.tokens.size() : 1, -1);
    return out;
  }
  const std::vector<int32_t> ids = model.backend().sample_rows(logits, rows);
  size_t at = 0;
  for (const SeqChunk& c : batch) {
    const size_t n = c.logits == LogitsMode::kAll ? c.tokens.size() : c.logits == LogitsMode::kLast ? 1 : 0;
    if (n == 0) out.push_back(-1);
    out.insert(out.end(), ids.begin() + std::ptrdiff_t(at), ids.begin() + std::ptrdiff_t(at + n));
    at += n;
  }
  return out;
}

}  // namespace g4
