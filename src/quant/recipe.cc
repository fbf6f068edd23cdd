#include "quant/recipe.h"

#include "base/error.h"

namespace g4 {

namespace {

QuantScheme int4_asym(int64_t gs, QuantMethod m) { return {QuantKind::kInt4, gs, false, m, DType::kBF16}; }
QuantScheme int8_sym(int64_t gs) { return {QuantKind::kInt8, gs, true, QuantMethod::kMinMax, DType::kBF16}; }

std::string layer_alternation(int lo, int hi) {  // "(0|1|...|hi-1)"
  std::string s = "(";
  for (int i = lo; i < hi; ++i) s += (i > lo ? "|" : "") + std::to_string(i);
  return s + ")";
}

}  // namespace

Recipe Recipe::make(const std::string& name, int n_layers, int64_t gs, QuantMethod method) {
  if (gs != 32 && gs != 64 && gs != 128) throw Error("--group-size: " + std::to_string(gs) + " is not 32, 64 or 128");
  Recipe r;
  r.group_size_ = gs;
  r.method_ = method;
  auto add = [&](const std::string& p, std::optional<QuantScheme> s) { r.rules_.push_back({p, std::regex(p), s}); };
  add(R"(^embed_tokens\.weight$)", int8_sym(0));
  add(R"(norm\.weight$)", std::nullopt);
  if (name == "default") {
    add(R"(\.weight$)", int4_asym(gs, method));
    r.untie_lm_head_ = true;
  } else if (name == "sensitive") {
    const int q = n_layers / 4;
    if (q > 0) {
      const std::string layers = q * 2 >= n_layers ? layer_alternation(0, n_layers)
                                                   : "(" + layer_alternation(0, q) + "|" + layer_alternation(n_layers - q, n_layers) + ")";
      add("^layers\\." + layers + R"(\.(self_attn\.v_proj|mlp\.down_proj)\.weight$)", int8_sym(32));
    }
    add(R"(\.weight$)", int4_asym(gs, QuantMethod::kHqq));
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
  if (what == "int4") s = int4_asym(group_size_, method_);
  else if (what == "int8") s = int8_sym(group_size_);
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
