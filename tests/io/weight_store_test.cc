// WeightStore: canonical names from every prefix form, sharded checkpoints through the index, and
// hostile index files (path traversal, tensors not where the index says).
#include <gtest/gtest.h>

#include "base/error.h"
#include "io/safetensors_writer.h"
#include "io/weight_store.h"
#include "util/temp_dir.h"

namespace g4 {
namespace {

using testing_util::TempDir;

TEST(WeightStore, CanonicalNames) {
  std::string c;
  EXPECT_TRUE(WeightStore::canonical_name("model.language_model.layers.0.layer_scalar", &c));
  EXPECT_EQ(c, "layers.0.layer_scalar");
  EXPECT_TRUE(WeightStore::canonical_name("model.norm.weight", &c));
  EXPECT_EQ(c, "norm.weight");
  EXPECT_TRUE(WeightStore::canonical_name("lm_head.weight", &c));
  EXPECT_EQ(c, "lm_head.weight");
  EXPECT_FALSE(WeightStore::canonical_name("model.vision_tower.encoder.x", &c));
  EXPECT_FALSE(WeightStore::canonical_name("model.embed_vision.embedding_projection.weight", &c));
  EXPECT_FALSE(WeightStore::canonical_name("model.audio_tower.x", &c));
}

TEST(WeightStore, ShardedFixtureLoads) {
  auto ws = WeightStore::open(std::string(G4_TEST_DATA) + "/hf-reference/deep-small-window/model");
  EXPECT_NE(ws->find("embed_tokens.weight"), nullptr);
  EXPECT_NE(ws->find("layers.11.mlp.down_proj.weight"), nullptr);
  EXPECT_EQ(ws->find("layers.12.mlp.down_proj.weight"), nullptr);
  EXPECT_THROW(ws->get("nope.weight"), Error);
}

std::string open_error(const std::string& path) {
  try {
    WeightStore::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(WeightStore, HostileIndexFiles) {
  TempDir d;
  const float v[2] = {1, 2};
  write_safetensors(d.file("s1.safetensors"), {{"model.language_model.norm.weight", DType::kF32, {2}, v}});
  auto with_index = [&](const std::string& json) {
    d.write("model.safetensors.index.json", json);
    return open_error(d.path());
  };
  EXPECT_NE(with_index(R"({"weight_map": {"model.language_model.norm.weight": "../s1.safetensors"}})")
                .find("not a plain file name"),
            std::string::npos);
  EXPECT_NE(with_index(R"({"weight_map": {"model.language_model.x": "s1.safetensors"}})").find("not stored there"),
            std::string::npos);
  EXPECT_NE(with_index(R"({"weight_map": {"a": "s2.safetensors"}})").find("cannot open"), std::string::npos);
  EXPECT_NE(with_index(R"({"weight_map": {}})").find("empty"), std::string::npos);
  EXPECT_NE(with_index(R"({"nothing": 1})").find("no weight_map"), std::string::npos);
  EXPECT_NE(with_index("{").find("not valid JSON"), std::string::npos);
  EXPECT_EQ(with_index(R"({"weight_map": {"model.language_model.norm.weight": "s1.safetensors"}})"), "no error");
  EXPECT_NE(open_error(d.file("missing-dir")).find("does not exist"), std::string::npos);
  TempDir empty;
  EXPECT_NE(open_error(empty.path()).find("no model.safetensors"), std::string::npos);
}

TEST(WeightStore, DuplicateCanonicalNamesAreRejected) {
  TempDir d;
  const float v[2] = {1, 2};
  write_safetensors(d.file("model.safetensors"), {{"model.language_model.norm.weight", DType::kF32, {2}, v},
                                                  {"model.norm.weight", DType::kF32, {2}, v}});
  EXPECT_NE(open_error(d.path()).find("appears twice"), std::string::npos);
}

}  // namespace
}  // namespace g4
