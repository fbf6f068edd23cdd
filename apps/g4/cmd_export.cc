// g4 export: a g4 quantized checkpoint -> an MLX-LM directory or a llama.cpp GGUF (docs/EXPORT.md).
#include <cstdio>
#include <string>

#include "base/error.h"
#include "base/progress.h"
#include "commands.h"
#include "convert/export.h"

namespace g4 {

void add_export_command(CLI::App& app, Action* action) {
  static ExportOptions eo;
  CLI::App* e = app.add_subcommand("export", "write a g4 quantized checkpoint as an MLX-LM directory or a GGUF file");
  e->add_option("--model,-m", eo.model, "g4 quantized checkpoint directory (made by g4 quantize)")->required();
  e->add_option("--format", eo.format, "mlx (a directory for mlx-lm) or gguf (a file for llama.cpp)")->required();
  e->add_option("--out,-o", eo.out, "output directory (mlx) or .gguf file (gguf)")->required();
  e->add_option("--scale-dtype", eo.scale_dtype, "mlx: scales and biases of asymmetric tensors: f16 (default; exact scales, biases rounded to f16), bf16 (mlx-lm's compute dtype for bf16 models, biases rounded to bf16) or f32 (exact)");
  e->callback([action] {
    *action = [] {
      if (eo.format != "mlx" && eo.format != "gguf") throw Error("--format: '" + eo.format + "' is not mlx or gguf");
      const ExportReport r = eo.format == "mlx" ? export_mlx(eo) : export_gguf(eo);
      std::string kinds;
      for (const auto& [k, n] : r.types) kinds += (kinds.empty() ? "" : ", ") + std::to_string(n) + " " + k;
      std::fprintf(stderr, "exported %d quantized and %d plain tensors (%s) -> %s (%s)\n", r.quantized, r.plain,
                   kinds.c_str(), eo.out.c_str(), Progress::amount(double(r.bytes_out), "B").c_str());
      if (r.max_change == 0)
        std::fprintf(stderr, "largest weight change: 0 (every weight exported exactly)\n");
      else
        std::fprintf(stderr, "largest weight change: %.3g (tensor %s); at most %.3g of a quantization step\n", r.max_change,
                     r.max_change_tensor.c_str(), r.max_change_steps);
      return 0;
    };
  });
}

}  // namespace g4
