// Decode / prefill benchmark of the CUDA backend on a synthetic Gemma 4 31B (real dimensions, 60
// layers, random weights generated on the GPU machine, never transferred). It runs the same op
// sequence as Session::forward_chunk (model/session.cc) directly against the Backend, because loading
// quantized checkpoints into Model is not on main yet. Prints prefill tok/s, time to first token,
// decode tok/s at two depths, the bytes read per decode token and the floor from the device-to-device
// copy bandwidth measured in the same run.
// Single-token steps are recorded once as a CUDA graph and replayed (as Session does), unless
// G4_CUDA_GRAPHS=0.
// Then the token choice on the device (Backend::sample_rows) against downloading the logits and choosing on
// the host, alone and inside decode steps.
//   usage: cuda_decode_bench [int4-g128|int4-g32|int8|bf16] [prompt_tokens] [decode_tokens] [depth2]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "base/error.h"

using namespace g4;

namespace {

constexpr int64_t kH = 5376, kF = 21504, kHq = 32, kV = 262144;
constexpr int kLayers = 60;

struct Layer {
  bool full;
  int64_t D, Hkv;
  int window, pairs;
  float theta;
  std::unique_ptr<PackedWeight> in_n, post_attn_n, pre_ffn_n, post_ffn_n, q_n, k_n, q, k, v, o, gate, up, down;
};

struct Fmt {
  std::string name;
  bool quant;
  QuantKind kind;
  int64_t gs;
};

uint64_t g_seed = 0x9E3779B97F4A7C15ull;

// Fills bytes with xorshift output, several threads.
void fill_random(uint8_t* p, size_t n, uint64_t seed) {
  const unsigned nt = std::max(1u, std::min(16u, std::thread::hardware_concurrency()));
  std::vector<std::thread> th;
  const size_t per = (n / nt + 7) / 8 * 8;
  for (unsigned t = 0; t < nt; ++t) {
    th.emplace_back([=] {
      const size_t b = std::min(n, t * per), e = std::min(n, b + per);
      uint64_t s = seed ^ (0x2545F4914F6CDD1Dull * (t + 1));
      for (size_t i = b; i < e; i += 8) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        std::memcpy(p + i, &s, std::min<size_t>(8, e - i));
      }
    });
  }
  for (auto& x : th) x.join();
}

size_t g_weight_bytes = 0;

std::unique_ptr<PackedWeight> make_linear(Backend& be, const Fmt& f, int64_t rows, int64_t cols) {
  WeightView wv;
  wv.name = "synthetic";
  wv.shape = {rows, cols};
  std::vector<uint8_t> codes, scales;
  std::vector<uint16_t> bf;
  QuantWeight q;
  if (f.quant) {
    q.kind = f.kind;
    q.rows = rows, q.cols = cols;
    q.group_size = f.gs > 0 ? f.gs : cols;
    q.scale_dtype = DType::kBF16;
    codes.resize(q.code_bytes());
    fill_random(codes.data(), codes.size(), g_seed++);
    const size_t ng = size_t(rows * (cols / q.group_size));
    scales.resize(ng * 2);
    // Scales near 0.5/sqrt(cols * var(code)) keep activations O(1) through the random layers.
    const float s0 = (f.kind == QuantKind::kInt4 ? 4.6f : 74.f) * std::sqrt(float(cols));
    for (size_t i = 0; i < ng; ++i) {
      const uint16_t h = f32_to_bf16((0.8f + 0.4f * float(i % 7) / 7.f) / s0);
      std::memcpy(&scales[i * 2], &h, 2);
    }
    q.codes = codes.data();
    q.scales = scales.data();
    wv.quant = &q;
    g_weight_bytes += codes.size() + scales.size();
  } else {
    bf.resize(size_t(rows * cols));
    fill_random(reinterpret_cast<uint8_t*>(bf.data()), bf.size() * 2, g_seed++);
    // Random sign and mantissa, exponent fixed near 1/sqrt(cols).
    const uint16_t e = uint16_t(f32_to_bf16(1.f / std::sqrt(float(cols))) & 0x7F80);
    for (auto& x : bf) x = uint16_t((x & 0x807F) | e);
    wv.dtype = DType::kBF16;
    wv.data = bf.data();
    g_weight_bytes += bf.size() * 2;
  }
  return be.pack(wv, WeightRole::kLinear);
}

std::unique_ptr<PackedWeight> make_norm(Backend& be, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = 0.9f + 0.2f * float(i % 11) / 11.f;
  return be.pack(WeightView{"norm", DType::kF32, {n}, v.data(), nullptr}, WeightRole::kNorm);
}

struct Model31 {
  std::unique_ptr<PackedWeight> embed, final_norm;
  std::vector<Layer> layers;
};

Model31 build(CudaBackend& be, const Fmt& f) {
  Model31 m;
  g_weight_bytes = 0;
  m.embed = make_linear(be, f, kV, kH);
  m.final_norm = make_norm(be, kH);
  for (int i = 0; i < kLayers; ++i) {
    Layer L;
    L.full = (i + 1) % 6 == 0;
    L.D = L.full ? 512 : 256;
    L.Hkv = L.full ? 4 : 16;
    L.window = L.full ? 0 : 1024;
    L.pairs = L.full ? 64 : 128;
    L.theta = L.full ? 1e6f : 1e4f;
    L.in_n = make_norm(be, kH), L.post_attn_n = make_norm(be, kH), L.pre_ffn_n = make_norm(be, kH);
    L.post_ffn_n = make_norm(be, kH), L.q_n = make_norm(be, L.D), L.k_n = make_norm(be, L.D);
    L.q = make_linear(be, f, kHq * L.D, kH);
    L.k = make_linear(be, f, L.Hkv * L.D, kH);
    if (!L.full) L.v = make_linear(be, f, L.Hkv * L.D, kH);
    L.o = make_linear(be, f, kH, kHq * L.D);
    L.gate = make_linear(be, f, kF, kH);
    L.up = make_linear(be, f, kF, kH);
    L.down = make_linear(be, f, kH, kF);
    m.layers.push_back(std::move(L));
  }
  be.synchronize();
  return m;
}

// Per-op GPU time of one eager step (G4_BENCH_PROFILE=1): events around each op, summed by category.
struct OpProfile {
  bool on = false;
  cudaStream_t s = nullptr;
  std::vector<std::pair<std::string, std::pair<cudaEvent_t, cudaEvent_t>>> marks;
  template <class F>
  void op(const char* cat, F&& f) {
    if (!on) return f();
    cudaEvent_t a, b;
    G4_CUDA(cudaEventCreate(&a));
    G4_CUDA(cudaEventCreate(&b));
    G4_CUDA(cudaEventRecord(a, s));
    f();
    G4_CUDA(cudaEventRecord(b, s));
    marks.push_back({cat, {a, b}});
  }
  void report() {
    G4_CUDA(cudaStreamSynchronize(s));
    std::vector<std::pair<std::string, std::pair<double, int>>> sum;
    double total = 0;
    for (auto& [cat, ev] : marks) {
      float ms = 0;
      G4_CUDA(cudaEventElapsedTime(&ms, ev.first, ev.second));
      auto it = std::find_if(sum.begin(), sum.end(), [&](auto& x) { return x.first == cat; });
      if (it == sum.end()) sum.push_back({cat, {0.0, 0}}), it = sum.end() - 1;
      it->second.first += ms, it->second.second += 1;
      total += ms;
      cudaEventDestroy(ev.first), cudaEventDestroy(ev.second);
    }
    std::printf("eager decode step, GPU time by op (events around each op): total %.2f ms\n", total);
    for (auto& [cat, v] : sum)
      std::printf("  %-14s %7.3f ms  %4d calls  %6.1f us/call\n", cat.c_str(), v.first, v.second, v.first * 1e3 / v.second);
    marks.clear();
  }
};
OpProfile g_prof;

// One chunk at position p0, mirroring Session::forward_chunk; returns the last row's logits, on the device.
Tensor forward_dev(CudaBackend& be, const Model31& m, std::vector<KvLayer>& kv, const std::vector<int32_t>& tokens,
                           int64_t p0) {
  const int64_t T = int64_t(tokens.size());
  const float eps = 1e-6f;
  Tensor x = be.empty({T, kH});
  OpProfile& P = g_prof;
  P.op("embed", [&] { be.embed(*m.embed, tokens, 73.5f, x); });
  Tensor a = be.empty({T, kH});
  // As Session: the first input norm here, the others fused into the residual step before them.
  P.op("rms_norm", [&] { be.rms_norm(x, m.layers[0].in_n.get(), eps, a); });
  for (int li = 0; li < kLayers; ++li) {
    const Layer& L = m.layers[size_t(li)];
    const int64_t D = L.D, Hkv = L.Hkv;
    Tensor q = be.empty({T, kHq, D}), k_raw = be.empty({T, Hkv, D});
    Tensor q2 = q.view({T, kHq * D}), k2 = k_raw.view({T, Hkv * D});
    Tensor v_raw = k_raw, v2;
    if (L.v) {
      v_raw = be.empty({T, Hkv, D});
      v2 = v_raw.view({T, Hkv * D});
      P.op("matmul qkv", [&] { be.matmul_shared(a, {L.q.get(), L.k.get(), L.v.get()}, {&q2, &k2, &v2}); });
    } else {
      P.op("matmul qkv", [&] { be.matmul_shared(a, {L.q.get(), L.k.get()}, {&q2, &k2}); });
    }
    Tensor k = be.empty({T, Hkv, D}), v = be.empty({T, Hkv, D});
    P.op("qkv norm+rope", [&] {
      be.qkv_norm_rope(q, k_raw, v_raw, *L.q_n, *L.k_n, eps, p0, RopeSpec{L.theta, L.pairs}, k, v);
    });
    Tensor att = be.empty({T, kHq, D});
    P.op(L.full ? "attn full" : "attn sliding", [&] { be.attention(q, k, v, kv[size_t(li)], p0, L.window, att); });
    P.op("kv_append", [&] { be.kv_append(kv[size_t(li)], k, v, p0); });
    Tensor o = be.empty({T, kH});
    P.op("matmul o", [&] { be.matmul(att.view({T, kHq * D}), *L.o, o); });
    P.op("add+norm+norm", [&] { be.add_norm_scale_norm(x, o, *L.post_attn_n, 1.0f, *L.pre_ffn_n, eps, a); });
    Tensor g = be.empty({T, kF}), u = be.empty({T, kF});
    P.op("matmul gate/up", [&] { be.matmul_shared(a, {L.gate.get(), L.up.get()}, {&g, &u}); });
    P.op("gelu_mul", [&] { be.gelu_mul(g, u, g); });
    P.op("matmul down", [&] { be.matmul(g, *L.down, o); });
    if (li + 1 < kLayers) {
      P.op("add+norm+norm", [&] {
        be.add_norm_scale_norm(x, o, *L.post_ffn_n, 1.0f, *m.layers[size_t(li) + 1].in_n, eps, a);
      });
    } else {
      P.op("add_rms_norm", [&] { be.add_rms_norm(x, o, *L.post_ffn_n, eps); });
      P.op("scale", [&] { be.scale(x, 1.0f); });
    }
  }
  Tensor last = be.slice_rows(x, T - 1, 1), y = be.empty({1, kH}), logits = be.empty({1, kV});
  P.op("rms_norm", [&] { be.rms_norm(last, m.final_norm.get(), eps, y); });
  P.op("lm_head", [&] { be.matmul(y, *m.embed, logits); });
  P.op("softcap", [&] { be.softcap(logits, 30.f); });
  return logits;
}

double g_enqueue_s = 0;  // host time spent enqueueing (forward_dev or a graph replay) in the last forward()

double now();

// Single-token steps go through the backend's step recording (a CUDA graph), as Session does.
std::unique_ptr<StepRecording> g_step;
Tensor g_step_logits;

// One step on the device; returns the last row's logits there (recorded and replayed for one token).
Tensor forward_keep(CudaBackend& be, const Model31& m, std::vector<KvLayer>& kv, const std::vector<int32_t>& tokens,
                    int64_t p0) {
  const double t0 = now();
  Tensor logits;
  if (tokens.size() == 1) {
    if (!g_step) {
      if (auto rec = be.begin_step_recording(1, {p0})) {
        g_step_logits = forward_dev(be, m, kv, tokens, p0);
        be.end_step_recording(*rec);
        g_step = std::move(rec);
      }
    }
    if (g_step) {
      be.replay_step(*g_step, tokens, {p0});
      logits = g_step_logits;
    }
  }
  if (!logits.data) logits = forward_dev(be, m, kv, tokens, p0);
  g_enqueue_s = now() - t0;
  return logits;
}

std::vector<float> forward(CudaBackend& be, const Model31& m, std::vector<KvLayer>& kv, const std::vector<int32_t>& tokens,
                           int64_t p0) {
  const Tensor logits = forward_keep(be, m, kv, tokens, p0);
  std::vector<float> host(static_cast<size_t>(kV));
  be.download(logits, host.data());
  return host;
}

int32_t argmax(const std::vector<float>& v) {
  size_t b = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[b]) b = i;
  return int32_t(b);
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double copy_bandwidth(CudaBackend& be) {
  const size_t n = size_t(2) << 30;
  auto a = be.scratch(n), b = be.scratch(n);
  G4_CUDA(cudaMemsetAsync(a.get(), 1, n, be.stream()));
  cudaEvent_t e0, e1;
  G4_CUDA(cudaEventCreate(&e0));
  G4_CUDA(cudaEventCreate(&e1));
  for (int i = 0; i < 3; ++i) G4_CUDA(cudaMemcpyAsync(b.get(), a.get(), n, cudaMemcpyDeviceToDevice, be.stream()));
  G4_CUDA(cudaEventRecord(e0, be.stream()));
  const int reps = 10;
  for (int i = 0; i < reps; ++i) G4_CUDA(cudaMemcpyAsync(b.get(), a.get(), n, cudaMemcpyDeviceToDevice, be.stream()));
  G4_CUDA(cudaEventRecord(e1, be.stream()));
  G4_CUDA(cudaEventSynchronize(e1));
  float ms = 0;
  G4_CUDA(cudaEventElapsedTime(&ms, e0, e1));
  return 2.0 * double(n) * reps / (double(ms) * 1e-3);  // read + write
}

// KV bytes the decode attention reads for a token at position p (f32 K and V).
double kv_bytes_at(const Model31& m, int64_t p) {
  double b = 0;
  for (const Layer& L : m.layers) {
    const int64_t keys = L.window > 0 ? std::min<int64_t>(p + 1, L.window) : p + 1;
    b += double(keys) * double(L.Hkv * L.D) * 4.0 * 2.0;
  }
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string fmt_name = argc > 1 ? argv[1] : "int4-g128";
    const int64_t prompt = argc > 2 ? std::stoll(argv[2]) : 2048;
    const int n_decode = argc > 3 ? std::stoi(argv[3]) : 64;
    const int64_t depth2 = argc > 4 ? std::stoll(argv[4]) : 4096;
    Fmt f{fmt_name, true, QuantKind::kInt4, 128};
    if (fmt_name == "int4-g32") f.gs = 32;
    else if (fmt_name == "int8") f.kind = QuantKind::kInt8, f.gs = 0;
    else if (fmt_name == "bf16") f.quant = false;
    else if (fmt_name != "int4-g128") throw Error("unknown format '" + fmt_name + "' (int4-g128, int4-g32, int8, bf16)");

    CudaOptions opt;
    const char* graphs_env = std::getenv("G4_CUDA_GRAPHS");
    opt.step_graphs = !(graphs_env && std::string(graphs_env) == "0");
    CudaBackend be(opt);
    std::printf("decode steps as CUDA graphs: %s (G4_CUDA_GRAPHS=0 turns them off)\n", opt.step_graphs ? "on" : "off");
    cudaDeviceProp prop;
    G4_CUDA(cudaGetDeviceProperties(&prop, 0));
    const double bw = copy_bandwidth(be);
    std::printf("device: %s, %d SMs; copy bandwidth (read+write) %.0f GB/s\n", prop.name, prop.multiProcessorCount, bw / 1e9);
    double t0 = now();
    Model31 m = build(be, f);
    std::printf("format %s: built 60-layer synthetic 31B in %.1f s, weights %.2f GB on device\n", fmt_name.c_str(),
                now() - t0, double(g_weight_bytes) / 1e9);

    const int64_t ctx = std::max(prompt, depth2) + n_decode + 8;
    std::vector<KvLayer> kv;
    for (const Layer& L : m.layers) {
      const bool ring = L.window > 0 && L.window < ctx;
      kv.push_back(be.make_kv_layer(ring ? L.window : ctx, int(L.Hkv), int(L.D), ring));
    }
    std::vector<int32_t> toks(static_cast<size_t>(prompt));
    for (int64_t i = 0; i < prompt; ++i) toks[size_t(i)] = int32_t((i * 7919 + 11) % kV);

    // Warm-up: a short prompt and a few decode steps (cuBLAS heuristics, pool, module load).
    forward(be, m, kv, std::vector<int32_t>(toks.begin(), toks.begin() + std::min<int64_t>(prompt, 64)), 0);
    forward(be, m, kv, {1}, 64);
    forward(be, m, kv, {2}, 65);

    be.synchronize();
    t0 = now();
    auto logits = forward(be, m, kv, toks, 0);
    const double t_prefill = now() - t0;
    std::printf("prefill %lld tokens: %.3f s = %.0f tok/s; time to first token %.1f ms\n", (long long)prompt, t_prefill,
                double(prompt) / t_prefill, t_prefill * 1e3);

    auto decode = [&](int64_t p, int n, const char* label) {
      int32_t tok = argmax(logits);
      double bytes = 0, enq = 0;
      const double s = now();
      for (int i = 0; i < n; ++i) {
        bytes += double(g_weight_bytes) + kv_bytes_at(m, p + i);
        logits = forward(be, m, kv, {tok}, p + i);
        enq += g_enqueue_s;
        tok = argmax(logits);
      }
      std::printf("  host time enqueueing one decode step: %.2f ms\n", enq / n * 1e3);
      const double dt = now() - s, per = dt / n, floor_s = bytes / n / bw;
      bool finite = true;
      for (float v : logits) finite = finite && std::isfinite(v);
      std::printf("decode %s (positions %lld..%lld): %.2f ms/token = %.1f tok/s; bytes/token %.2f GB; floor %.2f ms = "
                  "%.1f tok/s; %.1f%% of floor; logits finite: %s\n",
                  label, (long long)p, (long long)(p + n - 1), per * 1e3, 1.0 / per, bytes / n / 1e9, floor_s * 1e3,
                  1.0 / floor_s, 100.0 * floor_s / per, finite ? "yes" : "NO");
    };
    {  // The GEMV alone, back to back on one weight (gate of layer 0 and of layer 1 alternating: 2 x the L2).
      const Layer& L0 = m.layers[0];
      const Layer& L1 = m.layers[1];
      Tensor xa = be.empty({1, kH}), ya = be.empty({1, kF});
      std::vector<float> xh(static_cast<size_t>(kH));
      for (int64_t i = 0; i < kH; ++i) xh[size_t(i)] = float((i * 37) % 101) / 50.f - 1.f;
      be.upload(xa, xh.data());
      cudaEvent_t e0, e1;
      G4_CUDA(cudaEventCreate(&e0));
      G4_CUDA(cudaEventCreate(&e1));
      G4_CUDA(cudaEventRecord(e0, be.stream()));
      const int reps = 40;
      for (int i = 0; i < reps; ++i) be.matmul(xa, *(i % 2 ? L1.gate : L0.gate), ya);
      G4_CUDA(cudaEventRecord(e1, be.stream()));
      G4_CUDA(cudaEventSynchronize(e1));
      float ms = 0;
      G4_CUDA(cudaEventElapsedTime(&ms, e0, e1));
      const double gate_bytes = f.quant ? double(kF) * kH * (f.kind == QuantKind::kInt4 ? 0.5 : 1.0) +
                                              double(kF) * double(kH / (f.gs > 0 ? f.gs : kH)) * 2.0
                                        : double(kF) * kH * 2.0;
      std::printf("GEMV alone [%lld x %lld]: %.1f us each = %.0f GB/s (%.1f%% of copy bandwidth)\n", (long long)kF,
                  (long long)kH, ms * 1e3 / reps, gate_bytes * reps / (ms * 1e-3) / 1e9,
                  100.0 * gate_bytes * reps / (ms * 1e-3) / bw);
    }
    decode(prompt, n_decode, "after prompt");
    if (const char* pe = std::getenv("G4_BENCH_PROFILE"); pe && std::string(pe) == "1") {
      // One eager step (no graph) with events around each op, at the position after the timed steps.
      g_prof.on = true;
      g_prof.s = be.stream();
      std::vector<int32_t> one = {3};
      Tensor l = forward_dev(be, m, kv, one, prompt + n_decode);
      g_prof.report();
      g_prof.on = false;
      std::vector<float> tmp(static_cast<size_t>(kV));
      be.download(l, tmp.data());
    }
    {
      // Choosing the next token: on the device (Backend::sample_rows, 4 bytes back) or on the host from the
      // downloaded 1 MB row, for greedy, Gemma's recommended sampling and sampling over the whole
      // vocabulary. First the choice alone on one logits row, then whole decode steps with it.
      SamplingParams greedy, gemma, full;
      gemma.temperature = 1.0f, gemma.top_k = 64, gemma.top_p = 0.95f;
      full.temperature = 1.0f;
      const struct { const char* name; SamplingParams p; } kinds[] = {{"greedy", greedy}, {"top-k 64, top-p 0.95", gemma},
                                                                     {"temp 1, whole vocabulary", full}};
      std::mt19937_64 draws(1);
      auto unit = [&] { return std::uniform_real_distribution<double>(0.0, 1.0)(draws); };
      Tensor last = forward_keep(be, m, kv, {3}, prompt + n_decode);
      std::vector<float> host(static_cast<size_t>(kV));
      for (const auto& k : kinds) {
        const int reps = 20;
        double t = now();
        int32_t a = 0, b = 0;
        for (int i = 0; i < reps; ++i) {
          be.download(last, host.data());
          a = choose_token(k.p, host.data(), kV, {}, 0.5);
        }
        const double t_host = (now() - t) / reps;
        t = now();
        for (int i = 0; i < reps; ++i) b = be.sample_rows(last, {RowSampling{k.p, {}, 0.5, {}}})[0];
        const double t_dev = (now() - t) / reps;
        std::printf("token choice alone, %s: download + host %.3f ms, device %.3f ms (same token: %s)\n", k.name,
                    t_host * 1e3, t_dev * 1e3, a == b ? "yes" : "NO");
      }
      for (const auto& k : kinds)
        for (bool on_device : {false, true}) {
          int32_t tok = 1;
          const double t = now();
          for (int i = 0; i < n_decode; ++i) {
            const Tensor l = forward_keep(be, m, kv, {tok}, prompt + i);
            const RowSampling r{k.p, {}, unit(), {}};
            if (on_device) {
              tok = be.sample_rows(l, {r})[0];
            } else {
              be.download(l, host.data());
              tok = choose_token(k.p, host.data(), kV, {}, r.u);
            }
          }
          std::printf("decode with the choice on the %s, %s: %.3f ms/token\n", on_device ? "device" : "host  ", k.name,
                      (now() - t) / n_decode * 1e3);
        }
    }
    if (depth2 > prompt) {
      // Fill the cache to depth2 with one more chunk (no timing), then decode there.
      std::vector<int32_t> more(size_t(depth2 - prompt - n_decode), 5);
      if (!more.empty()) logits = forward(be, m, kv, more, prompt + n_decode);
      decode(depth2, n_decode, "at depth");
    }
    g_step.reset();  // before the backend goes
    g_step_logits = Tensor();
    return 0;
  } catch (const std::exception& e) {
    g_step.release();  // its backend is gone; leak rather than touch it
    std::fprintf(stderr, "cuda_decode_bench: error: %s\n", e.what());
    return 1;
  }
}
