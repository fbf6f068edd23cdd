// GGUF reader: every metadata type and tensor geometry round-trips, and every hostile file (truncated
// at any byte, absurd counts, offsets past the end, overlapping tensors, overflowing dimensions, nested
// arrays, ...) gives one g4::Error naming the file, never a crash, hang or huge allocation.
#include <gtest/gtest.h>

#include "base/error.h"
#include "io/gguf.h"
#include "util/gguf_builder.h"
#include "util/temp_dir.h"

namespace g4 {
namespace {

using test::GgufBuilder;
using testing_util::TempDir;

std::string error_of(const std::string& path) {
  try {
    GgufFile f(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::string error_of_bytes(const TempDir& d, const std::vector<uint8_t>& b) {
  GgufBuilder::write(d.file("x.gguf"), b);
  return error_of(d.file("x.gguf"));
}

// A small valid file with a bit of everything.
GgufBuilder sample() {
  GgufBuilder b;
  b.kv_str("general.architecture", "gemma4");
  b.kv_u32("a.u32", 7);
  b.kv_i32("a.i32", -5);
  b.kv_u64("a.u64", uint64_t(1) << 40);
  b.kv_i64("a.i64", -(int64_t(1) << 40));
  b.kv_u8("a.u8", 200);
  b.kv_i8("a.i8", -100);
  b.kv_u16("a.u16", 60000);
  b.kv_i16("a.i16", -30000);
  b.kv_f32("a.f32", 1.5f);
  b.kv_f64("a.f64", -2.25);
  b.kv_bool("a.bool", true);
  b.kv_arr_i32("a.ints", {1, -2, 3});
  b.kv_arr_f32("a.floats", {0.5f, 2.0f});
  b.kv_arr_bool("a.bools", {true, false, true});
  b.kv_arr_str("a.strs", {"x", "", "hello"});
  b.tensor_of<float>("t.f32", 0, {3, 2}, {1, 2, 3, 4, 5, 6});
  std::vector<uint8_t> q8(34 * 2, 0);  // Q8_0 [2 rows, 32]
  b.tensor("t.q8", 8, {32, 2}, q8);
  return b;
}

TEST(GgufReader, ReadsEveryMetadataTypeAndTensors) {
  TempDir d;
  GgufBuilder::write(d.file("ok.gguf"), sample().bytes());
  GgufFile f(d.file("ok.gguf"));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_string("general.architecture"), "gemma4");
  EXPECT_EQ(f.get_int("a.u32", 0, 100), 7);
  EXPECT_EQ(f.get_int("a.i32", -10, 10), -5);
  EXPECT_EQ(f.get_int("a.u64", 0, INT64_MAX), int64_t(1) << 40);
  EXPECT_EQ(f.get_int("a.i64", INT64_MIN, 0), -(int64_t(1) << 40));
  EXPECT_EQ(f.get_int("a.u8", 0, 255), 200);
  EXPECT_EQ(f.get_int("a.i8", -128, 127), -100);
  EXPECT_EQ(f.get_int("a.u16", 0, 65535), 60000);
  EXPECT_EQ(f.get_int("a.i16", -32768, 0), -30000);
  EXPECT_EQ(f.get_float("a.f32"), 1.5);
  EXPECT_EQ(f.get_float("a.f64"), -2.25);
  EXPECT_TRUE(f.get_bool("a.bool"));
  EXPECT_EQ(f.get_int_array("a.ints", -10, 10), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(f.get_float_array("a.floats"), (std::vector<double>{0.5, 2.0}));
  EXPECT_EQ(f.get_bool_array("a.bools"), (std::vector<bool>{true, false, true}));
  const auto& s = f.get_string_array("a.strs");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0], "x");
  EXPECT_EQ(s[1], "");
  EXPECT_EQ(s[2], "hello");

  ASSERT_EQ(f.tensors().size(), 2u);
  const GgufTensor* t = f.find_tensor("t.f32");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t->nbytes, 24u);
  EXPECT_EQ(reinterpret_cast<const float*>(t->data)[5], 6.0f);
  EXPECT_EQ((t->data - (f.tensors()[0].data - f.tensors()[0].offset)) % 32, 0);
  const GgufTensor* q = f.find_tensor("t.q8");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->nbytes, 68u);
  EXPECT_EQ(q->offset % 32, 0u);
  EXPECT_EQ(f.data_offset() % 32, 0u);
}

TEST(GgufReader, TypedAccessorsRejectWrongTypesAndRanges) {
  TempDir d;
  GgufBuilder::write(d.file("ok.gguf"), sample().bytes());
  GgufFile f(d.file("ok.gguf"));
  auto err = [&](auto fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(err([&] { f.get_int("a.u32", 0, 5); }).find("outside [0, 5]"), std::string::npos);
  EXPECT_NE(err([&] { f.get_int("a.i32", 0, 5); }).find("a.i32"), std::string::npos);
  EXPECT_NE(err([&] { f.get_int("a.f32", 0, 5); }).find("expected an integer"), std::string::npos);
  EXPECT_NE(err([&] { f.get_string("a.u32"); }).find("expected a string"), std::string::npos);
  EXPECT_NE(err([&] { f.get_bool_array("a.ints"); }).find("array of i32"), std::string::npos);
  EXPECT_NE(err([&] { f.get_int("missing.key", 0, 1); }).find("'missing.key' is missing"), std::string::npos);
  EXPECT_NE(err([&] { f.get_int_array("a.ints", 0, 10); }).find("-2"), std::string::npos);
}

TEST(GgufReader, CustomAlignmentIsHonoured) {
  TempDir d;
  GgufBuilder b;
  b.set_alignment(64);
  b.tensor_of<float>("a", 0, {3}, {1, 2, 3});
  b.tensor_of<float>("b", 0, {5}, {1, 2, 3, 4, 5});
  GgufBuilder::write(d.file("a.gguf"), b.bytes());
  GgufFile f(d.file("a.gguf"));
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.find_tensor("b")->offset, 64u);
  EXPECT_EQ(reinterpret_cast<const float*>(f.find_tensor("b")->data)[4], 5.0f);
}

TEST(GgufReader, EveryTruncationIsAnError) {
  TempDir d;
  const std::vector<uint8_t> full = sample().bytes();
  // The last tensor's padding is not part of any tensor; cut only up to the end of its data.
  size_t data_end = full.size();
  {
    GgufBuilder::write(d.file("full.gguf"), full);
    GgufFile f(d.file("full.gguf"));
    data_end = 0;
    for (const auto& t : f.tensors()) data_end = std::max(data_end, size_t(f.data_offset() + t.offset + t.nbytes));
  }
  for (size_t n = 0; n < data_end; ++n) {
    const std::vector<uint8_t> cut(full.begin(), full.begin() + std::ptrdiff_t(n));
    const std::string e = error_of_bytes(d, cut);
    ASSERT_NE(e, "no error") << "truncated at " << n;
    ASSERT_NE(e.find(d.file("x.gguf")), std::string::npos) << e;
  }
}

// Offsets of fields in a builder's output, for surgical corruption.
constexpr size_t kTensorCountAt = 8, kKvCountAt = 16;
void put_u64(std::vector<uint8_t>& b, size_t at, uint64_t v) { std::memcpy(&b[at], &v, 8); }
void put_u32(std::vector<uint8_t>& b, size_t at, uint32_t v) { std::memcpy(&b[at], &v, 4); }

TEST(GgufReader, HeaderAttacks) {
  TempDir d;
  std::vector<uint8_t> b = sample().bytes();
  auto with = [&](auto edit) {
    std::vector<uint8_t> c = b;
    edit(c);
    return error_of_bytes(d, c);
  };
  EXPECT_NE(with([](auto& c) { c[0] = 'X'; }).find("bad magic"), std::string::npos);
  EXPECT_NE(with([](auto& c) { put_u32(c, 4, 1); }).find("version 1"), std::string::npos);
  EXPECT_NE(with([](auto& c) { put_u32(c, 4, 0x03000000); }).find("version"), std::string::npos);  // big-endian
  EXPECT_NE(with([](auto& c) { put_u64(c, kKvCountAt, uint64_t(1) << 62); }).find("metadata count"), std::string::npos);
  EXPECT_NE(with([](auto& c) { put_u64(c, kKvCountAt, UINT64_MAX); }).find("metadata count"), std::string::npos);
  EXPECT_NE(with([](auto& c) { put_u64(c, kTensorCountAt, uint64_t(1) << 61); }).find("count"), std::string::npos);
  // First key's length (at 24) absurd.
  EXPECT_NE(with([](auto& c) { put_u64(c, 24, UINT64_MAX); }).find("truncated"), std::string::npos);
  // First value's type (after 8 + len("general.architecture") bytes) unknown.
  EXPECT_NE(with([](auto& c) { put_u32(c, 24 + 8 + 20, 13); }).find("unknown type 13"), std::string::npos);
}

TEST(GgufReader, MetadataAttacks) {
  TempDir d;
  auto one = [&](auto fill) {
    GgufBuilder b;
    fill(b);
    return error_of_bytes(d, b.bytes());
  };
  // Nested array: type 9 with element type 9.
  std::string e = one([](GgufBuilder& b) { b.kv_arr_u32("x", {}); });
  EXPECT_EQ(e, "no error");
  {
    GgufBuilder b;
    b.kv_arr_u32("x", {1, 2});
    std::vector<uint8_t> c = b.bytes();
    put_u32(c, 24 + 8 + 1 + 4, 9);  // element type of the array
    EXPECT_NE(error_of_bytes(d, c).find("nested array"), std::string::npos);
    c = b.bytes();
    put_u32(c, 24 + 8 + 1 + 4, 77);
    EXPECT_NE(error_of_bytes(d, c).find("unknown array element type"), std::string::npos);
    c = b.bytes();
    put_u64(c, 24 + 8 + 1 + 4 + 4, uint64_t(1) << 62);  // count * 4 overflows
    EXPECT_NE(error_of_bytes(d, c).find("'x'"), std::string::npos);
    c = b.bytes();
    put_u64(c, 24 + 8 + 1 + 4 + 4, 100);  // more elements than the file (with its padding) has
    EXPECT_NE(error_of_bytes(d, c).find("truncated"), std::string::npos);
  }
  {
    GgufBuilder b;
    b.kv_arr_str("s", {"a", "b"});
    std::vector<uint8_t> c = b.bytes();
    put_u64(c, 24 + 8 + 1 + 4 + 4, uint64_t(1) << 60);  // 2^60 strings: refused before reserving
    EXPECT_NE(error_of_bytes(d, c).find("more than the file holds"), std::string::npos);
  }
  {
    GgufBuilder b;
    b.kv_bool("flag", true);
    std::vector<uint8_t> c = b.bytes();
    c[24 + 8 + 4 + 4] = 2;
    EXPECT_NE(error_of_bytes(d, c).find("0 or 1"), std::string::npos);
  }
  e = one([](GgufBuilder& b) { b.kv_u32("k", 1); b.kv_u32("k", 2); });
  EXPECT_NE(e.find("'k' appears twice"), std::string::npos);
  e = one([](GgufBuilder& b) { b.kv_u32("", 1); });
  EXPECT_NE(e.find("empty key"), std::string::npos);
  e = one([](GgufBuilder& b) { b.kv_u32("general.alignment", 48); });
  EXPECT_NE(e.find("power of two"), std::string::npos);
  e = one([](GgufBuilder& b) { b.kv_u32("general.alignment", 0); });
  EXPECT_NE(e.find("power of two"), std::string::npos);
  e = one([](GgufBuilder& b) { b.kv_u64("general.alignment", 32); });
  EXPECT_NE(e.find("must be a u32"), std::string::npos);
}

TEST(GgufReader, TensorAttacks) {
  TempDir d;
  auto one = [&](auto fill) {
    GgufBuilder b;
    fill(b);
    return error_of_bytes(d, b.bytes());
  };
  const std::vector<uint8_t> f32x4(16, 0);
  std::string e = one([&](GgufBuilder& b) { b.tensor("a", 0, {4}, f32x4); b.tensor("a", 0, {4}, f32x4); });
  EXPECT_NE(e.find("'a' appears twice"), std::string::npos);
  e = one([&](GgufBuilder& b) { b.tensor("a", 99, {4}, f32x4); });
  EXPECT_NE(e.find("unknown ggml type 99"), std::string::npos);
  e = one([&](GgufBuilder& b) { b.tensor("a", 0, {}, f32x4); });
  EXPECT_NE(e.find("0 dimensions"), std::string::npos);
  e = one([&](GgufBuilder& b) { b.tensor("a", 0, {1, 1, 1, 1, 4}, f32x4); });
  EXPECT_NE(e.find("5 dimensions"), std::string::npos);
  e = one([&](GgufBuilder& b) { b.tensor("a", 8, {31}, std::vector<uint8_t>(34)); });
  EXPECT_NE(e.find("not a multiple of the Q8_0 block size 32"), std::string::npos);
  // Dimensions whose product overflows 64 bits, or whose byte size does.
  e = one([&](GgufBuilder& b) { b.tensor("a", 0, {uint64_t(1) << 32, uint64_t(1) << 32}, f32x4); });
  EXPECT_NE(e.find("'a'"), std::string::npos);
  e = one([&](GgufBuilder& b) { b.tensor("a", 0, {uint64_t(1) << 62, 1}, f32x4); });
  EXPECT_NE(e.find("'a'"), std::string::npos);
  e = one([&](GgufBuilder& b) { b.tensor("a", 0, {UINT64_MAX}, f32x4); });
  EXPECT_NE(e.find("negative dimension"), std::string::npos);
  // Claims more data than the file has.
  e = one([&](GgufBuilder& b) { b.tensor("a", 0, {1000}, f32x4); });
  EXPECT_NE(e.find("extends past the end"), std::string::npos);

  // Offsets: past the end, unaligned, overlapping.
  GgufBuilder b;
  b.tensor("a", 0, {4}, f32x4);
  b.tensor("bb", 0, {4}, f32x4);
  const std::vector<uint8_t> good = b.bytes();
  ASSERT_EQ(error_of_bytes(d, good), "no error");
  // Layout: header 24, then infos: name(8+1) nd(4) ne(8) type(4) off(8) = 33 for "a".
  const size_t off_a = 24 + 8 + 1 + 4 + 8 + 4;
  const size_t off_b = 24 + 33 + 8 + 2 + 4 + 8 + 4;
  std::vector<uint8_t> c = good;
  put_u64(c, off_b, uint64_t(1) << 40);
  EXPECT_NE(error_of_bytes(d, c).find("extends past the end"), std::string::npos);
  c = good;
  put_u64(c, off_b, UINT64_MAX - 31);  // aligned, and offset + size overflows
  EXPECT_NE(error_of_bytes(d, c).find("extends past the end"), std::string::npos);
  c = good;
  put_u64(c, off_b, 4);
  EXPECT_NE(error_of_bytes(d, c).find("alignment"), std::string::npos);
  c = good;
  put_u64(c, off_b, 0);
  EXPECT_NE(error_of_bytes(d, c).find("overlap"), std::string::npos);
  c = good;
  put_u64(c, off_a, 32);
  put_u64(c, off_b, 32);
  EXPECT_NE(error_of_bytes(d, c).find("overlap"), std::string::npos);
}

TEST(GgufReader, VersionTwoAndEmptyFiles) {
  TempDir d;
  GgufBuilder b(2);
  b.kv_u32("x", 1);
  GgufBuilder::write(d.file("v2.gguf"), b.bytes());
  EXPECT_EQ(GgufFile(d.file("v2.gguf")).version(), 2u);
  EXPECT_NE(error_of_bytes(d, {}).find("truncated"), std::string::npos);
  EXPECT_NE(error_of(d.file("nope.gguf")).find("nope.gguf"), std::string::npos);
  EXPECT_TRUE(is_gguf_file(d.file("v2.gguf")));
  EXPECT_FALSE(is_gguf_file(d.file("nope.gguf")));
}

}  // namespace
}  // namespace g4
