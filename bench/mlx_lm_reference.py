#!/usr/bin/python3
"""An MLX-LM model directory read and run the way mlx-lm's Gemma 4 model does, in numpy (f32), without MLX.

This project has no Mac, and MLX does not run here. This script follows mlx-lm's source
(mlx_lm/utils.py load_model, mlx_lm/models/gemma4.py, gemma4_text.py, rope_utils.py, base.py; MLX's
nn.quantize, Module.load_weights(strict=True) and the affine dequantization of mlx/ops.cpp), written anew:
  1. ModelArgs from config.json as mlx-lm builds them, mlx-lm's defaults for missing keys included;
  2. sanitize, then the parameters mlx-lm's modules hold after nn.quantize (per-module "quantization"
     entries, else quantized where "<module>.scales" exists), checked like load_weights(strict=True):
     the same names, the same shapes;
  3. the forward pass of gemma4_text.Model on a list of token ids, in f32 (MLX would run bf16 or f32: only
     the rounding differs), logits of every position written to a safetensors file (F32 "logits" [T, V]).
Usage: mlx_lm_reference.py MLX_DIR 2,17,99,... OUT.safetensors
Exit 1 with one "error:" line when mlx-lm would refuse the directory (or this script cannot model it)."""
import json
import math
import struct
import sys

import numpy as np


def fail(msg):
    print("mlx_lm_reference: error: " + msg, file=sys.stderr)
    sys.exit(1)


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        raw = data[8 + n + a:8 + n + b]
        dt = t["dtype"]
        if dt == "BF16":
            arr = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, {"F32": np.float32, "F16": np.float16, "U32": np.uint32, "I32": np.int32}[dt])
        out[name] = (arr.reshape(t["shape"]), dt)
    return out


# gemma4_text.ModelArgs fields and defaults (mlx_lm/models/gemma4_text.py).
TEXT_DEFAULTS = dict(
    hidden_size=1536, num_hidden_layers=35, intermediate_size=6144, num_attention_heads=8, head_dim=256,
    global_head_dim=512, global_partial_rotary_factor=0.25, rms_norm_eps=1e-6, vocab_size=262144,
    vocab_size_per_layer_input=262144, num_key_value_heads=1, num_global_key_value_heads=None,
    num_kv_shared_layers=20, pad_token_id=0, hidden_size_per_layer_input=256, rope_traditional=False,
    partial_rotary_factor=1.0, rope_parameters=None, sliding_window=512, sliding_window_pattern=5,
    max_position_embeddings=131072, attention_k_eq_v=False, final_logit_softcapping=30.0,
    use_double_wide_mlp=True, enable_moe_block=False, num_experts=None, top_k_experts=None,
    moe_intermediate_size=None, layer_types=None, tie_word_embeddings=True)


def model_args(cfg):
    mt = cfg.get("model_type")
    if mt == "gemma4":  # gemma4.ModelArgs: the text model gets text_config, vocab_size from the top level
        text = dict(cfg.get("text_config") or {})
        text["vocab_size"] = cfg.get("vocab_size", 262144)
        text.setdefault("num_attention_heads", 8)
        text.setdefault("num_key_value_heads", 1)
        prefix = "language_model."
    elif mt == "gemma4_text":
        text, prefix = cfg, ""
    else:
        fail("model_type %r is neither gemma4 nor gemma4_text" % mt)
    a = {k: (text[k] if k in text else v) for k, v in TEXT_DEFAULTS.items()}  # BaseModelArgs.from_dict
    if a["rope_parameters"] is None:
        a["rope_parameters"] = {
            "full_attention": {"partial_rotary_factor": 0.25, "rope_theta": 1000000.0, "rope_type": "proportional"},
            "sliding_attention": {"partial_rotary_factor": 1.0, "rope_theta": 10000.0, "rope_type": "default"}}
    if a["layer_types"] is None:
        pattern = ["sliding_attention"] * (a["sliding_window_pattern"] - 1) + ["full_attention"]
        a["layer_types"] = (pattern * (a["num_hidden_layers"] // len(pattern) + 1))[:a["num_hidden_layers"]]
    if a["enable_moe_block"]:
        fail("enable_moe_block: the mixture-of-experts block is not modelled here")
    return a, prefix


def sanitize(weights, a, wrapped):
    if wrapped:  # gemma4.Model.sanitize
        new = {}
        for k, v in weights.items():
            starts = k.startswith("model.")
            k = k[len("model."):] if starts else k
            if k.startswith(("vision_tower", "multi_modal_projector", "audio_tower", "embed_audio", "embed_vision",
                             "vision_embedder")):
                continue
            if starts and k.startswith("language_model"):
                k = k.replace("language_model.", "language_model.model.")
            new[k] = v
        weights = new
    first_shared = a["num_hidden_layers"] - a["num_kv_shared_layers"]
    out = {}
    for k, v in weights.items():  # gemma4_text.Model.sanitize (no MoE)
        if any(s in k for s in ("self_attn.rotary_emb", "input_max", "input_min", "output_max", "output_min")):
            continue
        if any(s in k for s in (".self_attn.k_proj", ".self_attn.v_proj", ".self_attn.k_norm")):
            try:
                if int(k.split("layers.")[1].split(".")[0]) >= first_shared:
                    continue
            except (IndexError, ValueError):
                pass
        out[k] = v
    return out


def layer_geometry(a, i):
    full = a["layer_types"][i] == "full_attention"
    hd = a["global_head_dim"] if full and a["global_head_dim"] else a["head_dim"]
    k_eq_v = a["attention_k_eq_v"] and full
    n_kv = a["num_global_key_value_heads"] if k_eq_v and a["num_global_key_value_heads"] is not None \
        else a["num_key_value_heads"]
    has_kv = i < a["num_hidden_layers"] - a["num_kv_shared_layers"]
    shared = i >= a["num_hidden_layers"] - a["num_kv_shared_layers"] > 0
    ffn = a["intermediate_size"] * (2 if a["use_double_wide_mlp"] and shared else 1)
    return full, hd, k_eq_v, n_kv, has_kv, ffn


def expected_modules(a, prefix):
    """(path, kind, shape): kind 'linear' / 'embedding' ([out, in]) or 'param' (a plain array)."""
    m = prefix + "model."
    H, L = a["hidden_size"], a["num_hidden_layers"]
    mods = [(m + "embed_tokens", "embedding", (a["vocab_size"], H)), (m + "norm.weight", "param", (H,))]
    P = a["hidden_size_per_layer_input"]
    if P:
        mods += [(m + "embed_tokens_per_layer", "embedding", (a["vocab_size_per_layer_input"], L * P)),
                 (m + "per_layer_model_projection", "linear", (L * P, H)),
                 (m + "per_layer_projection_norm.weight", "param", (P,))]
    for i in range(L):
        full, hd, k_eq_v, n_kv, has_kv, ffn = layer_geometry(a, i)
        l = m + "layers.%d." % i
        nh = a["num_attention_heads"]
        mods += [(l + "self_attn.q_proj", "linear", (nh * hd, H)), (l + "self_attn.o_proj", "linear", (H, nh * hd)),
                 (l + "self_attn.q_norm.weight", "param", (hd,))]
        if has_kv:
            mods += [(l + "self_attn.k_proj", "linear", (n_kv * hd, H)), (l + "self_attn.k_norm.weight", "param", (hd,))]
            if not k_eq_v:
                mods.append((l + "self_attn.v_proj", "linear", (n_kv * hd, H)))
        mods += [(l + "mlp.gate_proj", "linear", (ffn, H)), (l + "mlp.up_proj", "linear", (ffn, H)),
                 (l + "mlp.down_proj", "linear", (H, ffn))]
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm"):
            mods.append((l + n + ".weight", "param", (H,)))
        if P:
            mods += [(l + "per_layer_input_gate", "linear", (P, H)), (l + "per_layer_projection", "linear", (H, P)),
                     (l + "post_per_layer_input_norm.weight", "param", (H,))]
        mods.append((l + "layer_scalar", "param", (1,)))
    if not a["tie_word_embeddings"]:
        mods.append((prefix + "lm_head", "linear", (a["vocab_size"], H)))
    return mods


def load_model(d):
    cfg = json.load(open(d + "/config.json"))
    a, prefix = model_args(cfg)
    raw = load_safetensors(d + "/model.safetensors")
    weights = sanitize(raw, a, cfg.get("model_type") == "gemma4")
    quant = cfg.get("quantization")
    expected = {}  # parameter name -> (shape, module path, (group, bits) or None)
    for path, kind, shape in expected_modules(a, prefix):
        if kind == "param":
            expected[path] = (shape, path, None)
            continue
        q = None
        if quant is not None:  # utils.load_model's class_predicate inside nn.quantize
            if path in quant:
                q = (quant[path]["group_size"], quant[path]["bits"])
                if quant[path].get("mode", "affine") != "affine":
                    fail(path + ": only affine quantization is modelled here")
            elif path + ".scales" in weights:
                q = (quant["group_size"], quant["bits"])
                if quant.get("mode", "affine") != "affine":
                    fail("only affine quantization is modelled here")
        out_f, in_f = shape
        if q:
            gs, bits = q
            expected[path + ".weight"] = ((out_f, in_f * bits // 32), path, q)
            expected[path + ".scales"] = ((out_f, in_f // gs), path, q)
            expected[path + ".biases"] = ((out_f, in_f // gs), path, q)
        else:
            expected[path + ".weight"] = (shape, path, None)
    extra = sorted(set(weights) - set(expected))
    missing = sorted(set(expected) - set(weights))
    if extra:
        fail("mlx-lm would refuse the directory: %d parameters not in the model: %s" % (len(extra), ", ".join(extra[:8])))
    if missing:
        fail("mlx-lm would refuse the directory: missing %d parameters: %s" % (len(missing), ", ".join(missing[:8])))
    for k, (shape, _, _) in expected.items():
        if tuple(weights[k][0].shape) != tuple(shape):
            fail("mlx-lm would refuse the directory: %s has shape %s, the model %s" % (k, weights[k][0].shape, shape))
    # Dequantize (mlx/ops.cpp affine: w = scale * q + bias; element j of a row in word j / (32 / bits) at bit
    # offset (j % (32 / bits)) * bits).
    params = {}
    for k, (shape, path, q) in expected.items():
        if q is None:
            params[k] = weights[k][0].astype(np.float32)
        elif k.endswith(".weight"):
            gs, bits = q
            words = weights[k][0]
            per = 32 // bits
            shifts = (np.arange(per, dtype=np.uint32) * bits)[None, None, :]
            codes = ((words[:, :, None] >> shifts) & np.uint32((1 << bits) - 1)).reshape(words.shape[0], -1)
            s = np.repeat(weights[path + ".scales"][0].astype(np.float32), gs, axis=1)
            b = np.repeat(weights[path + ".biases"][0].astype(np.float32), gs, axis=1)
            params[path] = codes.astype(np.float32) * s + b
            params[path + ".dtype"] = weights[path + ".scales"][1]
        # .weight of an unquantized linear is kept under its .weight name; make the module name point at it too
    for path, kind, shape in expected_modules(a, prefix):
        if kind != "param" and path not in params:
            params[path] = params[path + ".weight"]
            params[path + ".dtype"] = weights[path + ".weight"][1]
    return a, prefix, params


def rms_norm(x, w, eps):
    y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return y * w if w is not None else y


def rope(x, pos, dims, base, rotated):
    """mx.fast.rope, not traditional: pair (i, i + dims/2) turned by pos / base^(2i/dims); pairs from
    rotated/2 on have frequency infinity (ProportionalRoPE), i.e. are left alone. x: [heads, T, dims]."""
    half = dims // 2
    i = np.arange(half, dtype=np.float64)
    inv = np.where(i < rotated // 2, base ** (-2.0 * i / dims), 0.0)
    ang = pos[:, None].astype(np.float64) * inv[None, :]
    c, s = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)


def gelu_approx(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def forward(a, prefix, p, tokens):
    if a["hidden_size_per_layer_input"] or a["num_kv_shared_layers"]:
        fail("per-layer inputs / KV sharing (hidden_size_per_layer_input %s, num_kv_shared_layers %s): mlx-lm would "
             "build a model with them; not modelled here" % (a["hidden_size_per_layer_input"], a["num_kv_shared_layers"]))
    m = prefix + "model."
    eps, T = a["rms_norm_eps"], len(tokens)
    emb = p[m + "embed_tokens"]
    # h * embed_scale: a Python float times an MLX array takes the array's dtype (the embedding's scales)
    scale = math.sqrt(a["hidden_size"])
    dt = p[m + "embed_tokens.dtype"]
    if dt == "BF16":
        scale = float((np.array([scale], np.float32).view(np.uint32) + 0x8000 & 0xFFFF0000).view(np.float32)[0])
    elif dt == "F16":
        scale = float(np.float16(scale))
    h = emb[np.array(tokens)] * np.float32(scale)
    pos = np.arange(T)
    for i in range(a["num_hidden_layers"]):
        full, hd, k_eq_v, n_kv, _, _ = layer_geometry(a, i)
        l = m + "layers.%d." % i
        nh = a["num_attention_heads"]
        x = rms_norm(h, p[l + "input_layernorm.weight"], eps)
        q = (x @ p[l + "self_attn.q_proj"].T).reshape(T, nh, hd).transpose(1, 0, 2)
        k = (x @ p[l + "self_attn.k_proj"].T).reshape(T, n_kv, hd).transpose(1, 0, 2)
        v = k if k_eq_v else (x @ p[l + "self_attn.v_proj"].T).reshape(T, n_kv, hd).transpose(1, 0, 2)
        q = rms_norm(q, p[l + "self_attn.q_norm.weight"], eps)
        k = rms_norm(k, p[l + "self_attn.k_norm.weight"], eps)
        v = rms_norm(v, None, eps)
        rp = a["rope_parameters"]["full_attention" if full else "sliding_attention"]
        base = rp.get("rope_theta", 10000.0)
        kind = rp.get("type") or rp.get("rope_type", "default")
        if kind == "default":
            rotated = hd
        elif kind == "proportional":
            rotated = int(hd * rp.get("partial_rotary_factor", 1.0))
            if rp.get("factor", 1.0) != 1.0:
                fail("rope factor other than 1 is not modelled here")
        else:
            fail("rope_type %r is not modelled here" % kind)
        q, k = rope(q, pos, hd, base, rotated), rope(k, pos, hd, base, rotated)
        rep = nh // n_kv
        k, v = np.repeat(k, rep, axis=0), np.repeat(v, rep, axis=0)
        s = q @ k.transpose(0, 2, 1)  # scale 1.0
        visible = pos[:, None] >= pos[None, :]
        if not full:
            visible &= pos[:, None] < pos[None, :] + a["sliding_window"]
        s = np.where(visible[None], s, -np.inf)
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        o = (s @ v).transpose(1, 0, 2).reshape(T, nh * hd) @ p[l + "self_attn.o_proj"].T
        h = h + rms_norm(o, p[l + "post_attention_layernorm.weight"], eps)
        x = rms_norm(h, p[l + "pre_feedforward_layernorm.weight"], eps)
        y = (gelu_approx(x @ p[l + "mlp.gate_proj"].T) * (x @ p[l + "mlp.up_proj"].T)) @ p[l + "mlp.down_proj"].T
        h = h + rms_norm(y, p[l + "post_feedforward_layernorm.weight"], eps)
        h = h * p[l + "layer_scalar"]
    h = rms_norm(h, p[m + "norm.weight"], eps)
    out = h @ (emb if a["tie_word_embeddings"] else p[prefix + "lm_head"]).T
    c = a["final_logit_softcapping"]
    if c is not None:
        out = np.tanh(out / c) * c
    return out.astype(np.float32)


def main():
    if len(sys.argv) != 4:
        fail("usage: mlx_lm_reference.py MLX_DIR 2,17,99,... OUT.safetensors")
    a, prefix, params = load_model(sys.argv[1])
    tokens = [int(t) for t in sys.argv[2].split(",")]
    logits = forward(a, prefix, params, tokens)
    head = json.dumps({"logits": {"dtype": "F32", "shape": list(logits.shape), "data_offsets": [0, logits.nbytes]}})
    head = head.encode() + b" " * (-len(head) % 8)
    with open(sys.argv[3], "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + logits.tobytes())


if __name__ == "__main__":
    main()
