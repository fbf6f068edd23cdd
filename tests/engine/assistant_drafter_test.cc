// Gemma 4's assistant drafter (model/assistant.h, engine/assistant_drafter.h) on the shipped tiny model with
// a random-weight assistant synthesized for it at run time (g4 synth --assistant-for):
// - its draft steps equal a plain-loop second implementation (engine/assistant_oracle.h) on ref and cpu,
//   with and without ordered (centroid-masked) embeddings, past the sliding window; the tapped final
//   hidden state gives the forward's own logits through the tied head;
// - speculative greedy with it gives plain greedy's tokens, crossing the window;
// - after a rejection at every draft position, the next draft equals the oracle's from a fresh target
//   cache holding exactly the kept tokens (the rollback leaves the drafter's view exact);
// - a drafter that does not fit the target, or is not an assistant, is refused at load with one clear error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <tuple>
#include <nlohmann/json.hpp>

#include "backend/sampling.h"
#include "base/error.h"
#include "convert/synth_assistant.h"
#include "engine/assistant_drafter.h"
#include "engine/assistant_oracle.h"
#include "engine/conversation.h"
#include "engine/kv_options.h"
#include "engine/model_bundle.h"
#include "io/mapped_file.h"
#include "util/run_g4.h"
#include "util/temp_dir.h"
#include "util/paths.h"

namespace g4 {
namespace {

using testing_util::AssistantOracle;
using testing_util::TempDir;
using testing_util::kTinyKjvModel;

std::string make_assistant(const TempDir& d, const std::string& name, int centroids = 0, uint64_t seed = 7) {
  SynthAssistantOptions o;
  o.target = kTinyKjvModel;
  o.out = d.file(name);
  o.centroids = centroids;
  o.seed = seed;
  synth_assistant(o);
  return o.out;
}

std::vector<int32_t> kjv_prompt(const Tokenizer& tok, int repeats) {
  std::string text;
  for (int i = 0; i < repeats; ++i)
    text += "In the beginning God created the heaven and the earth. And the earth was without form, and void; "
            "and darkness was upon the face of the deep.\n";
  return tok.encode(text, true);
}

float max_abs(const std::vector<float>& v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, float rel, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const float tol = rel * std::max(max_abs(want), 1e-3f);
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= tol) && bad++ < 3) ADD_FAILURE() << what << "[" << i << "] " << got[i] << " vs " << want[i];
  EXPECT_EQ(bad, 0u) << what;
}

std::vector<float> host(Backend& be, const Tensor& t) {
  std::vector<float> v(size_t(t.numel()));
  be.download(t, v.data());
  return v;
}

// The oracle's first draft step for the pending token context.back() after `context` minus it, from a fresh
// f32 target cache.
AssistantOracle::Out fresh_oracle_step(const Model& target, const AssistantOracle& oracle, const std::vector<int32_t>& context) {
  Session s(target, int64_t(context.size()) + 8);
  ForwardTaps taps;
  s.forward(std::vector<int32_t>(context.begin(), context.end() - 1), LogitsMode::kNone, 0, &taps);
  const Tensor h = taps.hidden.rows(taps.hidden.dim(0) - 1, 1);
  return oracle.step(context.back(), host(target.backend(), h), s.cache().seq(0), s.pos());
}

void check_steps(const std::string& backend, int centroids) {
  TempDir d;
  const std::string dir = make_assistant(d, "asst", centroids);
  ModelBundle b = ModelBundle::load(kTinyKjvModel, backend, LoadOptions{}, 1);
  const Model& m = *b.model;
  auto drafter = AssistantDrafter::load(dir, m, LoadOptions{});
  const AssistantOracle oracle(dir, kTinyKjvModel, m);
  const std::vector<int32_t> prompt = kjv_prompt(*b.tokenizer, 5);
  ASSERT_GT(prompt.size(), 160u);  // past the window of 128

  Session s(m, int64_t(prompt.size()) + 8);
  ForwardTaps& taps = *drafter->taps();
  const std::vector<float> logits = s.forward(prompt, LogitsMode::kLast, 64, &taps);
  const int64_t row = taps.hidden.dim(0) - 1;
  // The tapped hidden state is the one the head read: softcap(embed . h) gives the forward's logits.
  {
    const std::vector<float> h = host(m.backend(), taps.hidden.rows(row, 1));
    auto ws = WeightStore::open(kTinyKjvModel);
    const std::vector<float> e = tensor_to_f32(ws->get("embed_tokens.weight"));
    const int64_t H = m.spec().hidden_size;
    std::vector<float> want(logits.size());
    for (size_t v = 0; v < want.size(); ++v) {
      double dot = 0;
      for (int64_t i = 0; i < H; ++i) dot += double(e[v * size_t(H) + size_t(i)]) * h[size_t(i)];
      want[v] = float(30.0 * std::tanh(dot / 30.0));
    }
    expect_close(logits, want, 2e-3f, backend + " tapped hidden through the head");
  }
  // Three chained steps, each against the oracle (the hidden state of step j+1 is step j's post_projection).
  const int32_t pending = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  std::vector<int32_t> context = prompt;
  context.push_back(pending);
  drafter->at_target(s, row);
  std::vector<float> h = host(m.backend(), taps.hidden.rows(row, 1));
  int32_t tok = pending;
  Tensor ht = taps.hidden.rows(row, 1);
  for (int j = 0; j < 3; ++j) {
    const AssistantModel::Step got = drafter->model().step(tok, ht, s.cache().seq(0), s.pos(), taps, row);
    const AssistantOracle::Out want = oracle.step(tok, h, s.cache().seq(0), s.pos());
    const std::string what = backend + " step " + std::to_string(j);
    const std::vector<float> got_logits = drafter->model().host_logits(got);
    expect_close(got_logits, want.logits, 1e-4f, what + " logits");
    EXPECT_EQ(drafter->model().greedy_token(got), argmax(got_logits.data(), int64_t(got_logits.size()))) << what;
    expect_close(host(m.backend(), got.hidden), want.hidden, 1e-4f, what + " hidden");
    tok = int32_t(std::max_element(want.logits.begin(), want.logits.end()) - want.logits.begin());
    h = want.hidden;
    ht = got.hidden;
  }
  // draft() runs the same steps, greedily.
  drafter->keep_first_logits(true);
  const std::vector<int32_t> drafts = drafter->draft(context, 3);
  EXPECT_EQ(drafts.size(), 3u);
  expect_close(drafter->first_logits(), oracle.step(pending, host(m.backend(), taps.hidden.rows(row, 1)), s.cache().seq(0), s.pos()).logits,
               1e-4f, backend + " draft()");
}

// On the cpu backend's own cache (bf16, full layers' keys derived from values) the step reads the same
// keys and values up to bf16 rounding (measured: ~2% of the largest logit from an f32 cache, the target's
// own forward over bf16 included; ~0.2% from a bf16 cache that stores keys): a wrong read would be far off.
TEST(AssistantDrafter, ReadsTheDefaultCpuCache) {
  TempDir d;
  const std::string dir = make_assistant(d, "asst");
  ModelBundle b = ModelBundle::load(kTinyKjvModel, "cpu", LoadOptions{}, 1);
  const Model& m = *b.model;
  auto a = AssistantModel::load(dir, m, LoadOptions{});
  const std::vector<int32_t> prompt = kjv_prompt(*b.tokenizer, 5);
  KvCacheOptions f32;
  f32.ctx_size = int64_t(prompt.size()) + 8;
  KvCacheOptions def = kv_options_for("cpu", f32.ctx_size, 1);
  ASSERT_TRUE(def.derive_k);
  ASSERT_EQ(def.k_type, DType::kBF16);
  std::vector<std::vector<float>> out;
  KvCacheOptions nod = def;
  nod.derive_k = false;
  for (const KvCacheOptions& o : {f32, def, nod}) {
    Session s(m, o);
    ForwardTaps taps;
    s.forward(prompt, LogitsMode::kNone, 0, &taps);
    const int64_t row = taps.hidden.dim(0) - 1;
    out.push_back(a->host_logits(a->step(prompt.back(), taps.hidden.rows(row, 1), s.cache().seq(0), s.pos(), taps, row)));
  }
  expect_close(out[1], out[0], 3e-2f, "bf16 derived-key cache vs f32");
  expect_close(out[1], out[2], 1e-2f, "bf16 derived-key cache vs bf16 keys");
}

// extend() continues the last proposal exactly as a longer draft would have gone on, also after the target
// has run further positions (the loop scores proposals one token at a time while drafting is off), and
// gives nothing once the target has rolled back below the proposal's position.
TEST(AssistantDrafter, ExtendContinuesTheProposalExactly) {
  TempDir d;
  const std::string dir = make_assistant(d, "asst");
  ModelBundle b = ModelBundle::load(kTinyKjvModel, "cpu", LoadOptions{}, 1);
  const Model& m = *b.model;
  auto drafter = AssistantDrafter::load(dir, m, LoadOptions{});
  ForwardTaps& taps = *drafter->taps();
  std::vector<int32_t> context = kjv_prompt(*b.tokenizer, 4);
  Session s(m, int64_t(context.size()) + 16);
  s.forward(std::vector<int32_t>(context.begin(), context.end() - 1), LogitsMode::kNone, 0, &taps);
  const int64_t row = taps.hidden.dim(0) - 1;
  drafter->at_target(s, row);
  const std::vector<int32_t> whole = drafter->draft(context, 4);
  ASSERT_EQ(whole.size(), 4u);
  drafter->at_target(s, row);
  std::vector<int32_t> lazy = drafter->draft(context, 1);
  for (int j = 0; j < 3; ++j) {
    s.forward({context.back()}, LogitsMode::kLast, 0, &taps);  // the target moves on (and refills the taps)
    context.push_back(lazy.back());
    const std::vector<int32_t> more = drafter->extend(1);
    ASSERT_EQ(more.size(), 1u) << j;
    lazy.push_back(more[0]);
  }
  EXPECT_EQ(lazy, whole);
  s.truncate(s.pos() - 4);
  EXPECT_TRUE(drafter->extend(1).empty());
}

TEST(AssistantDrafter, StepsMatchThePlainLoopOracleRef) { check_steps("ref", 0); }
TEST(AssistantDrafter, StepsMatchThePlainLoopOracleCpu) { check_steps("cpu", 0); }
TEST(AssistantDrafter, OrderedEmbeddingsMatchTheOracle) { check_steps("cpu", 64); }

// --quantize int8 / int4 quantize the assistant with the target's recipes: its steps stay near the float
// oracle (relative L2 error of the logits on ref: 3e-7 float, 1.3% int8, 27% int4 for these random weights;
// an unrelated output would be ~140%), and not zero: the weights were quantized.
TEST(AssistantDrafter, QuantizedLikeTheTarget) {
  TempDir d;
  const std::string dir = make_assistant(d, "asst");
  ModelBundle b = ModelBundle::load(kTinyKjvModel, "ref", LoadOptions{}, 1);
  const Model& m = *b.model;
  const AssistantOracle oracle(dir, kTinyKjvModel, m);
  const std::vector<int32_t> prompt = kjv_prompt(*b.tokenizer, 1);
  Session s(m, int64_t(prompt.size()) + 8);
  ForwardTaps taps;
  s.forward(prompt, LogitsMode::kNone, 0, &taps);
  const int64_t row = taps.hidden.dim(0) - 1;
  const Tensor h = taps.hidden.rows(row, 1);
  const AssistantOracle::Out want = oracle.step(prompt.back(), host(m.backend(), h), s.cache().seq(0), s.pos());
  for (const auto& [q, lo, hi] : {std::tuple{"", 0.0, 1e-5}, std::tuple{"int8", 1e-4, 0.05}, std::tuple{"int4", 1e-3, 0.5}}) {
    LoadOptions lo_opts;
    lo_opts.quantize = q;
    auto a = AssistantModel::load(dir, m, lo_opts);
    const std::vector<float> got = a->host_logits(a->step(prompt.back(), h, s.cache().seq(0), s.pos(), taps, row));
    double num = 0, den = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      num += (got[i] - want.logits[i]) * (got[i] - want.logits[i]);
      den += double(want.logits[i]) * want.logits[i];
    }
    const double rel = std::sqrt(num / den);
    EXPECT_GT(rel, lo) << q;
    EXPECT_LT(rel, hi) << q;
  }
}

// Speculative greedy with the assistant is plain greedy; and a wrapper that makes draft position j wrong
// (j = 0, 1, 2, in turn; the earlier ones right) checks after every rollback that the assistant's next draft
// equals the oracle's from a fresh cache of exactly the kept tokens.
TEST(AssistantDrafter, GreedyIsPlainGreedyWithRollbackAtEveryPosition) {
  TempDir d;
  const std::string dir = make_assistant(d, "asst");
  ModelBundle b = ModelBundle::load(kTinyKjvModel, "cpu", LoadOptions{}, 1);
  const Model& m = *b.model;
  const std::vector<int32_t> prompt = kjv_prompt(*b.tokenizer, 1);
  const int64_t n = 230;  // the prompt and 230 tokens: past the window of 128 twice
  KvCacheOptions kvo;
  kvo.ctx_size = int64_t(prompt.size()) + n + 8;
  GenerateOptions go;
  go.max_new_tokens = n;
  Conversation plain(m, kvo);
  const std::vector<int32_t> want = plain.generate(prompt, go, nullptr).tokens;
  ASSERT_EQ(int64_t(want.size()), n);

  // Greedy generation with `drafter` proposing 3 tokens at every step.
  auto speculate = [&](std::shared_ptr<Drafter> drafter) {
    GenerateOptions sgo = go;
    sgo.draft.drafter = std::move(drafter);
    sgo.draft.max = 3;
    sgo.draft.adaptive = false;
    Conversation spec(m, kvo);
    return spec.generate(prompt, sgo, nullptr);
  };

  // 1. The assistant as it is.
  {
    const GenerateResult r = speculate(AssistantDrafter::load(dir, m, LoadOptions{}));
    EXPECT_EQ(r.tokens, want);
    EXPECT_GT(r.draft.verifies, 40);
    EXPECT_EQ(r.draft.recomputed, 0);
  }

  // 2. Forced rejections at every position, each next draft checked against the oracle.
  struct Forcing : Drafter {
    std::shared_ptr<AssistantDrafter> inner;
    const Model* m = nullptr;
    const AssistantOracle* oracle = nullptr;
    const std::vector<int32_t>* prompt = nullptr;
    const std::vector<int32_t>* truth = nullptr;
    int calls = 0, checked = 0;
    float worst = 0;
    std::vector<int32_t> draft(const std::vector<int32_t>& context, int max_n) override {
      const std::vector<int32_t> a = inner->draft(context, max_n);
      if (calls % 5 == 1 && checked < 12) {  // a fresh prefill costs more: every 5th draft, after each j in turn
        const AssistantOracle::Out o = fresh_oracle_step(*m, *oracle, context);
        const std::vector<float>& got = inner->first_logits();
        const float scale = std::max(max_abs(o.logits), 1e-3f);
        for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - o.logits[i]) / scale);
        ++checked;
      }
      // The true continuation with position (calls % (max_n + 1)) wrong.
      const size_t done = context.size() - prompt->size();  // tokens emitted; the next true one is truth[done]
      const int j = calls++ % (max_n + 1);  // max_n: all right
      std::vector<int32_t> out;
      for (int i = 0; i < max_n && done + size_t(i) < truth->size(); ++i) {
        const int32_t t = (*truth)[done + size_t(i)];
        out.push_back(i == j ? (t + 1) % int32_t(m->spec().vocab_size) : t);
      }
      EXPECT_EQ(a.size(), size_t(max_n));
      return out;
    }
    const char* name() const override { return "forcing"; }
    ForwardTaps* taps() override { return inner->taps(); }
    void at_target(Session& s, int64_t row) override { inner->at_target(s, row); }
  };
  const AssistantOracle oracle(dir, kTinyKjvModel, m);
  auto f = std::make_shared<Forcing>();
  f->inner = AssistantDrafter::load(dir, m, LoadOptions{});
  f->inner->keep_first_logits(true);
  f->m = &m;
  f->oracle = &oracle;
  f->prompt = &prompt;
  f->truth = &want;
  const GenerateResult r = speculate(f);
  EXPECT_EQ(r.tokens, want);
  ASSERT_EQ(r.draft.drafted_at.size(), 3u);
  // Position j is rejected in a third of the verifies, so every position both accepts and rejects.
  for (int j = 0; j < 3; ++j) EXPECT_LT(r.draft.accepted_at[size_t(j)], r.draft.drafted_at[size_t(j)]) << j;
  EXPECT_GT(r.draft.accepted_at[1], 0);
  EXPECT_GT(r.draft.accepted_at[2], 0);
  EXPECT_GE(f->checked, 10);
  EXPECT_LT(f->worst, 1e-4f);  // measured 1e-6 on cpu
}

// Rewrites config.json of an assistant with `edit` applied.
void edit_config(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json j = nlohmann::json::parse(read_text_file(dir + "/config.json"));
  edit(j);
  std::ofstream(dir + "/config.json") << j.dump(2);
}

std::string load_error(const std::string& dir, const Model& m) {
  try {
    AssistantModel::load(dir, m, LoadOptions{});
  } catch (const Error& e) {
    return e.what();
  }
  return "(loaded)";
}

TEST(AssistantDrafter, DrafterThatDoesNotFitIsRefusedAtLoad) {
  TempDir d;
  ModelBundle b = ModelBundle::load(kTinyKjvModel, "ref", LoadOptions{}, 1);
  const Model& m = *b.model;
  struct Case {
    std::string name, expect;
    std::function<void(nlohmann::json&)> edit;
  };
  const std::vector<Case> cases = {
      {"vocab", "its vocabulary has 1024 tokens, the target's 4096", [](nlohmann::json& j) { j["text_config"]["vocab_size"] = 1024; }},
      {"backbone", "made for a target of hidden size 5376 (backbone_hidden_size), the target's is 192",
       [](nlohmann::json& j) { j["backbone_hidden_size"] = 5376; }},
      {"arch", "model_type 'gemma4_text' is not a Gemma 4 assistant drafter", [](nlohmann::json& j) { j["model_type"] = "gemma4_text"; }},
      {"headdim", "has head_dim 32 but the target layer 4 it reads has 64",
       [](nlohmann::json& j) { j["text_config"]["head_dim"] = 32; }},
      {"shared", "num_kv_shared_layers must equal num_hidden_layers",
       [](nlohmann::json& j) { j["text_config"]["num_kv_shared_layers"] = 1; }},
  };
  for (const Case& c : cases) {
    const std::string dir = make_assistant(d, c.name);
    edit_config(dir, c.edit);
    const std::string err = load_error(dir, m);
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.name << ": " << err;
  }
  EXPECT_NE(load_error(d.file("none"), m).find("not a directory"), std::string::npos);
  // A missing tensor is named.
  const std::string dir = make_assistant(d, "ok");
  std::ofstream(dir + "/model.safetensors", std::ios::trunc) << "";
  EXPECT_NE(load_error(dir, m), "(loaded)");

  // Through the CLI: one error line, exit 1.
  const std::string bad = make_assistant(d, "cli");
  edit_config(bad, [](nlohmann::json& j) { j["backbone_hidden_size"] = 100; });
  const testing_util::G4Result r =
      testing_util::run_g4("run -m " + kTinyKjvModel + " --backend ref -md " + bad + " -p hi -n 4 --quiet");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.rfind("g4: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("backbone_hidden_size"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(testing_util::run_g4("run -m " + kTinyKjvModel + " -md " + bad + " --draft-ngram -p hi").status, 1);
}

}  // namespace
}  // namespace g4
