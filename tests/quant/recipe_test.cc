// Recipes (spec 5.1): which scheme each canonical tensor gets, and user rules taking precedence.
#include <gtest/gtest.h>

#include "base/error.h"
#include "quant/recipe.h"

namespace g4 {
namespace {

std::string pick(const Recipe& r, const std::string& n) {
  auto s = r.choose(n);
  return s ? s->describe() : "keep";
}

TEST(Recipe, Default) {
  const Recipe r = Recipe::make("default", 60, 32, QuantMethod::kMinMax);
  EXPECT_EQ(pick(r, "embed_tokens.weight"), "int8 per-row sym minmax");
  EXPECT_EQ(pick(r, "layers.3.input_layernorm.weight"), "keep");
  EXPECT_EQ(pick(r, "layers.3.self_attn.q_norm.weight"), "keep");
  EXPECT_EQ(pick(r, "layers.3.self_attn.v_proj.weight"), "int4 g32 asym minmax");
  EXPECT_EQ(pick(r, "lm_head.weight"), "int4 g32 asym minmax");
  EXPECT_TRUE(r.untie_lm_head());
}

TEST(Recipe, WholeInt4Scheme) {
  // g32 symmetric with f16 scales (GGUF Q4_0's 4.5 bits per weight) for every int4 rule, user rules included.
  const QuantScheme q4_0{QuantKind::kInt4, 32, true, QuantMethod::kMinMax, DType::kF16};
  Recipe r = Recipe::make("default", 6, q4_0);
  r.add_user_rule(R"(layers\.0\.mlp=int4)");
  for (const char* n : {"layers.3.self_attn.v_proj.weight", "lm_head.weight", "layers.0.mlp.up_proj.weight"}) {
    const auto s = r.choose(n);
    ASSERT_TRUE(s) << n;
    EXPECT_EQ(s->describe(), "int4 g32 sym minmax") << n;
    EXPECT_EQ(s->scale_dtype, DType::kF16) << n;
  }
  EXPECT_EQ(pick(r, "embed_tokens.weight"), "int8 per-row sym minmax");
  EXPECT_EQ(r.choose("embed_tokens.weight")->scale_dtype, DType::kBF16);
  // "sensitive" keeps HQQ on its int4 rules whatever the method given.
  const Recipe s = Recipe::make("sensitive", 8, QuantScheme{QuantKind::kInt4, 64, false, QuantMethod::kMinMax, DType::kF16});
  EXPECT_EQ(pick(s, "layers.3.mlp.up_proj.weight"), "int4 g64 asym hqq");
  EXPECT_EQ(s.choose("layers.3.mlp.up_proj.weight")->scale_dtype, DType::kF16);
  EXPECT_THROW(Recipe::make("default", 6, QuantScheme{QuantKind::kInt8, 32, true, QuantMethod::kMinMax, DType::kBF16}), Error);
  EXPECT_THROW(Recipe::make("default", 6, QuantScheme{QuantKind::kInt4, 48, true, QuantMethod::kMinMax, DType::kF16}), Error);
}

TEST(Recipe, SensitiveQuarters) {
  const Recipe r = Recipe::make("sensitive", 60, 64, QuantMethod::kMinMax);
  EXPECT_EQ(pick(r, "layers.0.self_attn.v_proj.weight"), "int8 g32 sym minmax");
  EXPECT_EQ(pick(r, "layers.14.mlp.down_proj.weight"), "int8 g32 sym minmax");
  EXPECT_EQ(pick(r, "layers.15.mlp.down_proj.weight"), "int4 g64 asym hqq");
  EXPECT_EQ(pick(r, "layers.44.self_attn.v_proj.weight"), "int4 g64 asym hqq");
  EXPECT_EQ(pick(r, "layers.45.self_attn.v_proj.weight"), "int8 g32 sym minmax");
  EXPECT_EQ(pick(r, "layers.59.mlp.down_proj.weight"), "int8 g32 sym minmax");
  EXPECT_EQ(pick(r, "layers.0.mlp.up_proj.weight"), "int4 g64 asym hqq");
  EXPECT_EQ(pick(r, "layers.5.mlp.down_proj.weight"), "int8 g32 sym minmax");
}

TEST(Recipe, UserRulesComeFirstInOrder) {
  Recipe r = Recipe::make("default", 6, 32, QuantMethod::kMinMax);
  r.add_user_rule(R"(mlp\.down_proj=int8)");
  r.add_user_rule(R"(layers\.0\.=bf16)");
  EXPECT_EQ(pick(r, "layers.0.mlp.down_proj.weight"), "int8 g32 sym minmax");  // first user rule wins
  EXPECT_EQ(pick(r, "layers.0.mlp.up_proj.weight"), "keep");
  EXPECT_EQ(pick(r, "layers.1.mlp.up_proj.weight"), "int4 g32 asym minmax");
  EXPECT_THROW(r.add_user_rule("noequals"), Error);
  EXPECT_THROW(r.add_user_rule("x=int3"), Error);
  EXPECT_THROW(r.add_user_rule("([=int4"), Error);
  EXPECT_THROW(Recipe::make("fancy", 6, 32, QuantMethod::kMinMax), Error);
  EXPECT_THROW(Recipe::make("default", 6, 48, QuantMethod::kMinMax), Error);
}

}  // namespace
}  // namespace g4
