// g4 tokenize: text -> token ids (space-separated, or one JSON array with --json); no <bos> unless --bos.
// g4 detokenize: ids (separated by spaces or commas) -> text. Both are a stable scripted interface used by
// acceptance checks. The tokenizer is a tokenizer.json, or a model's: its directory's tokenizer.json or
// the vocabulary inside a GGUF file.
#include <cstdio>
#include <string>

#include "base/error.h"
#include "commands.h"
#include "engine/model_bundle.h"
#include "input_file.h"
#include "token_list.h"
#include "tokenizer/tokenizer.h"

namespace g4 {

namespace {

struct TokOpts {
  std::string model, tokenizer, text, text_file, ids;
  bool have_text = false, json = false, bos = false, skip_special = false;
};

Tokenizer tokenizer_of(const TokOpts& o) {
  if (o.model.empty() == o.tokenizer.empty()) throw Error("give exactly one of --model PATH or --tokenizer FILE");
  return o.tokenizer.empty() ? load_tokenizer(o.model) : Tokenizer::from_json_file(o.tokenizer);
}

int run_tokenize(const TokOpts& o) {
  if (o.have_text == !o.text_file.empty()) throw Error("give exactly one of --text or --text-file");
  const std::string text = o.have_text ? o.text : read_input(o.text_file, "text file");
  const Tokenizer tok = tokenizer_of(o);
  const std::vector<int32_t> ids = tok.encode(text, o.bos);
  std::string out = o.json ? "[" : "";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += o.json ? "," : " ";
    out += std::to_string(ids[i]);
  }
  out += o.json ? "]\n" : "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int run_detokenize(const TokOpts& o) {
  const Tokenizer tok = tokenizer_of(o);
  const std::vector<int32_t> ids = parse_token_list(o.ids, "--ids");
  const std::string text = tok.decode(ids, o.skip_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  return 0;
}

void add_source(CLI::App* c, TokOpts& o) {
  c->add_option("--model,-m", o.model, "a model: checkpoint directory (its tokenizer.json) or .gguf file (its vocabulary)");
  c->add_option("--tokenizer", o.tokenizer, "a tokenizer.json file");
}

}  // namespace

void add_tokenize_commands(CLI::App& app, Action* action) {
  static TokOpts to, dto;
  CLI::App* t = app.add_subcommand("tokenize", "print the token ids of a text (no <bos> unless --bos)");
  add_source(t, to);
  t->add_option("--text", to.text, "the text to encode")->each([](const std::string&) { to.have_text = true; });
  t->add_option("-f,--text-file", to.text_file, "read the text from this file (- reads standard input)");
  t->add_flag("--json", to.json, "print one JSON array on one line");
  t->add_flag("--bos", to.bos, "put <bos> first");
  t->callback([action] { *action = [] { return run_tokenize(to); }; });

  CLI::App* d = app.add_subcommand("detokenize", "print the text of token ids");
  add_source(d, dto);
  d->add_option("--ids", dto.ids, "token ids separated by commas or spaces, e.g. 2,9259,1902 or '2 9259 1902'")->required();
  d->add_flag("--skip-special", dto.skip_special, "leave out special tokens such as <bos>");
  d->callback([action] { *action = [] { return run_detokenize(dto); }; });
}

}  // namespace g4
