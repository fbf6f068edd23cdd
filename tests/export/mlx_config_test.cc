// The MLX export's config.json states every text-model key mlx-lm reads, with the value g4 read the checkpoint
// with: mlx-lm's gemma4_text.ModelArgs fills a missing key with its own default, and several differ from g4's
// (and transformers'): num_kv_shared_layers 20, hidden_size_per_layer_input 256, use_double_wide_mlp true,
// final_logit_softcapping 30, a full layer every 5th (mlx_lm/models/gemma4_text.py). A per_layer_config, which
// mlx-lm does not read, becomes the flat keys. g4 reads the exported directory as the same model.
#include <nlohmann/json.hpp>
#include <filesystem>
#include <fstream>

#include "export_util.h"
#include "io/mapped_file.h"

namespace g4 {
namespace {

using namespace export_test;
using nlohmann::ordered_json;
using testing_util::TempDir;
namespace fs = std::filesystem;

// Quantizes the shipped model into d/q, edits its config.json's text_config with `edit`, exports it to MLX
// (f32 scales: exact), and returns the exported text_config. Checks that g4 reads the export as the source.
ordered_json export_edited(const TempDir& d, const std::function<void(ordered_json&)>& edit) {
  const std::string q = d.file("q"), mlx = d.file("mlx");
  EXPECT_EQ(run_g4("quantize -m " + kTinyKjv + " -o " + q).status, 0);
  ordered_json c = ordered_json::parse(read_text_file(q + "/config.json"));
  edit(c["text_config"]);
  std::ofstream(q + "/config.json") << c.dump(2);
  const auto r = run_g4("export -m " + q + " --format mlx --scale-dtype f32 -o " + mlx);
  EXPECT_EQ(r.status, 0) << r.err;
  const std::vector<int32_t> tokens = read_i32(kData + "/tiny-kjv/expected.safetensors", "prompt");
  EXPECT_LE(max_abs_diff(ref_logits(mlx, tokens), ref_logits(q, tokens)), 1e-5);
  return ordered_json::parse(read_text_file(mlx + "/config.json"))["text_config"];
}

TEST(MlxConfig, MissingKeysGetG4sValuesNotMlxLmDefaults) {
  TempDir d;
  const ordered_json t = export_edited(d, [](ordered_json& t) {
    for (const char* k : {"num_kv_shared_layers", "hidden_size_per_layer_input", "use_double_wide_mlp", "enable_moe_block",
                          "layer_types", "rope_parameters", "final_logit_softcapping", "sliding_window"})
      t.erase(k);
  });
  EXPECT_EQ(t["num_kv_shared_layers"], 0);
  EXPECT_EQ(t["hidden_size_per_layer_input"], 0);
  EXPECT_EQ(t["use_double_wide_mlp"], false);
  EXPECT_EQ(t["enable_moe_block"], false);
  // g4 (as transformers) makes every 6th layer and the last one full; mlx-lm's default would make layer 4 full.
  EXPECT_EQ(t["layer_types"], ordered_json({"sliding_attention", "sliding_attention", "sliding_attention",
                                            "sliding_attention", "sliding_attention", "full_attention"}));
  EXPECT_TRUE(t["final_logit_softcapping"].is_null()) << t["final_logit_softcapping"];  // none, as g4 read it
  EXPECT_EQ(t["sliding_window"], 512);
  const ordered_json& full = t["rope_parameters"]["full_attention"];
  EXPECT_EQ(full["rope_type"], "proportional");
  EXPECT_EQ(full["partial_rotary_factor"], 0.25);
  EXPECT_EQ(full["rope_theta"], 1e6);
  EXPECT_EQ(t["rope_parameters"]["sliding_attention"]["rope_theta"], 1e4);
  EXPECT_EQ(t["tie_word_embeddings"], false);  // the default recipe stores an lm_head
}

TEST(MlxConfig, PerLayerConfigBecomesFlatKeys) {
  TempDir d;
  const ordered_json t = export_edited(d, [](ordered_json& t) {
    t.erase("global_head_dim");             // g4: 512 unless per_layer_config says otherwise
    t.erase("num_global_key_value_heads");  // g4: num_key_value_heads (2) unless ...
    t["per_layer_config"] = {{"05", {{"head_dim", 128}, {"num_key_value_heads", 1}}}};
  });
  EXPECT_FALSE(t.contains("per_layer_config"));
  EXPECT_EQ(t["head_dim"], 64);
  EXPECT_EQ(t["global_head_dim"], 128);
  EXPECT_EQ(t["num_key_value_heads"], 2);
  EXPECT_EQ(t["num_global_key_value_heads"], 1);
}

TEST(MlxConfig, CompleteConfigIsKeptAsItIs) {
  TempDir d;
  const ordered_json t = export_edited(d, [](ordered_json&) {});
  ordered_json want = ordered_json::parse(read_text_file(kTinyKjv + "/config.json"))["text_config"];
  want["tie_word_embeddings"] = false;
  EXPECT_EQ(t, want);
}

}  // namespace
}  // namespace g4
