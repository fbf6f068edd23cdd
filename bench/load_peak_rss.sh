#!/bin/bash
# Peak host memory (max RSS) of loading and packing a synthetic int4 checkpoint with the Gemma 4 31B
# dimensions, per backend, next to the checkpoint's size (issue 4: near the checkpoint size on cpu, at most
# 4 GB on cuda). The load is `g4 bench -p 0 -n 1`: load, pack, one decode step.
# Usage: bench/load_peak_rss.sh [G4_BINARY] [WORK_DIR] [LAYERS] [BACKENDS...]   (default: 60 layers; cpu)
set -euo pipefail
G4=${1:-build/release/g4}
WORK=${2:-/tmp/g4_load_bench}
LAYERS=${3:-60}
shift $(( $# >= 3 ? 3 : $# )) || true
BACKENDS=("$@")
[ ${#BACKENDS[@]} -eq 0 ] && BACKENDS=(cpu)
mkdir -p "$WORK"
MODEL="$WORK/int4-$LAYERS"
if [ ! -f "$MODEL/model.safetensors" ]; then
  "$G4" synth --preset 31b --layers "$LAYERS" --format int4 --out "$MODEL" 2>/dev/null
fi
BYTES=$(stat -c %s "$MODEL/model.safetensors")
echo "backend,layers,checkpoint_bytes,max_rss_bytes,rss_over_checkpoint,seconds"
for be in "${BACKENDS[@]}"; do
  # Max RSS of the child, measured by the parent (no dependency on /usr/bin/time).
  /usr/bin/python3 - "$G4" "$MODEL" "$be" "$BYTES" "$LAYERS" <<'PY'
import resource, subprocess, sys, time
g4, model, be, nbytes, layers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
t0 = time.time()
r = subprocess.run([g4, "bench", "-m", model, "--backend", be, "-p", "0", "-n", "1", "-r", "1"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
secs = time.time() - t0
if r.returncode != 0:
    sys.exit(f"g4 bench --backend {be} failed: {r.stderr.strip()}")
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(f"{be},{layers},{nbytes},{rss},{rss / nbytes:.3f},{secs:.1f}")
PY
done
