// ForwardTaps: optional outputs of one forward chunk for drafters that read the target's state
// (engine/assistant_drafter.h).
#pragma once

#include "backend/backend.h"

namespace g4 {

// The final hidden state (after the final norm) of every row of the chunk, and the keys and values that the
// last sliding and the last full layer computed for those rows (as the forward produced them, f32, before
// the cache's rounding), which is what Gemma 4's assistant attends to. A recorded step (CUDA graphs) refills
// the same tensors at every replay: a reader that keeps them past the next forward copies them.
struct ForwardTaps {
  Tensor hidden;                // [n, hidden_size]
  int layer[2] = {-1, -1};      // the tapped layers: last sliding, last full (-1: the model has none)
  Tensor k[2], v[2];            // [n, Hkv, D] of layer[i]
};

}  // namespace g4
