// The g4 binary's scripted interface (g4 logits / g4 generate) end to end against the HF fixtures,
// and its error behaviour: one "g4: error: ..." line naming the problem and a non-zero exit status.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>

#include "base/error.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "util/compare.h"
#include "util/temp_dir.h"
#include "util/run_g4.h"

namespace g4 {
namespace {

using testing_util::TempDir;
namespace fs = std::filesystem;

using testing_util::run_g4;
using Result = testing_util::G4Result;

const std::string kCase = std::string(G4_TEST_DATA) + "/hf-reference/dense-31b-shape";

std::string join(const TensorInfo& t) {
  std::string s;
  for (int64_t i = 0; i < t.numel(); ++i) {
    int32_t v;
    std::memcpy(&v, t.data + 4 * i, 4);
    s += (i ? "," : "") + std::to_string(v);
  }
  return s;
}

std::vector<float> floats(const TensorInfo& t) {
  std::vector<float> v(size_t(t.numel()));
  std::memcpy(v.data(), t.data, v.size() * 4);
  return v;
}

double max_diff(const TensorInfo& a, const TensorInfo& b) {
  EXPECT_EQ(a.shape, b.shape);
  return testing_util::max_abs_diff(floats(a), floats(b)).max;
}

TEST(Cli, LogitsAndGenerateMatchFixture) {
  TempDir d;
  SafetensorsFile expected(kCase + "/expected.safetensors");
  const std::string prompt = join(*expected.find("prompt"));
  Result r = run_g4("logits --model " + kCase + "/model --tokens " + prompt + " --out " + d.file("l.safetensors"));
  ASSERT_EQ(r.status, 0) << r.err;
  SafetensorsFile l(d.file("l.safetensors"));
  EXPECT_LE(max_diff(*l.find("logits"), *expected.find("prompt_logits")), 1e-3);

  const int64_t n = expected.find("greedy_tokens")->numel();
  r = run_g4("generate --model " + kCase + "/model --tokens " + prompt + " --max-new-tokens " + std::to_string(n) +
             " --temperature 0 --backend ref --chunk-size 7 --out " + d.file("g.safetensors"));
  ASSERT_EQ(r.status, 0) << r.err;
  SafetensorsFile g(d.file("g.safetensors"));
  EXPECT_EQ(join(*g.find("tokens")), join(*expected.find("greedy_tokens")));
  EXPECT_EQ(g.find("tokens")->dtype, DType::kI32);
  EXPECT_LE(max_diff(*g.find("step_logits"), *expected.find("greedy_step_logits")), 1e-3);
}

// Copies the fixture model into dir, passing every tensor through `edit` (return false to drop it).
void copy_model(const std::string& dir,
                const std::function<bool(std::string&, std::vector<int64_t>&)>& edit) {
  fs::copy_file(kCase + "/model/config.json", dir + "/config.json");
  SafetensorsFile src(kCase + "/model/model.safetensors");
  std::vector<TensorToWrite> out;
  std::vector<std::string> names;
  names.reserve(src.tensors().size());
  for (const auto& [name, t] : src.tensors()) {
    std::string n = name;
    std::vector<int64_t> shape = t.shape;
    if (!edit(n, shape)) continue;
    names.push_back(n);
    if (shape != t.shape) {  // keep the byte count consistent with the new shape
      int64_t numel = 1;
      for (int64_t s : shape) numel *= s;
      G4_CHECK(numel <= t.numel(), "test edit grows a tensor");
    }
    out.push_back({names.back(), t.dtype, shape, t.data});
  }
  write_safetensors(dir + "/model.safetensors", out);
}

void expect_error(const std::string& args, const std::string& needle) {
  Result r = run_g4(args);
  EXPECT_NE(r.status, 0) << args;
  EXPECT_EQ(r.err.rfind("g4: error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "expected one line: " << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
}

TEST(Cli, ErrorsAreOneClearLine) {
  TempDir d;
  const std::string out = " --out " + d.file("o.safetensors");
  expect_error("logits --model " + d.file("nowhere") + " --tokens 2" + out, "does not exist");
  expect_error("logits --model " + kCase + "/model --tokens 2,1024" + out, "token id 1024 at index 1 is out of range");
  expect_error("logits --model " + kCase + "/model --tokens 2,x" + out, "'x' is not a token id");
  expect_error("logits --model " + kCase + "/model --tokens 2 --backend tpu" + out, "unknown backend 'tpu'");
  expect_error("logits --model " + kCase + "/model --tokens 2 --out " + d.file("no/such/dir/o.safetensors"),
               "cannot create");

  fs::create_directories(d.file("badjson"));
  fs::copy_file(kCase + "/model/model.safetensors", d.file("badjson/model.safetensors"));
  d.write("badjson/config.json", "{\"text_config\": {");
  expect_error("logits --model " + d.file("badjson") + " --tokens 2" + out, "not valid JSON");

  fs::create_directories(d.file("missing"));
  copy_model(d.file("missing"), [](std::string& n, std::vector<int64_t>&) {
    return n.find("layers.3.mlp.up_proj") == std::string::npos;
  });
  expect_error("logits --model " + d.file("missing") + " --tokens 2" + out, "missing tensor 'layers.3.mlp.up_proj.weight'");

  fs::create_directories(d.file("shape"));
  copy_model(d.file("shape"), [](std::string& n, std::vector<int64_t>& s) {
    if (n.find("layers.5.self_attn.k_proj") != std::string::npos) s[0] /= 2;
    return true;
  });
  expect_error("logits --model " + d.file("shape") + " --tokens 2" + out, "'layers.5.self_attn.k_proj.weight' has shape");

  fs::create_directories(d.file("noconfig"));
  fs::copy_file(kCase + "/model/model.safetensors", d.file("noconfig/model.safetensors"));
  expect_error("logits --model " + d.file("noconfig") + " --tokens 2" + out, "no config.json");

  // Flag errors come from the parser: non-zero exit and a message, no crash.
  EXPECT_NE(run_g4("logits --tokens 2").status, 0);
  EXPECT_NE(run_g4("generate --model x --tokens 2 --out y --max-new-tokens 0").status, 0);
  EXPECT_NE(run_g4("frobnicate").status, 0);
  expect_error("generate --model " + kCase + "/model --tokens 2 -n 2 --temperature -1" + out, "temperature");
}

}  // namespace
}  // namespace g4
