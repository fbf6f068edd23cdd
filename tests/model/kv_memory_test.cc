// KV cache memory of the real 31B geometry (tests/data/configs/gemma-4-31b: 60 layers, 50 sliding with
// window 1024, 16 KV heads of 256; 10 full with 4 KV heads of 512, K=V) at its full 262,144-token context,
// computed by hand and checked against kv_cache_bytes and `g4 inspect --json` on a directory holding only
// config.json.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "engine/kv_options.h"
#include "model/kv_cache.h"
#include "util/run_g4.h"

namespace g4 {
namespace {

const std::string kDir = std::string(G4_TEST_DATA) + "/configs/gemma-4-31b";
constexpr int64_t kCtx = 262144;

int64_t by_hand(int64_t elem_bytes, bool int8, bool derive, int64_t slack) {
  auto row = [&](int64_t heads, int64_t dim) { return heads * dim * elem_bytes + (int8 ? 4 * heads : 0); };
  const int64_t full = 10 * kCtx * (derive ? 1 : 2) * row(4, 512);
  const int64_t sliding = 50 * (1024 + slack) * 2 * row(16, 256);
  return full + sliding;
}

TEST(KvMemory, ThirtyOneBAtFullContext) {
  const ModelSpec s = load_model_config(kDir);
  KvCacheOptions o = kv_options_for("cpu", kCtx, 1);  // bf16, K=V layers store V only
  EXPECT_EQ(kv_cache_bytes(s, o), by_hand(2, false, true, o.slack));
  EXPECT_LE(kv_cache_bytes(s, o), int64_t(12e9));
  o = kv_options_for("cpu", kCtx, 1, KvFlags{"q8_0", "q8_0"});
  EXPECT_EQ(kv_cache_bytes(s, o), by_hand(1, true, true, o.slack));
  EXPECT_LE(kv_cache_bytes(s, o), int64_t(6.5e9));
  // cuda stores keys unless asked (--kv-keys derived); any backend can be told either way.
  o = kv_options_for("cuda", kCtx, 1, KvFlags{"auto", "auto", "stored"});
  EXPECT_EQ(kv_cache_bytes(s, o), by_hand(2, false, false, o.slack));
  o = kv_options_for("cuda", kCtx, 1, KvFlags{"auto", "auto", "derived"});
  EXPECT_EQ(kv_cache_bytes(s, o), by_hand(2, false, true, o.slack));
  EXPECT_LE(kv_cache_bytes(s, o), int64_t(12e9));
  o = kv_options_for("cpu", kCtx, 1, KvFlags{"auto", "auto", "stored"});
  EXPECT_FALSE(o.derive_k);
  EXPECT_THROW(kv_options_for("cpu", kCtx, 1, KvFlags{"auto", "auto", "sometimes"}), Error);
  o = kv_options_for("ref", kCtx, 1);  // the oracle's f32 with stored keys: about 45 GB
  o.slack = 0;
  EXPECT_EQ(kv_cache_bytes(s, o), by_hand(4, false, false, 0));
  o.n_seq = 3;
  EXPECT_EQ(kv_cache_bytes(s, o), 3 * by_hand(4, false, false, 0));
}

TEST(KvMemory, InspectPlansFromConfigAlone) {
  const std::string inspect = "inspect -m " + kDir + " -c 262144 --backend cpu --json";
  auto r = testing_util::run_g4(inspect);
  ASSERT_EQ(r.status, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["weights_bytes"].is_null());
  const KvCacheOptions o = kv_options_for("cpu", kCtx, 1);
  EXPECT_EQ(j["kv_cache_bytes"].get<int64_t>(), by_hand(2, false, true, o.slack));
  ASSERT_EQ(j["kv_cache"]["layers"].size(), 60u);
  EXPECT_EQ(j["kv_cache"]["layers"][5]["kind"], "full");
  EXPECT_EQ(j["kv_cache"]["layers"][5]["keys_derived"], true);
  EXPECT_EQ(j["kv_cache"]["layers"][0]["slots"], 1024 + o.slack);

  r = testing_util::run_g4(inspect + " --cache-type-k q8_0 --cache-type-v q8_0 --parallel 2");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["kv_cache_bytes"].get<int64_t>(), 2 * by_hand(1, true, true, o.slack));

  r = testing_util::run_g4(inspect + " --kv-keys stored");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["kv_cache_bytes"].get<int64_t>(), by_hand(2, false, false, o.slack));
  EXPECT_EQ(nlohmann::json::parse(r.out)["kv_cache"]["layers"][5]["keys_derived"], false);
  r = testing_util::run_g4(inspect + " --kv-keys sometimes");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.rfind("g4: error: --kv-keys", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.out, "");

  r = testing_util::run_g4(inspect + " --cache-type-k q4");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.rfind("g4: error: --cache-type-k: unknown KV cache type 'q4'", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.out, "");

  // Plain text works without weights too.
  r = testing_util::run_g4("inspect -m " + kDir + " -c 8192");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("config only"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("KV cache"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace g4
