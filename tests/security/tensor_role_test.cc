// A tensor whose dtype or shape does not fit its role is refused at load, naming the file and tensor:
// the shipped model with one header entry rewritten (same bytes, so the file itself stays valid).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backend/backend.h"
#include "base/error.h"
#include "model/model.h"
#include "util/load_error.h"
#include "util/temp_dir.h"
#include "util/paths.h"

namespace g4 {
namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;
using testing_util::TempDir;
using testing_util::kTinyKjvModel;

// Copies the shipped model into `d` with `edit` applied to the safetensors header entry of `tensor`.
void copy_with_header_edit(const TempDir& d, const std::string& tensor, const std::function<void(ordered_json&)>& edit) {
  fs::copy_file(kTinyKjvModel + "/config.json", d.file("config.json"));
  std::ifstream f(kTinyKjvModel + "/model.safetensors", std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string bytes = ss.str();
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  ordered_json h = ordered_json::parse(bytes.substr(8, n));
  ASSERT_TRUE(h.contains(tensor));
  edit(h[tensor]);
  d.write("model.safetensors", testing_util::safetensors_bytes(h.dump(), bytes.substr(8 + n)));
}

using testing_util::load_error;

TEST(TensorRole, TransposedMatrixIsRefused) {
  TempDir d;
  const std::string t = "model.language_model.layers.2.mlp.up_proj.weight";  // [512, 192]
  copy_with_header_edit(d, t, [](ordered_json& e) { e["shape"] = {192, 512}; });
  const std::string err = load_error(d.path());
  EXPECT_NE(err.find("model.safetensors"), std::string::npos) << err;
  EXPECT_NE(err.find("layers.2.mlp.up_proj.weight' has shape [192, 512] but the config implies [512, 192]"),
            std::string::npos)
      << err;
}

TEST(TensorRole, IntegerNormIsRefused) {
  TempDir d;
  const std::string t = "model.language_model.layers.1.post_attention_layernorm.weight";
  copy_with_header_edit(d, t, [](ordered_json& e) { e["dtype"] = "I16"; });
  const std::string err = load_error(d.path());
  EXPECT_NE(err.find("layers.1.post_attention_layernorm.weight' has dtype I16; expected BF16, F16 or F32"),
            std::string::npos)
      << err;
}

TEST(TensorRole, IntegerMatrixIsRefused) {
  TempDir d;
  const std::string t = "model.language_model.layers.0.self_attn.o_proj.weight";
  copy_with_header_edit(d, t, [](ordered_json& e) { e["dtype"] = "I16"; });
  const std::string err = load_error(d.path());
  EXPECT_NE(err.find("layers.0.self_attn.o_proj.weight' has dtype I16"), std::string::npos) << err;
}

TEST(TensorRole, WrongVectorLengthIsRefused) {
  TempDir d;
  const std::string t = "model.language_model.layers.4.self_attn.q_norm.weight";  // [64]
  copy_with_header_edit(d, t, [](ordered_json& e) {
    e["shape"] = {32};
    e["data_offsets"][1] = e["data_offsets"][0].get<uint64_t>() + 64;
  });
  const std::string err = load_error(d.path());
  EXPECT_NE(err.find("layers.4.self_attn.q_norm.weight' has shape [32] but the config implies [64]"), std::string::npos)
      << err;
}

}  // namespace
}  // namespace g4
