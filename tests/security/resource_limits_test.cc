// Resource limits: the memory estimate (weights + KV cache at --ctx-size + activations) and its refusal, a
// config with absurd dimensions refused before anything of its size is allocated, and a prompt longer
// than the context refused by every command that takes one (run, chat, logits, serve).
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "base/error.h"
#include "engine/memory_estimate.h"
#include "model/model.h"
#include "util/g4_server_process.h"
#include "util/temp_dir.h"
#include "util/run_g4.h"
#include "util/paths.h"

namespace g4 {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing_util::TempDir;
using testing_util::kTinyKjvModel;

using testing_util::G4Result;
using testing_util::run_g4;

std::string long_prompt() {
  std::string s;
  for (int i = 0; i < 40; ++i) s += "And God said, Let there be light: and there was light. ";
  return s;
}

TEST(MemoryEstimate, KvCacheFollowsTheConfigAndContext) {
  const ModelSpec s = load_model_config(kTinyKjvModel);
  // By hand from config.json: 5 sliding layers (window 128) and 1 full layer, K and V in f32.
  const json c = json::parse(std::ifstream(kTinyKjvModel + "/config.json"))["text_config"];
  const uint64_t d = c["head_dim"], hkv = c["num_key_value_heads"], gd = c["global_head_dim"];
  const uint64_t ghkv = c.value("num_global_key_value_heads", hkv);
  auto kv = [&](uint64_t ctx) { return 5 * 2 * std::min<uint64_t>(ctx, 128) * hkv * d * 4 + 2 * ctx * ghkv * gd * 4; };
  for (int64_t ctx : {16, 128, 4096, 1 << 20})
    EXPECT_EQ(estimate_memory(s, 1000, "", ctx, 512).kv_cache, kv(uint64_t(ctx))) << ctx;
  const MemoryEstimate e = estimate_memory_for(kTinyKjvModel, "", 4096, 512);
  std::ifstream f(kTinyKjvModel + "/model.safetensors", std::ios::binary);
  uint64_t header = 0;
  f.read(reinterpret_cast<char*>(&header), 8);
  EXPECT_EQ(e.weights, fs::file_size(kTinyKjvModel + "/model.safetensors") - 8 - header);  // the tensor bytes
  EXPECT_EQ(e.kv_cache, kv(4096));
  EXPECT_GT(e.activations, 0u);
}

TEST(MemoryEstimate, RefusesWithTheNumbersAndTheWayOut) {
  const MemoryEstimate e = estimate_memory_for(kTinyKjvModel, "", 4096, 512);
  EXPECT_NO_THROW(check_memory_fits(e, int64_t(e.total()), kTinyKjvModel, 4096));
  EXPECT_NO_THROW(check_memory_fits(e, -1, kTinyKjvModel, 4096));  // unknown: no check
  try {
    check_memory_fits(e, int64_t(e.total()) - 1, kTinyKjvModel, 4096);
    FAIL() << "no refusal";
  } catch (const Error& err) {
    const std::string m = err.what();
    EXPECT_NE(m.find("tiny-kjv: needs about"), std::string::npos) << m;
    EXPECT_NE(m.find("at --ctx-size 4096"), std::string::npos) << m;
    EXPECT_NE(m.find("--no-memory-check"), std::string::npos) << m;
  }
  EXPECT_GT(available_memory_bytes("cpu"), 0);
  EXPECT_EQ(available_memory_bytes("cuda"), -1);  // the hook for cudaMemGetInfo
}

// `g4 serve --parallel N` counts every slot's KV cache before loading: 256 slots of a 1M-token f32 context
// of the shipped model need about 140 GB (one slot: about 0.55 GB, which fits) and are refused at start
// with the numbers (this assumes a machine with less than 140 GB free, as CI's 24 GB).
TEST(MemoryEstimate, ServeCountsEverySlot) {
  const G4Result r = run_g4("serve -m " + kTinyKjvModel + " -c 1048576 -ctk f32 -ctv f32 --parallel 256 --port 0");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("needs about"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("KV cache"), std::string::npos) << r.err;
}

// A copy of the shipped model whose config claims a 16M vocabulary and 128K hidden size.
std::string absurd_model(const TempDir& d) {
  json cfg = json::parse(std::ifstream(kTinyKjvModel + "/config.json"));
  cfg["text_config"]["vocab_size"] = (1 << 24) - 1;
  cfg["text_config"]["hidden_size"] = 1 << 17;
  cfg["text_config"]["intermediate_size"] = 1 << 20;
  std::ofstream(d.file("config.json")) << cfg.dump();
  for (const char* f : {"model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    fs::copy_file(kTinyKjvModel + "/" + f, d.file(f));
  return d.path();
}

TEST(AbsurdConfig, RefusedBeforeAllocating) {
  TempDir d;
  const std::string dir = absurd_model(d);
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  auto be = make_backend("cpu");
  try {
    Model::load(dir, *be);
    FAIL() << "loaded";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("embed_tokens.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("[16777215, 131072]"), std::string::npos) << m;
  }
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 256 * 1024) << "peak RSS grew by " << after.ru_maxrss - before.ru_maxrss
                                                            << " KiB";
  // The CLI's memory estimate refuses it first (the activations of one chunk alone are ~34 GiB per 512 tokens).
  const G4Result r = run_g4("run -m " + dir + " -c 1048576 -b 65536 -p hi -n 1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("needs about"), std::string::npos) << r.err;
  // With the check off, the weights' shapes refuse it.
  const G4Result r2 = run_g4("run -m " + dir + " --no-memory-check -p hi -n 1");
  EXPECT_NE(r2.status, 0);
  EXPECT_NE(r2.err.find("embed_tokens.weight"), std::string::npos) << r2.err;
}

TEST(PromptLongerThanContext, RunRefuses) {
  const G4Result r = run_g4("run -m " + kTinyKjvModel + " -c 16 -n 4 -p '" + long_prompt() + "'");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("context size is 16"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(PromptLongerThanContext, ChatRefusesTheTurnAndExitsCleanly) {
  const G4Result r = run_g4("chat -m " + kTinyKjvModel + " -c 16 -n 4 -q", long_prompt() + "\n");
  EXPECT_GE(r.status, 0) << r.err;  // not killed by a signal
  EXPECT_NE(r.err.find("context size is 16"), std::string::npos) << r.err;
}

TEST(PromptLongerThanContext, LogitsRefuses) {
  TempDir d;
  const G4Result r = run_g4("logits -m " + kTinyKjvModel + " --tokens 2,10,11,12,13,14 --ctx-size 4 --out " + d.file("l.safetensors"));
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("context overflow"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("context size of 4"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_FALSE(fs::exists(d.file("l.safetensors")));
}

TEST(PromptLongerThanContext, ServeAnswers400AndStaysUp) {
  testing_util::G4ServerProcess server({"-m", kTinyKjvModel, "-c", "16", "-n", "4"});
  ASSERT_GT(server.port(), 0) << server.log();
  httplib::Client c("127.0.0.1", server.port());
  const json body = {{"messages", json::array({{{"role", "user"}, {"content", long_prompt()}}})}};
  auto res = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_NE(res->body.find("does not fit the context of 16"), std::string::npos) << res->body;
  res = c.Post("/v1/completions", json{{"prompt", long_prompt()}, {"stream", true}}.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  res = c.Post("/v1/completions", json{{"prompt", "In"}, {"max_tokens", 2}}.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
}

}  // namespace
}  // namespace g4
