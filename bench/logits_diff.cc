// Compares two logits files [T, V] (tensor "logits", F32: `g4 logits` safetensors or tools/gguf/llama_logits
// GGUF) and prints one line: max and mean |a - b|, top-1 agreement, and the largest KL(b || a) per position.
// Usage: logits_diff A B   (bench/export_vs_llamacpp.sh drives it; B is the reference)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "base/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"

namespace {

struct Logits {
  std::vector<float> v;
  int64_t T = 0, V = 0;
};

Logits read_logits(const std::string& path) {
  Logits l;
  const float* p = nullptr;
  if (g4::is_gguf_file(path)) {
    g4::GgufFile f(path);
    const g4::GgufTensor* t = f.find_tensor("logits");
    if (!t || t->type != 0 || t->ne.size() != 2) throw g4::Error(path + ": no F32 [T, V] tensor 'logits'");
    l.V = t->ne[0], l.T = t->ne[1];
    p = reinterpret_cast<const float*>(t->data);
    l.v.assign(p, p + l.T * l.V);
  } else {
    g4::SafetensorsFile f(path);
    const g4::TensorInfo* t = f.find("logits");
    if (!t || t->dtype != g4::DType::kF32 || t->shape.size() != 2) throw g4::Error(path + ": no F32 [T, V] tensor 'logits'");
    l.T = t->shape[0], l.V = t->shape[1];
    p = reinterpret_cast<const float*>(t->data);
    l.v.assign(p, p + l.T * l.V);
  }
  return l;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: logits_diff A B\n");
    return 1;
  }
  try {
    const Logits a = read_logits(argv[1]), b = read_logits(argv[2]);
    if (a.T != b.T || a.V != b.V) throw g4::Error("shapes differ: [" + std::to_string(a.T) + ", " + std::to_string(a.V) +
                                                  "] vs [" + std::to_string(b.T) + ", " + std::to_string(b.V) + "]");
    double max_abs = 0, sum = 0, max_kl = 0;
    int top1 = 0;
    for (int64_t t = 0; t < a.T; ++t) {
      const float* x = a.v.data() + t * a.V;
      const float* y = b.v.data() + t * a.V;
      const int64_t ix = std::max_element(x, x + a.V) - x, iy = std::max_element(y, y + a.V) - y;
      top1 += ix == iy;
      double zx = 0, zy = 0;
      for (int64_t k = 0; k < a.V; ++k) {
        const double d = std::fabs(double(x[k]) - double(y[k]));
        max_abs = std::isnan(d) ? INFINITY : std::max(max_abs, d);
        sum += d;
        zx += std::exp(double(x[k]) - x[ix]);
        zy += std::exp(double(y[k]) - y[iy]);
      }
      double kl = 0;
      for (int64_t k = 0; k < a.V; ++k) {
        const double lx = double(x[k]) - x[ix] - std::log(zx), ly = double(y[k]) - y[iy] - std::log(zy);
        kl += std::exp(ly) * (ly - lx);
      }
      max_kl = std::max(max_kl, kl);
    }
    std::printf("max %.3g | mean %.3g | top-1 %d/%lld | max KL %.1e\n", max_abs, sum / double(a.T * a.V), top1,
                static_cast<long long>(a.T), max_kl);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "logits_diff: error: %s\n", e.what());
    return 1;
  }
}
