// Helpers shared by the fuzz targets that read files: the input as an in-memory file (the readers map a
// path), and the check of a quantized weight a reader returned.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "quant/format.h"

namespace g4::fuzz {

// The bytes as a memfd, opened by path through /proc/self/fd: no disk traffic. Closed on destruction.
class MemfdInput {
 public:
  MemfdInput(const uint8_t* data, size_t size) : fd_(memfd_create("fuzz.input", MFD_CLOEXEC)) {
    if (fd_ < 0) abort();
    for (size_t done = 0; done < size;) {
      const ssize_t n = write(fd_, data + done, size - done);
      if (n <= 0) abort();
      done += size_t(n);
    }
  }
  ~MemfdInput() { close(fd_); }
  MemfdInput(const MemfdInput&) = delete;
  MemfdInput& operator=(const MemfdInput&) = delete;
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

// Reads every byte the weight claims (ASan sees a promise past the mapping), then dequantizes its first
// and last rows; a geometry the reader should have refused traps.
inline void check_quant_weight(const QuantWeight& q) {
  if (q.rows <= 0 || q.cols <= 0 || q.group_size <= 0 || q.cols % q.group_size != 0) __builtin_trap();
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < q.code_bytes(); ++i) sink = sink ^ q.codes[i];
  const size_t scale_bytes = size_t(q.rows) * size_t(q.groups_per_row()) * dtype_size(q.scale_dtype);
  for (size_t i = 0; i < scale_bytes; ++i) sink = sink ^ static_cast<const uint8_t*>(q.scales)[i];
  if (q.zeros)
    for (size_t i = 0; i < scale_bytes; ++i) sink = sink ^ static_cast<const uint8_t*>(q.zeros)[i];
  if (q.cols <= (int64_t(1) << 20)) {
    std::vector<float> row(size_t(q.cols));
    dequantize_row(q, 0, row.data());
    dequantize_row(q, q.rows - 1, row.data());
  }
}

}  // namespace g4::fuzz
