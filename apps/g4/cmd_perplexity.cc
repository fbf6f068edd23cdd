// g4 perplexity: perplexity of a model over a token sequence (token ids, or a text the model's tokenizer
// encodes); with --reference, also the KL divergence and top-1 agreement against a second model (e.g. a
// quantized model against its float original).
#include <cstdio>
#include <string>

#include "backend/backend.h"
#include "base/error.h"
#include "commands.h"
#include "engine/kv_options.h"
#include "engine/model_bundle.h"
#include "eval/perplexity.h"
#include "flag_check.h"
#include "input_file.h"
#include "model/model.h"
#include "run_options.h"

namespace g4 {

namespace {

struct Opts {
  std::string model, reference, tokens_file, text_file, backend = "auto";
  KvFlags kv;  // the model's KV cache
  int64_t ctx = 512, step = 0;
  LoadOptions load, ref_load;
};

std::vector<int32_t> tokens_of(const Opts& o) {
  if (o.tokens_file.empty() == o.text_file.empty()) throw Error("perplexity: give one of --tokens-file or --text-file");
  if (!o.tokens_file.empty())
    return o.tokens_file == "-" ? parse_token_ids(read_input("-", "token ids"), "standard input")
                                : read_tokens_file(o.tokens_file);
  // The chunks start with <bos> (perplexity() puts it there), so the text is encoded without it.
  const std::string text = read_input(o.text_file, "text file");
  const std::vector<int32_t> ids = load_tokenizer(o.model).encode(text, false);
  if (ids.size() < 2) throw Error("--text-file: the text is " + std::to_string(ids.size()) + (ids.size() == 1 ? " token" : " tokens") + "; perplexity needs 2 or more");
  return ids;
}

}  // namespace

void add_perplexity_command(CLI::App& app, Action* action) {
  static Opts o;
  CLI::App* p = app.add_subcommand("perplexity", "perplexity over a token sequence or a text (and KL vs --reference)");
  p->add_option("--model,-m", o.model, "model: a checkpoint directory or a .gguf file")->required();
  p->add_option("--tokens-file", o.tokens_file, "token ids separated by whitespace or commas (- reads standard input)");
  p->add_option("-f,--text-file", o.text_file, "text, encoded with the model's tokenizer (- reads standard input)");
  p->add_option("--reference", o.reference, "reference model: adds KL divergence and top-1 agreement");
  p->add_option("--ctx-size,-c", o.ctx, "tokens per evaluated chunk")->check(in_range(int64_t(2), int64_t(1) << 20));
  p->add_option("--backend", o.backend, "backend: auto (default: cuda with a GPU, else cpu), cpu, cuda, ref");
  p->add_option("--quantize", o.load.quantize, "quantize the model while loading: int4 or int8")
      ->check(CLI::IsMember({"int4", "int8"}));
  add_kv_flags(p, o.kv);
  p->add_option("--step", o.step, "forward steps of this many tokens, so attention reads the KV cache (0 = one step per chunk)")
      ->check(in_range(int64_t(0), int64_t(1) << 20));
  p->callback([action] {
    *action = [] {
      const std::vector<int32_t> tokens = tokens_of(o);
      auto be = make_backend(o.backend);
      auto model = Model::load(o.model, *be, o.load);
      std::unique_ptr<Model> ref;
      if (!o.reference.empty()) ref = Model::load(o.reference, *be, o.ref_load);
      const KvCacheOptions kv = kv_options_for(be->name(), o.ctx, 1, o.kv);
      const PerplexityStats st = perplexity(*model, ref.get(), tokens, o.ctx, true, kv, o.step);
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
