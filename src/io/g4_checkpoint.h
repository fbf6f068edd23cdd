// The g4 quantized checkpoint (docs/CHECKPOINT.md): safetensors files whose __metadata__ key "g4.quant"
// describes each quantized logical tensor NAME [rows, cols]; its parts are stored as NAME.codes
// (int4: U8 [rows, cols/2], quant/format.h nibble order; int8: I8 [rows, cols]), NAME.scales and, when
// asymmetric, NAME.zeros ([rows, cols/gs], scale dtype). Plain tensors keep their names and dtypes.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "io/safetensors_stream.h"
#include "quant/format.h"
#include "quant/quantizer.h"

namespace g4 {

inline constexpr const char* kG4QuantKey = "g4.quant";
inline constexpr int kG4QuantVersion = 1;

struct QuantTensorSpec {
  std::string name;
  int64_t rows = 0, cols = 0;
  QuantScheme scheme;  // group_size resolved (never 0 here)
};

std::string quant_codes_name(const std::string& logical);
std::string quant_scales_name(const std::string& logical);
std::string quant_zeros_name(const std::string& logical);

// The stored tensors of one quantized logical tensor, in file order (codes, scales[, zeros]).
std::vector<TensorDecl> quant_stored_tensors(const QuantTensorSpec& s);
// The value of the "g4.quant" metadata entry describing `specs`.
std::string quant_metadata_json(const std::vector<QuantTensorSpec>& specs);

struct LoadedQuant {
  QuantTensorSpec spec;
  QuantWeight q;  // points into the file's mapping
};

// Reads the quantized tensors described by f's "g4.quant" metadata (none when the key is absent) and
// adds the stored part names to *parts. Validates the description and every part's dtype and shape;
// throws g4::Error naming the file and tensor. Stored tensors that look like parts (.codes/.scales/.zeros)
// but belong to no described tensor are errors too.
std::vector<LoadedQuant> read_g4_quant(const SafetensorsFile& f, std::set<std::string>* parts);

}  // namespace g4
