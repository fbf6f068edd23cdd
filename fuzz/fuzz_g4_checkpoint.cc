// Fuzzes the g4 quantized checkpoint reader (docs/CHECKPOINT.md): a safetensors file whose "g4.quant"
// metadata describes quantized tensors stored as parts (.codes, .scales, .zeros). Any bytes must give
// quantized weights whose every claimed byte lies inside the file, or one g4::Error. SafetensorsFile maps a
// path, so each input goes into an in-memory file (memfd) opened through /proc/self/fd.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"
#include "io/g4_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = memfd_create("fuzz.safetensors", MFD_CLOEXEC);
  if (fd < 0) abort();
  for (size_t done = 0; done < size;) {
    const ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) abort();
    done += size_t(n);
  }
  try {
    g4::SafetensorsFile f("/proc/self/fd/" + std::to_string(fd));
    std::set<std::string> parts;
    const std::vector<g4::LoadedQuant> qs = g4::read_g4_quant(f, &parts);
    volatile uint8_t sink = 0;
    std::vector<float> row;
    for (const g4::LoadedQuant& l : qs) {
      const g4::QuantWeight& q = l.q;
      if (q.rows <= 0 || q.cols <= 0 || q.group_size <= 0 || q.cols % q.group_size != 0) __builtin_trap();
      // Every byte the weight claims (ASan sees a promise past the mapping), then its first and last rows.
      for (size_t i = 0; i < q.code_bytes(); ++i) sink = sink ^ q.codes[i];
      const size_t scale_bytes = size_t(q.rows) * size_t(q.groups_per_row()) * g4::dtype_size(q.scale_dtype);
      for (size_t i = 0; i < scale_bytes; ++i) sink = sink ^ static_cast<const uint8_t*>(q.scales)[i];
      if (q.zeros)
        for (size_t i = 0; i < scale_bytes; ++i) sink = sink ^ static_cast<const uint8_t*>(q.zeros)[i];
      if (q.cols <= (int64_t(1) << 20)) {
        row.resize(size_t(q.cols));
        g4::dequantize_row(q, 0, row.data());
        g4::dequantize_row(q, q.rows - 1, row.data());
      }
    }
  } catch (const g4::Error&) {
  }
  close(fd);
  return 0;
}
