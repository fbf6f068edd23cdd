#!/bin/sh
# Side-by-side decode/prefill throughput: g4 bench (cpu backend) against llama-bench on the equivalent
# GGUF, alternating the two ROUNDS times in the same session with the same threads, then the ratios.
# Usage: bench/compare_llamacpp.sh G4_MODEL_DIR GGUF_FILE [threads=2] [p=512] [n=128] [rounds=2]
# Env: G4 (default build/release/g4), LLAMA_BENCH (default ../peers/lcb/bin/llama-bench).
# It prints the CPU model, the ISA each side ran (g4: its kernel table; llama.cpp: the widest vector
# instructions compiled into its CPU backend, which a GGML_NATIVE build runs as is), and bench/bw_probe's read
# bandwidth before and after each round with the widest loads the CPU has (AVX-512, AVX2 or NEON; BW_ISA=avx2
# forces one), so decode can be set against the bandwidth of the same minutes (bytes per token: docs/PERF.md).
# llama.cpp is built beside the project, never committed (shared/peers/README.md says how).
set -eu
MODEL=$1; GGUF=$2; T=${3:-2}; P=${4:-512}; N=${5:-128}; ROUNDS=${6:-2}
G4=${G4:-build/release/g4}
LB=${LLAMA_BENCH:-../peers/lcb/bin/llama-bench}
out=$(mktemp -d)
# The machine's read bandwidth in the same minutes (bench/bw_probe.cc): the decode floor.
probe() { :; }
if g++ -O2 -pthread -o "$out/bw_probe" "$(dirname "$0")/bw_probe.cc"; then
  probe() { echo "$1: $("$out/bw_probe" 2 "$T" 10 "${BW_ISA:-auto}")"; }
else
  echo "bw_probe did not build: no bandwidth lines"
fi
cpu=$(sed -n 's/^\(model name\|Model\)[[:space:]]*: //p' /proc/cpuinfo | head -1)
[ -n "$cpu" ] || cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
echo "cpu: ${cpu:-unknown}, $(nproc) cores online, flags:$(grep -m1 -ow 'avx2\|avx512f\|avx512_vnni\|avx512_bf16\|asimddp\|sve' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/^/ /')"
echo "g4 isa: $("$G4" bench -m "$MODEL" --backend cpu -p 0 -n 1 -t 1 -r 1 --json | sed -n 's/.*"isa": "\([^"]*\)".*/\1/p')"
# llama.cpp's CPU code (libggml-cpu*.so beside llama-bench, else llama-bench itself when linked statically):
# what its hot loops can use, by the registers and instructions in its disassembly.
lcpp_isa() {
  lib=$(ls "$(dirname "$LB")"/libggml-cpu*.so "$(dirname "$LB")"/../lib/libggml-cpu*.so 2>/dev/null | head -1)
  [ -n "$lib" ] || lib=$LB
  objdump -d --no-show-raw-insn "$lib" 2>/dev/null | awk '
    /%zmm/ {z++} /%ymm/ {y++} /vpdpbusd/ {v++} /[[:space:]]sdot[[:space:]]/ {d++} /[[:space:]]v[0-9]+\.(4s|16b)/ {n++}
    END { if (z) printf "avx512%s", (v ? " (vnni)" : ""); else if (y) printf "avx2"; else if (d) printf "neon (dotprod)";
          else if (n) printf "neon"; else printf "unknown (no disassembly)"; }'
}
echo "llama.cpp isa: $(lcpp_isa)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
probe "bandwidth before"
i=1
while [ "$i" -le "$ROUNDS" ]; do
  "$G4" bench -m "$MODEL" --backend cpu -p "$P" -n "$N" -t "$T" -r 2 --json >> "$out/g4.jsonl"
  "$LB" -m "$GGUF" -p "$P" -n "$N" -t "$T" -r 2 -o jsonl >> "$out/lb.jsonl" 2>/dev/null
  echo "round $i done, load $(cut -d' ' -f1-3 /proc/loadavg)"
  probe "bandwidth after round $i"
  i=$((i + 1))
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
d = sys.argv[1]
g4 = [json.loads(l) for l in open(d + "/g4.jsonl")]
lb = [json.loads(l) for l in open(d + "/lb.jsonl")]
def ms(v): return (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0)
g_pp = ms([r["pp_tok_s"] for r in g4]); g_tg = ms([r["tg_tok_s"] for r in g4])
l_pp = ms([r["avg_ts"] for r in lb if r["n_prompt"] > 0]); l_tg = ms([r["avg_ts"] for r in lb if r["n_gen"] > 0])
print(f"prefill  g4 {g_pp[0]:8.2f} ± {g_pp[1]:.2f}   llama.cpp {l_pp[0]:8.2f} ± {l_pp[1]:.2f}   ratio {g_pp[0]/l_pp[0]:.2f}")
print(f"decode   g4 {g_tg[0]:8.2f} ± {g_tg[1]:.2f}   llama.cpp {l_tg[0]:8.2f} ± {l_tg[1]:.2f}   ratio {g_tg[0]/l_tg[0]:.2f}")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -r "$out"
