// JsonGrammar: a JSON schema compiled into a byte-level recognizer, for constrained decoding. A
// GrammarState reads the output one byte at a time and rejects the first byte after which no completion
// could satisfy the schema, so every prefix it accepts can still be finished into a valid value.
//
// Supported: type (string, number, integer, boolean, null, object, array, or a list of them), nullable,
// properties / required / additionalProperties (false, true, or a schema; `strict` forbids extra keys
// whatever it says; a declared key may appear once), items, minItems / maxItems, minLength / maxLength, enum, const, anyOf, and the
// empty schema (any JSON value). Annotations (title, description, default, examples, format, $schema,
// $id) are ignored. Keywords that constrain values in a way this recognizer does not enforce ($ref,
// pattern, minimum, oneOf, allOf, ...) are refused with a g4::Error naming them, never silently
// dropped. Limits: at most 64 properties per object, 256 enum values, nesting 32 deep, 256 anyOf / enum
// branches alive at once (identical parses are merged); keys are plain
// (no backslash escapes); whitespace between tokens is none or one space (no newlines: the output is
// one line); numbers are at most 32 characters with at most two exponent digits (so they fit a double),
// integers 18 characters (so they fit an int64); strings must be valid UTF-8 and may not escape surrogates.
//
// Dialects: kJson is standard JSON. kGemma is the syntax of Gemma 4's tool-call arguments ({key:value},
// keys bare, strings between the <|"|> token, no escapes, no whitespace), where the special tokens the
// grammar needs are the symbol bytes below (bytes that never occur in UTF-8 text). Strings in kGemma
// may not contain "<|" or "|>" (they would read as special tokens when the reply is parsed).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace g4 {

inline constexpr uint8_t kSymQuote = 0xFF;          // <|"|>
inline constexpr uint8_t kSymToolCallOpen = 0xFE;   // <|tool_call>
inline constexpr uint8_t kSymToolCallClose = 0xFD;  // <tool_call|>

enum class JsonDialect { kJson, kGemma };

class JsonGrammar {
 public:
  // Throws g4::Error ("schema at /properties/x: ...") for anything it cannot compile.
  static std::shared_ptr<const JsonGrammar> from_schema(const nlohmann::json& schema, bool strict,
                                                        JsonDialect dialect = JsonDialect::kJson);
  // Any JSON object (response_format json_object).
  static std::shared_ptr<const JsonGrammar> any_object();
  // One Gemma 4 tool call, <|tool_call>call:NAME{arguments}<tool_call|>, for one of `functions`
  // (name, parameters schema; a null schema: any arguments object).
  static std::shared_ptr<const JsonGrammar> tool_call(
      const std::vector<std::pair<std::string, nlohmann::json>>& functions);

  enum class Kind : uint8_t { kObject, kArray, kString, kNumber, kInteger, kLiteral, kAlt, kSeq };
  struct Node {
    Kind kind = Kind::kLiteral;
    bool gemma = false;              // kGemma dialect
    std::string lit;                 // kLiteral: the exact bytes
    std::vector<int32_t> kids;       // kAlt: alternatives; kSeq: parts; kArray: [items]; kObject: property values
    std::vector<std::string> names;  // kObject: property names (parallel to kids)
    uint64_t required = 0;           // kObject: bit i = names[i] is required
    int32_t additional = -1;         // kObject: the schema of other keys' values; -1: no other keys
    int64_t min = 0, max = -1;       // kArray: items; kString: characters (-1: no maximum)
  };
  const std::vector<Node>& nodes() const { return nodes_; }
  int32_t root() const { return root_; }

 private:
  friend struct SchemaCompiler;
  std::vector<Node> nodes_;
  int32_t root_ = -1;
};

// Bytes a bare key or function name may hold in the Gemma dialect.
bool gemma_key_byte(uint8_t b);

class GrammarState {
 public:
  // `g` must outlive the state.
  explicit GrammarState(const JsonGrammar& g);

  // Reads one byte; false when no valid output continues with it, and the state is then spoilt (feed a
  // copy to try a byte).
  bool feed(uint8_t b);
  // Reads the bytes of `s` all or nothing (false: the state is unchanged).
  bool feed(std::string_view s);
  // The output so far is a complete value (generation may end here).
  bool can_end() const;
  // The value is complete and nothing may follow it.
  bool finished() const;
  // 0: not inside a string; else the state is inside a string of that dialect (1 JSON, 2 Gemma) where
  // any plain text of at most *chars_left characters (-1: any length) may follow (no pending UTF-8
  // sequence or escape): a token mask may then admit such plain tokens without reading them.
  int in_free_string(int64_t* chars_left) const;

  struct Frame {
    int32_t node = 0;
    uint8_t phase = 0;
    uint8_t ws = 0;      // whitespace run
    uint8_t pend = 0;    // UTF-8 continuation bytes still expected
    uint8_t lo = 0, hi = 0;  // range of the next continuation byte; strings: lo also holds escape state
    uint8_t prev = 0;    // previous byte (Gemma strings)
    int16_t key = -1;    // object: the property whose value is read (-2: another key)
    int32_t n = 0;       // literal index, characters, items, number length, key length, next part
    uint64_t cand = 0;   // object: declared keys the key read so far still matches
    uint64_t seen = 0;   // object: declared keys already given
    uint64_t dup = 0;    // object: declared keys already given that the key read so far matches (refused
                         // when it ends: a parser keeping the last value would skip the first's schema)
    bool operator==(const Frame&) const = default;
  };
  using Stack = std::vector<Frame>;
  // Parses alive at once are capped (anyOf inside anyOf can multiply them): a byte that would keep more
  // is refused, which a token mask reports as a dead end.
  static constexpr size_t kMaxParses = 256;

 private:
  const JsonGrammar* g_;
  std::vector<Stack> stacks_;  // the parses still alive (more than one inside anyOf / enum / any value)
};

}  // namespace g4
