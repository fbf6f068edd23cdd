// SentencePiece-style BPE tokenizer of the Gemma family (Gemma 2/3/4 tokenizer.json): text -> ids exactly as
// Hugging Face `tokenizers` does it. Order: added/special tokens are cut out of the raw text first (leftmost,
// longest match); each remaining span is normalized (' ' -> U+2581), BPE-merged over UTF-8 characters by merge
// rank, and characters missing from the vocabulary fall back to <0xHH> byte tokens. A Tokenizer is immutable
// after construction except for set_special_token(), and encode/decode are safe to call from several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace g4 {

// Numbering follows GGUF's tokenizer.ggml.token_type so a GGUF vocabulary maps onto it directly.
enum class TokenType : uint8_t {
  kNormal = 1,       // ordinary BPE piece
  kUnknown = 2,      // <unk>
  kControl = 3,      // special token (<bos>, <|turn>, ...): matched atomically, skipped by skip_special
  kUserDefined = 4,  // added but not special (<unused0>, "\n\n", <table>): matched atomically, always decoded
  kUnused = 5,
  kByte = 6,         // <0xHH>
};

// Everything needed to build a tokenizer, independent of the file format it came from
// (tokenizer.json today, a GGUF vocabulary later).
struct TokenizerModel {
  std::vector<std::string> pieces;                          // [vocab]: id -> piece (UTF-8, '▁' for space)
  std::vector<TokenType> types;                             // [vocab]
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order: merges[0] applies first
  bool byte_fallback = true;
  bool space_to_metaspace = true;   // normalizer: ' ' -> U+2581
  bool prepend_metaspace = false;   // normalizer: '▁' before every span (Llama style; Gemma has none)
  int32_t unk_id = -1;              // used only when a byte fallback is impossible
  int32_t bos_id = -1;
  std::vector<int32_t> eos_ids;     // model-level stop ids known to the tokenizer (may be empty)
};

class Tokenizer {
 public:
  // Throws g4::Error when the model is inconsistent (merge of unknown pieces, duplicate pieces, ...).
  explicit Tokenizer(TokenizerModel model);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Loads a Hugging Face tokenizer.json (BPE model). Throws g4::Error naming the file on anything unexpected.
  static Tokenizer from_json_file(const std::string& path);
  static Tokenizer from_json(std::string_view json, const std::string& what);

  // Ids for text; like HF encode(text, add_special_tokens=False) unless add_bos puts bos_id() first.
  std::vector<int32_t> encode(std::string_view text, bool add_bos = false) const;
  // Like HF decode(ids, skip_special_tokens=skip_special). Throws g4::Error on an id outside the vocabulary.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  // Makes `id` the token `piece`, matched atomically in text (special: skipped by skip_special). Used to
  // overlay Gemma 4's specials (<|turn>, ...) on a vocabulary that names those slots <unusedN>.
  void set_special_token(int32_t id, std::string piece, bool special = true);
  void set_special_tokens(const std::vector<std::pair<int32_t, std::string>>& tokens, bool special = true);

  int32_t vocab_size() const;
  const std::string& piece(int32_t id) const;  // throws g4::Error when out of range
  TokenType type(int32_t id) const;
  std::optional<int32_t> find(std::string_view piece) const;
  int32_t bos_id() const;
  // The byte value of a <0xHH> token, or -1.
  int byte_value(int32_t id) const;
  // Piece text as the decoder shows it ('▁' -> ' '); byte tokens have none (use byte_value).
  std::string display_piece(int32_t id) const;

 private:
  void set_special_token_impl(int32_t id, std::string piece, bool special, bool rebuild);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace g4
