// Subcommands of the g4 binary. Each registers its flags on the CLI11 app and returns the action to
// run once parsing succeeded.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace g4 {

using Action = std::function<int()>;

// g4 logits / g4 generate: the scripted interface used by acceptance checks (keep it stable).
void add_logits_commands(CLI::App& app, Action* action);
// g4 bench: prefill / decode tokens per second.
void add_bench_command(CLI::App& app, Action* action);
// g4 synth / g4 quantize: checkpoint writers.
void add_convert_commands(CLI::App& app, Action* action);
// g4 export: the quantized checkpoint as an MLX-LM directory or a GGUF file.
void add_export_command(CLI::App& app, Action* action);
// g4 perplexity: perplexity, KL divergence and top-1 agreement against a reference model.
void add_perplexity_command(CLI::App& app, Action* action);

// g4 run: one prompt with the chat template, streamed answer.
void add_run_command(CLI::App& app, Action* action);
// g4 chat: interactive multi-turn chat in the terminal.
void add_chat_command(CLI::App& app, Action* action);
// g4 serve: the OpenAI-compatible server.
void add_serve_command(CLI::App& app, Action* action);

// g4 inspect: architecture, storage schemes, sizes, memory at a context size.
void add_inspect_command(CLI::App& app, Action* action);
// g4 tokenize / g4 detokenize: text <-> ids with a tokenizer.json (scripted interface; keep it stable).
void add_tokenize_commands(CLI::App& app, Action* action);

// g4 help [command] and g4 --version.
void add_help_commands(CLI::App& app, Action* action);

}  // namespace g4
