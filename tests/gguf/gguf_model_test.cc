// gemma4 GGUF as a model source: the HF reference fixtures rewritten as GGUF (same tensor bytes,
// llama.cpp names and metadata) give the same ModelSpec and bit-identical logits as the safetensors
// path, hence the fixture bound (1e-3) against transformers; `g4 logits` runs on the .gguf; every
// malformed or unsupported gemma4 file is refused with an error naming the file and key or tensor.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/gguf_spec.h"
#include "model/model.h"
#include "model/session.h"
#include "util/hf_to_gguf.h"
#include "util/compare.h"
#include "util/run_g4.h"
#include "util/temp_dir.h"

namespace g4 {
namespace {

using test::GgufBuilder;
using test::hf_to_gguf;
using test::HfToGgufOptions;
using testing_util::TempDir;

const std::string kData = G4_TEST_DATA;

std::vector<int32_t> fixture_prompt(const std::string& dir, std::vector<float>* logits) {
  SafetensorsFile f(dir + "/expected.safetensors");
  const TensorInfo& p = *f.find("prompt");
  std::vector<int32_t> v(size_t(p.numel()));
  std::memcpy(v.data(), p.data, p.nbytes);
  const TensorInfo& l = *f.find("prompt_logits");
  logits->resize(size_t(l.numel()));
  std::memcpy(logits->data(), l.data, l.nbytes);
  return v;
}

void expect_same_spec(const ModelSpec& a, const ModelSpec& b) {
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.n_heads, b.n_heads);
  EXPECT_EQ(a.rms_eps, b.rms_eps);
  EXPECT_EQ(a.final_softcap, b.final_softcap);
  EXPECT_EQ(a.tie_embeddings, b.tie_embeddings);
  EXPECT_EQ(a.bos_id, b.bos_id);
  ASSERT_EQ(a.n_layers(), b.n_layers());
  for (int i = 0; i < a.n_layers(); ++i) {
    const LayerSpec &x = a.layers[size_t(i)], &y = b.layers[size_t(i)];
    EXPECT_EQ(x.sliding, y.sliding) << "layer " << i;
    EXPECT_EQ(x.head_dim, y.head_dim) << "layer " << i;
    EXPECT_EQ(x.n_kv_heads, y.n_kv_heads) << "layer " << i;
    EXPECT_EQ(x.window, y.window) << "layer " << i;
    EXPECT_EQ(x.rope_theta, y.rope_theta) << "layer " << i;
    EXPECT_EQ(x.rope_pairs, y.rope_pairs) << "layer " << i;
    EXPECT_EQ(x.k_eq_v, y.k_eq_v) << "layer " << i;
  }
}

class GgufFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(GgufFixture, SameSpecAndLogitsAsSafetensors) {
  const std::string dir = kData + "/" + GetParam();
  TempDir d;
  GgufBuilder::write(d.file("m.gguf"), hf_to_gguf(dir + "/model").bytes());
  const ModelSpec hf = load_model_config(dir + "/model");
  const ModelSpec gg = load_model_config(d.file("m.gguf"));
  expect_same_spec(gg, hf);

  std::vector<float> expected;
  const std::vector<int32_t> prompt = fixture_prompt(dir, &expected);
  auto be = make_backend("ref");
  auto m_hf = Model::load(dir + "/model", *be);
  auto m_gg = Model::load(d.file("m.gguf"), *be);
  Session s_hf(*m_hf, int64_t(prompt.size())), s_gg(*m_gg, int64_t(prompt.size()));
  const std::vector<float> a = s_hf.forward(prompt, LogitsMode::kAll);
  const std::vector<float> b = s_gg.forward(prompt, LogitsMode::kAll);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(b.size(), expected.size());
  for (size_t i = 0; i < b.size(); ++i) ASSERT_EQ(a[i], b[i]) << "GGUF and safetensors logits differ at " << i;
  const double worst = testing_util::max_abs_diff(b, expected).max;
  EXPECT_LE(worst, 1e-3);
  std::printf("[ %s as GGUF ] max |logit - transformers| = %.3g\n", GetParam(), worst);
}

INSTANTIATE_TEST_SUITE_P(HfReference, GgufFixture,
                         ::testing::Values("hf-reference/dense-31b-shape", "hf-reference/separate-v-no-softcap", "hf-reference/deep-small-window",
                                           "hf-extra/gqa4-per-layer"));

// A Q4_0 GGUF (the layers' matrices quantized as llama.cpp's Q4_0, written by util/hf_to_gguf.h) runs the
// Q4_0 values: its logits equal those of the same model stored as F32 holding the dequantized Q4_0 values
// (dequantized in the test helper, not by g4) within f32 rounding, and differ from the float model's.
TEST_P(GgufFixture, Q4_0ModelRunsItsDequantizedValues) {
  const std::string dir = kData + "/" + GetParam();
  TempDir d;
  HfToGgufOptions q, f;
  q.q4_0 = true;
  f.q4_0_as_f32 = true;
  GgufBuilder::write(d.file("q.gguf"), hf_to_gguf(dir + "/model", q).bytes());
  GgufBuilder::write(d.file("f.gguf"), hf_to_gguf(dir + "/model", f).bytes());
  std::vector<float> expected;
  const std::vector<int32_t> prompt = fixture_prompt(dir, &expected);
  auto be = make_backend("ref");
  auto mq = Model::load(d.file("q.gguf"), *be);
  auto mf = Model::load(d.file("f.gguf"), *be);
  Session sq(*mq, int64_t(prompt.size())), sf(*mf, int64_t(prompt.size()));
  const std::vector<float> lq = sq.forward(prompt, LogitsMode::kAll), lf = sf.forward(prompt, LogitsMode::kAll);
  const double d_vals = testing_util::max_abs_diff(lq, lf).max, d_float = testing_util::max_abs_diff(lq, expected).max;
  std::printf("[ %s Q4_0 ] max |diff| vs its F32 values %.3g, vs the float model (transformers) %.3g\n", GetParam(),
              d_vals, d_float);
  EXPECT_LE(d_vals, 1e-4);
  EXPECT_GT(d_float, 1e-2);  // the weights really are 4-bit
}

TEST(GgufModel, CliLogitsRunOnGguf) {
  const std::string dir = kData + "/hf-reference/dense-31b-shape";
  TempDir d;
  GgufBuilder::write(d.file("m.gguf"), hf_to_gguf(dir + "/model").bytes());
  std::vector<float> expected;
  const std::vector<int32_t> prompt = fixture_prompt(dir, &expected);
  std::string toks;
  for (int32_t t : prompt) toks += (toks.empty() ? "" : ",") + std::to_string(t);
  const testing_util::G4Result r =
      testing_util::run_g4("logits --model " + d.file("m.gguf") + " --tokens " + toks + " --out " + d.file("l.safetensors"));
  ASSERT_EQ(r.status, 0) << r.err;
  SafetensorsFile out(d.file("l.safetensors"));
  const TensorInfo& l = *out.find("logits");
  ASSERT_EQ(size_t(l.numel()), expected.size());
  std::vector<float> got(expected.size());
  std::memcpy(got.data(), l.data, got.size() * 4);
  EXPECT_LE(testing_util::max_abs_diff(got, expected).max, 1e-3);
}

TEST(GgufModel, MissingLayerOutputScaleMeansOne) {
  // llama.cpp treats blk.N.layer_output_scale as optional (no scaling): the store serves exactly 1.0.
  const std::string hf = kData + "/hf-reference/dense-31b-shape/model";
  TempDir d;
  HfToGgufOptions o;
  o.write_layer_scale = false;
  GgufBuilder::write(d.file("m.gguf"), hf_to_gguf(hf, o).bytes());
  auto ws = WeightStore::open(d.file("m.gguf"));
  const TensorInfo& t = ws->get("layers.3.layer_scalar");
  float v;
  std::memcpy(&v, t.data, 4);
  EXPECT_EQ(v, 1.0f);
  EXPECT_NE(t.file.find("synthesized"), std::string::npos);
}

std::string load_error(const std::string& hf, const HfToGgufOptions& o) {
  TempDir d;
  GgufBuilder::write(d.file("m.gguf"), hf_to_gguf(hf, o).bytes());
  try {
    auto be = make_backend("ref");
    Model::load(d.file("m.gguf"), *be);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(GgufModel, RefusesWhatItCannotRun) {
  const std::string hf = kData + "/hf-reference/dense-31b-shape/model";
  auto with = [&](const std::string& skip, std::function<void(GgufBuilder&)> add) {
    HfToGgufOptions o;
    o.skip_key = skip;
    o.extra_metadata = std::move(add);
    return load_error(hf, o);
  };
  const std::string p = "gemma4.";
  auto has = [](const std::string& e, const std::string& what) {
    return e.find(what) != std::string::npos && e.find("m.gguf") != std::string::npos;
  };
  EXPECT_PRED2(has, with(p + "block_count", nullptr), "'gemma4.block_count' is missing");
  EXPECT_PRED2(has, with(p + "attention.sliding_window_pattern", nullptr), "sliding_window_pattern");
  EXPECT_PRED2(has, with(p + "attention.head_count_kv", [&](GgufBuilder& b) {
                 b.kv_arr_i32(p + "attention.head_count_kv", {2, 2, 2});
               }), "has 3 entries for 6 layers");
  EXPECT_PRED2(has, with(p + "attention.head_count_kv", [&](GgufBuilder& b) {
                 b.kv_arr_i32(p + "attention.head_count_kv", {2, 2, 3, 2, 2, 1});
               }), "not a multiple of its head_count_kv (3)");
  EXPECT_PRED2(has, with(p + "attention.sliding_window_pattern", [&](GgufBuilder& b) {
                 b.kv_arr_u32(p + "attention.sliding_window_pattern", {1, 1, 1, 1, 1, 0});
               }), "expected a bool array");
  EXPECT_PRED2(has, with(p + "attention.shared_kv_layers", [&](GgufBuilder& b) {
                 b.kv_u32(p + "attention.shared_kv_layers", 2);
               }), "KV sharing");
  EXPECT_PRED2(has, with(p + "embedding_length_per_layer_input", [&](GgufBuilder& b) {
                 b.kv_u32(p + "embedding_length_per_layer_input", 256);
               }), "per-layer embeddings");
  EXPECT_PRED2(has, with("", [&](GgufBuilder& b) { b.kv_u32(p + "expert_count", 128); }), "mixture-of-experts");
  EXPECT_PRED2(has, with(p + "rope.dimension_count", [&](GgufBuilder& b) {
                 b.kv_u32(p + "rope.dimension_count", 32);
               }), "rope.dimension_count");
  EXPECT_PRED2(has, with(p + "attention.value_length", [&](GgufBuilder& b) {
                 b.kv_u32(p + "attention.value_length", 64);
               }), "value_length must equal key_length");
  EXPECT_PRED2(has, with(p + "rope.freq_base_swa", nullptr), "freq_base_swa' is missing");
  EXPECT_PRED2(has, with("general.architecture", [&](GgufBuilder& b) {
                 b.kv_str("general.architecture", "gemma3");
               }), "'gemma3'");

  HfToGgufOptions o;
  o.extra_tensor = "blk.0.attn_q.scale";
  EXPECT_PRED2(has, load_error(hf, o), "tensor 'blk.0.attn_q.scale' is not part of the gemma4 text model");
  o.extra_tensor = "blk.00.attn_q.weight";
  EXPECT_PRED2(has, load_error(hf, o), "'blk.00.attn_q.weight'");
}

TEST(GgufModel, RopeFreqsMustBeProportional) {
  const std::string hf = kData + "/hf-reference/dense-31b-shape/model";
  TempDir d;
  // The fixture's full layer has head_dim 128 and 16 rotating pairs (partial 0.25): rebuild rope_freqs.
  auto write_with = [&](std::vector<float> freqs) {
    HfToGgufOptions o;
    o.write_rope_freqs = false;
    GgufBuilder b = hf_to_gguf(hf, o);
    const uint64_t n = freqs.size();
    b.tensor_of<float>("rope_freqs.weight", 0, {n}, freqs);
    GgufBuilder::write(d.file("r.gguf"), b.bytes());
    try {
      return std::to_string(load_model_config(d.file("r.gguf")).layers[5].rope_pairs);
    } catch (const Error& e) {
      return std::string(e.what());
    }
  };
  std::vector<float> f(64, 1e30f);
  for (int k = 0; k < 16; ++k) f[size_t(k)] = 1.0f;
  EXPECT_EQ(write_with(f), "16");
  f[3] = 2.0f;  // a real frequency scaling: not what Gemma 4 does, refuse
  EXPECT_NE(write_with(f).find("rope_freqs.weight'[3]"), std::string::npos);
  f[3] = 1.0f;
  f[40] = 1.0f;  // a real frequency after the stopped ones
  EXPECT_NE(write_with(f).find("[40]"), std::string::npos);
  EXPECT_NE(write_with(std::vector<float>(32, 1.0f)).find("head_dim/2 = 64"), std::string::npos);
  // No rope_freqs: every pair rotates.
  HfToGgufOptions o;
  o.write_rope_freqs = false;
  GgufBuilder::write(d.file("n.gguf"), hf_to_gguf(hf, o).bytes());
  EXPECT_EQ(load_model_config(d.file("n.gguf")).layers[5].rope_pairs, 64);
}

}  // namespace
}  // namespace g4
