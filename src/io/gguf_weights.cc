// gemma4 GGUF tensors under canonical names (see gguf_weights.h). Names follow llama.cpp's
// LLM_ARCH_GEMMA4 tensor table; ggml's [ne0 = in, ne1 = out] byte layout equals PyTorch's [out, in].
#include "io/gguf_weights.h"

#include <cstdlib>

#include "base/error.h"

namespace g4 {

namespace {

struct NameMap {
  const char* gguf;       // after "blk.N."
  const char* canonical;  // after "layers.N."
};

constexpr NameMap kLayerNames[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"attn_q_norm.weight", "self_attn.q_norm.weight"},
    {"attn_k_norm.weight", "self_attn.k_norm.weight"},
    {"post_attention_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_norm.weight", "pre_feedforward_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
    {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"},
    {"layer_output_scale.weight", "layer_scalar"},
};

bool plain_dtype(uint32_t t, DType* out) {
  switch (GgmlType(t)) {
    case GgmlType::kF32: *out = DType::kF32; return true;
    case GgmlType::kF16: *out = DType::kF16; return true;
    case GgmlType::kBF16: *out = DType::kBF16; return true;
    case GgmlType::kF64: *out = DType::kF64; return true;
    case GgmlType::kI8: *out = DType::kI8; return true;
    case GgmlType::kI16: *out = DType::kI16; return true;
    case GgmlType::kI32: *out = DType::kI32; return true;
    case GgmlType::kI64: *out = DType::kI64; return true;
    default: return false;
  }
}

}  // namespace

bool gguf_canonical_name(const std::string& n, std::string* out, const std::string& file) {
  if (n == "token_embd.weight") { *out = "embed_tokens.weight"; return true; }
  if (n == "output_norm.weight") { *out = "norm.weight"; return true; }
  if (n == "output.weight") { *out = "lm_head.weight"; return true; }
  if (n == "rope_freqs.weight") return false;
  if (n.rfind("blk.", 0) == 0) {
    const size_t dot = n.find('.', 4);
    const std::string idx = dot == std::string::npos ? "" : n.substr(4, dot - 4);
    const bool digits = !idx.empty() && idx.size() <= 6 && idx.find_first_not_of("0123456789") == std::string::npos &&
                        (idx.size() == 1 || idx[0] != '0');
    if (digits) {
      const std::string rest = n.substr(dot + 1);
      for (const NameMap& m : kLayerNames)
        if (rest == m.gguf) {
          *out = "layers." + idx + "." + m.canonical;
          return true;
        }
    }
  }
  throw Error(file + ": tensor '" + n + "' is not part of the gemma4 text model as g4 reads it (refusing rather "
              "than ignoring it; see docs/GGUF.md)");
}

std::string gguf_tensor_name(const std::string& c) {
  if (c == "embed_tokens.weight") return "token_embd.weight";
  if (c == "norm.weight") return "output_norm.weight";
  if (c == "lm_head.weight") return "output.weight";
  if (c.rfind("layers.", 0) == 0) {
    const size_t dot = c.find('.', 7);
    if (dot != std::string::npos) {
      const std::string idx = c.substr(7, dot - 7), rest = c.substr(dot + 1);
      for (const NameMap& m : kLayerNames)
        if (rest == m.canonical) return "blk." + idx + "." + m.gguf;
    }
  }
  throw Error("tensor '" + c + "' has no counterpart in llama.cpp's gemma4 GGUF layout");
}

GgufWeights::GgufWeights(const std::string& path) : file_(std::make_unique<GgufFile>(path)) {
  const GgufFile& f = *file_;
  // A file written for another architecture would map onto the same names with different meaning.
  const std::string arch = f.has("general.architecture") ? f.get_string("general.architecture") : "";
  if (arch != "gemma4")
    throw Error(path + ": general.architecture is '" + arch + "'; only 'gemma4' GGUF files are supported");

  for (const GgufTensor& t : f.tensors()) {
    std::string canon;
    if (!gguf_canonical_name(t.name, &canon, path)) continue;
    if (plain_.count(canon) || quant_src_.count(canon))
      throw Error(path + ": tensor '" + t.name + "' appears twice (as '" + canon + "')");
    DType dt;
    if (plain_dtype(t.type, &dt)) {
      TensorInfo info;
      info.name = canon;
      info.dtype = dt;
      info.shape = t.shape();
      info.data = t.data;
      info.nbytes = t.nbytes;
      info.file = path;
      plain_.emplace(canon, std::move(info));
      continue;
    }
    if (!gguf_quant_supported(t.ggml_type()))
      throw Error(path + ": tensor '" + t.name + "' has type " + ggml_type_name(t.type) +
                  ", which g4 does not read (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K)");
    for (size_t d = 2; d < t.ne.size(); ++d)
      if (t.ne[d] != 1)
        throw Error(path + ": quantized tensor '" + t.name + "' has more than two dimensions");
    if (t.ne.size() < 2 || t.ne[0] == 0 || t.ne[1] == 0)
      throw Error(path + ": quantized tensor '" + t.name + "' must be a non-empty matrix");
    quant_src_.emplace(canon, &t);
  }

  // llama.cpp treats blk.N.layer_output_scale as optional (no scaling when absent); the canonical
  // model always has layer_scalar, so a missing one is served as 1.0.
  if (f.has("gemma4.block_count")) {
    const int64_t n_layers = f.get_int("gemma4.block_count", 1, 4096);
    ones_.assign(size_t(n_layers), 1.0f);
    for (int64_t i = 0; i < n_layers; ++i) {
      const std::string name = "layers." + std::to_string(i) + ".layer_scalar";
      if (plain_.count(name) || quant_src_.count(name)) continue;
      TensorInfo info;
      info.name = name;
      info.dtype = DType::kF32;
      info.shape = {1};
      info.data = reinterpret_cast<const uint8_t*>(&ones_[size_t(i)]);
      info.nbytes = 4;
      info.file = path + " (synthesized: no blk." + std::to_string(i) + ".layer_output_scale)";
      plain_.emplace(name, std::move(info));
    }
  }
}

std::unique_ptr<OwnedQuantWeight> GgufWeights::convert(const std::string& name) const {
  const GgufTensor* t = quant_tensor(name);
  if (!t) return nullptr;
  return convert_gguf_quant(t->ggml_type(), t->data, t->ne[1], t->ne[0], file_->path() + ": tensor '" + t->name + "'");
}

const GgufTensor* GgufWeights::quant_tensor(const std::string& name) const {
  auto it = quant_src_.find(name);
  return it == quant_src_.end() ? nullptr : it->second;
}

std::vector<std::string> GgufWeights::quant_names() const {
  std::vector<std::string> out;
  for (const auto& [name, t] : quant_src_) out.push_back(name);
  return out;
}

}  // namespace g4
