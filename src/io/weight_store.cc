#include "io/weight_store.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "base/error.h"
#include "io/g4_checkpoint.h"
#include "io/mlx_checkpoint.h"
#include "io/torchao_checkpoint.h"
#include "quant/gguf_blocks.h"

namespace g4 {

namespace fs = std::filesystem;

namespace {

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

}  // namespace

bool WeightStore::canonical_name(const std::string& n, std::string* out) {
  static const char* kSkipped[] = {"model.vision_tower.", "model.embed_vision.", "model.audio_tower.",
                                   "model.embed_audio.", "vision_tower.", "embed_vision.", "audio_tower.",
                                   "embed_audio.", "model.multi_modal_projector."};
  for (const char* p : kSkipped)
    if (starts_with(n, p)) return false;
  if (starts_with(n, "model.language_model.")) *out = n.substr(21);
  else if (starts_with(n, "language_model.model.")) *out = n.substr(21);
  else if (starts_with(n, "language_model.")) *out = n.substr(15);  // MLX's language_model.lm_head
  else if (starts_with(n, "model.")) *out = n.substr(6);
  else *out = n;
  return true;
}

void WeightStore::add_file(const std::string& path) {
  files_.push_back(std::make_unique<SafetensorsFile>(path));
  const SafetensorsFile& f = *files_.back();
  std::set<std::string> parts;
  for (LoadedQuant& lq : read_g4_quant(f, &parts)) {
    std::string canon;
    if (!canonical_name(lq.spec.name, &canon)) continue;
    quants_.push_back(std::make_unique<QuantWeight>(lq.q));
    StoredWeight w{canon, path, {lq.spec.rows, lq.spec.cols}, nullptr, quants_.back().get()};
    if (!weights_.emplace(canon, w).second)
      throw Error(path + ": tensor '" + lq.spec.name + "' appears twice in the checkpoint (as '" + canon + "')");
  }
  if (mlx_) {
    for (MlxWeight& mw : read_mlx_quant(f, *mlx_, &parts)) {
      std::string canon;
      if (!canonical_name(mw.name, &canon)) continue;
      owned_.push_back(mw.owner);
      quants_.push_back(std::make_unique<QuantWeight>(mw.q));
      if (!weights_.emplace(canon, StoredWeight{canon, path, {mw.q.rows, mw.q.cols}, nullptr, quants_.back().get()}).second)
        throw Error(path + ": tensor '" + mw.name + "' appears twice in the checkpoint (as '" + canon + "')");
    }
  }
  if (is_torchao(f)) {
    for (TorchaoWeight& tw : read_torchao(f, &parts)) {
      std::string canon;
      if (!canonical_name(tw.name, &canon)) continue;
      owned_.push_back(tw.owner);
      quants_.push_back(std::make_unique<QuantWeight>(tw.q));
      if (!weights_.emplace(canon, StoredWeight{canon, path, {tw.q.rows, tw.q.cols}, nullptr, quants_.back().get()}).second)
        throw Error(path + ": tensor '" + tw.name + "' appears twice in the checkpoint (as '" + canon + "')");
    }
  }
  for (const auto& [name, info] : f.tensors()) {
    if (parts.count(name)) continue;
    std::string canon;
    if (!canonical_name(name, &canon)) continue;
    if (!by_name_.emplace(canon, &info).second || !weights_.emplace(canon, StoredWeight{canon, path, info.shape, &info, nullptr}).second)
      throw Error(path + ": tensor '" + name + "' appears twice in the checkpoint (as '" + canon + "')");
  }
}

std::unique_ptr<WeightStore> WeightStore::open(const std::string& path) {
  auto ws = std::unique_ptr<WeightStore>(new WeightStore());
  ws->source_ = path;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error("model path " + path + " does not exist");
  if (!fs::is_directory(path, ec) && is_gguf_file(path)) {
    ws->gguf_ = std::make_unique<GgufWeights>(path);
    for (const auto& [name, info] : ws->gguf_->plain_tensors()) {
      ws->by_name_.emplace(name, &info);
      ws->weights_.emplace(name, StoredWeight{name, path, info.shape, &info, nullptr});
    }
    for (const std::string& name : ws->gguf_->quant_names()) {  // converted when packed (quant_data)
      const GgufTensor* t = ws->gguf_->quant_tensor(name);
      ws->weights_.emplace(name, StoredWeight{name, path, {t->ne[1], t->ne[0]}, nullptr, nullptr, t});
    }
    return ws;
  }
  if (!fs::is_directory(path, ec)) {
    ws->add_file(path);
    return ws;
  }
  const fs::path dir(path);
  if (auto c = read_mlx_quant_config(path)) ws->mlx_ = std::make_unique<MlxQuantConfig>(std::move(*c));
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index, ec)) {
    const std::string ipath = index.string();
    const std::map<std::string, std::string> weight_map = parse_shard_index(read_text_file(ipath), ipath);
    std::set<std::string> shards;
    for (const auto& [name, shard] : weight_map) shards.insert(shard);
    for (const auto& s : shards) ws->add_file((dir / s).string());
    // Every tensor the index promises must be where it says.
    for (const auto& [name, shard] : weight_map) {
      bool found = false;
      for (const auto& f : ws->files_)
        if (fs::path(f->path()).filename() == shard && f->find(name)) found = true;
      if (!found) throw Error(ipath + ": tensor '" + name + "' is listed in " + shard + " but not stored there");
    }
    return ws;
  }
  const fs::path single = dir / "model.safetensors";
  if (fs::exists(single, ec)) {
    ws->add_file(single.string());
    return ws;
  }
  throw Error("no model.safetensors or model.safetensors.index.json in " + path);
}

std::map<std::string, std::string> parse_shard_index(const std::string& text, const std::string& ipath) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ipath + ": not valid JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw Error(ipath + ": no weight_map object");
  std::map<std::string, std::string> out;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it.value().is_string()) throw Error(ipath + ": weight_map entry for '" + it.key() + "' is not a string");
    const std::string shard = it.value().get<std::string>();
    if (shard.empty() || shard.find('/') != std::string::npos || shard.find('\\') != std::string::npos ||
        shard == "." || shard == ".." || shard.find('\0') != std::string::npos)
      throw Error(ipath + ": shard name '" + shard + "' is not a plain file name in the model directory");
    out[it.key()] = shard;
  }
  if (out.empty()) throw Error(ipath + ": weight_map is empty");
  return out;
}

const TensorInfo* WeightStore::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

QuantData WeightStore::quant_data(const StoredWeight& w) const {
  QuantData d;
  if (w.gguf && gguf_) {
    d.owned = gguf_->convert(w.name);
    d.q = d.owned ? &d.owned->q : nullptr;
  } else {
    d.q = w.quant;
  }
  if (!d.q) throw Error(w.file + ": tensor '" + w.name + "' is not quantized");
  return d;
}

bool is_quantized(const StoredWeight& w) { return w.quant || w.gguf; }

uint64_t stored_bytes(const StoredWeight& w) {
  if (w.plain) return w.plain->nbytes;
  if (w.gguf) return w.gguf->nbytes;
  const QuantWeight& q = *w.quant;
  const uint64_t groups = uint64_t(q.rows) * uint64_t(q.groups_per_row());
  return q.code_bytes() + groups * dtype_size(q.scale_dtype) * (q.zeros ? 2 : 1);
}

std::string storage_name(const StoredWeight& w) {
  if (w.plain) return dtype_name(w.plain->dtype);
  if (w.gguf) return std::string("GGUF ") + ggml_type_name(w.gguf->type);
  return w.quant->describe();
}

const TensorInfo& WeightStore::get(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) {
    if (const StoredWeight* w = find_weight(name))
      throw Error(w->file + ": tensor '" + name + "' is quantized (" + storage_name(*w) + ") where a plain tensor is required");
    throw Error("missing tensor '" + name + "' in " + source_);
  }
  return *t;
}

const StoredWeight* WeightStore::find_weight(const std::string& name) const {
  auto it = weights_.find(name);
  return it == weights_.end() ? nullptr : &it->second;
}

const StoredWeight& WeightStore::get_weight(const std::string& name) const {
  const StoredWeight* w = find_weight(name);
  if (!w) throw Error("missing tensor '" + name + "' in " + source_);
  return *w;
}

void WeightStore::release_pages() const {
  for (const auto& f : files_) f->release_pages();
  if (gguf_) gguf_->file().release_pages();
}

std::vector<float> tensor_to_f32(const TensorInfo& t) {
  std::vector<float> out(size_t(t.numel()));
  convert_to_f32(t.dtype, t.data, out.size(), out.data());
  return out;
}

}  // namespace g4
