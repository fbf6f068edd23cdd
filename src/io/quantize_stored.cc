#include "io/quantize_stored.h"

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "io/mapped_file.h"

namespace g4 {

void quantize_stored(const TensorInfo& t, const std::string& name, const QuantScheme& s,
                     const std::function<void(const QuantChunk&)>& sink) {
  if (t.shape.size() != 2) throw Error(t.file + ": tensor '" + name + "' with shape " + t.shape_str() + " cannot be quantized (needs 2 dims)");
  if (t.dtype != DType::kF32 && t.dtype != DType::kF16 && t.dtype != DType::kBF16)
    throw Error(t.file + ": tensor '" + name + "' has dtype " + dtype_name(t.dtype) + "; only float tensors are quantized");
  const int64_t rows = t.shape[0], cols = t.shape[1];
  const int64_t gs = s.group_for(cols);
  if (gs <= 0 || cols % gs != 0)
    throw Error(t.file + ": tensor '" + name + "': group size " + std::to_string(gs) + " does not divide the row length " +
                std::to_string(cols));
  const size_t esize = dtype_size(t.dtype);
  const int64_t threads = std::clamp<int64_t>(int64_t(std::thread::hardware_concurrency()), 1, 16);
  // ~4 MB of f32 per chunk: small against any model, large enough to amortise the per-chunk overhead.
  const int64_t chunk = std::max<int64_t>(1, (int64_t(1) << 20) / std::max<int64_t>(cols, 1));
  std::vector<float> f;
  std::vector<uint8_t> codes, scales, zeros;
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t n = std::min(chunk, rows - r0);
    const uint8_t* src = t.data + size_t(r0) * size_t(cols) * esize;
    f.resize(size_t(n * cols));
    codes.assign(quant_code_bytes(s.kind, n, cols), 0);
    scales.resize(quant_scale_bytes(s, n, cols));
    zeros.resize(s.symmetric ? 0 : scales.size());
    // Rows are independent: split the chunk over threads (results identical to one thread).
    const size_t cb = quant_code_bytes(s.kind, 1, cols), sb = quant_scale_bytes(s, 1, cols);
    split_run(n, threads, [&](int64_t a, int64_t b) {
      float* fa = f.data() + size_t(a * cols);
      convert_to_f32(t.dtype, src + size_t(a * cols) * esize, size_t((b - a) * cols), fa);
      quantize_rows(s, fa, b - a, cols, codes.data() + size_t(a) * cb, scales.data() + size_t(a) * sb,
                    s.symmetric ? nullptr : zeros.data() + size_t(a) * sb, t.file + ": tensor '" + name + "'");
    });
    sink({r0, n, codes.data(), scales.data(), s.symmetric ? nullptr : zeros.data()});
    // Also the 4 MB behind the chunk: faults map whole large folios, which reach back into pages already
    // released (a page-granular release of just this chunk lets RSS creep up through a long tensor).
    const uint8_t* from = std::max(t.data, src - std::min<size_t>(size_t(src - t.data), size_t(4) << 20));
    release_pages(from, size_t(src - from) + size_t(n) * size_t(cols) * esize);
  }
}

void quantize_stored(const TensorInfo& t, const std::string& name, const QuantScheme& s, OwnedQuantWeight* out) {
  if (t.shape.size() != 2) throw Error(t.file + ": tensor '" + name + "' with shape " + t.shape_str() + " cannot be quantized (needs 2 dims)");
  const int64_t rows = t.shape[0], cols = t.shape[1];
  const int64_t gs = s.group_for(cols);
  if (gs <= 0 || cols % gs != 0)
    throw Error(t.file + ": tensor '" + name + "': group size " + std::to_string(gs) + " does not divide the row length " +
                std::to_string(cols));
  out->codes.assign(quant_code_bytes(s.kind, rows, cols), 0);
  out->scales.assign(quant_scale_bytes(s, rows, cols), 0);
  out->zeros.assign(s.symmetric ? 0 : out->scales.size(), 0);
  const size_t cb = quant_code_bytes(s.kind, 1, cols), sb = quant_scale_bytes(s, 1, cols);
  quantize_stored(t, name, s, [&](const QuantChunk& c) {
    std::memcpy(out->codes.data() + size_t(c.row0) * cb, c.codes, size_t(c.rows) * cb);
    std::memcpy(out->scales.data() + size_t(c.row0) * sb, c.scales, size_t(c.rows) * sb);
    if (c.zeros) std::memcpy(out->zeros.data() + size_t(c.row0) * sb, c.zeros, size_t(c.rows) * sb);
  });
  bind_quant_weight(s, rows, cols, out);
}

}  // namespace g4
