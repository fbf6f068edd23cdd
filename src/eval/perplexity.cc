#include "eval/perplexity.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "base/progress.h"
#include "io/mapped_file.h"
#include "model/session.h"

namespace g4 {

double PerplexityStats::ppl() const { return scored ? std::exp(nll / double(scored)) : 0; }
double PerplexityStats::ref_ppl() const { return scored ? std::exp(ref_nll / double(scored)) : 0; }

namespace {

// log-softmax normaliser and argmax of one row, in double for long vocabularies.
void log_norm(const float* x, int64_t V, double* lse, int64_t* arg) {
  int64_t a = 0;
  for (int64_t v = 1; v < V; ++v)
    if (x[v] > x[a]) a = v;
  double s = 0;
  for (int64_t v = 0; v < V; ++v) s += std::exp(double(x[v]) - x[a]);
  *lse = double(x[a]) + std::log(s);
  *arg = a;
}

}  // namespace

void score_position(const float* logits, const float* ref, int64_t V, int32_t next, PerplexityStats* st) {
  double lse, rlse;
  int64_t arg, rarg;
  log_norm(logits, V, &lse, &arg);
  st->nll += lse - logits[next];
  ++st->scored;
  if (!ref) return;
  log_norm(ref, V, &rlse, &rarg);
  st->ref_nll += rlse - ref[next];
  double kl = 0;
  for (int64_t v = 0; v < V; ++v) {
    const double lp = double(ref[v]) - rlse, lq = double(logits[v]) - lse;
    kl += std::exp(lp) * (lp - lq);
  }
  kl = std::max(kl, 0.0);  // rounding can leave a tiny negative for identical distributions
  st->kl += kl;
  st->max_kl = std::max(st->max_kl, kl);
  st->top1_agree += arg == rarg;
}

PerplexityStats perplexity(const Model& model, const Model* reference, const std::vector<int32_t>& tokens,
                           int64_t n_ctx, bool progress, const KvCacheOptions& cache, int64_t step) {
  if (n_ctx < 2) throw Error("--ctx-size: must be at least 2 to score anything");
  const int64_t V = model.spec().vocab_size;
  if (reference && reference->spec().vocab_size != V)
    throw Error("--reference: vocabulary size " + std::to_string(reference->spec().vocab_size) + " differs from the model's " +
                std::to_string(V));
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= V)
      throw Error("token " + std::to_string(tokens[i]) + " at index " + std::to_string(i) + " is outside the vocabulary (" +
                  std::to_string(V) + ")");
  const int32_t bos = model.spec().bos_id;
  PerplexityStats st;
  Progress prog("perplexity", tokens.size(), "tokens", progress);
  for (size_t start = 0; start < tokens.size();) {
    std::vector<int32_t> chunk;
    if (tokens[start] != bos) chunk.push_back(bos);
    const size_t take = std::min(tokens.size() - start, size_t(n_ctx) - chunk.size());
    chunk.insert(chunk.end(), tokens.begin() + std::ptrdiff_t(start), tokens.begin() + std::ptrdiff_t(start + take));
    start += take;
    prog.add(take);
    if (chunk.size() < 2) continue;
    KvCacheOptions co = cache;
    co.ctx_size = int64_t(chunk.size());
    Session s(model, co);
    const std::vector<float> lg = s.forward(chunk, LogitsMode::kAll, step);
    std::vector<float> rl;
    if (reference) {
      Session r(*reference, int64_t(chunk.size()));
      rl = r.forward(chunk, LogitsMode::kAll);
    }
    for (size_t i = 0; i + 1 < chunk.size(); ++i)
      score_position(lg.data() + i * size_t(V), reference ? rl.data() + i * size_t(V) : nullptr, V, chunk[i + 1], &st);
  }
  prog.finish();
  return st;
}

std::vector<int32_t> read_tokens_file(const std::string& path) { return parse_token_ids(read_text_file(path), path); }

std::vector<int32_t> parse_token_ids(const std::string& text, const std::string& path) {
  std::vector<int32_t> out;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == ' ' || c == ',' || c == '\n' || c == '\r' || c == '\t') {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
    if (j == i || j - i > 10)
      throw Error(path + ": byte " + std::to_string(i) + ": expected a token id (non-negative integer)");
    const int64_t v = std::stoll(text.substr(i, j - i));
    if (v > INT32_MAX) throw Error(path + ": token id " + text.substr(i, j - i) + " is too large");
    out.push_back(int32_t(v));
    i = j;
  }
  if (out.empty()) throw Error(path + ": no token ids");
  return out;
}

}  // namespace g4
