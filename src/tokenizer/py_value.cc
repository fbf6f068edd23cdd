// See py_value.h. Float formatting follows Python's repr: shortest round-trip digits, fixed notation for
// decimal exponents in [-4, 16), otherwise d.ddde+XX.
#include "tokenizer/py_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "base/error.h"
#include "tokenizer/utf8.h"

namespace g4::py {

const Json* get(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

bool truthy(const Json* v) {
  if (!v) return false;
  switch (v->type()) {
    case Json::value_t::null: return false;
    case Json::value_t::boolean: return v->get<bool>();
    case Json::value_t::number_integer: return v->get<int64_t>() != 0;
    case Json::value_t::number_unsigned: return v->get<uint64_t>() != 0;
    case Json::value_t::number_float: return v->get<double>() != 0.0;
    case Json::value_t::string: return !v->get_ref<const std::string&>().empty();
    case Json::value_t::array:
    case Json::value_t::object: return !v->empty();
    default: return false;
  }
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // e.g. "-1.2345e+02"
  const size_t epos = sci.find('e');
  const int exp = std::stoi(sci.substr(epos + 1));
  std::string mant = sci.substr(0, epos);
  const bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out = "0.";
      out.append(size_t(-exp - 1), '0');
      out += digits;
    } else if (size_t(exp) + 1 >= digits.size()) {
      out = digits + std::string(size_t(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, size_t(exp) + 1) + "." + digits.substr(size_t(exp) + 1);
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += e;
  }
  return neg ? "-" + out : out;
}

std::string repr_string(const std::string& s) {
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    int len;
    if (utf8::next(p + i, s.size() - i, &cp, &len) != utf8::Next::kOk) {
      cp = p[i];
      len = 1;
    }
    char buf[16];
    if (cp == '\\') out += "\\\\";
    else if (cp == uint32_t(q)) out += std::string("\\") + q;
    else if (cp == '\n') out += "\\n";
    else if (cp == '\r') out += "\\r";
    else if (cp == '\t') out += "\\t";
    else if (cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) {
      std::snprintf(buf, sizeof buf, "\\x%02x", unsigned(cp));
      out += buf;
    } else {
      out.append(s, i, size_t(len));
    }
    i += size_t(len);
  }
  return out + q;
}

namespace {
std::string repr(const Json& v) { return v.is_string() ? repr_string(v.get<std::string>()) : str(v); }
}  // namespace

std::string str(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return "None";
    case Json::value_t::boolean: return v.get<bool>() ? "True" : "False";
    case Json::value_t::number_integer: return std::to_string(v.get<int64_t>());
    case Json::value_t::number_unsigned: return std::to_string(v.get<uint64_t>());
    case Json::value_t::number_float: return float_repr(v.get<double>());
    case Json::value_t::string: return v.get<std::string>();
    case Json::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + repr(v[i]);
      return out + "]";
    }
    case Json::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, x] : v.items()) {
        out += (first ? "" : ", ") + repr_string(k) + ": " + repr(x);
        first = false;
      }
      return out + "}";
    }
    default: return "";
  }
}

std::string str_or_empty(const Json* v) { return v ? str(*v) : std::string(); }

std::string upper(const Json* v) {
  std::string s = str_or_empty(v);
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  return s;
}

std::vector<std::pair<std::string, const Json*>> dictsort(const Json& d, const char* what) {
  if (!d.is_object()) throw Error(std::string("chat template: ") + what + " must be a JSON object");
  std::vector<std::pair<std::string, const Json*>> items;
  for (auto it = d.begin(); it != d.end(); ++it) items.emplace_back(it.key(), &it.value());
  auto lower = [](std::string s) {
    for (char& c : s)
      if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return s;
  };
  std::stable_sort(items.begin(), items.end(), [&](const auto& a, const auto& b) { return lower(a.first) < lower(b.first); });
  return items;
}

std::vector<Json> iterate(const Json& v, const char* what) {
  std::vector<Json> out;
  if (v.is_array()) {
    for (const Json& x : v) out.push_back(x);
  } else if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) out.emplace_back(it.key());
  } else if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    for (size_t i = 0; i < s.size();) {
      const int len = utf8::char_len(s, i);
      out.emplace_back(s.substr(i, size_t(len)));
      i += size_t(len);
    }
  } else {
    throw Error(std::string("chat template: ") + what + " is not iterable");
  }
  return out;
}

}  // namespace g4::py
