// What a card is, from the attributes it reports (host arithmetic, so that tests check it without a GPU).
#pragma once

namespace g4::cuda {

// Peak memory bandwidth in bytes/s from the memory clock (kHz, as cudaDevAttrMemoryClockRate reports it) and
// the bus width in bits, two transfers a clock; 0 when either is unknown (not positive).
inline double memory_peak_bytes_s(int clock_khz, int bus_bits) {
  if (clock_khz <= 0 || bus_bits <= 0) return 0;
  return 2.0 * double(clock_khz) * 1e3 * double(bus_bits) / 8;
}

// Cards whose memory peaks below 4 TB/s (an H100 80GB HBM3: 3.35) take the GEMV shapes measured on them
// (gemv_q8.cu narrow_memory); an unknown peak counts as fast (the H200's shapes).
inline bool narrow_memory_peak(int clock_khz, int bus_bits) {
  const double peak = memory_peak_bytes_s(clock_khz, bus_bits);
  return peak > 0 && peak < 4e12;
}

}  // namespace g4::cuda
