"""Reference fixture for g4's assistant drafter, produced with transformers' own Gemma4AssistantForCausalLM.

Needs torch + transformers 5.17 (CPU is enough; it forces CPU). Run from the repo root:
    python3 tools/oracle/make_assistant_fixture.py OUTDIR 2>&1 | tee OUTDIR.log
Writes OUTDIR/ (each variant is written as soon as it is computed; on an error the rest still runs and
report.json says what failed):
  assistant/, assistant_ordered/   random-weight assistants for models/tiny-kjv saved by save_pretrained
                                   (bf16 safetensors, the hub's layout; weights are bf16 values, so the f32
                                   reference below computes on exactly what is stored)
  assistant_fixture.safetensors, assistant_ordered_fixture.safetensors:
    prompt        I32 [L]     target input ids (L = 200, past the target's sliding window of 128)
    pending       I32 [1]     the target's greedy next token (the token the first draft step embeds)
    position      I32 [1]     the drafter's position id: L, the pending token's position, which is what
                              SinglePositionMultiTokenCandidateGenerator sets (input_ids.shape[1] - 1 with the
                              pending token appended); constant over the draft steps
    target_hidden F32 [B]     the target's hidden_states[-1] at position L - 1 (what the generator feeds)
    target_hidden_prenorm F32 [B]  the same position before the target's final norm (diagnostic)
    target_logits F32 [V]     the target's logits at position L - 1 (softcapped)
    logits        F32 [S, V]  assistant logits of draft steps 0..S-1 (greedy chain, position L every step)
    hidden        F32 [S, B]  its post_projection output of each step (the next step's hidden state)
    tokens        I32 [S]     the argmax of each step (the next step's token)
    hidden_is_final_normed I32 [1]  1 when hidden_states[-1] equals last_hidden_state (after the final norm)
    diagnostics for step 0 only (what g4 would produce with another reading), when they could be computed:
    alt_logits_win127 / alt_logits_nowindow  sliding layers over the last 127 / all L target keys
    alt_logits_pos_minus1                    position id L - 1 instead of L
    alt_logits_prenorm_hidden                target hidden taken before its final norm
  report.json     versions, attention implementation, the saved config.json texts, the checks below, errors
  generate_probe  what target.generate(assistant_model=...) really fed the drafter on its first call
                  (report.json 'generate_probe': position id, K/V lengths, which target position the hidden
                  state came from). As we read utils.py, its first round after prefill passes n_last_matches=0
                  and so takes hidden_states[-1][:, 0:1], the hidden state of prompt position 0.
How it follows transformers 5.17 (read from its sources):
- Gemma4TextConfig holds head_dim / num_key_value_heads per layer (per_layer_config: full-attention layers get
  global_head_dim and, with attention_k_eq_v, num_global_key_value_heads); reading them from the config object
  raises AmbiguousGlobalPerLayerAttributeError, so the target's values come from its config.json.
- target(..., output_hidden_states=True, return_shared_kv_states=True) as generate passes them
  (model_kwargs_overrides): shared_kv_states = {"sliding_attention": (k, v), "full_attention": (k, v)}, each
  [1, kv_heads, L, head_dim], the K/V of the target's last layer of that type (k normed and rotated, v normed).
- drafter input: cat(target.get_input_embeddings()(token), hidden) (the embedding module scales by
  sqrt(hidden) cast to the weight dtype: the checkpoint is bf16, so the scale is set to sqrt(192) rounded to
  bf16, 13.875, as transformers computes it on the bf16 model and as g4 does).
- assistant(inputs_embeds, position_ids=[[L]], shared_kv_states, attention_mask=None, use_cache=False): its
  masks: full layers see every key; sliding layers a bidirectional window flipped on the key axis, i.e. the
  last `sliding_window` keys.
"""
import copy, json, os, sys, time, traceback

T0 = time.time()


def log(*a):
    print(f"[{time.time() - T0:6.1f}s]", *a, flush=True)


log("importing torch / transformers")
import torch
import transformers
from safetensors.torch import save_file
from transformers.models.gemma4.modeling_gemma4 import Gemma4ForConditionalGeneration
from transformers.models.gemma4_assistant.configuration_gemma4_assistant import Gemma4AssistantConfig
from transformers.models.gemma4_assistant.modeling_gemma4_assistant import Gemma4AssistantForCausalLM

TARGET = "models/tiny-kjv"
STEPS = 4
PROMPT_LEN = 200  # past the target's sliding window of 128
HIDDEN = 32       # the assistant's own width (small: the fixture ships in tests/data)
REPORT = {"errors": []}


def fail(stage, e):
    tb = traceback.format_exc()
    log(f"ERROR in {stage}: {e!r}\n{tb}")
    REPORT["errors"].append({"stage": stage, "error": repr(e), "traceback": tb})


def bf16(x):
    return torch.tensor(x, dtype=torch.float32).to(torch.bfloat16).float().item()


def target_text_json():
    with open(os.path.join(TARGET, "config.json")) as f:
        t = json.load(f)["text_config"]
    # Per-layer values: the hub keys if present, else per_layer_config (the form transformers 5.17 writes).
    full_idx = [i for i, lt in enumerate(t["layer_types"]) if lt == "full_attention"]
    plc = t.get("per_layer_config") or {}
    over = plc.get(str(full_idx[-1]), plc.get(full_idx[-1], {})) if full_idx else {}
    t.setdefault("global_head_dim", over.get("head_dim", t["head_dim"]))
    t.setdefault("num_global_key_value_heads", over.get("num_key_value_heads", t["num_key_value_heads"]))
    return t


def assistant_config(t, ordered):
    text = dict(
        model_type="gemma4_text", vocab_size=t["vocab_size"], hidden_size=HIDDEN, intermediate_size=2 * HIDDEN,
        num_hidden_layers=2, layer_types=["sliding_attention", "full_attention"], num_kv_shared_layers=2,
        num_attention_heads=4, num_key_value_heads=t["num_key_value_heads"], head_dim=t["head_dim"],
        global_head_dim=t["global_head_dim"], num_global_key_value_heads=t["num_global_key_value_heads"],
        attention_k_eq_v=t["attention_k_eq_v"], sliding_window=t["sliding_window"],
        rope_parameters=copy.deepcopy(t["rope_parameters"]), max_position_embeddings=t["max_position_embeddings"],
        rms_norm_eps=t["rms_norm_eps"], hidden_activation=t["hidden_activation"],
        hidden_size_per_layer_input=0, vocab_size_per_layer_input=0, final_logit_softcapping=None,
        tie_word_embeddings=True, bos_token_id=t["bos_token_id"], eos_token_id=copy.deepcopy(t["eos_token_id"]),
        pad_token_id=t["pad_token_id"])
    return Gemma4AssistantConfig(text_config=text, backbone_hidden_size=t["hidden_size"],
                                 use_ordered_embeddings=ordered, num_centroids=64, centroid_intermediate_top_k=4)


def randomize_(model, seed, vocab):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("q_norm.weight"):
                p.copy_(torch.empty(p.shape).uniform_(0.15, 0.45, generator=g))  # keeps attention unsaturated
            elif "norm" in name:
                p.copy_(torch.empty(p.shape).uniform_(0.5, 1.5, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        for name, b in model.named_buffers():
            if name.endswith("layer_scalar"):
                b.copy_(torch.empty(b.shape).uniform_(0.6, 1.4, generator=g))
            elif name.endswith("token_ordering"):
                b.copy_(torch.randperm(vocab, generator=g))
        # bf16 values held in f32: the saved bf16 checkpoint is then exactly what the reference computes on
        # (parameters and layer_scalar only: RoPE's inv_freq buffers stay f32)
        for p in list(model.parameters()) + [b for n, b in model.named_buffers() if n.endswith("layer_scalar")]:
            p.copy_(p.to(torch.bfloat16).float())


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1234)
    REPORT["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__}
    log("versions", REPORT["versions"])

    t = target_text_json()
    log("loading target", TARGET)
    target = Gemma4ForConditionalGeneration.from_pretrained(TARGET, dtype=torch.float32).eval()
    emb = target.get_input_embeddings()  # Gemma4TextScaledWordEmbedding; generate hands the candidate generator this
    scale = bf16(t["hidden_size"] ** 0.5)
    emb.embed_scale.fill_(scale)
    REPORT["embed_scale"] = scale
    REPORT["target_attn_implementation"] = getattr(target.config, "_attn_implementation", None)
    log("target loaded; embed scale", scale, "attn", REPORT["target_attn_implementation"])

    g = torch.Generator().manual_seed(7)
    ids = torch.randint(3, t["vocab_size"], (1, PROMPT_LEN), generator=g)
    ids[0, 0] = t["bos_token_id"]
    captured = {}
    hook = target.model.language_model.norm.register_forward_pre_hook(
        lambda mod, args: captured.__setitem__("prenorm", args[0].detach().clone()))
    with torch.no_grad():
        o = target(input_ids=ids, use_cache=False, output_hidden_states=True, return_shared_kv_states=True)
    hook.remove()
    last = o.hidden_states[-1][:, -1:].float()                  # [1, 1, B]: what the generator feeds
    with torch.no_grad():
        normed = target.model.language_model.norm(captured["prenorm"])  # the text model's last_hidden_state
    same = bool(torch.allclose(o.hidden_states[-1], normed, rtol=1e-5, atol=1e-6))
    REPORT["hidden_is_final_normed"] = same
    pending = o.logits[:, -1:].argmax(-1)                       # [1, 1]
    skv = {k: (v[0][:, :, :PROMPT_LEN], v[1][:, :, :PROMPT_LEN]) for k, v in o.shared_kv_states.items()}
    REPORT["shared_kv_shapes"] = {k: [list(v[0].shape), list(v[1].shape)] for k, v in skv.items()}
    log("target forward done: hidden_states[-1] is final-normed:", same, "pending", int(pending),
        "shared kv", REPORT["shared_kv_shapes"])
    base = {
        "prompt": ids[0].to(torch.int32).contiguous(),
        "pending": pending[0].to(torch.int32).clone().contiguous(),
        "position": torch.tensor([PROMPT_LEN], dtype=torch.int32),
        "target_hidden": last[0, 0].clone().contiguous(),
        "target_hidden_prenorm": captured["prenorm"][0, -1].float().clone().contiguous(),
        "target_logits": o.logits[0, -1].float().clone().contiguous(),
        "hidden_is_final_normed": torch.tensor([1 if same else 0], dtype=torch.int32),
    }

    for ordered in (False, True):
        name = "assistant_ordered" if ordered else "assistant"
        try:
            run_variant(out, name, ordered, t, target, emb, last, pending, skv, base, captured)
        except Exception as e:  # noqa: BLE001 - keep going, report it
            fail(name, e)
    try:
        generate_probe(target, ids, os.path.join(out, "assistant"), o)
    except Exception as e:  # noqa: BLE001
        fail("generate_probe", e)


def draft(asst, emb, tok, h, pos, skv, steps):
    logits, hidden, toks = [], [], []
    with torch.no_grad():
        for _ in range(steps):
            a = asst(inputs_embeds=torch.cat([emb(tok), h], dim=-1), position_ids=pos, shared_kv_states=skv,
                     attention_mask=None, use_cache=False)
            logits.append(a.logits[0, -1].float().clone())
            hidden.append(a.last_hidden_state[0, -1].float().clone())
            tok = a.logits.argmax(-1)
            toks.append(int(tok))
            h = a.last_hidden_state
    return logits, hidden, toks


def run_variant(out, name, ordered, t, target, emb, last, pending, skv, base, captured):
    log(f"--- {name}: building config")
    cfg = assistant_config(t, ordered)
    asst = Gemma4AssistantForCausalLM(cfg).eval()
    randomize_(asst, 11 if ordered else 10, t["vocab_size"])
    adir = os.path.join(out, name)
    copy.deepcopy(asst).to(torch.bfloat16).save_pretrained(adir)
    files = sorted(os.listdir(adir))
    with open(os.path.join(adir, "config.json")) as f:
        REPORT[name + "_config_json"] = f.read()
    log(f"{name}: saved {files}")
    try:  # compute with what was saved, as g4 will load it
        asst = Gemma4AssistantForCausalLM.from_pretrained(adir, dtype=torch.float32).eval()
        REPORT[name + "_reloaded"] = True
    except Exception as e:  # noqa: BLE001
        fail(name + " reload", e)
        REPORT[name + "_reloaded"] = False
    REPORT[name + "_attn_implementation"] = getattr(asst.config, "_attn_implementation", None)
    pos = torch.tensor([[PROMPT_LEN]], dtype=torch.long)
    logits, hidden, toks = draft(asst, emb, pending, last, pos, skv, STEPS)
    res = dict(base)
    res.update(logits=torch.stack(logits).contiguous(), hidden=torch.stack(hidden).contiguous(),
               tokens=torch.tensor(toks, dtype=torch.int32))
    REPORT[name + "_tokens"] = toks
    REPORT[name + "_max_abs_logit"] = float(res["logits"].abs().max())
    log(f"{name}: draft tokens {toks}, max |logit| {REPORT[name + '_max_abs_logit']:.4f}")
    path = os.path.join(out, name + "_fixture.safetensors")
    save_file(res, path)  # the main result, before the diagnostics
    log(f"{name}: wrote {path}")

    alts = {}
    try:
        w = t["sliding_window"]
        s127 = dict(skv)
        s127["sliding_attention"] = tuple(x[:, :, -(w - 1):] for x in skv["sliding_attention"])
        alts["alt_logits_win127"] = draft(asst, emb, pending, last, pos, s127, 1)[0][0]
        alts["alt_logits_pos_minus1"] = draft(asst, emb, pending, last, pos - 1, skv, 1)[0][0]
        pre = captured["prenorm"][:, -1:].float()
        alts["alt_logits_prenorm_hidden"] = draft(asst, emb, pending, pre, pos, skv, 1)[0][0]
        tc = asst.config.get_text_config()
        tc.sliding_window = 1 << 20
        alts["alt_logits_nowindow"] = draft(asst, emb, pending, last, pos, skv, 1)[0][0]
        tc.sliding_window = w
    except Exception as e:  # noqa: BLE001
        fail(name + " diagnostics", e)
    for k, v in alts.items():
        REPORT[f"{name}_{k}_max_diff_vs_step0"] = float((v - res["logits"][0]).abs().max())
        log(f"{name}: {k} differs from step 0 by {REPORT[f'{name}_{k}_max_diff_vs_step0']:.3e}")
    if alts:
        res.update({k: v.clone().contiguous() for k, v in alts.items()})
        save_file(res, path)
        log(f"{name}: rewrote {path} with {len(alts)} diagnostics")


def generate_probe(target, ids, adir, o):
    """What transformers' own assisted generate feeds the drafter on its first call."""
    log("--- generate probe")
    asst = Gemma4AssistantForCausalLM.from_pretrained(adir, dtype=torch.float32).eval()
    calls = []

    def pre_hook(mod, args, kwargs):
        if not calls:
            calls.append({k: (v.detach().clone() if torch.is_tensor(v) else v) for k, v in kwargs.items()
                          if k != "shared_kv_states"})
            calls[0]["skv_shapes"] = {k: list(v[0].shape) for k, v in kwargs["shared_kv_states"].items()}
    asst.register_forward_pre_hook(pre_hook, with_kwargs=True)
    with torch.no_grad():
        gen = target.generate(input_ids=ids, attention_mask=torch.ones_like(ids), assistant_model=asst,
                              max_new_tokens=6, do_sample=False)
    p = {"generated": gen[0, ids.shape[1]:].tolist(), "calls_seen": len(calls)}
    if calls:
        c = calls[0]
        B = o.hidden_states[-1].shape[-1]
        h = c["inputs_embeds"][0, 0, B:]
        hs = o.hidden_states[-1][0]
        d = (hs - h).abs().max(-1).values
        p.update(position_ids=c["position_ids"].tolist(), skv_shapes=c["skv_shapes"],
                 attention_mask_shape=list(c["attention_mask"].shape) if torch.is_tensor(c.get("attention_mask")) else None,
                 hidden_nearest_target_position=int(d.argmin()), hidden_nearest_diff=float(d.min()),
                 hidden_diff_vs_last_position=float(d[-1]))
    REPORT["generate_probe"] = p
    log("generate probe:", json.dumps(p))


if __name__ == "__main__":
    out_dir = sys.argv[1] if len(sys.argv) > 1 else None
    if not out_dir:
        sys.exit("usage: make_assistant_fixture.py OUTDIR")
    try:
        main()
    except Exception as e:  # noqa: BLE001
        fail("main", e)
    finally:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "report.json"), "w") as f:
            json.dump(REPORT, f, indent=2, default=str)
        log("wrote report.json;", len(REPORT["errors"]), "error(s)")
    ok = all(os.path.exists(os.path.join(out_dir, n + "_fixture.safetensors")) for n in ("assistant", "assistant_ordered"))
    sys.exit(0 if ok else 1)
