"""Reference fixture for g4's assistant drafter, produced with transformers' own Gemma4AssistantForCausalLM.

NOT RUN YET: needs torch + transformers >= 5.17 (the GPU machine has both; CPU is enough). Writes OUTDIR/:
  assistant/            a random-weight assistant for models/tiny-kjv (config.json + model.safetensors, f32),
                        saved by transformers itself (save_pretrained), so its layout is the hub's
  assistant_fixture.safetensors:
    prompt        I32 [L]      target input ids (the pending token is the target's greedy next token)
    pending       I32 [1]
    position      I32 [1]      the drafter's position id (L, the pending token's position), as transformers'
                               SinglePositionMultiTokenCandidateGenerator computes it
    logits        F32 [S, V]   assistant logits of draft steps 0..S-1 (greedy chain, same position each step)
    hidden        F32 [S, B]   its post_projection output of each step (the next step's hidden state)
    target_hidden F32 [B]      the target's hidden_states[-1] at the last prompt position (what the generator feeds)
    hidden_is_final_normed I32 [1]  1 when that equals last_hidden_state (after the final norm), as g4 assumes
Usage (repo root): python3 tools/oracle/make_assistant_fixture.py OUTDIR [--ordered]
Then a test loads OUTDIR/assistant with AssistantModel::load and compares step by step (tolerance ~1e-4 on
the ref backend: both sides run f32).
"""
import json, os, sys
import torch
from safetensors.torch import save_file
from transformers.models.gemma4.modeling_gemma4 import Gemma4ForConditionalGeneration
from transformers.models.gemma4_assistant.configuration_gemma4_assistant import Gemma4AssistantConfig
from transformers.models.gemma4_assistant.modeling_gemma4_assistant import Gemma4AssistantForCausalLM

TARGET = "models/tiny-kjv"
STEPS = 3
PROMPT_LEN = 200  # past the target's sliding window of 128


def main():
    out = sys.argv[1]
    ordered = "--ordered" in sys.argv
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1234)
    target = Gemma4ForConditionalGeneration.from_pretrained(TARGET, dtype=torch.float32).eval()
    tcfg = target.config.get_text_config()
    layer_types = ["sliding_attention", "full_attention"]
    text = dict(
        model_type="gemma4_text", vocab_size=tcfg.vocab_size, hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=tcfg.num_key_value_heads,
        head_dim=tcfg.head_dim, global_head_dim=tcfg.global_head_dim, attention_k_eq_v=tcfg.attention_k_eq_v,
        num_global_key_value_heads=tcfg.num_global_key_value_heads, num_kv_shared_layers=2,
        sliding_window=tcfg.sliding_window, layer_types=layer_types, rms_norm_eps=tcfg.rms_norm_eps,
        hidden_size_per_layer_input=0, vocab_size_per_layer_input=0, final_logit_softcapping=None,
        rope_parameters=tcfg.rope_parameters, max_position_embeddings=tcfg.max_position_embeddings,
        tie_word_embeddings=True)
    cfg = Gemma4AssistantConfig(text_config=text, backbone_hidden_size=tcfg.hidden_size,
                                use_ordered_embeddings=ordered, num_centroids=64, centroid_intermediate_top_k=4)
    asst = Gemma4AssistantForCausalLM(cfg).eval()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in asst.named_parameters():
            if "norm" in name:
                p.copy_(torch.empty(p.shape).uniform_(0.5, 1.5, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        if ordered:
            asst.masked_embedding.token_ordering.copy_(torch.randperm(tcfg.vocab_size, generator=g))
    asst.save_pretrained(os.path.join(out, "assistant"), safe_serialization=True)

    ids = torch.randint(3, tcfg.vocab_size, (1, PROMPT_LEN), generator=g)
    ids[0, 0] = 2  # <bos>
    text_model = target.model.language_model
    embed = target.get_input_embeddings()  # scaled by sqrt(hidden) inside, as the drafter is fed
    with torch.no_grad():
        o = text_model(input_ids=ids, use_cache=False, return_shared_kv_states=True, output_hidden_states=True)
        # transformers' SinglePositionMultiTokenCandidateGenerator feeds hidden_states[-1]; g4 feeds the final-
        # normed state. Record whether they are the same tensor here (if not, g4's choice is wrong).
        last = o.hidden_states[-1][:, -1:]
        normed = o.last_hidden_state[:, -1:]
        same = bool(torch.allclose(last, normed, rtol=1e-5, atol=1e-5))
        print("hidden_states[-1] == last_hidden_state (final-normed):", same)
        pending = target.lm_head(normed).argmax(-1)  # [1, 1]
        skv = {k: (v[0][:, :, :PROMPT_LEN], v[1][:, :, :PROMPT_LEN]) for k, v in o.shared_kv_states.items()}
        pos = torch.tensor([[PROMPT_LEN]])
        tok, h = pending, last
        logits, hidden = [], []
        for _ in range(STEPS):
            a = asst(inputs_embeds=torch.cat([embed(tok), h], dim=-1), position_ids=pos,
                     shared_kv_states=skv, attention_mask=None, use_cache=False)
            logits.append(a.logits[0, -1].float())
            hidden.append(a.last_hidden_state[0, -1].float())
            tok = a.logits.argmax(-1)
            h = a.last_hidden_state
    save_file({
        "prompt": ids[0].to(torch.int32).contiguous(),
        "pending": pending[0].to(torch.int32).contiguous(),
        "position": torch.tensor([PROMPT_LEN], dtype=torch.int32),
        "logits": torch.stack(logits).contiguous(),
        "hidden": torch.stack(hidden).contiguous(),
        "target_hidden": last[0, 0].float().contiguous(),
        "hidden_is_final_normed": torch.tensor([1 if same else 0], dtype=torch.int32),
    }, os.path.join(out, "assistant_fixture.safetensors"))
    print("wrote", out)


if __name__ == "__main__":
    main()
