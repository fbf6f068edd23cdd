// Fuzzes the readers of quantized safetensors checkpoints: g4's (docs/CHECKPOINT.md: "g4.quant" metadata
// describing tensors stored as .codes, .scales, .zeros parts) and torchao's (ExecuTorch: "tensor_names"
// metadata, Int4Tensor / IntxUnpackedToInt8Tensor parts). Any bytes must give quantized weights whose every
// claimed byte is readable, or one g4::Error. SafetensorsFile maps a path, so each input goes into an
// in-memory file (memfd) opened through /proc/self/fd.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"
#include "io/g4_checkpoint.h"
#include "io/torchao_checkpoint.h"

namespace {

// Reads every byte the weight claims (ASan sees a promise past the mapping), then dequantizes its first
// and last rows.
void check(const g4::QuantWeight& q) {
  if (q.rows <= 0 || q.cols <= 0 || q.group_size <= 0 || q.cols % q.group_size != 0) __builtin_trap();
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < q.code_bytes(); ++i) sink = sink ^ q.codes[i];
  const size_t scale_bytes = size_t(q.rows) * size_t(q.groups_per_row()) * g4::dtype_size(q.scale_dtype);
  for (size_t i = 0; i < scale_bytes; ++i) sink = sink ^ static_cast<const uint8_t*>(q.scales)[i];
  if (q.zeros)
    for (size_t i = 0; i < scale_bytes; ++i) sink = sink ^ static_cast<const uint8_t*>(q.zeros)[i];
  if (q.cols <= (int64_t(1) << 20)) {
    std::vector<float> row(size_t(q.cols));
    g4::dequantize_row(q, 0, row.data());
    g4::dequantize_row(q, q.rows - 1, row.data());
  }
}

}  // namespace

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
    if (g4::is_torchao(f)) {
      for (const g4::TorchaoWeight& w : g4::read_torchao(f, &parts)) check(w.q);
    } else {
      for (const g4::LoadedQuant& l : g4::read_g4_quant(f, &parts)) check(l.q);
    }
  } catch (const g4::Error&) {
  }
  close(fd);
  return 0;
}
