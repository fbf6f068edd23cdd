#include "io/safetensors_stream.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/error.h"

namespace g4 {

SafetensorsStreamWriter::SafetensorsStreamWriter(const std::string& path, const std::vector<TensorDecl>& tensors,
                                                 const std::map<std::string, std::string>& metadata)
    : path_(path), tmp_(path + ".tmp") {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  for (const auto& t : tensors) {
    uint64_t n = dtype_size(t.dtype);
    for (int64_t d : t.shape) {
      if (d < 0) throw Error(path + ": tensor " + t.name + " has a negative dimension");
      n = checked_mul(n, uint64_t(d), path + ": size of tensor " + t.name);
    }
    if (header.contains(t.name)) throw Error(path + ": tensor " + t.name + " declared twice");
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {total_, total_ + n}}};
    names_.push_back(t.name);
    offsets_.push_back(total_);
    sizes_.push_back(n);
    written_.push_back(0);
    total_ = checked_add(total_, n, path + ": file size");
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0) h.push_back(' ');
  data_start_ = 8 + h.size();
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot create " + tmp_ + ": " + std::strerror(errno));
  const uint64_t len = h.size();
  std::string head(reinterpret_cast<const char*>(&len), 8);
  head += h;
  for (size_t done = 0; done < head.size();) {
    const ssize_t r = ::pwrite(fd_, head.data() + done, head.size() - done, off_t(done));
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      throw Error("cannot write " + tmp_ + ": " + std::strerror(errno));
    }
    done += size_t(r);
  }
  if (::ftruncate(fd_, off_t(data_start_ + total_)) != 0)
    throw Error("cannot size " + tmp_ + " to " + std::to_string(data_start_ + total_) + " bytes: " + std::strerror(errno));
}

SafetensorsStreamWriter::~SafetensorsStreamWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    std::remove(tmp_.c_str());
  }
}

size_t SafetensorsStreamWriter::index(const std::string& name) const {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return i;
  throw Error(path_ + ": tensor " + name + " was not declared");
}

void SafetensorsStreamWriter::write(size_t i, uint64_t offset, const void* data, size_t n) {
  G4_CHECK(i < sizes_.size() && offset + n <= sizes_[i], "stream write outside tensor " + names_[i]);
  const uint8_t* p = static_cast<const uint8_t*>(data);
  const uint64_t base = data_start_ + offsets_[i] + offset;
  for (size_t done = 0; done < n;) {
    const ssize_t r = ::pwrite(fd_, p + done, n - done, off_t(base + done));
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      throw Error("cannot write " + tmp_ + ": " + std::strerror(r < 0 ? errno : ENOSPC));
    }
    done += size_t(r);
  }
  written_[i] += n;
}

void SafetensorsStreamWriter::finish() {
  for (size_t i = 0; i < sizes_.size(); ++i)
    G4_CHECK(written_[i] == sizes_[i], "tensor " + names_[i] + " written " + std::to_string(written_[i]) + " of " +
                                           std::to_string(sizes_[i]) + " bytes");
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    std::remove(tmp_.c_str());
    throw Error("cannot write " + tmp_ + ": " + std::strerror(errno));
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::remove(tmp_.c_str());
    throw Error("cannot rename " + tmp_ + " to " + path_ + ": " + std::strerror(errno));
  }
}

}  // namespace g4
