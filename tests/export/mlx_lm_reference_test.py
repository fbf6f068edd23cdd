#!/usr/bin/python3
"""g4's MLX export run by bench/mlx_lm_reference.py, a numpy model of how mlx-lm loads and runs a Gemma 4
directory (written from mlx-lm's source; MLX itself cannot run here): the exported directory must load as
mlx-lm would load it (the same parameter names and shapes, strict) and give the source's logits.
- f32 scales and biases: the source's numbers exactly, so the logits equal g4's on the source up to f32
  rounding (measured 1.1e-5; bound 1e-4);
- the default f16 export and the sensitive recipe (per-module 8-bit overrides): the same logits as g4 reading
  the same directory (1e-4);
- a source config.json without the keys mlx-lm defaults differently (num_kv_shared_layers,
  hidden_size_per_layer_input, use_double_wide_mlp, layer_types, final_logit_softcapping): still the source's
  logits (the export of 2026-12-01 was refused: 21 per-layer-input parameters missing);
- the dense-31b-shape fixture (K = V full layers with 1 KV head and head size 128, sliding layers 2 and 64), f32 scales.
Usage: mlx_lm_reference_test.py G4_BINARY REPO_ROOT; exit 77 (skipped) without numpy."""
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    print("mlx_lm_reference_test skipped: python3-numpy is not installed (scripts/install-deps.sh installs it)")
    sys.exit(77)

G4, ROOT = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(ROOT, "bench"))
import mlx_lm_reference as ref  # noqa: E402

TOKENS = "2,4,536,273,1182,370,2201,5,273,4,538,273,6,561,273,7"
TOKENS_FIXTURE = "2,17,99,5,200,31,7,7,8,9,10,11,100,101,102,103"
failed = passed = 0


def g4(*args):
    r = subprocess.run([G4, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("g4 %s failed: %s" % (" ".join(args), r.stderr.strip().splitlines()[-1:]))


def logits(path):
    return ref.load_safetensors(path)["logits"][0]


def check(name, got, want, bound):
    global failed, passed
    d = float(np.max(np.abs(got.astype(np.float64) - want))) if got.shape == want.shape else float("inf")
    ok = d <= bound  # NaN fails
    print("[ %s ] max |diff| %.3g (bound %g): %s" % (name, d, bound, "ok" if ok else "FAILED"))
    passed += ok
    failed += not ok


def reference(mlx_dir, tokens=None):
    try:
        a, prefix, params = ref.load_model(mlx_dir)
        return ref.forward(a, prefix, params, [int(t) for t in (tokens or TOKENS).split(",")])
    except SystemExit:  # ref.fail: mlx-lm would refuse the directory (the reason is printed)
        return None


with tempfile.TemporaryDirectory() as d:
    model = os.path.join(ROOT, "models", "tiny-kjv")
    cases = [("default", "f32"), ("default", "f16"), ("sensitive", "f16")]
    for recipe, sd in cases:
        q = os.path.join(d, "q-" + recipe)
        if not os.path.exists(q):
            g4("quantize", "-m", model, "-o", q, "--recipe", recipe)
        m = os.path.join(d, "mlx-%s-%s" % (recipe, sd))
        g4("export", "-m", q, "--format", "mlx", "--scale-dtype", sd, "-o", m)
        got = reference(m)
        if got is None:
            check("%s %s: mlx-lm's loading" % (recipe, sd), np.zeros(1), np.ones(1), 0)
        elif sd == "f32":  # the source's numbers: compare with g4 on the source itself
            g4("logits", "-m", q, "--tokens", TOKENS, "--out", q + ".src.safetensors")
            check("%s, f32 scales: reference vs g4 on the source" % recipe, got, logits(q + ".src.safetensors"), 1e-4)
        else:
            g4("logits", "-m", m, "--tokens", TOKENS, "--out", m + ".g4.safetensors")
            check("%s, %s scales: reference vs g4 on the export" % (recipe, sd), got, logits(m + ".g4.safetensors"), 1e-4)
    # The fixture with the 31B's layer kinds (hidden 256, K = V full layers with their own KV head count and head size).
    fx = os.path.join(ROOT, "tests", "data", "hf-reference", "dense-31b-shape", "model")
    q = os.path.join(d, "q-fixture")
    g4("quantize", "-m", fx, "-o", q)
    g4("export", "-m", q, "--format", "mlx", "--scale-dtype", "f32", "-o", q + ".mlx")
    got = reference(q + ".mlx", TOKENS_FIXTURE)
    g4("logits", "-m", q, "--tokens", TOKENS_FIXTURE, "--out", q + ".src.safetensors")
    if got is None:
        check("dense-31b-shape: mlx-lm's loading", np.zeros(1), np.ones(1), 0)
    else:
        check("dense-31b-shape, f32 scales: reference vs g4 on the source", got, logits(q + ".src.safetensors"), 1e-4)
    # A config without the keys mlx-lm defaults differently from g4.
    q = os.path.join(d, "q-default")
    with open(q + "/config.json") as f:
        c = json.load(f)
    for k in ("num_kv_shared_layers", "hidden_size_per_layer_input", "use_double_wide_mlp", "layer_types",
              "final_logit_softcapping"):
        c["text_config"].pop(k, None)
    with open(q + "/config.json", "w") as f:
        json.dump(c, f)
    g4("logits", "-m", q, "--tokens", TOKENS, "--out", q + ".stripped.safetensors")
    m = os.path.join(d, "mlx-stripped")
    g4("export", "-m", q, "--format", "mlx", "--scale-dtype", "f32", "-o", m)
    got = reference(m)
    if got is None:
        check("config without mlx-lm's keys: mlx-lm's loading", np.zeros(1), np.ones(1), 0)
    else:
        check("config without mlx-lm's keys: reference vs g4 on the source", got, logits(q + ".stripped.safetensors"),
              1e-4)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
