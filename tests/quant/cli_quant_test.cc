// The quantization commands end to end through the g4 binary: synth -> quantize -> logits / perplexity,
// and bad flags giving one "g4: error:" line and a non-zero status.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "io/weight_store.h"
#include "util/flag_error.h"
#include "util/run_g4.h"

namespace g4 {
namespace {

namespace fs = std::filesystem;

using testing_util::G4Result;
using testing_util::run_g4;

TEST(CliQuant, SynthQuantizeRunAndPerplexity) {
  const fs::path d = fs::temp_directory_path() / ("g4_cliq_" + std::to_string(::getpid()));
  fs::remove_all(d);
  const std::string src = (d / "bf16").string(), q = (d / "q").string();
  G4Result r = run_g4("synth --preset tiny --layers 3 --seed 5 --out " + src);
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_g4("quantize -m " + src + " --out " + q + " --method hqq --group-size 64 --rule 'layers\\.0\\.mlp=int8'" +
          " --rule 'layers\\.1\\.self_attn\\.q_proj=bf16'");
  ASSERT_EQ(r.status, 0) << r.err;
  auto ws = WeightStore::open(q);
  EXPECT_EQ(ws->get_weight("layers.0.mlp.up_proj.weight").quant->describe(), "int8 g64 sym (BF16 scales)");
  EXPECT_TRUE(ws->get_weight("layers.1.self_attn.q_proj.weight").plain);
  EXPECT_EQ(ws->get_weight("layers.1.self_attn.k_proj.weight").quant->describe(), "int4 g64 asym (BF16 scales)");
  EXPECT_TRUE(ws->get_weight("lm_head.weight").quant);

  // Q4_0-like int4 (g32 symmetric, f16 scales) through the CLI, and then run on the cpu backend.
  const std::string q4 = (d / "q4").string();
  r = run_g4("quantize -m " + src + " --out " + q4 + " --int4 sym --scale-dtype f16");
  ASSERT_EQ(r.status, 0) << r.err;
  {
    auto w4 = WeightStore::open(q4);
    EXPECT_EQ(w4->get_weight("layers.2.mlp.down_proj.weight").quant->describe(), "int4 g32 sym (F16 scales)");
    EXPECT_EQ(w4->get_weight("lm_head.weight").quant->describe(), "int4 g32 sym (F16 scales)");
  }
  r = run_g4("logits -m " + q4 + " --backend cpu --tokens 2,5,9 --out " + (d / "l4.safetensors").string());
  EXPECT_EQ(r.status, 0) << r.err;

  r = run_g4("logits -m " + q + " --tokens 2,5,9 --out " + (d / "l.safetensors").string());
  EXPECT_EQ(r.status, 0) << r.err;
  std::ofstream(d / "toks.txt") << "2 17 99 4 1000 3 3 8\n";
  r = run_g4("perplexity -m " + q + " --reference " + src + " --tokens-file " + (d / "toks.txt").string() + " -c 4");
  EXPECT_EQ(r.status, 0) << r.err;
  // The text's own leading BOS is context, not a prediction: 7 of the 8 tokens are scored (chunks
  // [2 17 99 4], [bos 1000 3 3], [bos 8]).
  EXPECT_NE(r.out.find("\"scored\": 7"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("top-1 agreement"), std::string::npos) << r.out;

  // Bad inputs: one clear line, status 1.
  for (const std::string& bad :
       {"quantize -m " + src + " --out " + q + " --rule 'x(=int4'", "quantize -m " + src + " --out " + q + " --recipe nope",
        "quantize -m " + q + " --out " + (d / "qq").string(), "synth --preset 7b --out " + (d / "s").string(),
        "quantize -m " + src + " --out " + q + " --group-size 48", "quantize -m " + src + " --out " + q + " --int4 half",
        "quantize -m " + src + " --out " + q + " --scale-dtype f8", "quantize -m " + src + " --out " + q + " --offsets f32"}) {
    testing_util::expect_flag_error(bad, "g4: error: ");
  }
  r = run_g4("quantize -m " + q + " --out " + (d / "qq").string());
  EXPECT_NE(r.err.find("already quantized"), std::string::npos) << r.err;
  fs::remove_all(d);
}

}  // namespace
}  // namespace g4
