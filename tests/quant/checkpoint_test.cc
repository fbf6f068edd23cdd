// The g4 quantized checkpoint: streamed write -> WeightStore read round trip, and malformed files
// (each a copy of a good one with one thing broken) giving one clear g4::Error.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "base/error.h"
#include "convert/synth.h"
#include "io/g4_checkpoint_writer.h"
#include "io/safetensors_writer.h"
#include "io/weight_store.h"
#include "model/model.h"
#include "model/session.h"

namespace g4 {
namespace {

namespace fs = std::filesystem;

std::string temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("g4_quant_test_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::vector<float> random_rows(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 0.05f);
  std::vector<float> v(size_t(rows * cols));
  for (auto& x : v) x = d(g);
  return v;
}

TEST(Checkpoint, StreamedWriteReadRoundTrip) {
  const std::string dir = temp_dir("rt");
  const std::string path = dir + "/model.safetensors";
  const int64_t R = 10, C = 128;
  const QuantScheme s4{QuantKind::kInt4, 32, false, QuantMethod::kMinMax, DType::kBF16};
  const QuantScheme s8{QuantKind::kInt8, 0, true, QuantMethod::kMinMax, DType::kF32};
  std::vector<float> a = random_rows(R, C, 1), b = random_rows(R, C, 2);
  std::vector<uint16_t> norm(C, f32_to_bf16(1.0f));
  OwnedQuantWeight qa, qb;
  quantize_tensor(s4, a.data(), R, C, &qa, "a");
  quantize_tensor(s8, b.data(), R, C, &qb, "b");
  {
    G4CheckpointWriter w(path, {{"model.language_model.layers.0.mlp.up_proj.weight", DType::kBF16, {R, C}, s4},
                                {"norm.weight", DType::kBF16, {C}, std::nullopt},
                                {"embed_tokens.weight", DType::kBF16, {R, C}, s8}});
    // Row chunks out of order, interleaving tensors.
    const size_t cb4 = size_t(C / 2), sb4 = size_t(C / 32) * 2, cb8 = size_t(C), sb8 = 4;
    for (int64_t r0 : {6, 0, 3}) {
      const int64_t n = r0 == 6 ? 4 : 3;
      w.write_quant("model.language_model.layers.0.mlp.up_proj.weight",
                    {r0, n, qa.codes.data() + r0 * cb4, qa.scales.data() + r0 * sb4, qa.zeros.data() + r0 * sb4});
      w.write_quant("embed_tokens.weight", {r0, n, qb.codes.data() + r0 * cb8, qb.scales.data() + r0 * sb8, nullptr});
    }
    w.write_plain("norm.weight", 0, norm.data(), norm.size() * 2);
    w.finish();
  }
  auto ws = WeightStore::open(dir);
  const StoredWeight& up = ws->get_weight("layers.0.mlp.up_proj.weight");  // prefix mapped like HF names
  ASSERT_TRUE(up.quant);
  EXPECT_EQ(up.shape, (std::vector<int64_t>{R, C}));
  EXPECT_EQ(up.quant->describe(), "int4 g32 asym (BF16 scales)");
  EXPECT_EQ(0, std::memcmp(up.quant->codes, qa.codes.data(), qa.codes.size()));
  EXPECT_EQ(0, std::memcmp(up.quant->scales, qa.scales.data(), qa.scales.size()));
  EXPECT_EQ(0, std::memcmp(up.quant->zeros, qa.zeros.data(), qa.zeros.size()));
  const StoredWeight& emb = ws->get_weight("embed_tokens.weight");
  ASSERT_TRUE(emb.quant);
  EXPECT_EQ(emb.quant->group_size, C);
  EXPECT_EQ(emb.quant->zeros, nullptr);
  EXPECT_EQ(emb.quant->describe(), "int8 g128 sym (F32 scales)");
  EXPECT_EQ(0, std::memcmp(emb.quant->codes, qb.codes.data(), qb.codes.size()));
  ASSERT_TRUE(ws->get_weight("norm.weight").plain);
  EXPECT_EQ(ws->tensors().size(), 1u) << "parts must not show up as plain tensors";
  EXPECT_EQ(ws->weights().size(), 3u);
  try {
    ws->get("embed_tokens.weight");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is quantized"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// A small valid quantized file built with the plain writer, so each test can break one piece.
struct Parts {
  std::vector<uint8_t> codes = std::vector<uint8_t>(4 * 32, 0x88);
  std::vector<uint16_t> scales = std::vector<uint16_t>(4 * 2, f32_to_bf16(0.01f));
  std::vector<uint16_t> zeros = std::vector<uint16_t>(4 * 2, f32_to_bf16(8.0f));
  nlohmann::json desc = {{"kind", "int4"}, {"shape", {4, 64}}, {"group_size", 32},
                         {"symmetric", false}, {"scale_dtype", "BF16"}, {"method", "minmax"}};
  std::vector<TensorToWrite> tensors() {
    return {{"w.codes", DType::kU8, {4, 32}, codes.data()},
            {"w.scales", DType::kBF16, {4, 2}, scales.data()},
            {"w.zeros", DType::kBF16, {4, 2}, zeros.data()}};
  }
  std::map<std::string, std::string> meta() {
    return {{"g4.quant", nlohmann::json{{"format", "g4-quant"}, {"version", 1}, {"tensors", {{"w", desc}}}}.dump()}};
  }
};

std::string open_error(const std::string& path) {
  try {
    WeightStore::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Checkpoint, MalformedFilesGiveClearErrors) {
  const std::string dir = temp_dir("bad");
  const std::string f = dir + "/m.safetensors";
  {
    Parts p;
    write_safetensors(f, p.tensors(), p.meta());
    auto ws = WeightStore::open(f);
    ASSERT_TRUE(ws->get_weight("w").quant) << "the unbroken file must load";
  }
  struct Bad {
    const char* what;
    std::function<void(Parts&, std::vector<TensorToWrite>&, std::map<std::string, std::string>&)> breakit;
    const char* expect;
  };
  const std::vector<Bad> bads = {
      {"missing zeros", [](Parts&, auto& t, auto&) { t.pop_back(); }, "lacks its stored part 'w.zeros'"},
      {"scales wrong shape", [](Parts&, auto& t, auto&) { t[1].shape = {2, 4}; }, "'w.scales' is BF16 [2, 4]"},
      {"codes wrong dtype", [](Parts&, auto& t, auto&) { t[0].dtype = DType::kI8; }, "'w.codes' is I8"},
      {"group does not divide", [](Parts& p, auto&, auto& m) { p.desc["group_size"] = 48; m = p.meta(); },
       "group_size 48 does not divide the row length 64"},
      {"bad kind", [](Parts& p, auto&, auto& m) { p.desc["kind"] = "int3"; m = p.meta(); }, "kind must be"},
      {"bad shape", [](Parts& p, auto&, auto& m) { p.desc["shape"] = {4}; m = p.meta(); }, "shape must be [rows, cols]"},
      {"negative shape", [](Parts& p, auto&, auto& m) { p.desc["shape"] = {-4, 64}; m = p.meta(); }, "is not valid"},
      {"odd int4 row", [](Parts& p, auto&, auto& m) { p.desc["shape"] = {4, 63}; p.desc["group_size"] = 63; m = p.meta(); },
       "int4 needs an even row length"},
      {"bad scale dtype", [](Parts& p, auto&, auto& m) { p.desc["scale_dtype"] = "I8"; m = p.meta(); }, "scale_dtype must be"},
      {"symmetric with zeros", [](Parts& p, auto&, auto& m) { p.desc["symmetric"] = true; m = p.meta(); },
       "'w.zeros' looks like a quantized part"},
      {"not json", [](Parts&, auto&, auto& m) { m["g4.quant"] = "{oops"; }, "is not valid JSON"},
      {"wrong version", [](Parts&, auto&, auto& m) { m["g4.quant"] = R"({"format":"g4-quant","version":9,"tensors":{}})"; },
       "unsupported g4-quant version"},
      {"method not a string", [](Parts& p, auto&, auto& m) { p.desc["method"] = 5; m = p.meta(); }, "method must be"},
      {"format not a string", [](Parts&, auto&, auto& m) { m["g4.quant"] = R"({"format":1,"version":1,"tensors":{}})"; },
       "is not a g4-quant description"},
      {"metadata lost", [](Parts&, auto&, auto& m) { m.clear(); }, "'w.codes' looks like a quantized part"},
      {"plain and quant", [](Parts& p, auto& t, auto&) { t.push_back({"w", DType::kU8, {4, 32}, p.codes.data()}); },
       "stored both as a plain tensor and as a quantized one"},
  };
  for (const Bad& b : bads) {
    Parts p;
    auto t = p.tensors();
    auto m = p.meta();
    b.breakit(p, t, m);
    write_safetensors(f, t, m);
    const std::string err = open_error(f);
    EXPECT_NE(err.find(b.expect), std::string::npos) << b.what << ": got '" << err << "'";
    EXPECT_NE(err.find(f), std::string::npos) << b.what << ": error should name the file: " << err;
  }
  fs::remove_all(dir);
}

// A tiny synthetic checkpoint in each format loads and runs with finite logits; int4 stores an untied lm_head.
TEST(Synth, TinyCheckpointsLoadAndRun) {
  const std::string dir = temp_dir("synth");
  for (const char* fmt : {"bf16", "int4", "int8", "q4_0"}) {
    SynthOptions o;
    o.preset = "tiny";
    o.layers = 7;
    o.format = fmt;
    o.out = dir + "/" + fmt;
    o.progress = false;
    synth_checkpoint(o);
    auto ws = WeightStore::open(o.out);
    EXPECT_EQ(ws->find_weight("lm_head.weight") != nullptr, std::string(fmt) == "int4") << fmt;
    EXPECT_EQ(ws->get_weight("layers.6.mlp.up_proj.weight").quant != nullptr, std::string(fmt) != "bf16") << fmt;
    auto be = make_backend("ref");
    auto m = Model::load(o.out, *be);
    EXPECT_EQ(m->spec().n_layers(), 7);
    EXPECT_FALSE(m->spec().layers[4].sliding == false) << "layer 4 is sliding";
    EXPECT_FALSE(m->spec().layers[5].sliding) << "layer 5 is full";
    EXPECT_FALSE(m->spec().layers[6].sliding) << "the last layer is full";
    Session s(*m, 8);
    std::vector<float> logits = s.forward({2, 10, 11, 500, 1023}, LogitsMode::kAll);
    double ss = 0;
    for (float x : logits) {
      ASSERT_TRUE(std::isfinite(x)) << fmt;
      ss += double(x) * x;
    }
    EXPECT_GT(ss, 0) << fmt;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace g4
