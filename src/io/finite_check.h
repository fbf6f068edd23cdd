// Refuses weights holding NaN or infinity: one such value poisons every activation it touches, and a
// hostile or corrupted checkpoint would otherwise load and silently produce garbage. Plain float tensors
// are checked element by element (bit patterns, no float conversion: one pass at memory speed); quantized
// tensors have integer codes, so their float scales and zeros are checked.
#pragma once

#include <string>

#include "io/weight_store.h"

namespace g4 {

// Throws g4::Error "FILE: tensor 'NAME' holds NaN at element I of N" (or +Inf / -Inf) on the first
// non-finite value.
// A GGUF tensor's scales are checked once converted (the second form, given the converted data).
void check_finite(const StoredWeight& w);
void check_finite(const StoredWeight& w, const QuantWeight& converted);

}  // namespace g4
