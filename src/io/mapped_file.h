// A read-only memory mapping of a whole file. Model weights are used in place from the mapping, so a
// checkpoint costs page cache, not heap. Empty files are valid and map to (nullptr, 0).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace g4 {

class MappedFile {
 public:
  // Throws g4::Error naming the path when the file cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Drops the resident pages covering [p, p + n) inside a read-only mapping (rounded out to whole pages). Streaming
// passes over a large checkpoint call this after each chunk so their RSS stays flat; the data stays
// readable (the kernel re-reads it from the file if touched again).
void release_pages(const void* p, size_t n);

// Reads a whole (small) text file such as config.json. Throws g4::Error naming the path.
std::string read_text_file(const std::string& path, size_t max_bytes = size_t(64) << 20);

}  // namespace g4
