// A second, independent implementation of one Gemma 4 assistant draft step (model/assistant.h), in plain
// loops over f32 copies of the checkpoint tensors and of the target's f32 KV cache, written from the
// transformers source (modeling_gemma4_assistant.py, modeling_gemma4.py) without any backend op: the
// numeric oracle of the assistant tests. Not a transformers fixture (tools/oracle/make_assistant_fixture.py
// makes that on a machine with torch).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/kv_cache.h"
#include "model/model.h"

namespace g4::testing_util {

class AssistantOracle {
 public:
  // dir: the assistant checkpoint; target: the loaded target (its config and checkpoint at target_dir).
  AssistantOracle(const std::string& dir, const std::string& target_dir, const Model& target);

  struct Out {
    std::vector<float> logits, hidden;
  };
  // One step for `token` at position pos, h the previous hidden state [backbone], kv the target's f32 cache
  // (positions < pos).
  Out step(int32_t token, const std::vector<float>& h, const KvCache::Seq& kv, int64_t pos) const;

 private:
  struct Mat {
    int64_t rows = 0, cols = 0;
    std::vector<float> v;
  };
  Mat get(const std::string& file_dir, const std::string& name) const;
  std::vector<float> matvec(const Mat& m, const std::vector<float>& x) const;

  const Model& target_;
  std::string dir_;
  int64_t H = 0, B = 0, V = 0, F = 0, Hq = 0;
  float eps = 1e-6f;
  struct Layer {
    Mat in, post_attn, pre_ffn, post_ffn, q, q_norm, o, gate, up, down;
    float scalar = 1;
    int target_layer = 0, head_dim = 0, window = 0, rope_pairs = 0;
    float theta = 0;
  };
  std::vector<Layer> layers_;
  Mat pre_, post_, norm_, head_, centroids_, target_embed_;
  std::vector<int64_t> ordering_;
  int top_k_ = 0, n_centroids_ = 0;
};

}  // namespace g4::testing_util
