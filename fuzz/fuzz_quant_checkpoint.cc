// Fuzzes the readers of quantized safetensors checkpoints: g4's (docs/CHECKPOINT.md: "g4.quant" metadata
// describing tensors stored as .codes, .scales, .zeros parts) and torchao's (ExecuTorch: "tensor_names"
// metadata, Int4Tensor / IntxUnpackedToInt8Tensor parts). Any bytes must give quantized weights whose every
// claimed byte is readable, or one g4::Error.
#include <set>
#include <string>

#include "base/error.h"
#include "fuzz_support.h"
#include "io/g4_checkpoint.h"
#include "io/torchao_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const g4::fuzz::MemfdInput in(data, size);
  try {
    g4::SafetensorsFile f(in.path());
    std::set<std::string> parts;
    if (g4::is_torchao(f)) {
      for (const g4::TorchaoWeight& w : g4::read_torchao(f, &parts)) g4::fuzz::check_quant_weight(w.q);
    } else {
      for (const g4::LoadedQuant& l : g4::read_g4_quant(f, &parts)) g4::fuzz::check_quant_weight(l.q);
    }
  } catch (const g4::Error&) {
  }
  return 0;
}
