// Token-mask benchmark: the per-token cost of constrained decoding (engine/token_mask.h) on a real
// vocabulary. Builds the TokenVocab of TOKENIZER.json, tokenizes a JSON document valid under the schema,
// then walks it token by token timing what the server does at each step: the greedy check of one token
// (allows) and the whole-vocabulary mask (sampling, or greedy when the model's choice is not allowed).
// Usage: token_mask_bench TOKENIZER.json [SCHEMA.json DOCUMENT.json]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "engine/token_mask.h"
#include "tokenizer/tokenizer.h"

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::string read(const char* path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw g4::Error(std::string("cannot read ") + path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

const char* kSchema = R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
  "tags":{"type":"array","items":{"type":"string"}},"home":{"type":"object","properties":{"city":{"type":"string"},
  "zip":{"type":"string","maxLength":10}},"required":["city","zip"],"additionalProperties":false},
  "role":{"enum":["admin","user","guest"]}},"required":["name","age","tags","home","role"],"additionalProperties":false})";
const char* kDocument = R"({"name": "Ada Lovelace, Countess of Lovelace", "age": 36, "tags": ["mathematician", "writer",
 "the first programmer"], "home": {"city": "London", "zip": "W1J 7NT"}, "role": "admin"})";

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 4) {
    std::fprintf(stderr, "usage: token_mask_bench TOKENIZER.json [SCHEMA.json DOCUMENT.json]\n");
    return 2;
  }
  try {
    const g4::Tokenizer tok = g4::Tokenizer::from_json_file(argv[1]);
    const std::string schema = argc == 4 ? read(argv[2]) : kSchema;
    std::string doc = argc == 4 ? read(argv[3]) : kDocument;
    doc.erase(std::remove(doc.begin(), doc.end(), '\n'), doc.end());

    double t0 = now_s();
    std::vector<g4::TokenVocab::Token> tokens(size_t(tok.vocab_size()));
    for (int32_t id = 0; id < tok.vocab_size(); ++id) {
      const g4::TokenType t = tok.type(id);
      if (t == g4::TokenType::kByte) tokens[size_t(id)] = {std::string(1, char(tok.byte_value(id))), false};
      else if (t == g4::TokenType::kControl || t == g4::TokenType::kUnknown || t == g4::TokenType::kUnused)
        tokens[size_t(id)] = {tok.piece(id), true};
      else tokens[size_t(id)] = {tok.display_piece(id), false};
    }
    auto vocab = std::make_shared<g4::TokenVocab>(tokens, std::vector<std::pair<std::string, uint8_t>>{});
    const double build_s = now_s() - t0;
    auto grammar = g4::JsonGrammar::from_schema(nlohmann::json::parse(schema), false);
    g4::TokenConstraint c(grammar, vocab, {});

    const std::vector<int32_t> ids = tok.encode(doc);
    std::vector<double> mask_ms, check_us;
    std::vector<uint8_t> allowed;
    size_t allowed_total = 0;
    for (int32_t id : ids) {
      t0 = now_s();
      const bool ok = c.allows(id);
      check_us.push_back((now_s() - t0) * 1e6);
      t0 = now_s();
      allowed_total += c.mask(allowed);
      mask_ms.push_back((now_s() - t0) * 1e3);
      if (getenv("SLOW") && mask_ms.back() > 1) std::printf("step %zu before %s: %.1f ms\n", mask_ms.size(), tok.display_piece(id).c_str(), mask_ms.back());
      if (!ok || !allowed[size_t(id)]) throw g4::Error("the document's token " + std::to_string(id) + " ('" + tok.display_piece(id) + "') is refused");
      c.accept(id);
    }
    if (!c.finished()) throw g4::Error("the document is not a complete value");
    auto stats = [](std::vector<double> v, const char* what, const char* unit) {
      double sum = 0;
      for (double x : v) sum += x;
      std::sort(v.begin(), v.end());
      std::printf("%-28s mean %8.3f %s  p50 %8.3f  p99 %8.3f  max %8.3f\n", what, sum / double(v.size()), unit,
                  v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)], v.back());
    };
    std::printf("vocabulary %d tokens, TokenVocab built in %.1f ms; document %zu tokens, %.0f allowed per step on average\n",
                tok.vocab_size(), build_s * 1e3, ids.size(), double(allowed_total) / double(ids.size()));
    stats(check_us, "greedy check (one token)", "us");
    stats(mask_ms, "whole-vocabulary mask", "ms");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "g4: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
