// Sizes g4 quantize and g4 inspect report, to the byte: the tied embedding that quantize stores a second
// time as lm_head is read once (its "before" size is the source's tensor bytes), and inspect counts the
// model's parameters once while its bytes are what the file stores.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "io/safetensors.h"
#include "util/run_g4.h"
#include "util/temp_dir.h"
#include "util/paths.h"

namespace g4 {
namespace {

using testing_util::run_g4;
using testing_util::kTinyKjvModel;

uint64_t tensor_bytes(const std::string& path) {
  SafetensorsFile f(path);
  uint64_t n = 0;
  for (const auto& [name, t] : f.tensors()) n += t.nbytes;
  return n;
}

TEST(Sizes, QuantizeAndInspectCountTheTiedEmbeddingOnce) {
  testing_util::TempDir d;
  const std::string out = d.file("q");
  const auto q = run_g4("quantize -m " + kTinyKjvModel + " -o " + out);
  ASSERT_EQ(q.status, 0) << q.err;
  const uint64_t in = tensor_bytes(kTinyKjvModel + "/model.safetensors");
  EXPECT_EQ(in, 7040140u);
  const uint64_t file = std::filesystem::file_size(out + "/model.safetensors");
  EXPECT_NE(q.err.find("(" + std::to_string(in) + " bytes) -> "), std::string::npos) << q.err;
  EXPECT_NE(q.err.find("(" + std::to_string(file) + " bytes)"), std::string::npos) << q.err;

  // The source: 3,520,070 parameters in 7,040,140 bytes of bf16.
  const auto a = run_g4("inspect -m " + kTinyKjvModel);
  EXPECT_NE(a.out.find("total      3520070 parameters, 7.04 MB = 7040140 bytes (16.00 bits per parameter)"),
            std::string::npos) << a.out;
  // The quantized copy stores lm_head apart (int4) from embed_tokens (int8): the same 3,520,070
  // parameters, and every stored tensor byte.
  const auto b = run_g4("inspect -m " + out);
  ASSERT_EQ(b.status, 0) << b.err;
  const std::string bytes = std::to_string(tensor_bytes(out + "/model.safetensors"));
  EXPECT_TRUE(std::regex_search(b.out, std::regex("total      3520070 parameters, [0-9.]+ MB = " + bytes + " bytes")))
      << b.out;
  EXPECT_NE(b.out.find("lm_head.weight stores the tied embedding a second time (786432 parameters"), std::string::npos)
      << b.out;
}

}  // namespace
}  // namespace g4
