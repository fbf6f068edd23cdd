#include "engine/drafter.h"

#include <algorithm>
#include <string>

#include "base/error.h"

namespace g4 {

std::shared_ptr<Drafter> Drafter::fork() const {
  throw Error(std::string("the ") + name() + " drafter cannot run on several sequences");
}

NgramDrafter::NgramDrafter(int max_ngram, int min_ngram) : max_ngram_(max_ngram), min_ngram_(min_ngram) {
  if (min_ngram < 1 || max_ngram < min_ngram) throw Error("n-gram drafter: need 1 <= min n <= max n");
}

std::vector<int32_t> NgramDrafter::draft(const std::vector<int32_t>& context, int max_n) {
  const int64_t L = int64_t(context.size());
  if (max_n <= 0) return {};
  for (int n = std::min<int64_t>(max_ngram_, L - 1); n >= min_ngram_; --n) {
    const int32_t* tail = context.data() + (L - n);
    // Start positions i of an earlier occurrence, newest first; i + n <= L - 1 so at least one token follows.
    for (int64_t i = L - n - 1; i >= 0; --i) {
      if (context[size_t(i)] != tail[0] || !std::equal(tail, tail + n, context.data() + i)) continue;
      // The tokens that followed; a match overlapping the tail continues into the draft itself (a repeat).
      std::vector<int32_t> out;
      for (int64_t s = i + n; int64_t(out.size()) < max_n; ++s) out.push_back(s < L ? context[size_t(s)] : out[size_t(s - L)]);
      return out;
    }
  }
  return {};
}

}  // namespace g4
