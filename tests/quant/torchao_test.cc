// ExecuTorch/torchao interop: a torchao-layout file (spec 5.1), built here by hand from the documented
// layout out of a g4 quantized checkpoint, must load and give exactly the g4 checkpoint's logits
// (same codes, scales transposed back); malformed torchao metadata gives clear errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "convert/quantize_model.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "io/weight_store.h"
#include "model/model.h"
#include "model/session.h"

namespace g4 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Stored {
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<TensorToWrite> tensors;
  std::map<std::string, std::string> meta;
  json names = json::array();
  void* keep(std::vector<uint8_t> v) {
    bufs.push_back(std::move(v));
    return bufs.back().data();
  }
};

// Writes the torchao form of every weight of a g4 checkpoint directory `src` into dst/model.safetensors.
void write_torchao(const std::string& src, const std::string& dst) {
  auto ws = WeightStore::open(src);
  Stored s;
  s.bufs.reserve(4096);
  for (const auto& [name, w] : ws->weights()) {
    s.names.push_back(name);
    if (w.plain) {
      s.tensors.push_back({name, w.plain->dtype, w.plain->shape, w.plain->data});
      s.meta[name] = json{{"_type", "Tensor"}}.dump();
      continue;
    }
    const QuantWeight& q = *w.quant;
    const int64_t N = q.rows, K = q.cols, G = q.groups_per_row();
    const size_t es = dtype_size(q.scale_dtype);
    const std::string prefix = name.substr(0, name.rfind('.')) + "._weight_";
    const json bf16 = {{"_type", "torch.dtype"}, {"_data", "bfloat16"}};
    if (q.kind == QuantKind::kInt4) {
      std::vector<uint8_t> sc(size_t(N * G) * es), zp(sc.size());
      for (int64_t n = 0; n < N; ++n)
        for (int64_t g = 0; g < G; ++g) {  // [N, G] -> [G, N]
          std::memcpy(&sc[size_t(g * N + n) * es], static_cast<const uint8_t*>(q.scales) + size_t(n * G + g) * es, es);
          std::memcpy(&zp[size_t(g * N + n) * es], static_cast<const uint8_t*>(q.zeros) + size_t(n * G + g) * es, es);
        }
      s.tensors.push_back({prefix + "qdata", DType::kU8, {N, K / 2}, q.codes});
      s.tensors.push_back({prefix + "scale", q.scale_dtype, {G, N}, s.keep(sc)});
      s.tensors.push_back({prefix + "zero_point", q.scale_dtype, {G, N}, s.keep(zp)});
      s.meta[name] = json{{"_type", "Int4Tensor"},
                          {"_data", {{"block_size", {1, q.group_size}}, {"shape", {N, K}}, {"dtype", bf16}}},
                          {"_tensor_data_names", {"qdata", "scale", "zero_point"}}}
                         .dump();
    } else {
      ASSERT_EQ(q.zeros, nullptr) << name;
      s.tensors.push_back({prefix + "qdata", DType::kI8, {N, K}, q.codes});
      s.tensors.push_back({prefix + "scale", q.scale_dtype, {N, G}, q.scales});
      s.tensors.push_back({prefix + "zero_point", DType::kI8, {N, G}, s.keep(std::vector<uint8_t>(size_t(N * G), 0))});
      s.meta[name] = json{{"_type", "IntxUnpackedToInt8Tensor"},
                          {"_data",
                           {{"block_size", {1, q.group_size}},
                            {"shape", {N, K}},
                            {"target_dtype", {{"_type", "torch.dtype"}, {"_data", "int8"}}},
                            {"dtype", bf16},
                            {"activation_quantization", nullptr}}},
                          {"_tensor_data_names", {"qdata", "scale", "zero_point"}}}
                         .dump();
    }
  }
  s.meta["tensor_names"] = s.names.dump();
  fs::create_directories(dst);
  fs::copy_file(src + "/config.json", dst + "/config.json", fs::copy_options::overwrite_existing);
  write_safetensors(dst + "/model.safetensors", s.tensors, s.meta);
}

TEST(Torchao, HandBuiltFileMatchesG4Checkpoint) {
  const std::string fixture = std::string(G4_TEST_DATA) + "/hf-reference/dense-31b-shape";
  const fs::path tmp = fs::temp_directory_path() / ("g4_torchao_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  QuantizeOptions o;
  o.model = fixture + "/model";
  o.out = (tmp / "g4").string();
  o.progress = false;
  quantize_checkpoint(o);  // default recipe: int4 g32 linears + lm_head, int8 per-row embedding
  write_torchao(o.out, (tmp / "ao").string());

  auto ws = WeightStore::open((tmp / "ao").string());
  const StoredWeight& up = ws->get_weight("layers.0.mlp.up_proj.weight");
  ASSERT_TRUE(up.quant);
  EXPECT_EQ(up.quant->describe(), "int4 g32 asym (BF16 scales)");
  EXPECT_EQ(ws->get_weight("embed_tokens.weight").quant->describe(), "int8 g256 sym (BF16 scales)");
  ASSERT_TRUE(ws->get_weight("lm_head.weight").quant);
  EXPECT_TRUE(ws->get_weight("norm.weight").plain);

  auto be = make_backend("ref");
  const std::vector<int32_t> prompt = {2, 100, 7, 999, 45, 3, 3};
  auto a = Model::load(o.out, *be);
  auto b = Model::load((tmp / "ao").string(), *be);
  Session sa(*a, 8), sb(*b, 8);
  EXPECT_EQ(sa.forward(prompt, LogitsMode::kAll), sb.forward(prompt, LogitsMode::kAll));
  fs::remove_all(tmp);
}

TEST(Torchao, MalformedMetadataGivesClearErrors) {
  const fs::path dir = fs::temp_directory_path() / ("g4_torchao_bad_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string f = (dir / "m.safetensors").string();
  std::vector<uint8_t> qdata(4 * 32, 0x88);
  std::vector<uint16_t> sc(2 * 4, f32_to_bf16(0.01f)), zp(2 * 4, f32_to_bf16(8));
  auto good_meta = [] {
    return json{{"_type", "Int4Tensor"},
                {"_data", {{"block_size", {1, 32}}, {"shape", {4, 64}}}},
                {"_tensor_data_names", {"qdata", "scale", "zero_point"}}};
  };
  struct Bad {
    std::function<void(json&, std::vector<TensorToWrite>&)> breakit;
    const char* expect;
  };
  const std::vector<Bad> bads = {
      {[](json&, auto&) {}, ""},
      {[](json& m, auto&) { m["_type"] = "Float8Tensor"; }, "unsupported torchao tensor type 'Float8Tensor'"},
      {[](json& m, auto&) { m["_data"]["block_size"] = {1, 48}; }, "block_size must be [1, gs]"},
      {[](json& m, auto&) { m["_data"].erase("shape"); }, "attribute 'shape' is missing"},
      {[](json&, auto& t) { t.pop_back(); }, "'m._weight_zero_point' is missing"},
      {[](json&, auto& t) { t[1].shape = {4, 2}; }, "'m._weight_scale' has shape [4, 2], expected [2, 4]"},
  };
  for (const Bad& b : bads) {
    json m = good_meta();
    std::vector<TensorToWrite> t = {{"m._weight_qdata", DType::kU8, {4, 32}, qdata.data()},
                                    {"m._weight_scale", DType::kBF16, {2, 4}, sc.data()},
                                    {"m._weight_zero_point", DType::kBF16, {2, 4}, zp.data()}};
    b.breakit(m, t);
    write_safetensors(f, t, {{"tensor_names", R"(["m.weight"])"}, {"m.weight", m.dump()}});
    std::string err;
    try {
      auto ws = WeightStore::open(f);
      EXPECT_TRUE(ws->get_weight("m.weight").quant);
    } catch (const Error& e) {
      err = e.what();
    }
    if (*b.expect == 0) {
      EXPECT_EQ(err, "") << "the unbroken file must load";
    } else {
      EXPECT_NE(err.find(b.expect), std::string::npos) << "got '" << err << "'";
      EXPECT_NE(err.find(f), std::string::npos) << err;
    }
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace g4
