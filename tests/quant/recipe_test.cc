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
