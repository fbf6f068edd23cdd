// A checkpoint whose weights hold NaN or infinity is refused at load, naming the file and tensor, for
// plain tensors (bf16 matrices, norms) and quantized ones (their float scales). The shipped model is
// copied and one value poisoned in place, so everything else about the file stays valid.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "base/error.h"
#include "convert/synth.h"
#include "io/gguf.h"
#include "model/model.h"
#include "util/load_error.h"
#include "util/temp_dir.h"
#include "util/paths.h"

namespace g4 {
namespace {

namespace fs = std::filesystem;
using testing_util::TempDir;
using testing_util::kTinyKjvModel;

// Overwrites element `index` of tensor `name` in the safetensors file with the raw `bytes`.
void poison(const std::string& file, const std::string& name, size_t index, const void* bytes, size_t width) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  uint64_t n = 0;
  f.read(reinterpret_cast<char*>(&n), 8);
  std::string header(n, '\0');
  f.read(header.data(), std::streamsize(n));
  const auto h = nlohmann::json::parse(header);
  ASSERT_TRUE(h.contains(name)) << name;
  const uint64_t begin = h[name]["data_offsets"][0].get<uint64_t>();
  f.seekp(std::streamoff(8 + n + begin + index * width));
  f.write(static_cast<const char*>(bytes), std::streamsize(width));
}

using testing_util::load_error;

std::string copy_tiny(const TempDir& d) {
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(kTinyKjvModel + "/" + f, d.file(f));
  return d.path();
}

TEST(NonFiniteWeights, ShippedModelLoads) { EXPECT_EQ(load_error(kTinyKjvModel), ""); }

TEST(NonFiniteWeights, NanInBf16MatrixIsRefusedNamingFileAndTensor) {
  TempDir d;
  const std::string dir = copy_tiny(d);
  const uint16_t nan = 0x7fc1;
  poison(d.file("model.safetensors"), "model.language_model.layers.3.mlp.down_proj.weight", 777, &nan, 2);
  const std::string err = load_error(dir);
  EXPECT_NE(err.find("model.safetensors"), std::string::npos) << err;
  EXPECT_NE(err.find("layers.3.mlp.down_proj.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("NaN at element 777"), std::string::npos) << err;
}

TEST(NonFiniteWeights, InfinityInNormAndEmbeddingIsRefused) {
  for (const auto& [tensor, bits, word] :
       {std::tuple<std::string, uint16_t, std::string>{"model.language_model.layers.0.input_layernorm.weight", 0xff80,
                                                       "-Inf"},
        {"model.language_model.embed_tokens.weight", 0x7f80, "+Inf"}}) {
    TempDir d;
    const std::string dir = copy_tiny(d);
    poison(d.file("model.safetensors"), tensor, 5, &bits, 2);
    const std::string err = load_error(dir);
    EXPECT_NE(err.find(tensor.substr(std::string("model.language_model.").size())), std::string::npos) << err;
    EXPECT_NE(err.find(word + " at element 5"), std::string::npos) << err;
  }
}

TEST(NonFiniteWeights, NanScaleOfQuantizedWeightIsRefused) {
  TempDir d;
  SynthOptions o;
  o.layers = 1;
  o.out = d.file("q");
  o.format = "int4";
  o.progress = false;
  synth_checkpoint(o);
  ASSERT_EQ(load_error(o.out), "");
  // The g4 checkpoint stores a quantized weight's scales as a tensor of its own; poison the first one found.
  std::ifstream f(o.out + "/model.safetensors", std::ios::binary);
  uint64_t n = 0;
  f.read(reinterpret_cast<char*>(&n), 8);
  std::string header(n, '\0');
  f.read(header.data(), std::streamsize(n));
  f.close();
  std::string scales;
  nlohmann::json h = nlohmann::json::parse(header);
  for (auto it = h.begin(); it != h.end(); ++it)
    if (it.key().find("down_proj") != std::string::npos && it.key().find("scale") != std::string::npos) scales = it.key();
  ASSERT_FALSE(scales.empty()) << header;
  const std::string dt = h[scales]["dtype"];
  const uint32_t nan32 = 0x7fc00001;
  const uint16_t nan16 = dt == "F16" ? 0x7e01 : 0x7fc1;
  poison(o.out + "/model.safetensors", scales, 3, dt == "F32" ? static_cast<const void*>(&nan32) : &nan16,
         dt == "F32" ? 4 : 2);
  const std::string err = load_error(o.out);
  EXPECT_NE(err.find("down_proj"), std::string::npos) << err;
  EXPECT_NE(err.find("(scales) holds NaN at element 3"), std::string::npos) << err;
}

// A GGUF block-format weight is converted only when it is packed: the NaN check must still see its
// scales (f16 at the start of each 34-byte Q8_0 block).
TEST(NonFiniteWeights, NanScaleInGgufBlockIsRefused) {
  TempDir d;
  const std::string file = d.file("kjv-q8_0.gguf");
  fs::copy_file(std::string(G4_TEST_DATA) + "/gguf-llamacpp/kjv-q8_0.gguf", file);
  ASSERT_EQ(load_error(file), "");
  uint64_t at = 0;
  {
    const GgufFile g(file);
    for (const GgufTensor& t : g.tensors())
      if (t.name == "blk.0.ffn_down.weight" && t.ggml_type() == GgmlType::kQ8_0) at = g.data_offset() + t.offset + 2 * 34;
  }
  ASSERT_NE(at, 0u) << "blk.0.ffn_down.weight is not Q8_0 in the test file";
  const uint16_t nan16 = 0x7e01;
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(std::streamoff(at));
  f.write(reinterpret_cast<const char*>(&nan16), 2);
  f.close();
  const std::string err = load_error(file);
  EXPECT_NE(err.find("mlp.down_proj"), std::string::npos) << err;
  EXPECT_NE(err.find("(scales) holds NaN at element 2"), std::string::npos) << err;
}

}  // namespace
}  // namespace g4
