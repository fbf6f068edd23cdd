// Perplexity over a token sequence, and, against a reference model, the KL divergence and top-1
// agreement of the next-token distributions (what llama-perplexity's --kl-divergence reports).
// The sequence is cut into chunks of n_ctx tokens, each evaluated from an empty cache and starting with
// BOS (prepended when the chunk does not start with it); every token after the chunk's first is scored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/kv_cache.h"
#include "model/model.h"

namespace g4 {

struct PerplexityStats {
  int64_t scored = 0;
  double nll = 0;          // sum of -log p(token)
  double ref_nll = 0;      // the same under the reference model
  double kl = 0;           // sum over positions of KL(P_ref || P_model)
  double max_kl = 0;
  int64_t top1_agree = 0;  // positions where both models' argmax agree

  double ppl() const;
  double ref_ppl() const;
  double mean_kl() const { return scored ? kl / double(scored) : 0; }
  double top1() const { return scored ? double(top1_agree) / double(scored) : 0; }
};

// Adds the scoring of one position: logits [V] of the model (and of the reference, or null) and the
// token that actually came next.
void score_position(const float* logits, const float* ref_logits, int64_t V, int32_t next, PerplexityStats* st);

// Evaluates `tokens` on model (and reference, if not null). n_ctx >= 2. progress: print a bar on stderr.
// cache: the model's KV cache (its ctx_size is set per chunk); step > 0 runs each chunk in forward steps of
// that many tokens, so that attention reads earlier positions back from the cache (a one-step chunk reads
// only its own fresh keys and values, whatever the cache type). The reference always runs f32 in one step.
PerplexityStats perplexity(const Model& model, const Model* reference, const std::vector<int32_t>& tokens,
                           int64_t n_ctx, bool progress, const KvCacheOptions& cache = KvCacheOptions(), int64_t step = 0);

// Reads token ids separated by whitespace or commas. Throws g4::Error naming the file.
std::vector<int32_t> read_tokens_file(const std::string& path);
// The same for text already read; `path` names its source in errors.
std::vector<int32_t> parse_token_ids(const std::string& text, const std::string& path);

}  // namespace g4
