// A kernel timeline of any CUDA program, g4 unchanged: a CUPTI injection library. Run a program with
//   CUDA_INJECTION64_PATH=build/cuda/libg4_kernel_trace.so G4_KERNEL_TRACE=/tmp/kernels.csv  PROGRAM ...
// and the CUDA driver loads this library at cuInit; it records every kernel's start and end on the GPU
// (CUPTI's concurrent-kernel activity: kernels replayed from CUDA graphs and kernels launched early by PDL
// included, each with its own times) and at exit writes one CSV row per kernel, in start order:
//   start_ns,end_ns,grid,block,name      (times on the GPU's clock; the name demangled, without its arguments)
// bench/kernel_trace.py reads it: where each decode step's time goes, kernel by kernel (docs/PERF.md).
// A benchmark program, not part of g4: it links CUPTI, which the CUDA toolkit ships.
#include <cupti.h>
#include <cxxabi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct Row {
  uint64_t start, end;
  int64_t grid, block;
  std::string name;
};

std::mutex g_mutex;
std::vector<Row>* g_rows = nullptr;  // never freed: the atexit writer may run after static destructors
constexpr size_t kBufferBytes = 8 << 20;

void check(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return;
  const char* msg = nullptr;
  cuptiGetResultString(r, &msg);
  std::fprintf(stderr, "kernel_trace: %s: %s\n", what, msg ? msg : "unknown CUPTI error");
}

// "void g4::cuda::(anonymous namespace)::gemv_q8_kernel<__half, false, 1, 4, 2, 1, false>(...)" ->
// "gemv_q8_kernel<__half, false, 1, 4, 2, 1, false>": the demangled name without return type, namespaces and
// parameters; the mangled name where it does not demangle.
std::string short_name(const char* mangled) {
  if (!mangled) return "?";
  int status = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string s = status == 0 && d ? d : mangled;
  std::free(d);
  // Cut the parameter list: from the '(' that matches the final ')'.
  size_t cut = s.size();
  if (!s.empty() && s.back() == ')') {
    int parens = 0;
    for (size_t i = s.size(); i-- > 0;) {
      if (s[i] == ')') ++parens;
      else if (s[i] == '(' && --parens == 0) {
        cut = i;
        break;
      }
    }
  }
  s.resize(cut);
  // Drop what precedes the function's own name: the return type and the namespaces (outside template brackets).
  int depth = 0;
  size_t begin = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<') ++depth;
    else if (s[i] == '>') --depth;
    else if (depth == 0 && (s[i] == ' ' || (s[i] == ':' && i + 1 < s.size() && s[i + 1] == ':'))) begin = i + 1;
  }
  while (begin < s.size() && s[begin] == ':') ++begin;
  std::string out = s.substr(begin);
  for (char& c : out)
    if (c == ',') c = ';';  // a CSV field
  return out;
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t* buffer, size_t, size_t valid) {
  CUpti_Activity* rec = nullptr;
  std::vector<Row> got;
  while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
    if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL && rec->kind != CUPTI_ACTIVITY_KIND_KERNEL) continue;
    const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
    got.push_back(Row{k->start, k->end, int64_t(k->gridX) * k->gridY * k->gridZ,
                      int64_t(k->blockX) * k->blockY * k->blockZ, short_name(k->name)});
  }
  std::free(buffer);
  size_t dropped = 0;
  if (cuptiActivityGetNumDroppedRecords(ctx, stream, &dropped) == CUPTI_SUCCESS && dropped > 0)
    std::fprintf(stderr, "kernel_trace: CUPTI dropped %zu records: the timeline has holes\n", dropped);
  std::lock_guard<std::mutex> lock(g_mutex);
  g_rows->insert(g_rows->end(), got.begin(), got.end());
}

void write_rows() {
  check(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), "flush");
  const char* path = std::getenv("G4_KERNEL_TRACE");
  if (!path || !*path) path = "/tmp/g4-kernels.csv";
  std::lock_guard<std::mutex> lock(g_mutex);
  std::sort(g_rows->begin(), g_rows->end(), [](const Row& a, const Row& b) { return a.start < b.start; });
  FILE* f = std::fopen(path, "w");
  if (!f) {
    std::fprintf(stderr, "kernel_trace: cannot write %s\n", path);
    return;
  }
  std::fprintf(f, "start_ns,end_ns,grid,block,name\n");
  for (const Row& r : *g_rows)
    std::fprintf(f, "%llu,%llu,%lld,%lld,%s\n", (unsigned long long)r.start, (unsigned long long)r.end,
                 (long long)r.grid, (long long)r.block, r.name.c_str());
  std::fclose(f);
  std::fprintf(stderr, "kernel_trace: %zu kernels -> %s\n", g_rows->size(), path);
}

}  // namespace

// Called by the CUDA driver when CUDA_INJECTION64_PATH names this library.
extern "C" __attribute__((visibility("default"))) int InitializeInjection(void) {
  g_rows = new std::vector<Row>();
  g_rows->reserve(1 << 20);
  check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "register callbacks");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "enable concurrent kernel records");
  std::atexit(write_rows);
  return 1;
}
