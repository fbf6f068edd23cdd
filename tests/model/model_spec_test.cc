// config.json parsing: the hub's nested text_config, a root-level text export, global_head_dim /
// num_global_key_value_heads vs per_layer_config, transformers' defaults, and clear errors.
#include <gtest/gtest.h>

#include "base/error.h"
#include "model/model_spec.h"

namespace g4 {
namespace {

const char* k31b = R"({
  "architectures": ["Gemma4ForConditionalGeneration"], "model_type": "gemma4",
  "text_config": {"model_type": "gemma4_text", "vocab_size": 262144, "hidden_size": 5376,
    "intermediate_size": 21504, "num_hidden_layers": 60, "num_attention_heads": 32, "num_key_value_heads": 16,
    "head_dim": 256, "global_head_dim": 512, "num_global_key_value_heads": 4, "attention_k_eq_v": true,
    "sliding_window": 1024, "final_logit_softcapping": 30.0, "rms_norm_eps": 1e-6,
    "rope_parameters": {"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
      "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1000000.0}}}})";

TEST(ModelSpec, Parses31bWithDefaultLayerPattern) {
  ModelSpec s = parse_model_config(k31b, "31b");
  ASSERT_EQ(s.n_layers(), 60);
  EXPECT_EQ(s.hidden_size, 5376);
  EXPECT_EQ(s.vocab_size, 262144);
  EXPECT_FLOAT_EQ(s.final_softcap, 30.0f);
  for (int i = 0; i < 60; ++i) {
    const LayerSpec& L = s.layers[size_t(i)];
    const bool full = (i + 1) % 6 == 0;
    EXPECT_EQ(L.sliding, !full) << i;
    EXPECT_EQ(L.head_dim, full ? 512 : 256) << i;
    EXPECT_EQ(L.n_kv_heads, full ? 4 : 16) << i;
    EXPECT_EQ(L.k_eq_v, full) << i;
    EXPECT_EQ(L.window, full ? 0 : 1024) << i;
    EXPECT_EQ(L.rope_pairs, full ? 64 : 128) << i;  // proportional: dims 0-63 paired with 256-319
    EXPECT_FLOAT_EQ(L.rope_theta, full ? 1e6f : 1e4f) << i;
  }
}

TEST(ModelSpec, RootLevelTextConfigAndDefaults) {
  ModelSpec s = parse_model_config(R"({"model_type": "gemma4_text", "num_hidden_layers": 7,
      "num_key_value_heads": 2, "num_attention_heads": 4})", "root");
  ASSERT_EQ(s.n_layers(), 7);
  EXPECT_FALSE(s.layers[5].sliding);  // (i+1) % 6 == 0
  EXPECT_FALSE(s.layers[6].sliding);  // last layer forced full
  EXPECT_EQ(s.layers[6].head_dim, 512);  // global_head_dim default
  EXPECT_EQ(s.layers[6].n_kv_heads, 2);
  EXPECT_FALSE(s.layers[6].k_eq_v);    // attention_k_eq_v defaults to false
  EXPECT_EQ(s.final_softcap, 0.0f);
  EXPECT_EQ(s.eos_ids, std::vector<int>{1});
}

TEST(ModelSpec, GlobalKvHeadsOnlyWithKEqV) {
  ModelSpec s = parse_model_config(R"({"text_config": {"num_hidden_layers": 2, "num_attention_heads": 4,
      "num_key_value_heads": 2, "num_global_key_value_heads": 1, "attention_k_eq_v": false,
      "layer_types": ["sliding_attention", "full_attention"]}})", "x");
  EXPECT_EQ(s.layers[1].n_kv_heads, 2);
}

TEST(ModelSpec, PerLayerConfigFormWithPaddedKeys) {
  ModelSpec s = parse_model_config(R"({"text_config": {"num_hidden_layers": 12, "num_attention_heads": 8,
      "num_key_value_heads": 4, "head_dim": 32, "attention_k_eq_v": true,
      "per_layer_config": {"05": {"head_dim": 64, "num_key_value_heads": 2}, "11": {"head_dim": 64,
      "num_key_value_heads": 2}}}})", "plc");
  EXPECT_EQ(s.layers[5].head_dim, 64);
  EXPECT_EQ(s.layers[5].n_kv_heads, 2);
  EXPECT_EQ(s.layers[11].head_dim, 64);
  EXPECT_EQ(s.layers[4].head_dim, 32);
  EXPECT_EQ(s.layers[4].n_kv_heads, 4);
  EXPECT_EQ(s.layers[5].rope_pairs, 8);  // floor(0.25 * 64 / 2)
}

TEST(ModelSpec, ErrorsNameTheProblem) {
  auto msg = [](const std::string& json) {
    try {
      parse_model_config(json, "cfg.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(msg("{not json").find("not valid JSON"), std::string::npos);
  EXPECT_NE(msg("[1,2]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(msg(R"({"hidden_size": "big"})").find("'hidden_size' must be an integer"), std::string::npos);
  EXPECT_NE(msg(R"({"hidden_size": -3})").find("'hidden_size' = -3 is outside"), std::string::npos);
  EXPECT_NE(msg(R"({"num_hidden_layers": 2, "layer_types": ["sliding_attention"]})").find("layer_types"),
            std::string::npos);
  EXPECT_NE(msg(R"({"num_attention_heads": 5, "num_key_value_heads": 2})").find("not a multiple"), std::string::npos);
  EXPECT_NE(msg(R"({"hidden_size_per_layer_input": 256})").find("per-layer embeddings"), std::string::npos);
  EXPECT_NE(msg(R"({"model_type": "llama"})").find("not a Gemma 4"), std::string::npos);
  EXPECT_NE(msg(R"({"per_layer_config": {"99": {"head_dim": 64}}})").find("per_layer_config key '99'"),
            std::string::npos);
  EXPECT_NE(msg(R"({"rope_parameters": {"full_attention": {"rope_type": "yarn"}}})").find("yarn"), std::string::npos);
}

}  // namespace
}  // namespace g4
