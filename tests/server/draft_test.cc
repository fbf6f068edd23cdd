// Speculative decoding in the server (server/scheduler.h, ServerOptions::draft) on the shipped model with
// its real tokenizer: greedy replies with n-gram drafts and with the shipped assistant drafter are the
// plain server's, token for token - alone, with several requests at once (each its solo answer), over a
// long answer that wraps the sliding layers' ring (window 128 + slack 4) with drafts rolled back at its
// edge; stop strings and max_tokens end replies exactly where plain ones end; logprobs and a json_schema
// constraint apply to drafted tokens as to plain ones; usage and /metrics report drafted and accepted
// tokens (streamed replies too). The monitor is off (adaptive = false) so that every proposal is verified: on ref it would keep
// drafting off (a verify of k + 1 tokens costs k + 1 steps there).
#include <gtest/gtest.h>

#include <future>
#include <map>

#include "engine/assistant_drafter.h"
#include "engine/model_bundle.h"
#include "server/gemma_codec.h"
#include "server_fixture.h"

namespace g4 {
namespace {

const std::string kModels = std::string(G4_TEST_DATA) + "/../../models";

// kOracle: drafts the target's own greedy continuation (a Conversation on the same model), so every draft
// is accepted and every stop lands inside an accepted run unless it falls on the row after the draft.
enum class Draft { kNone, kNgram, kAssistant, kOracle };

struct DraftServer {
  ModelBundle b;
  GemmaCodec codec{b};
  std::unique_ptr<HttpServer> server;
  std::thread thread;
  int port = 0;
  DraftServer(Draft d, int slots, const std::string& backend = "ref")
      : b(ModelBundle::load(kModels + "/tiny-kjv", backend, LoadOptions{}, 1)) {  // one thread: steady on a busy machine
    ServerOptions o;
    o.port = 0;
    o.quiet = true;
    o.cache.n_seq = slots;
    o.cache.slack = 4;  // the ring wraps within the long answers; drafts of 4 + 1 roll back at its edge
    if (d == Draft::kNgram) o.draft.drafter = std::make_shared<NgramDrafter>();
    if (d == Draft::kAssistant) o.draft.drafter = AssistantDrafter::load(kModels + "/tiny-kjv-assistant", *b.model, LoadOptions{});
    if (d == Draft::kOracle) {
      auto conv = std::make_shared<Conversation>(*b.model, KvCacheOptions{});
      o.draft.drafter = std::make_shared<FunctionDrafter>([conv](const std::vector<int32_t>& context, int n) {
        GenerateOptions go;
        go.max_new_tokens = n;
        return conv->generate(context, go, nullptr).tokens;
      });
    }
    o.draft.max = d == Draft::kNgram ? 6 : 3;  // n-gram: above the slack + 1, capped to it (5)
    o.draft.adaptive = false;
    server = std::make_unique<HttpServer>(*b.model, codec, 1024, o);
    port = server->bind();
    thread = std::thread([this] { server->serve(); });
  }
  ~DraftServer() {
    server->stop();
    thread.join();
  }
  json post(const json& body, const std::string& path = "/v1/completions") const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    auto r = c.Post(path, body.dump(), "application/json");
    if (!r) return json{{"transport_error", true}};
    json j = json::parse(r->body);
    if (r->status != 200) j["status"] = r->status;
    return j;
  }
  httplib::Client client() const {  // for stream_chat (server_fixture.h)
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    return c;
  }
  double metric(const std::string& name) const {
    httplib::Client c("127.0.0.1", port);
    auto r = c.Get("/metrics");
    const std::string key = "\ng4_" + name + " ";
    const size_t at = r ? r->body.find(key) : std::string::npos;
    return at == std::string::npos ? -1 : std::stod(r->body.substr(at + key.size()));
  }
};

const char* kVerses[] = {
    "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness "
    "was upon the face of the deep. And God said, Let there be light: and there was light. And God said,",
    "And Adam knew Eve his wife; and she conceived, and bare Cain, and said, I have gotten a man from the LORD. "
    "And she again bare his brother Abel. And Abel was a keeper of sheep, but Cain was",
    "These are the generations of the sons of Noah, Shem, Ham, and Japheth: and unto them were sons born after the "
    "flood. The sons of Japheth; Gomer, and Magog, and Madai, and Javan, and Tubal, and Meshech, and Tiras. And the sons of",
};

json completion(const std::string& prompt, int max_tokens) {
  return {{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}, {"ignore_eos", true}};
}

// What a reply must share with the plain one: text, token count, finish reason.
std::string essence(json r) {
  if (!r.contains("choices")) return "<error " + r.dump() + ">";
  return r["choices"][0]["text"].get<std::string>() + " | " + std::to_string(r["usage"]["completion_tokens"].get<int>()) +
         " tokens | " + r["choices"][0]["finish_reason"].get<std::string>();
}

struct Counts {
  int64_t accepted = 0, rejected = 0;
  void add(json r) {  // a copy: operator[] on a const json with a missing key is undefined
    ASSERT_TRUE(r["usage"].contains("completion_tokens_details")) << r["usage"];
    accepted += r["usage"]["completion_tokens_details"]["accepted_prediction_tokens"].get<int64_t>();
    rejected += r["usage"]["completion_tokens_details"]["rejected_prediction_tokens"].get<int64_t>();
  }
};

// The plain server's replies, computed once per test binary (each request alone on one slot).
const std::vector<std::string>& plain_replies(int max_tokens, const std::string& backend, size_t verses) {
  static std::map<std::pair<int, std::string>, std::vector<std::string>> cache;
  std::vector<std::string>& v = cache[{max_tokens, backend}];
  if (v.size() < verses) {
    v.clear();
    DraftServer plain(Draft::kNone, 1, backend);
    for (size_t i = 0; i < verses; ++i) {
      json r = plain.post(completion(kVerses[i], max_tokens));
      EXPECT_FALSE(r["usage"].contains("completion_tokens_details")) << "plain decoding reports no drafts";
      v.push_back(essence(r));
    }
  }
  return v;
}

// Each verse alone (solo), then all at once on three slots: every reply is the plain one.
void expect_plain_replies(Draft d, int max_tokens, const std::string& backend, bool solo, size_t verses = 3) {
  const std::vector<std::string>& want = plain_replies(max_tokens, backend, verses);
  Counts n;
  if (solo) {
    DraftServer s(d, 1, backend);
    for (size_t i = 0; i < verses; ++i) {
      json r = s.post(completion(kVerses[i], max_tokens));
      EXPECT_EQ(essence(r), want[i]) << "verse " << i << " alone";
      n.add(r);
    }
    EXPECT_EQ(s.metric("draft_accepted_tokens_total"), double(n.accepted));
    EXPECT_EQ(s.metric("draft_tokens_total"), double(n.accepted + n.rejected));
  }
  DraftServer s(d, 3, backend);
  std::vector<std::future<json>> replies;
  for (size_t i = 0; i < verses; ++i)
    replies.push_back(std::async(std::launch::async, [&s, p = kVerses[i], max_tokens] { return s.post(completion(p, max_tokens)); }));
  for (size_t i = 0; i < replies.size(); ++i) {
    json r = replies[i].get();
    EXPECT_EQ(essence(r), want[i]) << "verse " << i << " with the others";
    n.add(r);
  }
  std::printf("%s, %d tokens: accepted %lld, rejected %lld\n", d == Draft::kNgram ? "ngram" : "assistant", max_tokens,
              static_cast<long long>(n.accepted), static_cast<long long>(n.rejected));
  EXPECT_GT(n.accepted, int64_t(verses) * max_tokens / 5) << "drafts hardly accepted: acceptance not exercised";
  EXPECT_GT(n.rejected, 10) << "hardly any rejection: rollback not exercised";
}

TEST(ServerDraft, NgramGreedyIsPlainGreedyAloneAndConcurrent) { expect_plain_replies(Draft::kNgram, 48, "ref", true); }
TEST(ServerDraft, AssistantGreedyIsPlainGreedyAloneAndConcurrent) { expect_plain_replies(Draft::kAssistant, 48, "ref", true); }
// About 45 prompt tokens + 160: past the window of 128, and the ring of 128 + 4 slots wraps, drafts rolled
// back across its end (the engine's test runs 2,600 tokens). Two verses at once, on cpu.
TEST(ServerDraft, LongAnswerAcrossTheSlidingWindowIsPlain) { expect_plain_replies(Draft::kNgram, 160, "cpu", false, 2); }

// Stop strings and max_tokens: taken from the plain reply at several places; the oracle's drafts are all
// accepted, so the stops land inside accepted runs, and each reply must end exactly where plain decoding
// ends it (no token past the stop, the same count). Stop tokens inside an accepted run: the engine's
// tests (the scheduler runs the same checks in the same order for every emitted token).
TEST(ServerDraft, StopStringsAndMaxTokensLandWherePlainOnesDo) {
  DraftServer plain(Draft::kNone, 1), oracle(Draft::kOracle, 1);
  json base = plain.post(completion(kVerses[0], 60));
  const std::string text = base["choices"][0]["text"];
  ASSERT_GT(text.size(), 100u);
  int64_t accepted = 0;
  for (size_t at : {size_t(15), size_t(40), size_t(70), text.size() - 12}) {
    json body = completion(kVerses[0], 60);
    body["stop"] = text.substr(at, 5);
    json want = plain.post(body), got = oracle.post(body);
    EXPECT_EQ(want["choices"][0]["finish_reason"], "stop") << body["stop"];
    EXPECT_EQ(essence(got), essence(want)) << "stop " << body["stop"];
    accepted += got["usage"]["completion_tokens_details"]["accepted_prediction_tokens"].get<int64_t>();
  }
  for (int n : {1, 2, 7, 13, 29}) {
    json want = plain.post(completion(kVerses[1], n)), got = oracle.post(completion(kVerses[1], n));
    EXPECT_EQ(want["usage"]["completion_tokens"], n);
    EXPECT_EQ(essence(got), essence(want)) << "max_tokens " << n;
  }
  EXPECT_GT(accepted, 60) << "the oracle's drafts were not accepted: stops inside accepted runs not exercised";
}

// logprobs are computed from each verified row, and a json_schema constraint masks every row before the
// draft is judged: both give the plain server's reply.
TEST(ServerDraft, LogprobsAndConstraintsApplyToDraftedTokens) {
  DraftServer plain(Draft::kNone, 1), ngram(Draft::kNgram, 1);
  json body = completion(kVerses[2], 40);
  body["logprobs"] = 2;
  json want = plain.post(body), got = ngram.post(body);
  EXPECT_EQ(got["choices"][0]["logprobs"], want["choices"][0]["logprobs"]);
  EXPECT_EQ(essence(got), essence(want));
  EXPECT_GT(got["usage"]["completion_tokens_details"]["accepted_prediction_tokens"].get<int>(), 5);

  json chat = {{"messages", {{{"role", "user"}, {"content", kVerses[2]}}}}, {"max_tokens", 80}, {"temperature", 0}};
  chat["response_format"] = {{"type", "json_schema"},
                             {"json_schema", {{"name", "x"}, {"schema", {{"type", "object"}, {"properties", {{"sons", {{"type", "array"}, {"items", {{"type", "string"}}}}}}}, {"required", {"sons"}}}}}}};
  json cw = plain.post(chat, "/v1/chat/completions"), cg = ngram.post(chat, "/v1/chat/completions");
  ASSERT_TRUE(cw.contains("choices")) << cw;
  ASSERT_TRUE(cg.contains("choices")) << cg;
  EXPECT_EQ(cg["choices"][0]["message"], cw["choices"][0]["message"]);
  EXPECT_EQ(cg["usage"]["completion_tokens"], cw["usage"]["completion_tokens"]);
}

// Streaming: several tokens arrive per step; the streamed text is the non-streamed one, and the usage chunk
// carries the draft counts.
TEST(ServerDraft, StreamingRepliesAreTheNonStreamedOnes) {
  DraftServer ngram(Draft::kNgram, 1);
  json body = {{"messages", {{{"role", "user"}, {"content", kVerses[1]}}}}, {"max_tokens", 40}, {"temperature", 0}};
  json whole = ngram.post(body, "/v1/chat/completions");
  ASSERT_TRUE(whole.contains("choices")) << whole;
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  json usage;
  const std::string streamed = stream_chat(ngram, body.dump(), 0, nullptr, nullptr, &usage);
  EXPECT_EQ(streamed, whole["choices"][0]["message"]["content"].get<std::string>());
  ASSERT_TRUE(usage.contains("completion_tokens_details")) << usage;
  EXPECT_GT(usage["completion_tokens_details"]["accepted_prediction_tokens"].get<int>(), 0) << usage;
}

// Sampling with drafts: a seeded request runs to its budget with drafts verified by rejection sampling
// (the rule's distribution is tested in tests/engine/speculative_sampling_test.cc); with the monitor off
// the draft lengths do not depend on timing, so the same seed gives the same reply.
TEST(ServerDraft, SampledRequestsDraftAndRepeatWithTheirSeed) {
  DraftServer ngram(Draft::kNgram, 2);
  json body = completion(kVerses[0], 40);
  body["temperature"] = 0.7;
  body["seed"] = 11;
  json a = ngram.post(body), b = ngram.post(body);
  ASSERT_TRUE(a.contains("choices")) << a;
  EXPECT_EQ(a["usage"]["completion_tokens"], 40);
  EXPECT_EQ(essence(a), essence(b));
  EXPECT_GT(a["usage"]["completion_tokens_details"]["accepted_prediction_tokens"].get<int>(), 0);
}

}  // namespace
}  // namespace g4
