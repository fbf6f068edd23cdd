// safetensors reader and writer: round trip, and every malformed header a hostile file can carry
// gives a g4::Error naming the file and tensor, never a crash or an out-of-bounds read.
#include <gtest/gtest.h>

#include "base/error.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "util/temp_dir.h"

namespace g4 {
namespace {

using testing_util::safetensors_bytes;
using testing_util::TempDir;

std::string error_of(const std::string& path) {
  try {
    SafetensorsFile f(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Safetensors, WriteReadRoundTrip) {
  TempDir d;
  const float a[6] = {1, 2, 3, 4, 5, 6};
  const int32_t b[3] = {7, -8, 9};
  write_safetensors(d.file("x.safetensors"), {{"a", DType::kF32, {2, 3}, a}, {"b", DType::kI32, {3}, b}},
                    {{"format", "pt"}});
  SafetensorsFile f(d.file("x.safetensors"));
  ASSERT_EQ(f.tensors().size(), 2u);
  const TensorInfo* ta = f.find("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ta->dtype, DType::kF32);
  EXPECT_EQ(std::memcmp(ta->data, a, sizeof a), 0);
  EXPECT_EQ(std::memcmp(f.find("b")->data, b, sizeof b), 0);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(ta->data) % 8, 0u);  // data section aligned
}

TEST(Safetensors, MaliciousHeaders) {
  TempDir d;
  struct Case { const char* what; std::string bytes; const char* expect; };
  const std::string ok_data(16, '\0');
  const Case cases[] = {
      {"short", "abc", "shorter than its 8-byte header"},
      {"huge header", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8), "exceeds the 100 MB limit"},
      {"header past end", std::string("\x40\x00\x00\x00\x00\x00\x00\x00{}", 10), "runs past the end"},
      {"bad json", safetensors_bytes("{\"a\": [", ""), "not valid JSON"},
      {"not object", safetensors_bytes("[1]", ""), "not a JSON object"},
      {"bad dtype", safetensors_bytes(R"({"t":{"dtype":"Q9","shape":[1],"data_offsets":[0,4]}})", ok_data),
       "unsupported dtype Q9"},
      {"negative dim", safetensors_bytes(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", ok_data),
       "not a non-negative integer"},
      {"overflow", safetensors_bytes(R"({"t":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}})", ok_data),
       "overflows"},
      {"past end", safetensors_bytes(R"({"t":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})", ok_data),
       "past the end of the data section"},
      {"size mismatch", safetensors_bytes(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", ok_data),
       "need 8"},
      {"reversed", safetensors_bytes(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", ok_data),
       "begin after end"},
      {"overlap", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", ok_data),
       "overlap"},
      {"no offsets", safetensors_bytes(R"({"t":{"dtype":"F32","shape":[1]}})", ok_data), "data_offsets"},
      {"metadata not string", safetensors_bytes(R"({"__metadata__":{"k":1}})", ""), "not a string"},
  };
  for (const Case& c : cases) {
    d.write("bad.safetensors", c.bytes);
    const std::string msg = error_of(d.file("bad.safetensors"));
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.what << ": " << msg;
    EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << c.what << ": " << msg;
  }
  EXPECT_NE(error_of(d.file("missing.safetensors")).find("cannot open"), std::string::npos);
  EXPECT_NE(error_of(d.path()).find("not a regular file"), std::string::npos);
}

TEST(Safetensors, EveryTruncationOfAValidFileIsRejectedCleanly) {
  TempDir d;
  const float a[4] = {1, 2, 3, 4};
  write_safetensors(d.file("ok.safetensors"), {{"a", DType::kF32, {4}, a}});
  std::ifstream in(d.file("ok.safetensors"), std::ios::binary);
  const std::string full((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t n = 0; n < full.size(); ++n) {
    d.write("t.safetensors", full.substr(0, n));
    EXPECT_NE(error_of(d.file("t.safetensors")), "no error") << "truncated to " << n;
  }
}

}  // namespace
}  // namespace g4
