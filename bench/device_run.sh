#!/bin/sh
# One call on the GPU machine: the CUDA tests with G4_REQUIRE_GPU=1 (a run without a usable GPU fails),
# then benchmarks on a synthetic 60-layer 31B int4 checkpoint written there by `g4 synth`; a short table
# last. Run from the repository root. The CUDA build travels as .devbin/cuda.tar.xz (g4, stripped: the
# working tree may carry 64 MiB) and the shared libraries the GPU machine lacks as
# .devlibs/, the test binaries as .devtests/; make them here with `bench/device_run.sh --pack` and name
# them in the call's carry.
# The test binaries have this checkout's absolute paths compiled in; the script links them to here.
# Logs go to $OUT (the device tool's output folder) or /tmp/g4-device.
set -u
if [ "${1:-}" = "--pack-alt" ]; then
  # --pack-alt G4 [G4 ...] (after --pack): other builds' g4 beside this one, as build/cuda/g4-alt, g4-alt2, ...
  # there, for an A/B of builds (AB="G4_BIN=build/cuda/g4-alt G4_BIN=build/cuda/g4-alt2"). They share one
  # archive (xz finds their common code: +0.3 MB a build instead of +3.8) and the benchmark binaries and
  # trace library stay behind, so that the call still carries under 64 MiB.
  # attn=PATH: an older build's cuda_attn_bench as cuda_attn_bench-alt (mode attn), this build's kept beside it.
  # keep=NAME: this build's benchmark NAME (e.g. cuda_gemv_bench, for modes multi and gemv-ncu) kept too.
  shift; names="g4"; n=""
  for f in "$@"; do
    case "$f" in
      keep=*) [ -f "/tmp/g4-devbin/${f#keep=}" ] && names="$names ${f#keep=}" || exit 1
              continue;;
      attn=*) cp "${f#attn=}" /tmp/g4-devbin/cuda_attn_bench-alt && strip /tmp/g4-devbin/cuda_attn_bench-alt &&
                names="$names cuda_attn_bench cuda_attn_bench-alt" || exit 1
              continue;;
    esac
    cp "$f" "/tmp/g4-devbin/g4-alt$n" && strip "/tmp/g4-devbin/g4-alt$n" && names="$names g4-alt$n" || exit 1
    n=$(( ${n:-1} + 1 ))
  done
  tar -C /tmp/g4-devbin -cf - $names | xz -9e -T2 > .devbin/cuda.tar.xz && ls -la .devbin && echo "packed: $names"
  exit 0
fi
if [ "${1:-}" = "--pack" ]; then
  rm -rf .devlibs .devbin .devtests /tmp/g4-devbin && mkdir -p .devlibs .devbin .devtests
  ldd build/cuda/g4 | awk '/simdjson|httplib|brotli|libedit|libbsd|libmd|libtinfo/ {print $3}' | xargs -I{} cp -L {} .devlibs/
  for f in g4 cuda_decode_bench cuda_gemv_bench cuda_attn_bench cuda_boundary_bench tests/backend_cuda/test_backend_cuda tests/model/test_model tests/e2e/test_cli \
           tests/engine/test_assistant; do
    mkdir -p "/tmp/g4-devbin/$(dirname "$f")" && cp "build/cuda/$f" "/tmp/g4-devbin/$f" && strip "/tmp/g4-devbin/$f"
  done
  # g4 alone and the test binaries apart, so that a call that needs only g4 carries less.
  # xz -9e: its 64 MiB window spans the binaries, which share most of their code (7.2 -> 3.3 MB for the tests);
  # the tracked tree is about 52 MB of the 64 MiB a call may carry.
  # The kernel timeline (trace mode): bench/kernel_trace.cc's library and the CUPTI it links.
  cp build/cuda/libg4_kernel_trace.so /tmp/g4-devbin/ && strip /tmp/g4-devbin/libg4_kernel_trace.so &&
    cp -L "$(ldd build/cuda/libg4_kernel_trace.so | awk '/libcupti/ {print $3}')" /tmp/g4-devbin/
  tar -C /tmp/g4-devbin -cf - g4 cuda_decode_bench cuda_gemv_bench cuda_attn_bench cuda_boundary_bench libg4_kernel_trace.so \
    $(cd /tmp/g4-devbin && ls libcupti.so.*) | xz -9e -T2 > .devbin/cuda.tar.xz &&
    tar -C /tmp/g4-devbin -cf - tests | xz -9e -T2 > .devtests/tests.tar.xz &&
    pwd > .devbin/root && ls -la .devbin .devtests .devlibs
  echo "build dir compiled into the tests: $(pwd)"
  exit 0
fi
MODE=${1:-all}
case "$MODE" in
  all|tests|bench|batch|depth|knockout|sampling|spec|ab|trace|goals|gemv-ncu|gemv-sol|attn|attn-ncu|boundary|multi) ;;
  *) echo "device_run.sh: unknown mode '$MODE' (--pack, or one of: all tests bench batch depth knockout sampling spec ab trace goals gemv-ncu gemv-sol attn attn-ncu boundary multi)" >&2
     exit 2;;
esac
HERE=$(cat .devbin/root 2>/dev/null || true)
if [ -f .devbin/cuda.tar.xz ]; then
  mkdir -p build/cuda && tar -C build/cuda -xJf .devbin/cuda.tar.xz
  [ -f .devtests/tests.tar.xz ] && tar -C build/cuda -xJf .devtests/tests.tar.xz
  [ -n "$HERE" ] && [ ! -e "$HERE" ] && mkdir -p "$(dirname "$HERE")" && ln -s "$PWD" "$HERE"
fi
B=build/cuda
LOG=${OUT:-/tmp/g4-device}
# BUNDLE=DIR: the logs go to a scratch folder and come back as one DIR/MODE.tgz when the script ends (the
# device tool returns at most 8 files from its $OUT; several modes in one call: BUNDLE=$OUT each).
if [ -n "${BUNDLE:-}" ]; then
  LOG=/tmp/g4-bundle-$MODE && rm -rf "$LOG" && mkdir -p "$BUNDLE" &&
    trap 'tar -C /tmp -czf "$BUNDLE/$MODE.tgz" "g4-bundle-$MODE"' EXIT
fi
mkdir -p "$LOG"
export LD_LIBRARY_PATH="$PWD/.devlibs:${LD_LIBRARY_PATH:-}"
export G4_REQUIRE_GPU=1
SYNTH=${SYNTH_DIR:-/tmp/g4-m60}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# MODE: all, tests, bench, batch (only the batched-decode rows), depth (decode at depth, f32 vs bf16),
# knockout (the replayed step without each kind of kernel, docs/PERF.md), trace (the replayed step's kernel
# timeline through CUPTI: what each kernel adds to the step, bench/kernel_trace.py),
# goals (the open issues' speed goals measured twice, with a table of them last),
# sampling (the token choice on the device against the host's), spec (speculative decoding: the shipped
# tiny model with its trained assistant and with prompt lookup against plain greedy, then the 31B synth's
# verify cost and oracle drafter), or ab (environment switches against the default, alternating twice, bench
# arguments $AB_ARGS: $AB=$AB_VALUE, default 0, or AB="NAME=VALUE ..." for several in one call; below), or gemv-ncu (where the tensor-core GEMV of 8 and of 4 tokens over a Q4_0 layout stalls,
# 21504 x 5376: bench/ncu_hotspots.sh on cuda_gemv_bench; no tests, no synth), or attn (decode attention
# alone under settings, against an older build's; below), or attn-ncu (where a layer's split
# kernel waits: one row, a verify's packed rows, the full layer's derived keys; below), or boundary (bench/cuda_boundary_bench: kernel
# boundaries against a persistent kernel's grid barriers; no tests, no synth), or multi (the 1-8-token GEMV
# alone under settings; below)
if [ "$MODE" = boundary ]; then
  # What a kernel boundary costs and what a persistent kernel would save (bench/cuda_boundary_bench.cu):
  # BOUNDARY_ARGS = MB a producer reads, replays, KB staged (default "8,24,64 10 64"); no tests, no synth.
  $B/cuda_boundary_bench ${BOUNDARY_ARGS:-8,24,64 10 64}
  exit $?
fi
# ncu_sections REGEX CMD...: one launch (after 3) of the kernel whose mangled name matches REGEX under
# Nsight Compute's speed-of-light, launch, occupancy, workload-distribution (per-SM active cycles), scheduler,
# warp-state and memory sections, the lines that say how busy the SMs are and where the warps wait.
ncu_sections() {
  _re=$1; shift
  ${NCU:-/usr/local/cuda/bin/ncu} --kernel-name-base mangled -k "regex:$_re" \
    --launch-skip 3 --launch-count 1 --section SpeedOfLight --section LaunchStats --section Occupancy \
    --section WorkloadDistribution --section SchedulerStats --section WarpStateStats --section MemoryWorkloadAnalysis \
    "$@" 2>&1 |
    grep -E "Duration|Throughput|Waves|Grid Size|Registers|Achieved|Theoretical Occ|Active Cycles|Elapsed Cycles|Eligible|Issued Warp|No Eligible|Warp Cycles|Hit Rate|Mem Busy|Max Bandwidth|Stall" |
    head -${SOL_LINES:-40}
}
if [ "$MODE" = gemv-sol ]; then
  # How busy the SMs are in one 8-token tensor-core GEMV launch over a Q4_0 layout: a short output (5376 x
  # 21504, K split 4: 168 tiles for 264 resident blocks) against a long one (21504 x 5376, K split 1), Nsight
  # Compute's speed-of-light, launch, occupancy and workload-distribution sections (per-SM active cycles: an
  # idle or half-loaded SM shows there), and where its warps wait (scheduler, warp state, memory sections).
  for spec in "4 5376x21504" "1 21504x5376"; do
    set -- $spec
    echo "== gemv_q8_tc_kernel<__half, symmetric, KS $1, 8 tokens a column group>, $2"
    ncu_sections "gemv_q8_tc_kernelI6__halfLb0ELi$1ELi8E" $B/cuda_gemv_bench 3 multi 400 "$2"
  done
  exit 0
fi
if [ "$MODE" = attn-ncu ]; then
  # A layer's split kernel in bench/cuda_attn_bench at depth ATTN_DEPTHS (default 512), for each kernel ATTN_HOT
  # names: 0 the sliding layer's one query row (decode_tc_kernel<256, stored keys, unpacked>; the model's
  # 1,280-slot ring), 1 a verify's four rows packed into one block (<256, stored, packed>; the default), f the
  # full layer's one row with derived keys (<512, derived, unpacked>). For each: ncu_sections, then the hottest
  # instructions (bench/ncu_hotspots.sh; its report and SASS table in ncu-attn-N/) and the instructions phase
  # by phase (bench/ncu_regions.py). No tests, no synth.
  for p in ${ATTN_HOT:-1}; do
    case $p in
      0) re=decode_tc_kernelILi256ELb0ELb0E shape=sliding ;;
      1) re=decode_tc_kernelILi256ELb0ELb1E shape=sliding ;;
      f) re=decode_tc_kernelILi512ELb1ELb0E shape=full-derived ;;
      *) echo "attn-ncu: ATTN_HOT takes 0, 1 or f, not '$p'" >&2; exit 2 ;;
    esac
    echo "== $re, $shape, depth ${ATTN_DEPTHS:-512}"
    ncu_sections "$re" $B/cuda_attn_bench 3 "${ATTN_DEPTHS:-512}" $shape
    echo "== hottest instructions, $re"
    NCU_ARGS="--kernel-name-base mangled" SKIP=3 TOP=${TOP:-40} OUT="$LOG/ncu-attn-$p" sh bench/ncu_hotspots.sh \
      "$re" $B/cuda_attn_bench 3 "${ATTN_DEPTHS:-512}" $shape 2>&1 | tail -${NCU_TAIL:-60}
    python3 bench/ncu_regions.py "$LOG/ncu-attn-$p/hot_sass.csv" 2>&1 | head -40  # (by phase: bench/ncu_regions.py)
  done
  exit 0
fi
if [ "$MODE" = gemv-ncu ]; then
  # NCU_KERNELS: mangled-name regexes, default the 8- and 4-token tensor-core kernels (f16 scales, symmetric, K
  # split 1: TPG 4 is the first a 3-token launch takes); e.g. "gemv_q8_kernelI6__halfLb0ELi1E" for the one-token
  # kernel on the same shape. NCU_SHAPE: the weight, default 21504x5376.
  for re in ${NCU_KERNELS:-gemv_q8_tc_kernelI6__halfLb0ELi1ELi8E gemv_q8_tc_kernelI6__halfLb0ELi1ELi4E}; do
    echo "== $re, ${NCU_SHAPE:-21504x5376}"
    NCU_ARGS="--kernel-name-base mangled" SKIP=1 TOP=${TOP:-40} OUT="$LOG/ncu-$re" sh bench/ncu_hotspots.sh \
      "$re" $B/cuda_gemv_bench 3 multi 400 ${NCU_SHAPE:-21504x5376} 2>&1 | tail -${NCU_TAIL:-75}
  done
  exit 0
fi
summary() {
  grep -E "^\[  (PASSED|FAILED|SKIPPED) " "$1" | sed "s|^|$(basename "$1" .log): |" | grep . ||
    echo "$(basename "$1" .log): no gtest summary (timed out or crashed); its last line: $(tail -1 "$1")"
}
# under SETTING CMD...: CMD under a setting of TEST_SETTINGS / AB (NAME=VALUE, commas joining several).
under() { _set=$1; shift; env $(echo "$_set" | tr , " ") "$@"; }
if [ "$MODE" = multi ]; then
  # The integer GEMV of 1-8 tokens alone (cuda_gemv_bench multi: the default kernel of each T, us a launch)
  # under each of MULTI_SETTINGS ("default", or NAME=VALUE with commas joining several), for the shapes of
  # MULTI_SHAPES (default o, down, gate/up), two rounds alternating; a line per (format, shape, T, setting)
  # with both rounds' us. No tests, no synth. MULTI_ALL=1: instead, each shape's whole table once (every compiled
  # shape of the kernel, us and % of copy bandwidth: the one-token shapes' sweep on a new card).
  if [ -n "${MULTI_ALL:-}" ]; then
    for sh in ${MULTI_SHAPES:-5376x8192 5376x21504 21504x5376}; do
      $B/cuda_gemv_bench 9 multi 400 "$sh" 2>&1 | grep -E "^(format|int4|q4_0)"
    done | tee "$LOG/multi.txt"
    exit 0
  fi
  for r in 1 2; do
    for sw in ${MULTI_SETTINGS:-default}; do
      e=$sw; [ "$sw" = default ] && e=""
      for sh in ${MULTI_SHAPES:-5376x8192 5376x21504 21504x5376}; do
        under "$e" timeout "${RUN_TIMEOUT:-240}" $B/cuda_gemv_bench 9 multi 400 "$sh" 2>&1 | awk -v s="$sw" '/^(int4|q4_0)/ {print $1, $2, $3, s, $4}'
      done
    done
  done | awk '{k = $1 " " $2 " " $3 " " $4; if (!(k in u)) o[n++] = k; u[k] = u[k] " " $5}
              END {for (i = 0; i < n; i++) print o[i] ":" u[o[i]]}' | sort -k1,1 -k2,2 -k3,3n
  exit 0
fi
if [ "$MODE" = attn ]; then
  # Decode attention alone (bench/cuda_attn_bench.cu: a layer's split kernel and merge, one query row and a
  # verify's four) under each of ATTN_SETTINGS ("default", or NAME=VALUE with commas joining several;
  # G4_CUDA_KNOCKOUT=combine leaves the merge out), then an older build's benchmark if carried
  # (cuda_attn_bench-alt, --pack-alt attn=PATH); two rounds alternating; no tests, no synth.
  for r in 1 2; do
    for sw in ${ATTN_SETTINGS:-default G4_CUDA_ATTN_PACK=0 G4_CUDA_KNOCKOUT=combine G4_CUDA_ATTN_PACK=0,G4_CUDA_KNOCKOUT=combine}; do
      e=$sw; [ "$sw" = default ] && e=""
      under "$e" $B/cuda_attn_bench 20 "${ATTN_DEPTHS:-512,4096}" "${ATTN_SHAPE:-sliding}" | grep -E "^(sliding|full)" |
        sed "s|^|$sw |"
    done
    [ -x $B/cuda_attn_bench-alt ] && $B/cuda_attn_bench-alt 20 "${ATTN_DEPTHS:-512,4096}" "${ATTN_SHAPE:-sliding}" |
      grep -E "^(sliding|full)" | sed "s|^|older build |"
  done
  exit 0
fi
if [ "$MODE" != bench ] && [ -z "${SKIP_TESTS:-}" ]; then  # SKIP_TESTS=1: a second mode in the same call
  # Each test binary under a time limit (TEST_TIMEOUT seconds, default 300), so that a kernel that hangs costs
  # that much of the call, not all of it (the log then ends without gtest's summary).
  tl="timeout ${TEST_TIMEOUT:-300}"
  # (the bulk-copy GEMV, new and not yet run on a GPU, apart: a hang there leaves the other tests' results)
  $tl $B/tests/backend_cuda/test_backend_cuda --gtest_filter='-*Bulk*' > "$LOG/cuda_tests.log" 2>&1
  timeout 120 $B/tests/backend_cuda/test_backend_cuda --gtest_filter='*Bulk*' > "$LOG/cuda_bulk.log" 2>&1
  $tl $B/tests/model/test_model --gtest_filter='*Sequences*/2' > "$LOG/cuda_sequences.log" 2>&1
  $tl $B/tests/e2e/test_cli --gtest_filter='*Cuda*' > "$LOG/cuda_cli.log" 2>&1
  $tl $B/tests/engine/test_assistant --gtest_filter='*ShippedAssistant*' > "$LOG/cuda_assistant.log" 2>&1
  # Speculative decoding on cuda: greedy with n-gram drafts must give plain greedy's tokens.
  P="And God said, Let there be light: and there was light. And God said, Let there be light: and there was"
  for d in "" "--draft-ngram --draft-max 4"; do
    $B/g4 run -m models/tiny-kjv --backend cuda --raw -p "$P" -n 400 --temp 0 --json $d
  done > "$LOG/spec.jsonl" 2>>"$LOG/spec.err"
  python3 - "$LOG/spec.jsonl" <<'PY'
import json, sys
a, b = [json.loads(l) for l in open(sys.argv[1])]
d = b.get("draft", {})
print(f"speculative greedy on cuda: tokens identical to plain: {a['tokens'] == b['tokens']} ({len(a['tokens'])} tokens);"
      f" plain {a['decode_tok_s']:.0f} tok/s, n-gram {b['decode_tok_s']:.0f} tok/s; draft {json.dumps(d)[:300]}")
PY
  # TEST_SETTINGS="NAME=VALUE ...": the CUDA unit tests and the cuda Sequences tests again under each setting
  # (commas joining settings that go together), e.g. default-off kernel paths before an A/B.
  i=0
  for sw in ${TEST_SETTINGS:-}; do
    i=$((i + 1))
    echo "$sw" > "$LOG/setting_$i.txt"
    under "$sw" $tl $B/tests/backend_cuda/test_backend_cuda > "$LOG/cuda_set${i}_tests.log" 2>&1
    under "$sw" $tl $B/tests/model/test_model --gtest_filter='*Sequences*/2' > "$LOG/cuda_set${i}_sequences.log" 2>&1
  done
  echo "== tests (cuda_setN: under setting N of TEST_SETTINGS)"
  i=0
  for sw in ${TEST_SETTINGS:-}; do i=$((i + 1)); echo "setting $i: $sw"; done
  for f in "$LOG"/cuda_*.log; do summary "$f"; done
  grep -hE "FAILED|Failure" "$LOG"/cuda_*.log | head -20
  [ "$MODE" = tests ] && exit 0
fi

t0=$(date +%s)
case "$SYNTH" in
  *.gguf)  # SYNTH_DIR=/tmp/g4-peer/m60.gguf: the 60-layer Q4_0 GGUF of synth_gguf.py (carry .devpeer and .devtok)
    if [ ! -s "$SYNTH" ]; then
      mkdir -p /tmp/g4-peer/src && tar -C /tmp/g4-peer/src -xJf .devpeer/llama.tar.xz lc-src/gguf-py &&
        xz -dc .devtok/tokenizer.json.xz > /tmp/g4-peer/tokenizer.json &&
        python3 .devpeer/synth_gguf.py "$SYNTH" 60 /tmp/g4-peer/tokenizer.json /tmp/g4-peer/src/lc-src/gguf-py q4_0 \
          > "$LOG/synth.log" 2>&1 || tail -5 "$LOG/synth.log"
    fi
    echo "synth 60-layer Q4_0 GGUF: $(( $(date +%s) - t0 )) s";;
  *) # SYNTH_FORMAT=q4_0: Q4_0's layout (int4 g32 symmetric, f16 scales, tied embedding) without the GGUF's
     # carry (.devpeer, .devtok), so that the tests and a Q4_0 bench fit one call (SYNTH_DIR apart from int4's)
    [ -f "$SYNTH/config.json" ] || $B/g4 synth --preset 31b --format "${SYNTH_FORMAT:-int4}" -o "$SYNTH" > "$LOG/synth.log" 2>&1
    echo "synth 60-layer ${SYNTH_FORMAT:-int4}: $(( $(date +%s) - t0 )) s";;
esac
bench() { $B/g4 bench -m "$SYNTH" --backend cuda --json "$@" 2>>"$LOG/bench.err"; }
if [ "$MODE" = ab ]; then
  # AB: one switch NAME (set to $AB_VALUE, default 0), or a space-separated list of NAME=VALUE settings,
  # commas joining settings that go together (AB="G4_CUDA_ATTN_SPLIT_MIN=1 G4_CUDA_ATTN_PACK=0,G4_CUDA_Q8_TC=2"):
  # each round runs the default, then each setting.
  ARGS=${AB_ARGS:--p 512 -n 128 -r 2}  # the bench arguments of every side
  case "${AB:?set AB to the switch to compare}" in *=*) SETTINGS=$AB;; *) SETTINGS="$AB=${AB_VALUE:-0}";; esac
  for r in 1 2; do
    bench $ARGS | sed 's/"parallel"/"ab": "default", "parallel"/'
    for sw in $SETTINGS; do
      # G4_BIN=PATH in a setting: that g4 instead of this build's (an A/B of two builds; --pack-alt)
      # (a setting whose kernels hang loses RUN_TIMEOUT seconds, default 240, and its row)
      under "$sw" timeout "${RUN_TIMEOUT:-240}" sh -c 'exec "${G4_BIN:-$0}" "$@"' $B/g4 bench -m "$SYNTH" --backend cuda --json $ARGS \
        2>>"$LOG/bench.err" | sed 's|"parallel"|"ab": "'"$sw"'", "parallel"|'
    done
  done > "$LOG/bench.jsonl"
elif [ "$MODE" = goals ]; then
  # The open speed goals on this machine, each measured twice (issue 11: 8 sequences >= 5x one at depth 0;
  # issue 13: a verify of 4 tokens <= 1.15 one-token steps at depth 512, in a cache of 4,096 slots as `g4 run`
  # gives; issue 14: decode >= 200 tok/s at depth 0 and >= 150 at 16,384), then a table of them (the bench
  # rows above it as usual).
  for r in 1 2; do
    bench -p 0 -n 64 -r 2 --parallel 1,8 | sed 's/"parallel"/"ab": "goal 11", "parallel"/'
    bench -p 0 -n 32 -r 1 -d 512 -c 4096 --verify-cost 4 | sed 's/"parallel"/"ab": "goal 13", "parallel"/'
    bench -p 0 -n 128 -r 1 -d 0,16384 | sed 's/"parallel"/"ab": "goal 14", "parallel"/'
  done > "$LOG/bench.jsonl"
  python3 - "$LOG/bench.jsonl" > "$LOG/goals.txt" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
tg = lambda goal, depth, seqs: [j["tg_tok_s"] for j in rows if j.get("ab") == goal and j.get("depth") == depth
                                and j.get("parallel") == seqs]
one, eight = tg("goal 11", 0, 1), tg("goal 11", 0, 8)
ver = [j["ratio_to_step"] for j in rows if j.get("test") == "verify" and j.get("n") == 4]
d0, d16 = tg("goal 14", 0, 1), tg("goal 14", 16384, 1)
fmt = lambda v, f: ", ".join(f.format(x) for x in v) or "(none)"
print("== goals (each round; the issue's bound in brackets)")
print(f"issue 11: 8 sequences / one at depth 0: {fmt([e / o for o, e in zip(one, eight)], '{:.2f}x')} [>= 5x]"
      f"  ({fmt(eight, '{:.1f}')} / {fmt(one, '{:.1f}')} tok/s)")
print(f"issue 13: a verify of 4 tokens at depth 512: {fmt(ver, '{:.3f}')} one-token steps [<= 1.15]")
print(f"issue 14: decode at depth 0: {fmt(d0, '{:.1f}')} tok/s [>= 200]; at 16,384: {fmt(d16, '{:.1f}')} [>= 150]")
PY
elif [ "$MODE" = batch ]; then
  bench -p 0 -n 64 -r 2 --parallel 1,4,8,16 > "$LOG/bench.jsonl"
elif [ "$MODE" = sampling ]; then
  # The token choice on the device (g4 bench --sampling backend) against downloading the logits (host),
  # greedy, Gemma's recommended sampling, and sampling over the whole vocabulary; alternating twice.
  for r in 1 2; do
    for s in host backend; do
      bench -p 0 -n 128 -r 2 --sampling $s
      bench -p 0 -n 128 -r 2 --sampling $s --temp 1 --top-k 64 --top-p 0.95
      bench -p 0 -n 64 -r 1 --sampling $s --temp 1
    done
  done > "$LOG/bench.jsonl"
elif [ "$MODE" = spec ]; then
  # Issue 13 on cuda: tok/s of plain greedy, the assistant drafter (-md) and prompt lookup on the shipped
  # model (three prompts, alternating twice; the draft counts by position), then on the synth a verify of
  # 2-9 tokens against a one-token step and the oracle drafter (the upper bound) at k = 4 and 8 over 128 tokens.
  for r in 1 2; do
    for p in "In the beginning" "Who was Moses?" "And God said, Let there be light"; do
      for d in plain "-md models/tiny-kjv-assistant" --draft-ngram; do
        f=$d; [ "$d" = plain ] && f=""
        $B/g4 run -m models/tiny-kjv --backend "${SPEC_BACKEND:-cuda}" -p "$p" -n 256 --temp 0 --json $f 2>>"$LOG/spec.err" |
          python3 -c 'import json, sys; j = json.load(sys.stdin); j["tag"] = sys.argv[1:]; print(json.dumps(j))' "r$r" "$p" "$d"
      done
    done
  done > "$LOG/spec_runs.jsonl"
  python3 - "$LOG/spec_runs.jsonl" <<'PY2'
import json, sys
plain = {}
for line in open(sys.argv[1]):
    j = json.loads(line)
    r, prompt, how = j["tag"]
    d = j.get("draft") or {}
    if how == "plain": plain[(r, prompt)] = j["tokens"]
    same = "" if how == "plain" else f"  tokens as plain: {j['tokens'] == plain.get((r, prompt))}"
    print(f"{r} {prompt:34} {how:32} {j['decode_tok_s']:8.1f} tok/s  drafted {d.get('drafted', 0):4}"
          f"  accepted {d.get('accepted', 0):4}  by position {[round(x, 2) for x in d.get('acceptance_at', [])]}{same}")
PY2
  bench -p 0 -n 128 -r 1 -d 512 --verify-cost 2,3,4,5,8,9 --oracle-draft 4,8 > "$LOG/spec.jsonl"
  python3 - "$LOG/spec.jsonl" <<'PY2'
import json, sys
for line in open(sys.argv[1]):
    j = json.loads(line)
    if j.get("test") == "verify": print(f"verify of {j['n']} tokens at depth {j['depth']}: {j['ms']:.2f} ms = {j['ratio_to_step']:.3f} one-token steps")
    elif j.get("test") == "oracle": print(f"oracle drafter k = {j['k']} (upper bound): {j['plain_tok_s']:.1f} -> {j['oracle_tok_s']:.1f} tok/s = {j['speedup']:.2f}x, same tokens {j['same_tokens']}")
    else: print(f"one-token steps at depth {j['depth']}: {j['tg_tok_s']:.2f} tok/s")
PY2
  exit 0
elif [ "$MODE" = knockout ]; then
  # What each kind of kernel costs inside the replayed decode step: the step without it (G4_CUDA_KNOCKOUT,
  # results wrong by design), the full step first and last; depth $KO_DEPTH (default 512), extra bench
  # arguments $KO_ARGS (e.g. "--parallel 8": the step of 8 sequences).
  for k in ${KO_LIST:-none qx gemv attn sliding full combine kv qkvrope norm gelu qx,kv,qkvrope,norm,gelu none}; do
    if [ $k = none ]; then e=""; else e=$k; fi
    G4_CUDA_KNOCKOUT="$e" $B/g4 bench -m "$SYNTH" --backend cuda --json -p 0 -n 128 -r 2 -d "${KO_DEPTH:-512}" ${KO_ARGS:-} \
      2>>"$LOG/bench.err" | sed 's/"parallel"/"ab": "out: '"$k"'", "parallel"/'
  done > "$LOG/bench.jsonl"
elif [ "$MODE" = trace ]; then
  # The kernel timeline of replayed steps (bench/kernel_trace.cc through CUPTI, g4 unchanged): per bench
  # configuration of $TRACE_ARGS (';' between them; default one sequence at depth 512), the bench untraced and
  # traced (what tracing costs), then bench/kernel_trace.py's table of the configuration's most common step
  # (trace_N.md; TRACE_KERNELS=N: the steps of N kernels instead, e.g. a verify's), and where the steps of the
  # next most common kernel count (with --verify-cost, the verify's) differ from those by kernel (--compare).
  # The CSVs come back gzipped.
  i=0
  echo "${TRACE_ARGS:--p 0 -n 64 -r 1 -d 512}" | tr ';' '\n' > /tmp/g4-trace-args
  while read -r TA; do
    i=$((i + 1))
    bench $TA < /dev/null | sed 's/"parallel"/"ab": "untraced '$i'", "parallel"/' >> "$LOG/bench.jsonl"
    CUDA_INJECTION64_PATH="$PWD/$B/libg4_kernel_trace.so" G4_KERNEL_TRACE=/tmp/g4-kernels-$i.csv \
      LD_LIBRARY_PATH="$PWD/$B:$LD_LIBRARY_PATH" bench $TA < /dev/null | sed 's/"parallel"/"ab": "traced '$i'", "parallel"/' >> "$LOG/bench.jsonl"
    { echo "## trace $i: g4 bench $TA"; python3 bench/kernel_trace.py /tmp/g4-kernels-$i.csv --steps 32 --show ${TRACE_SHOW:-48} \
      ${TRACE_KERNELS:+--kernels $TRACE_KERNELS} --compare; } \
      > "$LOG/trace_$i.md" 2>&1
    gzip -c /tmp/g4-kernels-$i.csv > "$LOG/kernels_$i.csv.gz"
    head -${TRACE_HEAD:-30} "$LOG/trace_$i.md"
    # (--compare: with --verify-cost, the verify's steps against the one-token ones, by kernel: its first rows)
    sed -n '/^Steps of/,$p' "$LOG/trace_$i.md" | head -${TRACE_COMPARE_ROWS:-28}
  done < /tmp/g4-trace-args
elif [ "$MODE" = depth ]; then
  for t in f32 bf16; do bench -p 0 -n 64 -r 2 -d 0,16384 --cache-type-k $t --cache-type-v $t; done > "$LOG/bench.jsonl"
else {
  bench -p 2048 -n 128 -r 2 -d 0,16384 --cache-type-k f32 --cache-type-v f32
  bench -p 2048 -n 128 -r 2 -d 0,16384,65536
  bench -p 0 -n 64 -r 2 --parallel 1,4,8,16
  bench -p 32768 -n 0 -r 1
} > "$LOG/bench.jsonl"
fi

echo "== bench (tok/s: pp = prefill of pp tokens, tg = decode; depth = tokens already cached; seqs = sequences per step)"
python3 - "$LOG/bench.jsonl" "$MODE" <<'PY'
import json, sys
ab = ""  # verify / oracle lines (--verify-cost, --oracle-draft in AB_ARGS or KO_ARGS) belong to the row before
by_setting = {}  # ab: {"d512 p2" / "v4" / "oracle4": [each round's value]}, for the A/B's table below
for line in open(sys.argv[1]):
    j = json.loads(line)
    if j.get("test") == "verify":
        print(f"{ab:14} verify of {j['n']} tokens at depth {j['depth']}: {j['ms']:.3f} ms = {j['ratio_to_step']:.3f} one-token steps")
        by_setting.setdefault(ab, {}).setdefault(f"v{j['n']}", []).append(f"{j['ratio_to_step']:.3f}")
        continue
    if j.get("test") == "oracle":
        print(f"{ab:14} oracle drafter k = {j['k']}: {j['plain_tok_s']:.1f} -> {j['oracle_tok_s']:.1f} tok/s = {j['speedup']:.2f}x, same tokens {j['same_tokens']}")
        by_setting.setdefault(ab, {}).setdefault(f"oracle{j['k']}", []).append(f"{j['speedup']:.2f}x")
        continue
    if "test" in j: continue
    ab = j.get('ab', '')
    pick = f"{j.get('sampling', '')} t{j.get('temp', 0):g} k{j.get('top_k', 0)}"
    print(f"{ab:14} {pick:16} KV {j['cache_type_k']:5} depth {j['depth']:6} ctx {j.get('ctx', 0):6} seqs {j['parallel']:3} | pp{j['pp']} {j['pp_tok_s']:9.1f} ± {j['pp_sd']:6.1f}"
          f" | tg{j['tg']} {j['tg_tok_s']:8.2f} ± {j['tg_sd']:5.2f} | load {j['load_s']:.1f} s")
    by_setting.setdefault(ab, {}).setdefault(f"d{j['depth']} p{j['parallel']}", []).append(f"{j['tg_tok_s']:.1f}")
if sys.argv[2] == "ab":  # the A/B in one line a setting, each round's value in round order
    print("== A/B by setting (rounds in order; dD pN: tok/s of N sequences at depth D, vN: a verify of N in one-token steps)")
    for name, cols in by_setting.items():
        print(f"{name:32} " + "  ".join(f"{k} {'/'.join(v)}" for k, v in cols.items()))
PY
cat "$LOG/bench.err" | tail -5
if [ "$MODE" = goals ]; then cat "$LOG/goals.txt"; fi  # (not a stale table another mode left in $LOG)
