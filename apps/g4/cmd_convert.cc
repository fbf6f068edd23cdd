// g4 synth: random-weight checkpoints with real dimensions (benchmarks).
// g4 quantize: a float Hugging Face checkpoint -> the g4 quantized checkpoint (docs/CHECKPOINT.md).
#include <cstdio>
#include <string>
#include <vector>

#include "base/progress.h"
#include "commands.h"
#include "flag_check.h"
#include "convert/quantize_model.h"
#include "convert/synth.h"
#include "convert/synth_assistant.h"

namespace g4 {

void add_convert_commands(CLI::App& app, Action* action) {
  static SynthOptions so;
  CLI::App* s = app.add_subcommand("synth", "write a random-weight checkpoint with real Gemma 4 dimensions");
  static SynthAssistantOptions sa;
  CLI::Option* preset = s->add_option("--preset", so.preset, "31b (spec dimensions) or tiny");
  s->add_option("--assistant-for", sa.target,
                "instead: a random-weight assistant drafter (gemma4_assistant) for this target model directory, tiny "
                "(--layers, default 2, and --seed apply)");
  s->add_option("--assistant-centroids", sa.centroids,
                "with --assistant-for: use_ordered_embeddings with this many centroids (top 4 kept)")->check(in_range(1, 1 << 20));
  s->add_option("--layers", so.layers, "number of layers (default: 60 for 31b, 6 for tiny)")->check(in_range(1, 1000));
  s->add_option("--out,-o", so.out, "output directory")->required();
  s->add_option("--format", so.format, "bf16, int4 (default-recipe layout), int8, or q4_0 (what a Q4_0 GGUF loads as: int4 g32 symmetric, f16 scales, the embedding too)");
  s->add_option("--group-size", so.group_size, "quantization group size: 32, 64 or 128");
  s->add_option("--seed", so.seed, "random seed");
  s->callback([action, preset] {
    if (!sa.target.empty()) {
      if (preset->count() > 0) throw CLI::ValidationError("--preset", "not used with --assistant-for");
      *action = [] {
        sa.out = so.out;
        sa.seed = so.seed;
        if (so.layers > 0) sa.layers = so.layers;
        const uint64_t n = synth_assistant(sa);
        std::fprintf(stderr, "wrote %s (%s)\n", sa.out.c_str(), Progress::amount(double(n), "B").c_str());
        return 0;
      };
      return;
    }
    if (preset->count() == 0) throw CLI::RequiredError("--preset");
    *action = [] {
      const uint64_t n = synth_checkpoint(so);
      std::fprintf(stderr, "wrote %s (%s)\n", so.out.c_str(), Progress::amount(double(n), "B").c_str());
      return 0;
    };
  });

  static QuantizeOptions qo;
  CLI::App* q = app.add_subcommand("quantize", "quantize a float checkpoint into the g4 quantized format");
  q->add_option("--model,-m", qo.model, "Hugging Face model directory (config.json + safetensors)")->required();
  q->add_option("--out,-o", qo.out, "output directory")->required();
  q->add_option("--recipe", qo.recipe, "default, sensitive or int8");
  q->add_option("--group-size", qo.group_size, "group size for int4 rules: 32, 64 or 128");
  q->add_option("--method", qo.method, "minmax or hqq, for the recipe's int4 rules");
  q->add_option("--int4", qo.int4, "asym (zero point per group) or sym (4.5 bits/weight at g32 f16), int4 rules");
  q->add_option("--scale-dtype", qo.scale_dtype, "bf16, f16 or f32: scales of the recipe's int4 rules");
  q->add_option("--offsets", qo.offsets, "f16 (asymmetric int4 offsets scale*zero exact in f16: exact GGUF and MLX exports) or free");
  q->add_option("--rule", qo.rules, "'REGEX=int8|int4|bf16' on canonical tensor names; first match wins (repeatable)");
  q->callback([action] {
    *action = [] {
      const QuantizeSummary r = quantize_checkpoint(qo);
      std::fprintf(stderr, "quantized %d tensors, kept %d: %s (%llu bytes) -> %s (%llu bytes)\n", r.quantized, r.kept,
                   Progress::amount(double(r.bytes_in), "B").c_str(), static_cast<unsigned long long>(r.bytes_in),
                   Progress::amount(double(r.bytes_out), "B").c_str(), static_cast<unsigned long long>(r.bytes_out));
      return 0;
    };
  });
}

}  // namespace g4
