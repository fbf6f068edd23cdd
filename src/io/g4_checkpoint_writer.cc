#include "io/g4_checkpoint_writer.h"

#include "base/error.h"

namespace g4 {

G4CheckpointWriter::G4CheckpointWriter(const std::string& path, const std::vector<PlannedTensor>& plan,
                                       std::map<std::string, std::string> meta) {
  std::vector<TensorDecl> decls;
  std::vector<QuantTensorSpec> specs;
  for (const PlannedTensor& t : plan) {
    if (!t.quant) {
      decls.push_back({t.name, t.dtype, t.shape});
      continue;
    }
    if (t.shape.size() != 2) throw Error(path + ": tensor " + t.name + " must be 2-D to be quantized");
    QuantTensorSpec s{t.name, t.shape[0], t.shape[1], *t.quant};
    s.scheme.group_size = s.scheme.group_for(s.cols);
    if (s.cols % s.scheme.group_size != 0)
      throw Error(t.name + ": group size " + std::to_string(s.scheme.group_size) + " does not divide the row length " +
                  std::to_string(s.cols));
    for (const TensorDecl& d : quant_stored_tensors(s)) decls.push_back(d);
    specs.push_back(s);
    quant_[t.name] = s;
  }
  meta[kG4QuantKey] = quant_metadata_json(specs);
  w_ = std::make_unique<SafetensorsStreamWriter>(path, decls, meta);
}

void G4CheckpointWriter::write_plain(const std::string& name, uint64_t offset, const void* data, size_t n) {
  w_->write(name, offset, data, n);
}

void G4CheckpointWriter::write_quant(const std::string& name, const QuantChunk& c) {
  auto it = quant_.find(name);
  G4_CHECK(it != quant_.end(), "write_quant on unplanned tensor " + name);
  const QuantTensorSpec& s = it->second;
  const uint64_t cb = quant_code_bytes(s.scheme.kind, 1, s.cols), sb = quant_scale_bytes(s.scheme, 1, s.cols);
  w_->write(quant_codes_name(name), uint64_t(c.row0) * cb, c.codes, size_t(c.rows) * cb);
  w_->write(quant_scales_name(name), uint64_t(c.row0) * sb, c.scales, size_t(c.rows) * sb);
  if (!s.scheme.symmetric) {
    G4_CHECK(c.zeros, "asymmetric chunk without zeros for " + name);
    w_->write(quant_zeros_name(name), uint64_t(c.row0) * sb, c.zeros, size_t(c.rows) * sb);
  }
}

}  // namespace g4
