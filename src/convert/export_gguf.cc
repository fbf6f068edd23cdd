// g4 checkpoint -> gemma4 GGUF. Quantized linears keep their codes; each group of 32 becomes one ggml block
// (a g4 group of 64 or 128 is several blocks with the same parameters, exactly):
//   int4 asymmetric  -> Q4_1: d = f16(s), m = f16(-s * z), w = q * d + m
//   int4 symmetric   -> Q4_0: d = f16(s), w = (q - 8) * d
//   int8 symmetric   -> Q8_0: d = f16(s) per 32 (a per-row scale repeated), w = q * d
// int8 asymmetric has no GGUF form and is refused. The ratio between llama.cpp's f32 sqrt(hidden) and the
// source's rounded one is carried by the residual stream (see export_gguf). Norms and layer_scalar are written as
// F32 (as llama.cpp's converter does); other plain matrices keep their dtype. rope_freqs.weight marks the
// proportional RoPE of the full-attention layers (ones for rotated pairs, 1e30 for the rest), as llama.cpp's converter writes it.
#include <cmath>
#include <cstring>
#include <regex>

#include "base/error.h"
#include "base/progress.h"
#include "convert/export_gguf_meta.h"
#include "io/gguf_weights.h"

namespace g4 {

namespace fs = std::filesystem;

namespace {

struct Planned {
  std::string canonical;
  const StoredWeight* w;
  GgmlType type;
  double rescale = 1.0;  // factor on a post-norm weight (see export_gguf)
};

bool is_post_norm(const std::string& name) {
  static const std::regex re(R"(^layers\.[0-9]+\.post_(attention|feedforward)_layernorm\.weight$)");
  return std::regex_search(name, re);
}

GgmlType plain_type(const TensorInfo& t) {
  if (t.shape.size() < 2) return GgmlType::kF32;
  switch (t.dtype) {
    case DType::kF32: return GgmlType::kF32;
    case DType::kF16: return GgmlType::kF16;
    case DType::kBF16: return GgmlType::kBF16;
    default: throw Error(t.file + ": tensor '" + t.name + "' has dtype " + dtype_name(t.dtype) + ", which a GGUF export cannot hold");
  }
}

void put_f16(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

// One row of a quantized tensor as ggml blocks; tracks the change of every weight.
void encode_row(const Planned& p, int64_t r, uint8_t* out, ExportReport* rep) {
  const QuantWeight& q = *p.w->quant;
  const std::string& name = p.canonical;
  for (int64_t b = 0; b < q.cols / 32; ++b) {
    const int64_t g = b * 32 / q.group_size;
    const double s = source_scale(q, r, g), z = source_zero(q, r, g);
    const float d = round_param(DType::kF16, s, name, "scale");
    int code[32];
    for (int j = 0; j < 32; ++j) code[j] = source_code(q, r, b * 32 + j);
    if (p.type == GgmlType::kQ8_0) {
      uint8_t* blk = out + b * kQ8_0Bytes;
      put_f16(blk, d);
      for (int j = 0; j < 32; ++j) {
        blk[2 + j] = uint8_t(int8_t(code[j]));
        note_change(rep, name, std::fabs(double(code[j]) * d - (code[j] - z) * s), s);
      }
    } else if (p.type == GgmlType::kQ4_0) {
      uint8_t* blk = out + b * kQ4_0Bytes;
      put_f16(blk, d);
      for (int j = 0; j < 16; ++j) blk[2 + j] = uint8_t(code[j] | (code[j + 16] << 4));
      for (int j = 0; j < 32; ++j) note_change(rep, name, std::fabs((code[j] - 8) * double(d) - (code[j] - z) * s), s);
    } else {  // Q4_1
      const float m = round_param(DType::kF16, -s * z, name, "offset (-scale * zero point)");
      uint8_t* blk = out + b * kQ4_1Bytes;
      put_f16(blk, d);
      put_f16(blk + 2, m);
      for (int j = 0; j < 16; ++j) blk[4 + j] = uint8_t(code[j] | (code[j + 16] << 4));
      for (int j = 0; j < 32; ++j) note_change(rep, name, std::fabs(code[j] * double(d) + m - (code[j] - z) * s), s);
    }
  }
}

}  // namespace

ExportReport export_gguf(const ExportOptions& o) {
  if (o.out.empty()) throw Error("--out: an output file is required");
  ExportSource src = open_export_source(o.model, "gguf");
  std::error_code ec;
  if (fs::is_directory(o.out, ec)) throw Error("--out: " + o.out + " is a directory; give the name of the .gguf file to write");

  // The source multiplies the embedding by sqrt(hidden) rounded to the quantized embedding's scale dtype (else its
  // dtype), as transformers rounds it to the model dtype; llama.cpp (and g4 reading a GGUF) multiplies by the f32
  // value. Every other use of the residual stream x goes through an RMSNorm, and x only grows by post-norm outputs
  // and by layer_scalar's product (spec 2.3; g4 refuses the per-layer inputs of E2B/E4B, which would read x
  // otherwise): with x0 scaled by c = f32 / rounded, the post-norm weights scaled by c make every x_l the source's
  // times c, which the next norm removes (up to its 1e-6 epsilon). So the embedding keeps its exact scales (a tied
  // one too), and only the post-norm weights change, by f32 rounding (2^-24). Folding c into the embedding's f16
  // scales instead rounded each row's factor by up to 2^-11 (0.0003-0.0015 in the logits) and could not apply to
  // a tied table (0.0124).
  const StoredWeight& emb = src.ws->get_weight("embed_tokens.weight");
  const float h = float(std::sqrt(double(src.spec.hidden_size)));
  const DType et = emb.quant ? emb.quant->scale_dtype : emb.plain->dtype;
  const float src_h = et == DType::kBF16 ? bf16_to_f32(f32_to_bf16(h)) : et == DType::kF16 ? f16_to_f32(f32_to_f16(h)) : h;
  const double residual = double(h) / double(src_h);

  std::vector<Planned> plan;
  std::map<GgmlType, int> counts;
  for (const auto& [name, w] : src.ws->weights()) {
    Planned p{name, &w, GgmlType::kF32};
    if (w.quant) {
      const QuantWeight& q = *w.quant;
      if (q.group_size % 32 != 0)
        throw Error("tensor '" + name + "': group size " + std::to_string(q.group_size) +
                    " cannot be expressed in GGUF (its Q4_0 / Q4_1 / Q8_0 blocks hold 32 elements; the group size must be a multiple of 32)");
      if (q.kind == QuantKind::kInt8 && q.zeros)
        throw Error("tensor '" + name + "': asymmetric int8 cannot be expressed in GGUF (Q8_0 is symmetric); export it to MLX, or quantize it symmetric");
      p.type = q.kind == QuantKind::kInt8 ? GgmlType::kQ8_0 : q.zeros ? GgmlType::kQ4_1 : GgmlType::kQ4_0;
      ++counts[p.type];
    } else {
      p.type = plain_type(*w.plain);
      if (is_post_norm(name)) p.rescale = residual;
    }
    gguf_tensor_name(name);  // refuses names llama.cpp's gemma4 layout has no place for, before writing
    plan.push_back(p);
  }
  // LLAMA_FTYPE of the dominant 4-bit type (MOSTLY_Q4_1 = 3, MOSTLY_Q4_0 = 2), else MOSTLY_Q8_0 = 7.
  const uint32_t ftype = counts[GgmlType::kQ4_1] >= std::max(1, counts[GgmlType::kQ4_0]) ? 3u
                         : counts[GgmlType::kQ4_0] > 0                                   ? 2u
                                                                                         : 7u;

  GgufWriter w(o.out);
  write_gguf_metadata(w, src, ftype);
  int d_full = 0, full_pairs = 0;
  for (const LayerSpec& L : src.spec.layers)
    if (!L.sliding) d_full = L.head_dim, full_pairs = L.rope_pairs;
  std::vector<float> freqs;
  if (d_full > 0) {
    freqs.assign(size_t(d_full / 2), 1e30f);
    for (int k = 0; k < full_pairs; ++k) freqs[size_t(k)] = 1.0f;
    w.add_tensor("rope_freqs.weight", GgmlType::kF32, {int64_t(freqs.size())});
  }
  for (const Planned& p : plan) w.add_tensor(gguf_tensor_name(p.canonical), p.type, p.w->shape);
  w.begin();
  if (!freqs.empty()) w.write(freqs.data(), freqs.size() * 4);

  ExportReport rep;
  uint64_t work = 0;
  for (const Planned& p : plan) work += p.w->quant ? uint64_t(p.w->quant->rows) * uint64_t(p.w->quant->cols) : p.w->plain->nbytes;
  Progress prog("export", work, "weights", o.progress);
  for (const Planned& p : plan) {
    if (!p.w->quant) {
      const TensorInfo& t = *p.w->plain;
      if (p.type == GgmlType::kF32 && (t.dtype != DType::kF32 || p.rescale != 1.0)) {
        std::vector<float> f = tensor_to_f32(t);
        for (float& v : f) v = float(double(v) * p.rescale);
        w.write(f.data(), f.size() * 4);
      } else {
        w.write(t.data, t.nbytes);
      }
      prog.add(t.nbytes);
      ++rep.plain;
      ++rep.types[ggml_type_name(uint32_t(p.type))];
      continue;
    }
    const QuantWeight& q = *p.w->quant;
    const int64_t blk = p.type == GgmlType::kQ8_0 ? kQ8_0Bytes : p.type == GgmlType::kQ4_0 ? kQ4_0Bytes : kQ4_1Bytes;
    std::vector<uint8_t> row(size_t(q.cols / 32 * blk));
    for (int64_t r = 0; r < q.rows; ++r) {
      encode_row(p, r, row.data(), &rep);
      w.write(row.data(), row.size());
      prog.add(uint64_t(q.cols));
    }
    ++rep.quantized;
    ++rep.types[ggml_type_name(uint32_t(p.type))];
    src.ws->release_pages();
  }
  w.finish();
  prog.finish();
  rep.bytes_out = w.total_bytes();
  return rep;
}

}  // namespace g4
