#pragma once
// Tuning switches from the environment (the CUDA backend's comparisons: docs/PERF.md names each), read once
// by the code that uses them (a static). Host code only.

#include <cstdlib>

namespace g4::cuda {

// An integer from the environment (the kernels' tuning switches, for comparisons); `fallback` when unset or empty.
inline int env_int(const char* name, int fallback) {
  const char* e = std::getenv(name);
  return e && *e ? std::atoi(e) : fallback;
}

// N comma-separated integers from the environment ("2,1,4,1": a kernel shape, for comparisons) into v, read as
// sscanf("%d,%d,...") would (what follows the last one is ignored); false, v untouched, when unset or short.
// Colons separate them too ("2:1:4:1"), for scripts whose lists of settings are comma-joined.
template <int N>
bool env_ints(const char* name, int (&v)[N]) {
  const char* e = std::getenv(name);
  if (!e) return false;
  int got[N];
  for (int i = 0; i < N; ++i) {
    char* end = nullptr;
    const long x = std::strtol(e, &end, 10);
    if (end == e || (i + 1 < N && *end != ',' && *end != ':')) return false;
    got[i] = int(x);
    e = end + 1;
  }
  for (int i = 0; i < N; ++i) v[i] = got[i];
  return true;
}

// An on/off switch: "0" is off, another integer on (G4_CUDA_FUSE_QX=0); unset or empty, the default.
inline bool env_switch(const char* name, bool on_by_default) { return env_int(name, on_by_default ? 1 : 0) != 0; }

}  // namespace g4::cuda
