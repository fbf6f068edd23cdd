// Python/Jinja semantics over JSON values, as the official chat templates see them after transformers loads
// the conversation with Python's json module: str() of a value, truthiness, dictsort order, upper, trim.
// Limits (documented in docs/TOKENIZER.md): upper/lower and repr's escaping are exact for ASCII, approximate
// beyond it; integers beyond 64 bits are not represented.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace g4::py {

using Json = nlohmann::ordered_json;

// obj[key] when obj is a mapping holding key, else nullptr (Jinja's "undefined").
const Json* get(const Json& obj, const char* key);
// Python truthiness; undefined (nullptr) is false.
bool truthy(const Json* v);
// What Jinja prints for {{ v }}: str(v) in Python (None, True, 1.5, 1e-05, ['a', 1], {'k': 'v'}).
std::string str(const Json& v);
// str() of a value that may be undefined (prints as "").
std::string str_or_empty(const Json* v);
std::string repr_string(const std::string& s);
std::string float_repr(double d);
// Jinja's `x | upper` (str(x).upper(); ASCII letters only).
std::string upper(const Json* v);
// Jinja's `d | dictsort`: items ordered by key, case-insensitively, stable. Throws g4::Error unless a mapping.
std::vector<std::pair<std::string, const Json*>> dictsort(const Json& d, const char* what);
// `for x in v` over a list (elements), a string (characters) or a mapping (keys).
std::vector<Json> iterate(const Json& v, const char* what);

}  // namespace g4::py
