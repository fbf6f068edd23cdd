// What the MLX and GGUF exporters share: opening and checking the source checkpoint, rounding scales and
// offsets to the target's dtype (refusing overflow), and the change bookkeeping of ExportReport.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "convert/export.h"
#include "io/weight_store.h"
#include "model/model_spec.h"

namespace g4 {

struct ExportSource {
  std::filesystem::path dir;
  nlohmann::ordered_json config;
  ModelSpec spec;
  std::unique_ptr<WeightStore> ws;
};

// Opens a checkpoint directory for export. Refuses GGUF files, paths without config.json, and checkpoints
// holding no quantized weight (with the `g4 quantize` command that makes one). Checks shapes against the config.
ExportSource open_export_source(const std::string& model, const std::string& format);

// A scale or offset rounded to `t` (BF16, F16 or F32) and read back. Throws g4::Error naming the tensor when
// the value is not finite or overflows `t` (F16: |v| > 65504).
float round_param(DType t, double v, const std::string& tensor, const char* what);
void store_param(DType t, float v, void* base, int64_t i);  // v already representable in t

// Source group parameters of row r, group g (the implied zero point when symmetric).
double source_scale(const QuantWeight& q, int64_t r, int64_t g);
double source_zero(const QuantWeight& q, int64_t r, int64_t g);
int source_code(const QuantWeight& q, int64_t r, int64_t k);  // int4: 0..15, int8: -128..127

// The largest target group size in `allowed` (descending) that divides the source group size; 0 when none.
int64_t target_group(int64_t source_gs, std::initializer_list<int64_t> allowed);

void note_change(ExportReport* rep, const std::string& tensor, double change, double scale);

// Writes a small text file (config.json), throwing g4::Error on failure.
void write_text(const std::string& path, const std::string& text);

// Copies the files beside the weights that a runnable model keeps (tokenizer, templates, generation config).
void copy_side_files(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace g4
