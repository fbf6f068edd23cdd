// g4 inspect: what a checkpoint holds — architecture, per-layer geometry, the storage scheme of every
// weight group, parameter and byte counts, and the memory a given context size needs. Reads metadata
// and headers only; no weights are converted or packed.
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "backend/backend.h"
#include "base/error.h"
#include "base/progress.h"
#include "commands.h"
#include "engine/kv_options.h"
#include "flag_check.h"
#include "io/weight_store.h"
#include "model/model_spec.h"
#include "run_options.h"

namespace g4 {

namespace {

struct InspectOpts {
  std::string model, backend = "auto";
  KvFlags kv;
  int64_t ctx = 4096;
  int parallel = 1;
  bool json = false;
};

// A directory holding only config.json (a user looking before downloading the weights) has no weights.
bool has_weights(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) return true;
  for (const auto& e : std::filesystem::directory_iterator(path, ec))
    if (e.path().extension() == ".safetensors" || e.path().extension() == ".gguf") return true;
  return false;
}

// The KV cache of the chosen options, per layer and in all, as one JSON object.
nlohmann::json kv_json(const ModelSpec& s, const KvCacheOptions& kv) {
  nlohmann::json layers = nlohmann::json::array();
  const std::vector<KvLayerSpec> specs = kv_layer_specs(s, kv);
  for (size_t i = 0; i < specs.size(); ++i) {
    const KvLayerSpec& k = specs[i];
    const int64_t bytes = k.capacity * kv_bytes_per_position(k) * kv.n_seq;
    layers.push_back({{"layer", i}, {"kind", s.layers[i].sliding ? "sliding" : "full"}, {"slots", k.capacity},
                      {"ring", k.ring}, {"keys_derived", k.k_from_v}, {"bytes_per_position", kv_bytes_per_position(k)},
                      {"bytes", bytes}});
  }
  return {{"ctx_size", kv.ctx_size}, {"sequences", kv.n_seq}, {"cache_type_k", kv_type_name(kv.k_type)},
          {"cache_type_v", kv_type_name(kv.v_type)}, {"ring_slack", kv.slack}, {"keys_derived", kv.derive_k},
          {"bytes", kv_cache_bytes(s, kv)}, {"layers", layers}};
}

// "layers.12.mlp.up_proj.weight" -> "mlp.up_proj.weight" (the role, for grouping).
std::string role_of(const std::string& name) {
  static const std::regex layer("^layers\\.[0-9]+\\.");
  return std::regex_replace(name, layer, "");
}

int run_inspect(const InspectOpts& o) {
  const ModelSpec s = load_model_config(o.model);
  const std::string backend = resolve_backend_name(o.backend);
  const KvCacheOptions kv = kv_options_for(backend, o.ctx, o.parallel, o.kv);
  const nlohmann::json kvj = kv_json(s, kv);
  const int64_t kv_bytes = kvj["bytes"];
  std::unique_ptr<WeightStore> ws;
  if (has_weights(o.model)) ws = WeightStore::open(o.model);
  if (o.json) {
    nlohmann::json j = {{"model", o.model}, {"backend", backend}, {"vocab_size", s.vocab_size}, {"hidden_size", s.hidden_size},
                        {"layers", s.n_layers()}, {"max_position", s.max_position}, {"kv_cache_bytes", kv_bytes},
                        {"kv_cache", kvj}, {"weights_bytes", nullptr}, {"parameters", nullptr}};
    if (ws) {
      uint64_t params = 0, bytes = 0;
      for (const auto& [name, w] : ws->weights()) {
        uint64_t n = 1;
        for (int64_t d : w.shape) n *= uint64_t(d);
        params += n;
        bytes += stored_bytes(w);
      }
      j["weights_bytes"] = bytes;
      j["parameters"] = params;
      j["total_bytes"] = bytes + uint64_t(kv_bytes);
    }
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("model      %s (%s)\n", o.model.c_str(), !ws ? "config only: no weights" : ws->gguf() ? "GGUF" : "safetensors");
  std::printf("text model vocab %d, hidden %d, MLP %d, %d layers, %d query heads, softcap %g, rms eps %g\n",
              s.vocab_size, s.hidden_size, s.intermediate_size, s.n_layers(), s.n_heads, double(s.final_softcap),
              double(s.rms_eps));
  // Layers of identical geometry, printed once each with their indices.
  std::printf("layers\n");
  auto same = [](const LayerSpec& a, const LayerSpec& b) {
    return a.sliding == b.sliding && a.head_dim == b.head_dim && a.n_kv_heads == b.n_kv_heads && a.window == b.window &&
           a.rope_theta == b.rope_theta && a.rope_pairs == b.rope_pairs && a.k_eq_v == b.k_eq_v;
  };
  std::vector<bool> printed(size_t(s.n_layers()), false);
  for (int i = 0; i < s.n_layers(); ++i) {
    if (printed[size_t(i)]) continue;
    const LayerSpec& L = s.layers[size_t(i)];
    std::vector<int> idx;
    for (int k = i; k < s.n_layers(); ++k)
      if (same(s.layers[size_t(k)], L)) {
        idx.push_back(k);
        printed[size_t(k)] = true;
      }
    std::string list;
    for (size_t k = 0; k < idx.size() && k < 12; ++k) list += (k ? "," : "") + std::to_string(idx[k]);
    if (idx.size() > 12) list += ",... (" + std::to_string(idx.size()) + " layers)";
    const std::string window = L.sliding ? "window " + std::to_string(L.window) : "no window";
    std::printf("  %-9s %s: head_dim %d, KV heads %d, %s, RoPE theta %g on %d of %d pairs%s\n",
                L.sliding ? "sliding" : "full", list.c_str(), L.head_dim, L.n_kv_heads, window.c_str(),
                double(L.rope_theta), L.rope_pairs, L.head_dim / 2, L.k_eq_v ? ", K=V" : "");
  }

  const std::string kv_line = Progress::amount(double(kv_bytes), "B") + " for " + std::to_string(o.parallel) +
                              (o.parallel == 1 ? " sequence" : " sequences") + " of " + std::to_string(o.ctx) +
                              " tokens on " + backend + " (K " + kv_type_name(kv.k_type) + ", V " +
                              kv_type_name(kv.v_type) + (kv.derive_k ? ", K=V layers store V only" : "") + ")";
  if (!ws) {
    std::printf("KV cache   %s\n", kv_line.c_str());
    return 0;
  }
  struct Group { uint64_t count = 0, params = 0, bytes = 0; };
  std::map<std::pair<std::string, std::string>, Group> groups;  // (role, storage)
  uint64_t params = 0, bytes = 0, copy_params = 0;
  // With tied embeddings a stored lm_head.weight (g4 quantize writes one to quantize it apart) is a second
  // copy of embed_tokens: its bytes are stored, its parameters are not the model's.
  const bool lm_head_copy = s.tie_embeddings && ws->find_weight("lm_head.weight") && ws->find_weight("embed_tokens.weight");
  for (const auto& [name, w] : ws->weights()) {
    uint64_t n = 1;
    for (int64_t d : w.shape) n *= uint64_t(d);
    Group& g = groups[{role_of(name), storage_name(w)}];
    ++g.count;
    g.params += n;
    g.bytes += stored_bytes(w);
    if (lm_head_copy && name == "lm_head.weight") copy_params = n;
    else params += n;
    bytes += stored_bytes(w);
  }
  std::printf("weights (role, storage, tensors, parameters, bytes)\n");
  for (const auto& [key, g] : groups)
    std::printf("  %-42s %-28s %4llu %14llu %10s\n", key.first.c_str(), key.second.c_str(),
                static_cast<unsigned long long>(g.count), static_cast<unsigned long long>(g.params),
                Progress::amount(double(g.bytes), "B").c_str());
  std::printf("total      %llu parameters, %s = %llu bytes (%.2f bits per parameter)\n",
              static_cast<unsigned long long>(params), Progress::amount(double(bytes), "B").c_str(),
              static_cast<unsigned long long>(bytes), params ? 8.0 * double(bytes) / double(params) : 0.0);
  if (copy_params)
    std::printf("           lm_head.weight stores the tied embedding a second time (%llu parameters not counted again)\n",
                static_cast<unsigned long long>(copy_params));

  std::printf("KV cache   %s\nweights+KV %s\n", kv_line.c_str(), Progress::amount(double(bytes + uint64_t(kv_bytes)), "B").c_str());
  return 0;
}

}  // namespace

void add_inspect_command(CLI::App& app, Action* action) {
  static InspectOpts o;
  CLI::App* c = app.add_subcommand("inspect", "show a checkpoint's architecture, storage schemes, sizes and memory needs");
  c->add_option("-m,--model", o.model, "checkpoint directory, .safetensors or .gguf file")->required();
  c->add_option("--backend", o.backend, "the backend whose KV cache defaults to show (auto, cpu, cuda, ref)");
  add_kv_flags(c, o.kv);
  c->add_option("--parallel", o.parallel, "sequences held at once (as g4 serve --parallel)")->check(in_range(1, 4096));
  c->add_flag("--json", o.json, "print one JSON object: kv_cache_bytes, weights_bytes (null without weights), per-layer cache");
  c->add_option("-c,--ctx-size", o.ctx, "context size for the memory estimate")->check(in_range(int64_t(1), int64_t(1) << 24));
  c->callback([action] { *action = [] { return run_inspect(o); }; });
}

}  // namespace g4
