#include "quant/recipe.h"

#include "base/error.h"

namespace g4 {

namespace {

QuantScheme int8_sym(int64_t gs) { return {QuantKind::kInt8, gs, true, QuantMethod::kMinMax, DType::kBF16}; }

std::string layer_alternation(int lo, int hi) {  // "(0|1|...|hi-1)"
  std::string s = "(";
  for (int i = lo; i < hi; ++i) s += (i > lo ? "|" : "") + std::to_string(i);
  return s + ")";
}

}  // namespace

Recipe Recipe::make(const std::string& name, int n_layers, int64_t gs, QuantMethod method) {
  return make(name, n_layers, QuantScheme{QuantKind::kInt4, gs, false, method, DType::kBF16});
}

Recipe Recipe::make(const std::string& name, int n_layers, const QuantScheme& int4) {
  const int64_t gs = int4.group_size;
  if (gs != 32 && gs != 64 && gs != 128) throw Error("--group-size: " + std::to_string(gs) + " is not 32, 64 or 128");
  if (int4.kind != QuantKind::kInt4) throw Error("recipe: the int4 scheme must be int4");
  if (int4.scale_dtype != DType::kBF16 && int4.scale_dtype != DType::kF16 && int4.scale_dtype != DType::kF32)
    throw Error("--scale-dtype: expected bf16, f16 or f32");
  Recipe r;
  r.int4_ = int4;
  auto add = [&](const std::string& p, std::optional<QuantScheme> s) { r.rules_.push_back({p, std::regex(p), s}); };
  add(R"(^embed_tokens\.weight$)", int8_sym(0));
  add(R"(norm\.weight$)", std::nullopt);
  if (name == "default") {
    add(R"(\.weight$)", int4);
    r.untie_lm_head_ = true;
  } else if (name == "sensitive") {
    const int q = n_layers / 4;
    if (q > 0) {
      const std::string layers = q * 2 >= n_layers ? layer_alternation(0, n_layers)
                                                   : "(" + layer_alternation(0, q) + "|" + layer_alternation(n_layers - q, n_layers) + ")";
      add("^layers\\." + layers + R"(\.(self_attn\.v_proj|mlp\.down_proj)\.weight$)", int8_sym(32));
    }
    QuantScheme hqq = int4;
    hqq.method = QuantMethod::kHqq;
    add(R"(\.weight$)", hqq);
    r.untie_lm_head_ = true;
  } else if (name == "int8") {
    add(R"(\.weight$)", int8_sym(gs));
  } else {
    throw Error("--recipe: unknown recipe '" + name + "' (expected default, sensitive or int8)");
  }
  return r;
}

void Recipe::add_user_rule(const std::string& spec, const std::string& flag) {
  const size_t eq = spec.rfind('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(flag + " '" + spec + "': expected REGEX=int8|int4|bf16");
  const std::string pattern = spec.substr(0, eq), what = spec.substr(eq + 1);
  std::optional<QuantScheme> s;
  if (what == "int4") s = int4_;
  else if (what == "int8") s = int8_sym(int4_.group_size);
  else if (what != "bf16") throw Error(flag + " '" + spec + "': '" + what + "' is not int8, int4 or bf16");
  std::regex re;
  try {
    re = std::regex(pattern);
  } catch (const std::regex_error& e) {
    throw Error(flag + " '" + spec + "': bad regular expression: " + e.what());
  }
  rules_.insert(rules_.begin() + std::ptrdiff_t(n_user_), Rule{pattern, re, s});
  ++n_user_;
}

std::optional<QuantScheme> Recipe::choose(const std::string& name) const {
  for (const Rule& r : rules_)
    if (std::regex_search(name, r.re)) return r.scheme;
  return std::nullopt;
}

}  // namespace g4
