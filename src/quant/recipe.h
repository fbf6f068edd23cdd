// Quantization recipes: an ordered list of rules "regex on the canonical tensor name -> scheme or keep";
// the first rule whose regex matches (std::regex_search) decides. Only 2-D weights are quantized; 1-D
// tensors (norms, layer_scalar) are always kept. Built-in recipes follow spec section 5.1.
#pragma once

#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "quant/quantizer.h"

namespace g4 {

class Recipe {
 public:
  // name: "default" (int4 asym linears, int8 per-row embedding, untied int4 lm_head),
  // "sensitive" (int8 sym g32 for v_proj/down_proj of the first and last quarter of layers, HQQ int4
  // elsewhere), "int8" (int8 sym everywhere, lm_head stays tied). Throws g4::Error for other names.
  static Recipe make(const std::string& name, int n_layers, int64_t group_size, QuantMethod method);
  // The same with the scheme of the recipe's int4 rules given whole: group size (32, 64 or 128), symmetry,
  // method and scale dtype (e.g. g32 symmetric with f16 scales, 4.5 bits per weight like GGUF Q4_0).
  // "sensitive" always uses HQQ for them (ignored when symmetric).
  static Recipe make(const std::string& name, int n_layers, const QuantScheme& int4);

  // Adds a user rule 'REGEX=int8|int4|bf16' ahead of the built-in rules (after earlier user rules).
  // Throws g4::Error naming `flag` on a malformed rule or regex.
  void add_user_rule(const std::string& spec, const std::string& flag = "--rule");

  // The scheme for a 2-D weight, or nullopt to keep it as stored.
  std::optional<QuantScheme> choose(const std::string& name) const;

  // When the source ties lm_head to the embedding, write/pack a separately quantized lm_head.
  bool untie_lm_head() const { return untie_lm_head_; }

 private:
  struct Rule {
    std::string pattern;
    std::regex re;
    std::optional<QuantScheme> scheme;
  };
  std::vector<Rule> rules_;
  size_t n_user_ = 0;
  QuantScheme int4_;
  bool untie_lm_head_ = false;
};

}  // namespace g4
