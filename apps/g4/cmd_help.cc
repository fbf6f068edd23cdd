// g4 --version: version, git commit, backends built, the default backend and the CPU kernels the cpu
// backend dispatches to. g4 help [command]: the help of g4 or of one command.
#include <cstdio>
#include <string>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "base/error.h"
#include "commands.h"
#include "g4_version.h"

namespace g4 {

namespace {

// What each CPU kernel table needs from the CPU (the checks in cpu/kernels_generic.cc).
const char* isa_features(const std::string& name) {
  if (name == "avx512") return "AVX-512 F/BW/VL/VNNI";
  if (name == "avx2") return "AVX2, FMA, F16C";
  if (name == "neon") return "NEON";
  if (name == "neon-dot") return "NEON with dot product";
  return "portable C++, no SIMD intrinsics";
}

std::string version_text() {
  std::string s = std::string("g4 ") + G4_VERSION + " (git " + G4_GIT_COMMIT + ")\nbackends built:";
  for (const std::string& b : built_backends()) s += " " + b;
  s += "\ndefault backend: " + default_backend_name();
  std::string avail;
  for (const cpu::KernelTable* k : cpu::available_kernels()) avail += std::string(avail.empty() ? "" : ", ") + k->name;
  try {
    const std::string used = cpu::select_kernels().name;
    s += "\ncpu kernels: " + used + " (" + isa_features(used) + "); this CPU can run: " + avail;
  } catch (const Error& e) {
    s += std::string("\ncpu kernels: ") + e.what();
  }
  return s;
}

}  // namespace

void add_help_commands(CLI::App& app, Action* action) {
  app.set_version_flag("--version", version_text, "print the version, git commit, backends and CPU kernels, and exit");
  static std::string command;
  CLI::App* h = app.add_subcommand("help", "help on g4 or on one command (g4 help run)");
  h->add_option("command", command, "the command to explain");
  CLI::App* root = &app;
  h->callback([action, root] {
    *action = [root] {
      if (command.empty()) {
        // Through the formatter: root->help() would describe the selected subcommand, i.e. `help` itself.
        std::fputs(root->get_formatter()->make_help(root, "g4", CLI::AppFormatMode::Normal).c_str(), stdout);
        return 0;
      }
      CLI::App* sub = nullptr;
      for (CLI::App* c : root->get_subcommands([](CLI::App*) { return true; }))
        if (c->get_name() == command) sub = c;
      if (!sub || command == "help") throw Error("unknown command '" + command + "' (g4 help lists them)");
      std::fputs(sub->help("g4").c_str(), stdout);
      return 0;
    };
  });
}

}  // namespace g4
