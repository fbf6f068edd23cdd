// ExecuTorch/torchao interop: a torchao-layout file (spec 5.1), built here by hand from the documented
// layout out of a g4 quantized checkpoint, must load and give exactly the g4 checkpoint's logits
// (same codes, scales transposed back); malformed torchao metadata gives clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "convert/quantize_model.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "io/weight_store.h"
#include "model/model.h"
#include "model/session.h"
#include "util/compare.h"

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

// The file ExecuTorch's quantize_and_save writes, built here field by field from its documented layout
// (spec 5.1; executorch extension/llm/export/quant/quantize.py `_to_int4_tensor` / `_to_intx_tensor`, and
// torchao prototype/safetensors `flatten_tensor_state_dict`), with this test's own quantizer, independent of
// g4's writer and quantizer:
//  - Int4Tensor (every linear and the untied lm_head): asymmetric min-max codes 0..15 over groups of 32,
//    packed `q[..., ::2] | q[..., 1::2] << 4` (element 2j in the low nibble) into qdata uint8 [N, K/2];
//    scale and zero_point bf16 [K/32, N] (transposed), zero points in code units (made non-integer for odd
//    groups, as HQQ's are); o_proj symmetric: codes shifted by 8 and zero_point 8.0 everywhere;
//  - IntxUnpackedToInt8Tensor (embed_tokens): symmetric per-row int8, qdata int8 [N, K], scale bf16 [N, 1],
//    zero_point int8 [N, 1] of zeros, target_dtype int8, activation_quantization null;
//  - tensors `P._weight_qdata/_scale/_zero_point`, metadata per logical name and `tensor_names`.
// g4 must run exactly the dequantized values `(q - zero_point) * scale`: its logits equal those of a float
// checkpoint holding those values (computed here in f32).
TEST(Torchao, ExecuTorchLayoutBuiltIndependently) {
  const std::string fixture = std::string(G4_TEST_DATA) + "/hf-reference/dense-31b-shape/model";
  const fs::path tmp = fs::temp_directory_path() / ("g4_torchao_et_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp / "ao");
  fs::create_directories(tmp / "deq");
  auto ws = WeightStore::open(fixture);
  Stored ao, deq;
  ao.bufs.reserve(4096);
  deq.bufs.reserve(4096);
  auto bf16_bytes = [](const std::vector<float>& v) {
    std::vector<uint8_t> b(v.size() * 2);
    for (size_t i = 0; i < v.size(); ++i) {
      const uint16_t h = f32_to_bf16(v[i]);
      std::memcpy(&b[2 * i], &h, 2);
    }
    return b;
  };
  const json bf16 = {{"_type", "torch.dtype"}, {"_data", "bfloat16"}};
  std::vector<std::string> names;
  for (const auto& [name, w] : ws->weights()) names.push_back(name);
  if (!ws->find_weight("lm_head.weight")) names.push_back("lm_head.weight");  // ExecuTorch unties it
  for (const std::string& name : names) {
    const StoredWeight& w = ws->get_weight(name == "lm_head.weight" && !ws->find_weight(name) ? "embed_tokens.weight" : name);
    ASSERT_TRUE(w.plain) << name;
    std::vector<float> x(size_t(w.plain->numel()));
    convert_to_f32(w.plain->dtype, w.plain->data, x.size(), x.data());
    ao.names.push_back(name);
    const bool matrix = w.shape.size() == 2 && name.find("norm") == std::string::npos;
    if (!matrix) {  // norms and layer scalars: plain tensors
      ao.tensors.push_back({name, w.plain->dtype, w.shape, w.plain->data});
      ao.meta[name] = json{{"_type", "Tensor"}}.dump();
      deq.tensors.push_back({name, DType::kF32, w.shape, deq.keep(std::vector<uint8_t>(
          reinterpret_cast<const uint8_t*>(x.data()), reinterpret_cast<const uint8_t*>(x.data() + x.size())))});
      continue;
    }
    const int64_t N = w.shape[0], K = w.shape[1];
    const std::string prefix = name.substr(0, name.rfind('.')) + "._weight_";
    std::vector<float> dq(x.size());
    if (name == "embed_tokens.weight") {
      std::vector<uint8_t> q(size_t(N * K));
      std::vector<float> scale(static_cast<size_t>(N));
      for (int64_t n = 0; n < N; ++n) {
        float amax = 0;
        for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(x[size_t(n * K + k)]));
        scale[size_t(n)] = bf16_to_f32(f32_to_bf16(std::max(amax / 127.5f, 1e-8f)));
        for (int64_t k = 0; k < K; ++k) {
          const int c = std::clamp(int(std::nearbyint(x[size_t(n * K + k)] / scale[size_t(n)])), -128, 127);
          q[size_t(n * K + k)] = uint8_t(int8_t(c));
          dq[size_t(n * K + k)] = float(c) * scale[size_t(n)];
        }
      }
      ao.tensors.push_back({prefix + "qdata", DType::kI8, {N, K}, ao.keep(q)});
      ao.tensors.push_back({prefix + "scale", DType::kBF16, {N, 1}, ao.keep(bf16_bytes(scale))});
      ao.tensors.push_back({prefix + "zero_point", DType::kI8, {N, 1}, ao.keep(std::vector<uint8_t>(size_t(N), 0))});
      ao.meta[name] = json{{"_type", "IntxUnpackedToInt8Tensor"},
                           {"_data",
                            {{"block_size", {1, K}},
                             {"shape", {N, K}},
                             {"target_dtype", {{"_type", "torch.dtype"}, {"_data", "int8"}}},
                             {"dtype", bf16},
                             {"activation_quantization", nullptr}}},
                           {"_tensor_data_names", {"qdata", "scale", "zero_point"}}}
                          .dump();
    } else {
      const int64_t gs = 32, G = K / gs;
      const bool sym = name.find("o_proj") != std::string::npos;
      std::vector<uint8_t> codes(size_t(N * K)), packed(size_t(N * K / 2));
      std::vector<float> scale_t(size_t(G * N)), zero_t(size_t(G * N));  // [G, N]
      for (int64_t n = 0; n < N; ++n)
        for (int64_t g = 0; g < G; ++g) {
          const float* v = &x[size_t(n * K + g * gs)];
          float lo = 0, hi = 0, amax = 0;
          for (int64_t k = 0; k < gs; ++k) lo = std::min(lo, v[k]), hi = std::max(hi, v[k]), amax = std::max(amax, std::fabs(v[k]));
          float s, z;
          if (sym) {
            s = bf16_to_f32(f32_to_bf16(std::max(amax / 7.5f, 1e-8f)));
            z = 8.0f;
          } else {
            s = bf16_to_f32(f32_to_bf16(std::max((hi - lo) / 15.0f, 1e-8f)));
            z = std::nearbyint(-lo / s) + ((n + g) % 2 ? 0.375f : 0.0f);  // some non-integer zero points
            z = bf16_to_f32(f32_to_bf16(std::clamp(z, 0.0f, 15.0f)));
          }
          scale_t[size_t(g * N + n)] = s;
          zero_t[size_t(g * N + n)] = z;
          for (int64_t k = 0; k < gs; ++k) {
            const int c = std::clamp(int(std::nearbyint(v[k] / s + z)), 0, 15);
            codes[size_t(n * K + g * gs + k)] = uint8_t(c);
            dq[size_t(n * K + g * gs + k)] = (float(c) - z) * s;
          }
        }
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < K / 2; ++j)
          packed[size_t(n * K / 2 + j)] = uint8_t(codes[size_t(n * K + 2 * j)] | (codes[size_t(n * K + 2 * j + 1)] << 4));
      ao.tensors.push_back({prefix + "qdata", DType::kU8, {N, K / 2}, ao.keep(packed)});
      ao.tensors.push_back({prefix + "scale", DType::kBF16, {G, N}, ao.keep(bf16_bytes(scale_t))});
      ao.tensors.push_back({prefix + "zero_point", DType::kBF16, {G, N}, ao.keep(bf16_bytes(zero_t))});
      ao.meta[name] = json{{"_type", "Int4Tensor"},
                           {"_data", {{"block_size", {1, gs}}, {"shape", {N, K}}}},
                           {"_tensor_data_names", {"qdata", "scale", "zero_point"}}}
                          .dump();
    }
    deq.tensors.push_back({name, DType::kF32, w.shape, deq.keep(std::vector<uint8_t>(
        reinterpret_cast<const uint8_t*>(dq.data()), reinterpret_cast<const uint8_t*>(dq.data() + dq.size())))});
  }
  ao.meta["tensor_names"] = ao.names.dump();
  for (const char* d : {"ao", "deq"})
    fs::copy_file(fixture + "/config.json", tmp / d / "config.json", fs::copy_options::overwrite_existing);
  write_safetensors((tmp / "ao" / "model.safetensors").string(), ao.tensors, ao.meta);
  write_safetensors((tmp / "deq" / "model.safetensors").string(), deq.tensors, {});

  auto ws_ao = WeightStore::open((tmp / "ao").string());
  EXPECT_EQ(ws_ao->get_weight("layers.0.mlp.up_proj.weight").quant->describe(), "int4 g32 asym (BF16 scales)");
  EXPECT_TRUE(ws_ao->get_weight("embed_tokens.weight").quant);
  EXPECT_TRUE(ws_ao->get_weight("lm_head.weight").quant);
  auto be = make_backend("ref");
  const std::vector<int32_t> prompt = {2, 100, 7, 999, 45, 3, 3};
  auto a = Model::load((tmp / "ao").string(), *be);
  auto b = Model::load((tmp / "deq").string(), *be);
  Session sa(*a, 8), sb(*b, 8);
  const std::vector<float> la = sa.forward(prompt, LogitsMode::kAll), lb = sb.forward(prompt, LogitsMode::kAll);
  const double d = testing_util::max_abs_diff(la, lb).max;
  std::printf("[ torchao layout ] max |logit - dequantized float model| = %.3g\n", d);
  EXPECT_LE(d, 1e-4);
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
