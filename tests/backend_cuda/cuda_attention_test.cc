// Attention on the CUDA backend against the ref backend: decode (split-K kernels, T <= 4, or up to 16
// queries over few keys: attn_decode_suits) and prefill (attn_prefill.cu fast, cuBLAS precise) over flat and ring caches, head_dim 32/256/512, GQA groups 1..8, windows smaller and
// larger than the context. Bounds: precise 1e-5 relative; fast prefill (f16 GEMMs, f32 sums) 5e-3; decode is f32.
#include <cstring>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "cuda_test_util.h"

namespace g4::test {
namespace {

struct AttCase {
  int64_t T, Hq, Hkv, D, p0;
  int window;
  int64_t cap;
  bool ring;
};

// The ref backend's attention for case c over an f32 cache holding ck, cv.
std::vector<float> ref_attention(RefBackend& ref, const AttCase& c, const std::vector<float>& q, const std::vector<float>& k,
                                 const std::vector<float>& v, const std::vector<float>& ck, const std::vector<float>& cv) {
  KvLayer kr = ref.make_kv_layer(c.cap, int(c.Hkv), int(c.D), c.ring);
  ref.upload(kr.k, ck.data());
  ref.upload(kr.v, cv.data());
  Tensor out = ref.empty({c.T, c.Hq, c.D});
  ref.attention(to_device(ref, q, {c.T, c.Hq, c.D}), to_device(ref, k, {c.T, c.Hkv, c.D}),
                to_device(ref, v, {c.T, c.Hkv, c.D}), kr, c.p0, c.window, out);
  return to_host(ref, out);
}

// A cache layer of bf16 keys and values.
KvLayerSpec bf16_spec(int64_t cap, int64_t Hkv, int64_t D, bool ring) {
  KvLayerSpec spec;
  spec.capacity = cap;
  spec.n_kv_heads = int(Hkv);
  spec.head_dim = int(D);
  spec.ring = ring;
  spec.k_type = spec.v_type = DType::kBF16;
  return spec;
}

TEST_F(CudaTest, AttentionDecodeAndPrefill) {
  const std::vector<AttCase> cases = {
      {1, 32, 16, 256, 0, 1024, 1024, true},  {1, 32, 16, 256, 1500, 1024, 1024, true},
      {1, 32, 4, 512, 3000, 0, 4096, false},   {3, 8, 1, 512, 70, 0, 80, false},
      {4, 4, 2, 32, 13, 8, 8, true},           {1, 2, 2, 32, 0, 0, 1, false},
      {37, 4, 2, 32, 20, 8, 8, true},          {37, 4, 2, 32, 0, 8, 8, true},
      {300, 4, 2, 32, 0, 4, 4, true},          {50, 8, 1, 512, 11, 0, 64, false},
      {129, 32, 16, 256, 900, 1024, 1024, true}, {6, 6, 2, 64, 2, 0, 8, false},
      {9, 32, 16, 256, 1500, 1024, 1024, true}, {16, 8, 1, 512, 3000, 0, 4096, false},
      {16, 8, 1, 512, 9000, 0, 9100, false}, {700, 8, 2, 64, 100, 0, 1024, false},
      {333, 32, 16, 256, 0, 100, 512, true},    {200, 16, 2, 512, 70, 0, 300, false},
      {40, 4, 2, 48, 5, 0, 64, false},  // (head_dim 48: the GEMM path in both modes)
      // A short context in a large cache: the capacity sizes tens of splits, the floor of keys a split
      // takes (split_keys) leaves most of them empty.
      {1, 32, 4, 512, 40, 0, 8192, false}, {3, 8, 1, 512, 90, 0, 8192, false}, {1, 32, 16, 256, 10, 1024, 1024, true}};
  for (const AttCase& c : cases) {
    const std::string what = "T=" + std::to_string(c.T) + " Hq=" + std::to_string(c.Hq) + " Hkv=" + std::to_string(c.Hkv) +
                             " D=" + std::to_string(c.D) + " p0=" + std::to_string(c.p0) + " window=" +
                             std::to_string(c.window) + (c.ring ? " ring" : " flat");
    const auto q = randn(rng_, size_t(c.T * c.Hq * c.D), 0.2f);
    const auto k = randn(rng_, size_t(c.T * c.Hkv * c.D), 0.2f), v = randn(rng_, size_t(c.T * c.Hkv * c.D));
    const auto ck = randn(rng_, size_t(c.cap * c.Hkv * c.D), 0.2f), cv = randn(rng_, size_t(c.cap * c.Hkv * c.D));
    const auto want = ref_attention(ref_, c, q, k, v, ck, cv);
    for (CudaBackend* be : {fast_.get(), precise_.get()}) {
      KvLayer kc = be->make_kv_layer(c.cap, int(c.Hkv), int(c.D), c.ring);
      be->upload(kc.k, ck.data());
      be->upload(kc.v, cv.data());
      Tensor out = be->empty({c.T, c.Hq, c.D});
      std::vector<float> poison(size_t(out.numel()), NAN);
      be->upload(out, poison.data());
      be->attention(to_device(*be, q, {c.T, c.Hq, c.D}), to_device(*be, k, {c.T, c.Hkv, c.D}),
                    to_device(*be, v, {c.T, c.Hkv, c.D}), kc, c.p0, c.window, out);
      const bool f16 = be == fast_.get() && !cuda::attn_decode_suits(c.T, c.p0, c.window);
      expect_close(to_host(*be, out), want, f16 ? 5e-3 : 1e-5, what + (be == fast_.get() ? " fast" : " precise"));
    }
  }
}


// A bf16 cache (written by kv_append, which rounds to bf16) against the ref backend over an f32 cache holding
// the same values rounded to bf16 on the host, and new keys/values already on the bf16 grid (attention reads
// new rows rounded as the cache holds them): the same bounds as the f32 cache. Other cache types are a
// clear error.
TEST_F(CudaTest, AttentionOverBf16Cache) {
  const std::vector<AttCase> cases = {{1, 32, 16, 256, 1500, 1024, 1024, true}, {1, 32, 4, 512, 3000, 0, 4096, false},
                                      {4, 4, 2, 32, 13, 8, 8, true},           {37, 4, 2, 32, 20, 8, 8, true},
                                      {50, 8, 1, 512, 11, 0, 64, false},       {129, 32, 16, 256, 900, 1024, 1024, true},
                                      {9, 32, 16, 256, 1500, 1024, 1024, true}, {1, 32, 4, 512, 40, 0, 8192, false},
                                      {4, 32, 16, 256, 20, 1024, 1024, true}};
  auto round_bf16 = [](std::vector<float> x) {
    for (float& f : x) f = bf16_to_f32(f32_to_bf16(f));
    return x;
  };
  for (const AttCase& c : cases) {
    const std::string what = "bf16 T=" + std::to_string(c.T) + " D=" + std::to_string(c.D) + " p0=" + std::to_string(c.p0) +
                             (c.ring ? " ring" : " flat");
    const auto q = randn(rng_, size_t(c.T * c.Hq * c.D), 0.2f);
    const auto k = round_bf16(randn(rng_, size_t(c.T * c.Hkv * c.D), 0.2f));
    const auto v = round_bf16(randn(rng_, size_t(c.T * c.Hkv * c.D)));
    const auto ck = round_bf16(randn(rng_, size_t(c.cap * c.Hkv * c.D), 0.2f));
    const auto cv = round_bf16(randn(rng_, size_t(c.cap * c.Hkv * c.D)));
    const auto want = ref_attention(ref_, c, q, k, v, ck, cv);
    for (CudaBackend* be : {fast_.get(), precise_.get()}) {
      KvLayer kc = be->new_kv_layer(bf16_spec(c.cap, c.Hkv, c.D, c.ring));
      EXPECT_EQ(kc.k.dtype, DType::kBF16);
      be->kv_append(kc, to_device(*be, ck, {c.cap, c.Hkv, c.D}), to_device(*be, cv, {c.cap, c.Hkv, c.D}), 0);
      Tensor out = be->empty({c.T, c.Hq, c.D});
      be->attention(to_device(*be, q, {c.T, c.Hq, c.D}), to_device(*be, k, {c.T, c.Hkv, c.D}),
                    to_device(*be, v, {c.T, c.Hkv, c.D}), kc, c.p0, c.window, out);
      const bool f16 = be == fast_.get() && !cuda::attn_decode_suits(c.T, c.p0, c.window);
      expect_close(to_host(*be, out), want, f16 ? 5e-3 : 1e-5, what + (be == fast_.get() ? " fast" : " precise"));
    }
  }
  KvLayerSpec bad;
  bad.capacity = 8;
  bad.n_kv_heads = 2;
  bad.head_dim = 32;
  bad.k_type = bad.v_type = DType::kI8;
  EXPECT_THROW(precise_->new_kv_layer(bad), Error);
  bad.k_type = DType::kBF16;
  bad.v_type = DType::kF32;
  EXPECT_THROW(precise_->new_kv_layer(bad), Error);
}

// K=V layers storing V only (derived keys, K = RoPE(V * k_norm) at each key's position) against the ref
// backend's derived keys over the same bf16 values: the 31B's full-layer shape (head dim 512, 64 rotated
// pairs, GQA 8) at depths past a tile's 256 keys (the kernel's angle addition from rows k0 and kk), a verify
// of 4, group 4 and 1, and 4 rotated pairs (not a multiple of 8: the element-by-element derivation).
TEST_F(CudaTest, AttentionDerivedKeys) {
  struct C { int64_t T, Hq, Hkv, D; int pairs; int64_t p0, cap; };
  const std::vector<C> cases = {{1, 32, 4, 512, 64, 3000, 4096}, {4, 32, 4, 512, 64, 700, 1024},
                                {1, 8, 1, 512, 64, 9000, 9100},  {1, 16, 4, 128, 16, 70, 200},
                                {2, 8, 8, 64, 8, 5, 16},         {3, 8, 2, 64, 4, 40, 64}};
  for (const C& c : cases) {
    const std::string what = "derived T=" + std::to_string(c.T) + " Hq=" + std::to_string(c.Hq) + " Hkv=" +
                             std::to_string(c.Hkv) + " D=" + std::to_string(c.D) + " pairs=" + std::to_string(c.pairs) +
                             " p0=" + std::to_string(c.p0);
    auto bf16_grid = [](std::vector<float> x) {
      for (float& f : x) f = bf16_to_f32(f32_to_bf16(f));
      return x;
    };
    const auto q = randn(rng_, size_t(c.T * c.Hq * c.D), 0.2f);
    const auto v = bf16_grid(randn(rng_, size_t(c.T * c.Hkv * c.D)));
    const auto cv = bf16_grid(randn(rng_, size_t(c.cap * c.Hkv * c.D)));
    std::vector<float> kw = randn(rng_, size_t(c.D), 0.1f);
    for (float& w : kw) w += 1.f;
    std::vector<std::vector<float>> outs;
    for (Backend* be : std::initializer_list<Backend*>{&ref_, fast_.get()}) {
      const auto norm = be->pack(WeightView{"k_norm", DType::kF32, {c.D}, kw.data(), nullptr}, WeightRole::kNorm);
      KvLayerSpec spec = bf16_spec(c.cap, c.Hkv, c.D, false);
      if (be == &ref_) spec.k_type = spec.v_type = DType::kF32;
      spec.k_from_v = true;
      spec.k_norm = norm.get();
      spec.rope = RopeSpec{1e6f, c.pairs};
      KvLayer kc = be->new_kv_layer(spec);
      ASSERT_TRUE(kc.k_from_v) << what;
      const Tensor cvt = to_device(*be, cv, {c.cap, c.Hkv, c.D});
      be->kv_append(kc, cvt, cvt, 0);  // (the keys argument is not stored)
      Tensor out = be->empty({c.T, c.Hq, c.D});
      const Tensor vt = to_device(*be, v, {c.T, c.Hkv, c.D});
      be->attention(to_device(*be, q, {c.T, c.Hq, c.D}), vt, vt, kc, c.p0, 0, out);
      outs.push_back(to_host(*be, out));
    }
    expect_close(outs[1], outs[0], 1e-5, what);
  }
}

// Decode attention over a bf16 cache gives each of T query rows (a verify: consecutive positions of one
// sequence) bit for bit what a launch of that row alone gives after the earlier rows' keys and values were
// appended: what lets greedy speculation reproduce plain greedy decoding. Sliding layers (GQA 2 and 4, the
// window full, filling (slices of 32 keys at 100; at 510 the slices grow from 32 to 64 keys between the rows
// (16 splits on a GPU of 132 SMs, split_keys), so packed rows start apart), and crossed within the rows), and
// a full layer with stored keys.
// (The rows of a sliding layer run packed, attn_decode_tc.cu; G4_CUDA_ATTN_PACK=0 one row a block.)
TEST_F(CudaTest, AttentionRowsEqualOneRowLaunches) {
  struct C { int64_t Hq, Hkv, D, p0; int window; int64_t cap; bool ring; };
  const std::vector<C> cases = {{32, 16, 256, 1500, 1024, 1024, true}, {32, 16, 256, 700, 1024, 1024, true},
                                {32, 16, 256, 1021, 1024, 1024, true}, {32, 16, 256, 100, 1024, 1024, true},
                                {32, 16, 256, 510, 1024, 1024, true},  {16, 4, 256, 200, 64, 64, true},
                                {32, 4, 512, 3000, 0, 4096, false}};
  for (const C& c : cases) {
    for (int64_t T : {2, 4, 5, 8}) {
      const std::string what = "T=" + std::to_string(T) + " Hq=" + std::to_string(c.Hq) + " Hkv=" + std::to_string(c.Hkv) +
                               " D=" + std::to_string(c.D) + " p0=" + std::to_string(c.p0) + " window=" + std::to_string(c.window);
      const auto q = randn(rng_, size_t(T * c.Hq * c.D), 0.2f);
      const auto k = randn(rng_, size_t(T * c.Hkv * c.D), 0.2f), v = randn(rng_, size_t(T * c.Hkv * c.D));
      // The cached prefix: positions p0 - n0 .. p0 - 1 (a ring holds its last `cap`).
      const int64_t n0 = std::min(c.p0, c.cap);
      const auto pk = randn(rng_, size_t(n0 * c.Hkv * c.D), 0.2f), pv = randn(rng_, size_t(n0 * c.Hkv * c.D));
      CudaBackend& be = *fast_;
      const KvLayerSpec spec = bf16_spec(c.cap, c.Hkv, c.D, c.ring);
      const Tensor kt = to_device(be, k, {T, c.Hkv, c.D}), vt = to_device(be, v, {T, c.Hkv, c.D});
      // The prefix and, for row t alone, the rows before it.
      auto cache_with = [&](int64_t rows) {
        KvLayer kc = be.new_kv_layer(spec);
        be.kv_append(kc, to_device(be, pk, {n0, c.Hkv, c.D}), to_device(be, pv, {n0, c.Hkv, c.D}), c.p0 - n0);
        if (rows > 0) be.kv_append(kc, kt.rows(0, rows), vt.rows(0, rows), c.p0);
        return kc;
      };
      ASSERT_TRUE(cuda::attn_decode_suits(T, c.p0, c.window)) << what;
      KvLayer all = cache_with(0);
      Tensor out = be.empty({T, c.Hq, c.D});
      be.attention(to_device(be, q, {T, c.Hq, c.D}), kt, vt, all, c.p0, c.window, out);
      const std::vector<float> got = to_host(be, out);
      for (int64_t t = 0; t < T; ++t) {
        KvLayer one = cache_with(t);
        Tensor o1 = be.empty({1, c.Hq, c.D});
        const std::vector<float> q1(q.begin() + t * c.Hq * c.D, q.begin() + (t + 1) * c.Hq * c.D);
        be.attention(to_device(be, q1, {1, c.Hq, c.D}), kt.rows(t, 1), vt.rows(t, 1), one, c.p0 + t, c.window, o1);
        const std::vector<float> want = to_host(be, o1);
        int64_t differ = 0;
        for (size_t i = 0; i < want.size(); ++i) differ += got[size_t(t * c.Hq * c.D) + i] != want[i];
        EXPECT_EQ(differ, 0) << what << ", row " << t;
      }
    }
  }
}

// Several sequences with several rows each in one decode launch (a batch of verifies, as the server's
// speculation runs them) give each sequence what a launch of that sequence alone gives, bit for bit: a
// sliding layer (GQA 2; its rows go in packs of 4, cut per sequence; one row a block under
// G4_CUDA_ATTN_PACK=0) with the window full, still filling (slices growing from 32 to 64 keys within the rows
// at 509) and at slices of 32 keys.
TEST_F(CudaTest, AttentionOfSeveralSequencesEqualsEachAlone) {
  const int64_t Hq = 32, Hkv = 16, D = 256, cap = 1024;
  const int window = 1024;
  struct S { int64_t n, p0; };
  const std::vector<S> seqs = {{3, 1500}, {5, 100}, {1, 700}, {6, 509}};
  CudaBackend& be = *fast_;
  const KvLayerSpec spec = bf16_spec(cap, Hkv, D, true);
  int64_t T = 0;
  for (const S& s : seqs) T += s.n;
  const auto q = randn(rng_, size_t(T * Hq * D), 0.2f);
  const auto k = randn(rng_, size_t(T * Hkv * D), 0.2f), v = randn(rng_, size_t(T * Hkv * D));
  std::vector<KvLayer> caches;
  for (const S& s : seqs) {  // each sequence's cached prefix: the last `cap` positions before p0
    const int64_t n0 = std::min(s.p0, cap);
    caches.push_back(be.new_kv_layer(spec));
    be.kv_append(caches.back(), to_device(be, randn(rng_, size_t(n0 * Hkv * D), 0.2f), {n0, Hkv, D}),
                 to_device(be, randn(rng_, size_t(n0 * Hkv * D)), {n0, Hkv, D}), s.p0 - n0);
  }
  const Tensor qt = to_device(be, q, {T, Hq, D}), kt = to_device(be, k, {T, Hkv, D}), vt = to_device(be, v, {T, Hkv, D});
  std::vector<SeqRows> rows;
  for (size_t i = 0, r = 0; i < seqs.size(); r += size_t(seqs[i].n), ++i)
    rows.push_back(SeqRows{int64_t(r), seqs[i].n, seqs[i].p0, &caches[i]});
  ASSERT_TRUE(cuda::attn_decode_suits(6, 509, window));
  Tensor out = be.empty({T, Hq, D});
  be.attention(qt, kt, vt, rows, window, out);
  const std::vector<float> got = to_host(be, out);
  for (size_t i = 0; i < seqs.size(); ++i) {
    const SeqRows& r = rows[i];
    Tensor o1 = be.empty({r.n, Hq, D});
    be.attention(qt.rows(r.row0, r.n), kt.rows(r.row0, r.n), vt.rows(r.row0, r.n), caches[i], r.p0, window, o1);
    const std::vector<float> want = to_host(be, o1);
    int64_t differ = 0;
    for (size_t e = 0; e < want.size(); ++e) differ += got[size_t(r.row0 * Hq * D) + e] != want[e];
    EXPECT_EQ(differ, 0) << "sequence " << i << " (" << r.n << " rows at " << r.p0 << ")";
  }
}

// attn_decode with an int8 buffer (the o projection's input rounded by the merge that writes it; the
// default, G4_CUDA_FUSE_QX_O=0 turns it off) gives the same output bit for bit, and the int8 words and
// scales gemv_q8_quantize_x makes of it; a sliding and a full layer of the 31B's shapes, one row and a
// verify's four, the window full.
TEST_F(CudaTest, AttentionRoundsItsOutputAsTheGemvWould) {
  struct C { int64_t Hkv, D, p0; int window; int64_t cap; bool ring; };
  int n_sm = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  const int64_t Hq = 32;
  for (const C& c : {C{16, 256, 1500, 1024, 1024, true}, C{4, 512, 3000, 0, 4096, false}}) {
    for (int64_t T : {1, 4}) {
      const std::string what = "D=" + std::to_string(c.D) + " T=" + std::to_string(T);
      CudaBackend& be = *fast_;
      const int64_t n0 = std::min(c.p0, c.cap), K = Hq * c.D;
      KvLayer kv = be.new_kv_layer(bf16_spec(c.cap, c.Hkv, c.D, c.ring));
      be.kv_append(kv, to_device(be, randn(rng_, size_t(n0 * c.Hkv * c.D), 0.2f), {n0, c.Hkv, c.D}),
                   to_device(be, randn(rng_, size_t(n0 * c.Hkv * c.D)), {n0, c.Hkv, c.D}), c.p0 - n0);
      const Tensor q = to_device(be, randn(rng_, size_t(T * K), 0.2f), {T, Hq, c.D});
      const Tensor k = to_device(be, randn(rng_, size_t(T * c.Hkv * c.D), 0.2f), {T, c.Hkv, c.D});
      const Tensor v = to_device(be, randn(rng_, size_t(T * c.Hkv * c.D)), {T, c.Hkv, c.D});
      Tensor plain_out = be.empty({T, Hq, c.D}), fused_out = be.empty({T, Hq, c.D});
      cuda::AttnArgs a{};
      a.q = static_cast<const float*>(q.data), a.k = static_cast<const float*>(k.data), a.v = static_cast<const float*>(v.data);
      a.T = T, a.Hq = Hq, a.Hkv = c.Hkv, a.D = c.D, a.capacity = c.cap, a.ring = c.ring, a.window = c.window;
      a.cache_bf16 = true;
      a.seqs.n = 1;
      a.seqs.e[0].ck = kv.k.data, a.seqs.e[0].cv = kv.v.data, a.seqs.e[0].p0 = c.p0, a.seqs.e[0].n = int32_t(T);
      const size_t bytes = cuda::gemv_q8_x_bytes_cols(K, int(T));
      void *scratch = nullptr, *fused = nullptr;
      ASSERT_EQ(cudaMalloc(&scratch, cuda::attn_decode_scratch_bytes(a, n_sm)), cudaSuccess);
      ASSERT_EQ(cudaMalloc(&fused, bytes), cudaSuccess);
      ASSERT_EQ(cudaMemset(fused, 0xAB, bytes), cudaSuccess);
      // The direct launches go to the legacy stream, the backend's work (kv_append, uploads, to_host) to its
      // own non-blocking stream: the device is synchronized on both sides of them.
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      a.out = static_cast<float*>(plain_out.data);
      cuda::attn_decode(a, scratch, n_sm, nullptr);
      a.out = static_cast<float*>(fused_out.data);
      cuda::attn_decode(a, scratch, n_sm, nullptr, fused);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const std::vector<float> po = to_host(be, plain_out), fo = to_host(be, fused_out);
      EXPECT_EQ(std::memcmp(po.data(), fo.data(), po.size() * 4), 0) << what << ": outputs";
      EXPECT_EQ(unlike_gemv_rounding(static_cast<const float*>(plain_out.data), T, K, fused), "") << what;
      for (void* p : {scratch, fused}) cudaFree(p);
    }
  }
}

// attend_and_append (the forward's call) equals attention then kv_append, bit for bit, in the output and in
// every cache: several sequences of one step over ring and flat caches in bf16 and f32, decode-sized rows and
// a prefill chunk, a window full and filling, a ring wrapping within the rows. By default a decode step of one
// sequence stores its row from the attention merge's launch (the first two cases); under G4_CUDA_FUSE_KV=0
// (device_run.sh TEST_SETTINGS), and for every other step, kv_append does.
TEST_F(CudaTest, AttendAndAppendEqualsAttentionThenAppend) {
  struct C { int64_t Hq, Hkv, D, cap; int window; bool ring, bf16; std::vector<std::pair<int64_t, int64_t>> seqs; };
  const std::vector<C> cases = {
      {32, 16, 256, 1280, 1024, true, true, {{1, 1500}}},  // a decode step of one sequence: fused
      {32, 4, 512, 4096, 0, false, true, {{1, 3000}}},      // (fused, a flat cache)
      {32, 16, 256, 1280, 1024, true, true, {{1, 1500}, {1, 509}, {1, 0}, {1, 1278}}},
      {32, 16, 256, 1280, 1024, true, true, {{1, 1500}, {4, 509}, {1, 0}, {3, 1278}}},
      {32, 4, 512, 4096, 0, false, true, {{1, 3000}, {4, 700}}},
      {8, 2, 64, 80, 64, true, false, {{2, 100}, {1, 79}}},
      {8, 2, 64, 600, 0, false, true, {{37, 20}}}};  // (a prefill chunk: the GEMM/flash path)
  CudaBackend& be = *fast_;
  for (const C& c : cases) {
    int64_t T = 0;
    for (const auto& s : c.seqs) T += s.first;
    const std::string what = "Hkv=" + std::to_string(c.Hkv) + " D=" + std::to_string(c.D) + " T=" + std::to_string(T) +
                             (c.ring ? " ring" : " flat") + (c.bf16 ? " bf16" : " f32");
    KvLayerSpec spec = bf16_spec(c.cap, c.Hkv, c.D, c.ring);
    if (!c.bf16) spec.k_type = spec.v_type = DType::kF32;
    const Tensor qt = to_device(be, randn(rng_, size_t(T * c.Hq * c.D), 0.2f), {T, c.Hq, c.D});
    const Tensor kt = to_device(be, randn(rng_, size_t(T * c.Hkv * c.D), 0.2f), {T, c.Hkv, c.D});
    const Tensor vt = to_device(be, randn(rng_, size_t(T * c.Hkv * c.D)), {T, c.Hkv, c.D});
    // Two copies of every sequence's cache, the same contents (every slot written).
    std::vector<KvLayer> a, b;
    for (size_t i = 0; i < c.seqs.size(); ++i) {
      a.push_back(be.new_kv_layer(spec));
      b.push_back(be.new_kv_layer(spec));
      const Tensor ck = to_device(be, randn(rng_, size_t(c.cap * c.Hkv * c.D), 0.2f), {c.cap, c.Hkv, c.D});
      const Tensor cv = to_device(be, randn(rng_, size_t(c.cap * c.Hkv * c.D)), {c.cap, c.Hkv, c.D});
      be.kv_append(a.back(), ck, cv, 0);
      be.kv_append(b.back(), ck, cv, 0);
    }
    auto rows_of = [&](std::vector<KvLayer>& caches) {
      std::vector<SeqRows> rows;
      int64_t r = 0;
      for (size_t i = 0; i < c.seqs.size(); r += c.seqs[i].first, ++i)
        rows.push_back(SeqRows{r, c.seqs[i].first, c.seqs[i].second, &caches[i]});
      return rows;
    };
    Tensor out_a = be.empty({T, c.Hq, c.D}), out_b = be.empty({T, c.Hq, c.D});
    const std::vector<SeqRows> ra = rows_of(a), rb = rows_of(b);
    be.attention(qt, kt, vt, ra, c.window, out_a);
    be.kv_append(ra, kt, vt);
    be.attend_and_append(qt, kt, vt, rb, c.window, out_b);
    expect_close(to_host(be, out_b), to_host(be, out_a), 0, what + " output");
    // The caches' raw bytes (bf16 or f32).
    auto bytes = [&](const Tensor& t) {
      std::vector<uint8_t> h(size_t(t.numel()) * dtype_size(t.dtype));
      be.synchronize();
      G4_CUDA(cudaMemcpy(h.data(), t.data, h.size(), cudaMemcpyDeviceToHost));
      return h;
    };
    for (size_t i = 0; i < c.seqs.size(); ++i) {
      EXPECT_TRUE(bytes(b[i].k) == bytes(a[i].k)) << what << ": keys of sequence " << i;
      EXPECT_TRUE(bytes(b[i].v) == bytes(a[i].v)) << what << ": values of sequence " << i;
    }
  }
}

}  // namespace
}  // namespace g4::test
