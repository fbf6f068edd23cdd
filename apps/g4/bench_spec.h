// Speculative-decoding costs for g4 bench (--verify-cost, --oracle-draft).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/draft_control.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace g4 {

// Seconds on the steady clock (differences time a benchmark's phases).
double now_s();

// A verify of n tokens as greedy speculative decoding runs it: one forward whose every row's token the
// backend chooses (Session::forward_pick_all: on a GPU only the ids come back), then the rollback of those
// n tokens (in place, within the sliding layers' slack), on sequence 0 of kv after `fill` (untimed). ms per
// verify and its ratio to a one-token decode step (n = 1, the last row's token), timed the same way in
// the same call; both are the recorded steps where the backend records.
struct VerifyCost {
  int n = 0;
  double ms = 0, ratio = 0;
};
std::vector<VerifyCost> measure_verify_cost(const Model& model, KvCache& kv, const std::vector<int32_t>& fill,
                                            const std::vector<int>& ns, int64_t steps, int64_t chunk);

// Greedy generation of `gen` tokens after `prompt`, plain, then with a drafter that proposes the target's
// own greedy continuation (every draft token is accepted): the most any drafter can gain at draft length
// k, overheads of the speculative loop included. tokens/s of both (tokens after the first, over decode time).
struct OracleRun {
  int k = 0;
  double plain_tok_s = 0, oracle_tok_s = 0;
  bool same_tokens = false;  // the oracle run produced plain greedy's tokens (it must)
  DraftStats stats;
};
OracleRun run_oracle(const Model& model, const KvCacheOptions& cache, const std::vector<int32_t>& prompt, int64_t gen,
                     int k);

}  // namespace g4
