// Paths of the shipped model and of test data that several test files use (G4_TEST_DATA, the tests/data
// folder, is compiled in by tests/CMakeLists.txt).
#pragma once

#include <string>

namespace g4::testing_util {

// The shipped model (models/tiny-kjv).
inline const std::string kTinyKjvModel = std::string(G4_TEST_DATA) + "/../../models/tiny-kjv";
// The GGUF files llama.cpp's converter wrote for it (tests/data/gguf-llamacpp).
inline const std::string kLlamacppGgufDir = std::string(G4_TEST_DATA) + "/gguf-llamacpp";
inline const std::string kKjvQ8Gguf = kLlamacppGgufDir + "/kjv-q8_0.gguf";

}  // namespace g4::testing_util
