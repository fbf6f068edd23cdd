// g4 perplexity: perplexity of a model over a token sequence; with --reference, also the KL divergence
// and top-1 agreement against a second model (e.g. a quantized model against its float original).
#include <cstdio>
#include <string>

#include "backend/backend.h"
#include "base/error.h"
#include "commands.h"
#include "flag_check.h"
#include "eval/perplexity.h"
#include "model/model.h"

namespace g4 {

void add_perplexity_command(CLI::App& app, Action* action) {
  struct Opts {
    std::string model, reference, tokens_file, text_file, backend = "auto";
    int64_t ctx = 512;
    LoadOptions load, ref_load;
  };
  static Opts o;
  CLI::App* p = app.add_subcommand("perplexity", "perplexity over a token sequence (and KL vs --reference)");
  p->add_option("--model,-m", o.model, "model directory")->required();
  p->add_option("--tokens-file", o.tokens_file, "token ids separated by whitespace or commas");
  p->add_option("--text-file", o.text_file, "text to tokenize (needs the tokenizer; use --tokens-file until it lands)");
  p->add_option("--reference", o.reference, "reference model directory: adds KL divergence and top-1 agreement");
  p->add_option("--ctx-size,-c", o.ctx, "tokens per evaluated chunk")->check(in_range(int64_t(2), int64_t(1) << 20));
  p->add_option("--backend", o.backend, "backend: auto (default: cuda with a GPU, else cpu), cpu, cuda, ref");
  p->add_option("--quantize", o.load.quantize, "quantize the model while loading: int4 or int8")
      ->check(CLI::IsMember({"int4", "int8"}));
  p->callback([action] {
    *action = [] {
      if (!o.text_file.empty())
        throw Error("--text-file: this build has no tokenizer yet; pass token ids with --tokens-file");
      if (o.tokens_file.empty()) throw Error("perplexity: give --tokens-file");
      const std::vector<int32_t> tokens = read_tokens_file(o.tokens_file);
      auto be = make_backend(o.backend);
      auto model = Model::load(o.model, *be, o.load);
      std::unique_ptr<Model> ref;
      if (!o.reference.empty()) ref = Model::load(o.reference, *be, o.ref_load);
      const PerplexityStats st = perplexity(*model, ref.get(), tokens, o.ctx, true);
      std::printf("tokens scored: %ld\nperplexity: %.6f\n", long(st.scored), st.ppl());
      if (ref)
        std::printf("reference perplexity: %.6f\nmean KL(ref || model): %.6g\nmax KL: %.6g\ntop-1 agreement: %.4f\n",
                    st.ref_ppl(), st.mean_kl(), st.max_kl, st.top1());
      std::printf("{\"scored\": %ld, \"ppl\": %.9g, \"ref_ppl\": %.9g, \"mean_kl\": %.9g, \"max_kl\": %.9g, \"top1\": %.9g}\n",
                  long(st.scored), st.ppl(), ref ? st.ref_ppl() : 0.0, st.mean_kl(), st.max_kl, ref ? st.top1() : 0.0);
      return 0;
    };
  });
}

}  // namespace g4
