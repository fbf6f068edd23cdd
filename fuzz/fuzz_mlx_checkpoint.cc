// Fuzzes the MLX-LM quantized weight reader (io/mlx_checkpoint.cc): packed U32 codes with scales and biases
// per group, turned into g4's QuantWeight (codes in place or converted, zero points from the biases). Input:
// a byte choosing the config's quantization (bit 0: 4 or 8 bits; bits 1-3: the group size; bit 4: module
// "a" marked unquantized), then a safetensors file (through a memfd). Any bytes must give weights whose every
// claimed byte is readable, or one g4::Error.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"
#include "io/mlx_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const int64_t kGroups[8] = {32, 64, 128, 1, 2, 3, 16, 1024};
  g4::MlxQuantConfig c;
  c.defaults.bits = (data[0] & 1) ? 8 : 4;
  c.defaults.group_size = kGroups[(data[0] >> 1) & 7];
  if (data[0] & 16) c.modules["a"] = std::nullopt;
  c.source = "config.json";
  const int fd = memfd_create("fuzz.safetensors", MFD_CLOEXEC);
  if (fd < 0) abort();
  for (size_t done = 1; done < size;) {
    const ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) abort();
    done += size_t(n);
  }
  try {
    g4::SafetensorsFile f("/proc/self/fd/" + std::to_string(fd));
    std::set<std::string> parts;
    for (const g4::MlxWeight& w : g4::read_mlx_quant(f, c, &parts)) {
      const g4::QuantWeight& q = w.q;
      if (q.rows <= 0 || q.cols <= 0 || q.group_size <= 0 || q.cols % q.group_size != 0) __builtin_trap();
      volatile uint8_t sink = 0;
      for (size_t i = 0; i < q.code_bytes(); ++i) sink = sink ^ q.codes[i];
      const size_t scale_bytes = size_t(q.rows) * size_t(q.groups_per_row()) * g4::dtype_size(q.scale_dtype);
      for (size_t i = 0; i < scale_bytes; ++i) sink = sink ^ static_cast<const uint8_t*>(q.scales)[i];
      if (q.zeros)
        for (size_t i = 0; i < scale_bytes; ++i) sink = sink ^ static_cast<const uint8_t*>(q.zeros)[i];
      std::vector<float> row(size_t(q.cols));
      g4::dequantize_row(q, 0, row.data());
      g4::dequantize_row(q, q.rows - 1, row.data());
    }
  } catch (const g4::Error&) {
  }
  close(fd);
  return 0;
}
