#include "quant/format.h"

#include "base/error.h"

namespace g4 {

std::string QuantWeight::describe() const {
  return std::string(kind == QuantKind::kInt4 ? "int4" : "int8") + " g" + std::to_string(group_size) +
         (zeros ? " asym" : " sym") + " (" + dtype_name(scale_dtype) + " scales)";
}

void validate(const QuantWeight& q, const std::string& name) {
  if (q.rows <= 0 || q.cols <= 0) throw Error(name + ": quantized tensor has an empty shape");
  if (q.group_size <= 0 || q.cols % q.group_size != 0)
    throw Error(name + ": group size " + std::to_string(q.group_size) + " does not divide the row length " +
                std::to_string(q.cols));
  if (q.kind == QuantKind::kInt4 && q.cols % 2 != 0) throw Error(name + ": int4 rows must have an even length");
  if (q.scale_dtype != DType::kF32 && q.scale_dtype != DType::kF16 && q.scale_dtype != DType::kBF16)
    throw Error(name + ": scales must be F32, F16 or BF16");
  if (!q.codes || !q.scales) throw Error(name + ": quantized tensor lacks codes or scales");
}

namespace {
float load_scalar(DType t, const void* base, int64_t i) {
  float f;
  convert_to_f32(t, static_cast<const uint8_t*>(base) + size_t(i) * dtype_size(t), 1, &f);
  return f;
}
}  // namespace

void dequantize_row(const QuantWeight& q, int64_t r, float* dst) {
  const int64_t G = q.groups_per_row();
  for (int64_t g = 0; g < G; ++g) {
    const float s = load_scalar(q.scale_dtype, q.scales, r * G + g);
    const float z = q.zeros ? load_scalar(q.scale_dtype, q.zeros, r * G + g) : (q.kind == QuantKind::kInt4 ? 8.0f : 0.0f);
    for (int64_t k = g * q.group_size; k < (g + 1) * q.group_size; ++k) {
      float code;
      if (q.kind == QuantKind::kInt4) {
        const uint8_t byte = q.codes[size_t(r) * size_t(q.cols / 2) + size_t(k / 2)];
        code = float((k & 1) ? (byte >> 4) : (byte & 15));
      } else {
        code = float(reinterpret_cast<const int8_t*>(q.codes)[size_t(r) * size_t(q.cols) + size_t(k)]);
      }
      dst[k] = (code - z) * s;
    }
  }
}

}  // namespace g4
