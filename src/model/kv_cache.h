// KvCache: the KV memory of N independent sequences (slots) over one model, allocated once at creation.
// Each sequence has its own positions and remembers the tokens its cache holds, so it can be rolled back
// (truncate) and a new prompt can reuse the longest common prefix (common_prefix).
//
// Sliding layers keep a ring of window + slack slots. A rollback to n positions keeps the cache exact in
// place when the ring still holds the keys the next query needs (positions n - window + 1 .. n - 1):
// that is the case when at most slack + 1 positions are dropped since the furthest position written.
// A deeper rollback cannot be repaired by recomputing one window: a sliding layer's keys at a position
// depend on the layer below over the previous window, so the dependency reaches back one window per
// sliding layer; the sequence is recomputed from its start instead (Session::truncate does it).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "model/forward_taps.h"
#include "model/model.h"
#include "model/model_spec.h"

namespace g4 {

struct KvCacheOptions {
  int64_t ctx_size = 4096;  // positions each sequence may hold
  int n_seq = 1;            // sequences (slots)
  DType k_type = DType::kF32, v_type = DType::kF32;
  int64_t slack = 256;      // ring slots beyond the window on sliding layers (free rollback depth - 1)
  bool derive_k = false;    // K=V layers store V only; attention derives K (KvLayerSpec::k_from_v)
};

// The storage plan of one sequence, per layer, from the spec alone (no backend, no weights; k_norm unset).
std::vector<KvLayerSpec> kv_layer_specs(const ModelSpec& spec, const KvCacheOptions& o);
// Bytes of the whole cache: every layer of every sequence.
int64_t kv_cache_bytes(const ModelSpec& spec, const KvCacheOptions& o);

class KvCache {
 public:
  // Allocates every sequence's layers on the model's backend. Throws g4::Error for bad options or a cache
  // type the backend cannot store.
  KvCache(const Model& model, const KvCacheOptions& o);

  // A step recorded by the backend (backends that record), with the logits tensor it leaves its results in.
  // A step is recorded at its second run (`ran`: it ran once): a verify length that speculation uses once,
  // as a short answer does, runs eagerly instead of paying for a recording.
  struct Recorded {
    bool ran = false;
    std::unique_ptr<StepRecording> rec;
    Tensor logits;
    ForwardTaps taps;
  };

  struct Seq {
    std::vector<KvLayer> layers;
    std::vector<int32_t> tokens;  // the tokens at positions 0 .. pos-1, whose keys and values are cached
    int64_t high_water = 0;       // one past the furthest position written since the last clear
    // Recorded steps over this sequence's layers, by their number of tokens less one (a decode step,
    // verifies of 2 .. kMaxRecordedTokens tokens); `tapped`: the same steps with ForwardTaps (a drafter
    // reading the target's state), whose taps every replay refills.
    Recorded steps[kMaxRecordedTokens], tapped[kMaxRecordedTokens];
  };

  // The recorded decode step of sequences `ids` together (one token each, in that order; 2 ..
  // kMaxRecordedSeqs of them), created empty on first use. The kMaxBatchSteps most recently used sets are
  // kept: a server's batch changes as requests come and go.
  static constexpr size_t kMaxBatchSteps = 8;
  Recorded& batch_step(const std::vector<int>& ids);

  int n_seq() const { return int(seqs_.size()); }
  int64_t ctx_size() const { return opt_.ctx_size; }
  const KvCacheOptions& options() const { return opt_; }
  // Throws g4::Error naming the id when it is out of range.
  Seq& seq(int id);
  const Seq& seq(int id) const;
  int64_t pos(int id) const { return int64_t(seq(id).tokens.size()); }

  // Length of the longest common prefix of `tokens` and what sequence `id` holds.
  int64_t common_prefix(int id, const std::vector<int32_t>& tokens) const;
  // True when dropping positions >= n leaves the cache exact without recomputation.
  bool can_truncate_in_place(int id, int64_t n) const;
  // Drops positions >= n in place. Requires can_truncate_in_place(id, n); throws g4::Error for n < 0 or n > pos.
  void truncate_in_place(int id, int64_t n);
  // Empties sequence `id`.
  void clear(int id);
  // Records that positions [p0, p0 + n) of sequence `id` were written with `tokens`.
  void note_written(int id, const std::vector<int32_t>& tokens);

 private:
  std::vector<KvLayerSpec> specs_;
  std::vector<int> windows_;  // per layer: the attention window (0 = full)
  KvCacheOptions opt_;
  std::vector<Seq> seqs_;
  struct BatchStep {
    std::vector<int> ids;
    uint64_t used = 0;  // batch_clock_ at its last use
    Recorded step;
  };
  std::vector<BatchStep> batch_steps_;
  uint64_t batch_clock_ = 0;
};

}  // namespace g4
