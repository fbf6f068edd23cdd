// Loads a Hugging Face tokenizer.json into a TokenizerModel. The 33 MB vocabulary+merges part is walked with
// simdjson's on-demand parser (no DOM, one pass); the small sections (normalizer, decoder, ...) go through
// nlohmann. Only what Gemma tokenizers use is accepted; anything else is a g4::Error naming the file and field,
// because silently ignoring a normalizer or decoder step would produce wrong ids.
#include <simdjson.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/mapped_file.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace g4 {

namespace {

constexpr int64_t kMaxVocab = int64_t(1) << 24;
using nlohmann::json;

struct Loader {
  std::string what;
  TokenizerModel m;
  std::vector<std::pair<int64_t, std::string>> vocab;  // (id, piece) as read
  struct Added {
    int64_t id;
    std::string content;
    bool special;
  };
  std::vector<Added> added;
  std::string unk_token;
  std::string bos_from_post;

  [[noreturn]] void fail(const std::string& msg) const { throw Error(what + ": " + msg); }

  json small(simdjson::ondemand::value v) {
    std::string_view raw = simdjson::to_json_string(v);
    json j = json::parse(raw, nullptr, false);
    if (j.is_discarded()) fail("malformed JSON section");
    return j;
  }

  static bool is_string_pattern(const json& pat, const char* s) {
    return pat.is_object() && pat.contains("String") && pat["String"].is_string() && pat["String"] == s;
  }

  void normalizer(const json& n) {
    m.space_to_metaspace = false;
    if (n.is_null()) return;
    const std::string type = n.value("type", "");
    if (type == "Sequence") {
      for (const json& s : n.value("normalizers", json::array())) normalizer_step(s);
    } else {
      normalizer_step(n);
    }
  }
  void normalizer_step(const json& n) {
    const std::string type = n.value("type", "");
    if (type == "Replace" && is_string_pattern(n.value("pattern", json()), " ") &&
        n.value("content", "") == std::string(utf8::kMetaspace)) {
      m.space_to_metaspace = true;
    } else if (type == "Prepend" && n.value("prepend", "") == std::string(utf8::kMetaspace)) {
      m.prepend_metaspace = true;
    } else {
      fail("unsupported normalizer step " + n.dump());
    }
  }

  void pre_tokenizer(const json& p) {
    if (p.is_null()) return;
    // Split on " " is a no-op once the normalizer has turned every space into '▁' (Gemma 3's setting).
    if (p.value("type", "") == "Split" && is_string_pattern(p.value("pattern", json()), " ") && m.space_to_metaspace)
      return;
    fail("unsupported pre_tokenizer " + p.dump());
  }

  void decoder(const json& d) {
    if (d.is_null()) fail("no decoder");
    std::vector<json> steps;
    if (d.value("type", "") == "Sequence") steps = d.value("decoders", json::array()).get<std::vector<json>>();
    else steps.push_back(d);
    for (const json& s : steps) {
      const std::string type = s.value("type", "");
      if (type == "Replace" && is_string_pattern(s.value("pattern", json()), utf8::kMetaspace.data()) &&
          s.value("content", "") == " ")
        continue;
      if (type == "ByteFallback" || type == "Fuse") continue;
      fail("unsupported decoder step " + s.dump());
    }
  }

  void post_processor(const json& p) {
    if (!p.is_object() || p.value("type", "") != "TemplateProcessing") return;
    const json single = p.value("single", json::array());
    if (single.is_array() && !single.empty() && single[0].contains("SpecialToken"))
      bos_from_post = single[0]["SpecialToken"].value("id", "");
  }

  void model_section(simdjson::ondemand::object obj) {
    for (auto field : obj) {
      const std::string key(std::string_view(field.unescaped_key()));
      simdjson::ondemand::value v = field.value();
      if (key == "type") {
        if (std::string_view(v.get_string()) != "BPE") fail("model.type is not BPE");
      } else if (key == "vocab") {
        simdjson::ondemand::object vo = v.get_object();
        vocab.reserve(300000);
        for (auto e : vo) {
          std::string piece(std::string_view(e.unescaped_key()));
          const int64_t id = e.value().get_int64();
          if (id < 0 || id >= kMaxVocab) fail("model.vocab id " + std::to_string(id) + " out of range");
          vocab.emplace_back(id, std::move(piece));
        }
      } else if (key == "merges") {
        m.merges.reserve(600000);
        for (auto item : v.get_array()) {
          simdjson::ondemand::value iv = item.value();
          if (iv.type() == simdjson::ondemand::json_type::string) {
            std::string_view s = iv.get_string();
            const size_t sp = s.find(' ', 1);
            if (sp == std::string_view::npos) fail("model.merges entry without a space");
            m.merges.emplace_back(std::string(s.substr(0, sp)), std::string(s.substr(sp + 1)));
          } else {
            std::string a, b;
            int k = 0;
            for (auto part : iv.get_array()) {
              std::string_view s = part.get_string();
              if (k == 0) a = s;
              else if (k == 1) b = s;
              ++k;
            }
            if (k != 2) fail("model.merges entry is not a pair");
            m.merges.emplace_back(std::move(a), std::move(b));
          }
        }
      } else if (key == "unk_token") {
        if (v.type() == simdjson::ondemand::json_type::string) unk_token = std::string_view(v.get_string());
      } else if (key == "byte_fallback") {
        m.byte_fallback = v.get_bool();
      } else if (key == "dropout") {
        if (!v.is_null() && double(v.get_double()) != 0.0) fail("model.dropout is not supported");
      } else if (key == "ignore_merges") {
        if (v.get_bool()) fail("model.ignore_merges = true is not supported");
      } else if (key == "continuing_subword_prefix" || key == "end_of_word_suffix") {
        if (!v.is_null() && !std::string_view(v.get_string()).empty()) fail("model." + key + " is not supported");
      }
    }
  }

  void added_tokens(const json& a) {
    if (!a.is_array()) fail("added_tokens is not a list");
    for (const json& t : a) {
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() || !t.contains("content") ||
          !t["content"].is_string())
        fail("malformed added_tokens entry " + t.dump());
      const int64_t id = t["id"].get<int64_t>();
      if (id < 0 || id >= kMaxVocab) fail("added token id " + std::to_string(id) + " out of range");
      const std::string content = t["content"];
      for (const char* flag : {"lstrip", "rstrip", "single_word"})
        if (t.value(flag, false)) fail("added token '" + content + "' uses " + flag + ", which is not supported");
      added.push_back({id, content, t.value("special", false)});
    }
  }

  void assemble() {
    int64_t n = 0;
    for (const auto& [id, p] : vocab) n = std::max(n, id + 1);
    for (const Added& a : added) n = std::max(n, a.id + 1);
    if (n == 0) fail("empty vocabulary");
    m.pieces.assign(size_t(n), std::string());
    m.types.assign(size_t(n), TokenType::kUnused);
    for (auto& [id, p] : vocab) {
      if (m.types[size_t(id)] != TokenType::kUnused) fail("token id " + std::to_string(id) + " appears twice in model.vocab");
      m.types[size_t(id)] = p.size() == 6 && p.rfind("<0x", 0) == 0 && p[5] == '>' ? TokenType::kByte : TokenType::kNormal;
      m.pieces[size_t(id)] = std::move(p);
    }
    vocab.clear();
    for (const Added& a : added) {
      if (m.types[size_t(a.id)] != TokenType::kUnused && m.pieces[size_t(a.id)] != a.content)
        fail("added token " + std::to_string(a.id) + " '" + a.content + "' differs from model.vocab's '" +
             m.pieces[size_t(a.id)] + "'");
      m.pieces[size_t(a.id)] = a.content;
      m.types[size_t(a.id)] = a.special ? TokenType::kControl : TokenType::kUserDefined;
    }
    auto find = [&](const std::string& piece) -> int32_t {
      for (size_t i = 0; i < m.pieces.size(); ++i)
        if (m.pieces[i] == piece) return int32_t(i);
      return -1;
    };
    if (!unk_token.empty()) {
      m.unk_id = find(unk_token);
      if (m.unk_id >= 0 && m.types[size_t(m.unk_id)] == TokenType::kNormal) m.types[size_t(m.unk_id)] = TokenType::kUnknown;
    }
    m.bos_id = find(bos_from_post.empty() ? "<bos>" : bos_from_post);
    if (int32_t eos = find("<eos>"); eos >= 0) m.eos_ids.push_back(eos);
  }
};

}  // namespace

Tokenizer Tokenizer::from_json(std::string_view text, const std::string& what) {
  Loader L;
  L.what = what;
  bool have_model = false;
  json normalizer_j, pre_j, decoder_j;
  try {
    simdjson::ondemand::parser parser;
    simdjson::padded_string padded(text);
    simdjson::ondemand::document doc = parser.iterate(padded);
    simdjson::ondemand::object top = doc.get_object();
    for (auto field : top) {
      const std::string key(std::string_view(field.unescaped_key()));
      simdjson::ondemand::value v = field.value();
      if (key == "model") {
        L.model_section(v.get_object());
        have_model = true;
      } else if (key == "added_tokens") {
        L.added_tokens(L.small(v));
      } else if (key == "normalizer") {
        normalizer_j = L.small(v);
      } else if (key == "pre_tokenizer") {
        pre_j = L.small(v);
      } else if (key == "decoder") {
        decoder_j = L.small(v);
      } else if (key == "post_processor") {
        L.post_processor(L.small(v));
      }
    }
  } catch (const simdjson::simdjson_error& e) {
    L.fail(std::string("malformed tokenizer.json (") + e.what() + ")");
  }
  if (!have_model) L.fail("no \"model\" section");
  L.normalizer(normalizer_j);
  L.pre_tokenizer(pre_j);
  L.decoder(decoder_j);
  L.assemble();
  try {
    return Tokenizer(std::move(L.m));
  } catch (const Error& e) {
    L.fail(e.what());
  }
}

Tokenizer Tokenizer::from_json_file(const std::string& path) {
  MappedFile f(path);
  return from_json(std::string_view(reinterpret_cast<const char*>(f.data()), f.size()), path);
}

}  // namespace g4
