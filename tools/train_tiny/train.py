#!/usr/bin/env python3
"""Trains g4's embedded default model: a ~3.5M-parameter Gemma 4 (5 sliding + 1 full layer, K=V on the full
layer) on the King James Bible, then exports it in the real checkpoint layout and a reference fixture.

Runs where torch and transformers (with Gemma 4) are installed, e.g. the GPU machine (see README.md).
Outputs in OUT: model.safetensors (bf16, keys model.language_model.*, lm_head tied), config.json,
expected.safetensors (transformers' own fp32 logits and greedy tokens on the exported weights), case.json,
metrics.json. `--dry-run` builds the data with the stdlib tokenizer and stops before importing torch.
"""
import argparse, json, math, os, random, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe, samples, tool_samples

TEXT_CONFIG = dict(hidden_size=192, intermediate_size=512, num_hidden_layers=6, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=64, global_head_dim=128, num_global_key_value_heads=1,
                   attention_k_eq_v=True, sliding_window=128, vocab_size=4096, final_logit_softcapping=30.0,
                   hidden_size_per_layer_input=0, max_position_embeddings=4096, rms_norm_eps=1e-6,
                   layer_types=["sliding_attention"] * 5 + ["full_attention"], pad_token_id=0, bos_token_id=2,
                   tie_word_embeddings=True)
PAD, EOS, BOS = 0, 1, 2
STOP_IDS = [bpe.SPECIALS.index(s) for s in ("<eos>", "<turn|>", "<|tool_response>")]
FIXTURE_PROMPT = "In the beginning"
DEMO_PROMPTS = ["In the beginning", "Who was Moses?", "Tell me about love.", "Hello", "The LORD is my shepherd",
                "What does the Bible say about wisdom?", "Recite John 3:16.", "Blessed are the meek"]


TOOL_FIXTURE_QUESTION = "What is the weather in Jerusalem?"  # with tool_samples.WEATHER declared


def chat_prompt(text):
    """Exactly what the Gemma 4 chat template renders for one user message with thinking off."""
    return f"<bos><|turn>user\n{text}<turn|>\n<|turn>model\n<|channel>thought\n<channel|>"


def tool_prompt(text, tools=(tool_samples.WEATHER,), system=None):
    """The chat template's prompt for one user message with `tools` declared (thinking off)."""
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    return tool_samples.render({"messages": msgs, "tools": list(tools), "add_generation_prompt": True})


BOTH = (tool_samples.WEATHER, tool_samples.FIND_VERSE)
TOOL_DEMOS = [(TOOL_FIXTURE_QUESTION, (tool_samples.WEATHER,)), ("What is the weather in Babylon?", BOTH),
              ("Is it raining in London?", (tool_samples.WEATHER,)), ("Find chapter 3 of Genesis", BOTH),
              ("Look up John 1.", (tool_samples.FIND_VERSE,)), ("Who was Moses?", (tool_samples.WEATHER,)),
              ("Tell me about love.", BOTH)]
# A round trip: the prompt after the host appended the tool result (the template adds no generation prompt).
ROUND_TRIP = {"messages": [{"role": "user", "content": TOOL_FIXTURE_QUESTION},
                           {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
                               "name": "get_weather", "arguments": {"city": "Jerusalem"}}}]},
                           {"role": "tool", "tool_call_id": "c1", "content": "sunny, 25 degrees"}],
              "tools": [tool_samples.WEATHER], "add_generation_prompt": True}


class Encoder:
    """HF `tokenizers` when importable (what users' tools do), else the stdlib encoder from bpe.py."""

    def __init__(self, tok_dir):
        j = json.load(open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8"))
        vocab = sorted(j["model"]["vocab"], key=j["model"]["vocab"].get)
        self.mine = bpe.Tokenizer(vocab, [tuple(m) for m in j["model"]["merges"]])
        self.hf = None
        try:
            from tokenizers import Tokenizer
            self.hf = Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))
        except ImportError:
            pass

    def encode(self, texts):
        if self.hf is not None:
            return [e.ids for e in self.hf.encode_batch(texts, add_special_tokens=False)]
        return [self.mine.encode(t) for t in texts]

    def decode(self, ids):
        if self.hf is not None:
            return self.hf.decode(list(ids), skip_special_tokens=False)
        return self.mine.decode(ids)

    def check_agreement(self, texts):
        """Compare HF tokenizers with bpe.py on texts; prints mismatches (the C++ tokenizer follows HF)."""
        if self.hf is None:
            print("agreement: HF tokenizers not installed, skipped")
            return None
        hf = self.encode(texts)
        bad = [i for i, t in enumerate(texts) if self.mine.encode(t) != hf[i]]
        print(f"agreement HF tokenizers vs bpe.py: {len(texts) - len(bad)}/{len(texts)} texts identical")
        for i in bad[:3]:
            print("  mismatch:", repr(texts[i][:120]), hf[i][:30], self.mine.encode(texts[i])[:30])
        rt = sum(self.decode(h) == t for h, t in zip(hf, texts))
        print(f"round trip decode(encode(t)) == t: {rt}/{len(texts)}")
        return len(bad)


def build_data(verses, enc, pool, n_plain, n_chat, length, rng):
    verse_ids = {}
    texts = [verses[i]["t"] for i in pool]
    for i, ids in zip(pool, enc.encode(texts)):
        verse_ids[i] = ids
    nl = enc.encode(["\n"])[0][0]
    plain = [samples.plain_row(verse_ids, pool, rng, length, BOS, nl) for _ in range(n_plain)]
    maker = samples.ChatMaker(verses, pool, rng)
    chat_texts = [maker.sample() for _ in range(n_chat)]
    chat_tok = enc.encode(chat_texts)
    rng.shuffle(chat_tok)
    chat = samples.pack(chat_tok, length, PAD)
    used = sum(sum(1 for t in r if t != PAD) for r in chat)
    print(f"  {len(plain)} plain rows, {len(chat)} chat rows from {n_chat} conversations "
          f"(mean {sum(map(len, chat_tok)) / max(1, n_chat):.0f} tokens, rows {used / max(1, len(chat) * length):.0%} full)")
    return plain, chat, chat_texts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--tokenizer", required=True, help="folder with tokenizer.json (train_tokenizer.py)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=float, default=150.0, help="seconds of training")
    ap.add_argument("--max-steps", type=int, default=900)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args()
    T0 = time.time()

    verses = [json.loads(l) for l in open(a.corpus, encoding="utf-8")]
    train_pool, val_pool = samples.split_by_chapter(verses)
    enc = Encoder(a.tokenizer)
    print(f"{len(verses)} verses: {len(train_pool)} train, {len(val_pool)} validation; "
          f"tokenizer: {'HF tokenizers' if enc.hf else 'bpe.py'}")
    scale = 100 if a.dry_run else 1
    rng = random.Random(a.seed)
    print("train data:")
    tr_plain, tr_chat, chat_texts = build_data(verses, enc, train_pool, 40000 // scale, 150000 // scale, a.seq, rng)
    print("validation data:")
    va_plain, va_chat, _ = build_data(verses, enc, val_pool, 128, 640, a.seq, random.Random(a.seed + 1))
    enc.check_agreement([verses[i]["t"] for i in range(0, len(verses), 1 if enc.hf else 97)] +
                        chat_texts[:2000 // scale] + [chat_prompt(p) for p in DEMO_PROMPTS] +
                        [tool_prompt(q, t) for q, t in TOOL_DEMOS] + [tool_samples.render(ROUND_TRIP)])
    fixture_prompt = enc.encode([chat_prompt(FIXTURE_PROMPT)])[0]
    print("fixture prompt:", fixture_prompt)
    print("tool prompt:", len(enc.encode([tool_prompt(TOOL_FIXTURE_QUESTION)])[0]), "tokens;",
          sum("<|tool>" in t for t in chat_texts), "of", len(chat_texts), "conversations declare tools")
    if a.dry_run:
        print("example chat row:", repr(enc.decode(tr_chat[0])[:400]))
        print("example tool conversation:", repr(next(t for t in chat_texts if "<|tool_call>" in t)))
        print("example plain row:", repr(enc.decode(tr_plain[0])[:200]))
        print("dry run: stopping before torch")
        return
    print(f"data ready after {time.time() - T0:.0f} s")
    train(a, enc, tr_plain, tr_chat, va_plain, va_chat, fixture_prompt)


def make_config():
    """(text config for training with Gemma4ForCausalLM, full config of the exported checkpoint)."""
    from transformers.models.gemma4.configuration_gemma4 import Gemma4Config, Gemma4TextConfig
    text = Gemma4TextConfig(**TEXT_CONFIG)
    cfg = Gemma4Config(text_config=text.to_dict(), vision_config=None, audio_config=None)
    cfg.architectures = ["Gemma4ForConditionalGeneration"]
    return text, cfg


def set_embed_scale(model, hidden):
    """transformers multiplies embeddings by sqrt(hidden) cast to the bf16 weight dtype (13.875 for 192): use that
    value in training and in the reference, since it is what a bf16 checkpoint computes and what g4 uses."""
    import torch
    mods = [m for _, m in model.named_modules() if isinstance(getattr(m, "embed_scale", None), torch.Tensor)]
    assert len(mods) == 1, "expected one scaled embedding"
    mods[0].embed_scale.fill_(torch.tensor(hidden ** 0.5).to(torch.bfloat16).float().item())


def train(a, enc, tr_plain, tr_chat, va_plain, va_chat, fixture_prompt):
    import torch
    import torch.nn.functional as F
    from transformers.models.gemma4.modeling_gemma4 import Gemma4ForCausalLM
    torch.manual_seed(a.seed)
    dev = torch.device("cuda")
    text_cfg, cfg = make_config()
    # Text-only class for training (no multimodal mask logic); exported under the multimodal names below.
    model = Gemma4ForCausalLM(text_cfg).to(dev)
    set_embed_scale(model, TEXT_CONFIG["hidden_size"])
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params} parameters ({n_params * 2 / 1e6:.2f} MB in bf16), attn {getattr(text_cfg, '_attn_implementation', '?')}")
    V = TEXT_CONFIG["vocab_size"]
    tp = torch.tensor(tr_plain, dtype=torch.int32, device=dev)
    tc = torch.tensor(tr_chat, dtype=torch.int32, device=dev)
    vp = torch.tensor(va_plain, dtype=torch.int32, device=dev)
    vc = torch.tensor(va_chat, dtype=torch.int32, device=dev)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)

    def loss_of(rows):
        x = rows.long()
        y = x[:, 1:].clone()
        y[(y == PAD) | (y == BOS)] = -100  # padding, and the <bos> that starts the next packed conversation
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x, use_cache=False).logits
        return F.cross_entropy(logits[:, :-1].float().reshape(-1, V), y.reshape(-1), ignore_index=-100)

    @torch.no_grad()
    def evaluate():
        model.eval()
        r = {}
        for name, rows in (("plain", vp), ("chat", vc)):
            r[name] = sum(loss_of(rows[i:i + 64]).item() * len(rows[i:i + 64]) for i in range(0, len(rows), 64)) / len(rows)
        model.train()
        return r

    warmup, total = 150, a.max_steps
    half = a.batch // 2
    gen = torch.Generator(device=dev).manual_seed(a.seed)
    best, best_state, history = None, None, []
    run_loss, run_n = torch.zeros((), device=dev), 0
    t0 = time.time()
    step = 0
    while step < total:
        if step == 40:  # size the run to the time budget from the measured step time
            torch.cuda.synchronize()
            per = (time.time() - t10) / 30
            total = max(200, min(a.max_steps, int(a.budget / per)))
            print(f"step time {per * 1e3:.1f} ms -> {total} steps")
        if time.time() - t0 > a.budget * 1.25 and total > step + 1:
            total = step + 1  # over budget (slower steps than measured): this step is the last, evaluated one
        if step == 10:
            torch.cuda.synchronize()
            t10 = time.time()
        lr = a.lr * min(1.0, (step + 1) / warmup)
        if step >= warmup:
            lr = a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup)))))
        for g in opt.param_groups:
            g["lr"] = lr
        rows = torch.cat([tp[torch.randint(len(tp), (half,), device=dev, generator=gen)],
                          tc[torch.randint(len(tc), (a.batch - half,), device=dev, generator=gen)]])
        loss = loss_of(rows)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        run_loss += loss.detach()
        run_n += 1
        step += 1
        if step % 100 == 0 or step == total:
            tl = (run_loss / run_n).item()
            run_loss.zero_()
            run_n = 0
            rec = {"step": step, "train_loss": tl, "lr": lr, "elapsed_s": round(time.time() - t0, 1)}
            if step % a.eval_every == 0 or step == total:
                rec.update({"val_" + k: v for k, v in evaluate().items()})
                score = rec["val_plain"] + rec["val_chat"]
                if best is None or score < best[0]:
                    best = (score, dict(rec))
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            history.append(rec)
            print(json.dumps(rec))
    print(f"trained {step} steps in {time.time() - t0:.0f} s; best {json.dumps(best[1])}")
    model.load_state_dict(best_state)

    # Export in the real checkpoint layout, as make_fixtures.py does.
    from safetensors.torch import save_file
    sd = {k.replace("model.", "model.language_model.", 1): v.detach().to(torch.bfloat16).contiguous().cpu()
          for k, v in model.state_dict().items() if k != "lm_head.weight" and not k.endswith("embed_scale")}
    odd = [k for k in sd if not k.startswith("model.language_model.")]
    print(f"export: {len(sd)} tensors, unexpected names: {odd}")
    os.makedirs(a.out, exist_ok=True)
    save_file(sd, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
    cfg.save_pretrained(a.out)
    cpath = os.path.join(a.out, "config.json")
    c = json.load(open(cpath))
    for d in (c, c["text_config"]):  # stop ids: <eos>, <turn|>, <|tool_response>
        d["eos_token_id"], d["bos_token_id"], d["pad_token_id"] = STOP_IDS, BOS, PAD
    c["dtype"] = c["text_config"]["dtype"] = "bfloat16"
    # The hub's form of the full-layer geometry (this transformers writes per_layer_config instead).
    c["text_config"].pop("per_layer_config", None)
    for k in ("global_head_dim", "num_global_key_value_heads"):
        c["text_config"][k] = TEXT_CONFIG[k]
    json.dump(c, open(cpath, "w"), indent=2)
    metrics = {"steps": step, "batch": a.batch, "seq": a.seq, "tokens_seen": step * a.batch * a.seq,
               "params": n_params, "best": best[1], "final": history[-1], "history": history,
               "train_plain_rows": len(tr_plain), "train_chat_rows": len(tr_chat)}
    json.dump(metrics, open(os.path.join(a.out, "metrics.json"), "w"), indent=1)
    reference(a, enc, cfg, sd, fixture_prompt)


def reference(a, enc, cfg, sd, prompt_ids):
    """transformers' fp32 forward on the exported bf16 weights (CPU, no TF32): the fixture, then demo text."""
    import torch
    from safetensors.torch import save_file
    from transformers.models.gemma4.modeling_gemma4 import Gemma4ForConditionalGeneration
    torch.manual_seed(0)
    ref = Gemma4ForConditionalGeneration(cfg).eval()
    missing, unexpected = ref.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)
    print("reference load: missing", missing, "unexpected", unexpected)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, "export does not fill the multimodal class"
    emb = ref.model.language_model.embed_tokens
    assert ref.lm_head.weight.data_ptr() == emb.weight.data_ptr(), "lm_head is not tied"
    set_embed_scale(ref, TEXT_CONFIG["hidden_size"])
    try:
        hf = Gemma4ForConditionalGeneration.from_pretrained(a.out, dtype=torch.bfloat16)
        same = all(torch.equal(hf.state_dict()[k], v) for k, v in sd.items())
        print("from_pretrained of the export:", "weights identical" if same else "WEIGHTS DIFFER")
    except Exception as e:  # noqa: BLE001 - report and go on; the fixture does not depend on it
        print("from_pretrained failed:", repr(e)[:300])

    prompt = torch.tensor([prompt_ids])
    n_new = 32
    with torch.no_grad():
        logits = ref(input_ids=prompt, use_cache=False).logits[0].float()
        g = ref.generate(input_ids=prompt, max_new_tokens=n_new, do_sample=False,
                         output_logits=True, return_dict_in_generate=True, eos_token_id=None, pad_token_id=PAD)
        new = g.sequences[0, prompt.shape[1]:]
        steps = torch.stack([l[0].float() for l in g.logits])
        full = ref(input_ids=g.sequences, use_cache=False).logits[0].float()
        drift = (full[prompt.shape[1] - 1:-1] - steps).abs().max().item()
        top2 = steps.topk(2, dim=-1).values
        margin = (top2[:, 0] - top2[:, 1]).min().item()
    # The tool prompt: greedy until a stop id (the call then ends with <|tool_response>), and its margins.
    tprompt = torch.tensor(enc.encode([tool_prompt(TOOL_FIXTURE_QUESTION)]))
    with torch.no_grad():
        tg = ref.generate(input_ids=tprompt, max_new_tokens=48, do_sample=False, output_logits=True,
                          return_dict_in_generate=True, eos_token_id=STOP_IDS, pad_token_id=PAD)
    tool_new = tg.sequences[0, tprompt.shape[1]:]
    t2 = torch.stack([l[0].float() for l in tg.logits]).topk(2, dim=-1).values
    save_file({"prompt": prompt[0].to(torch.int32).contiguous(), "prompt_logits": logits.contiguous(),
               "greedy_tokens": new.to(torch.int32).contiguous(), "greedy_step_logits": steps.contiguous(),
               "tool_prompt": tprompt[0].to(torch.int32).contiguous(),
               "tool_greedy_tokens": tool_new.to(torch.int32).contiguous()},
              os.path.join(a.out, "expected.safetensors"))
    case = {"name": "tiny-kjv", "prompt_text": chat_prompt(FIXTURE_PROMPT), "prompt_len": prompt.shape[1],
            "new_tokens": len(new), "greedy_text": enc.decode(new.tolist()),
            "reference": "transformers Gemma4ForConditionalGeneration, fp32 compute on the bf16 weights, CPU",
            "cached_vs_uncached_max_abs_diff": drift, "min_top1_top2_margin": margin,
            "tool_prompt_text": tool_prompt(TOOL_FIXTURE_QUESTION), "tool_prompt_len": tprompt.shape[1],
            "tool_greedy_text": enc.decode(tool_new.tolist()), "tool_greedy_min_top1_top2_margin": (t2[:, 0] - t2[:, 1]).min().item()}
    json.dump(case, open(os.path.join(a.out, "case.json"), "w"), indent=2)
    print("fixture:", json.dumps(case))

    # Demo: greedy and sampled answers, stopping on the stop ids as g4 run does.
    stops, ok = 0, 0
    for i, p in enumerate(DEMO_PROMPTS):
        ids = torch.tensor(enc.encode([chat_prompt(p)]))
        with torch.no_grad():
            gg = ref.generate(input_ids=ids, max_new_tokens=160, do_sample=False, eos_token_id=STOP_IDS,
                              pad_token_id=PAD)[0, ids.shape[1]:].tolist()
            torch.manual_seed(i)
            ss = ref.generate(input_ids=ids, max_new_tokens=160, do_sample=True, temperature=0.8, top_k=40,
                              top_p=0.95, eos_token_id=STOP_IDS, pad_token_id=PAD)[0, ids.shape[1]:].tolist()
        for kind, out in (("greedy", gg), ("sampled", ss)):
            stops += out[-1] in STOP_IDS
            ok += 1
            print(f"--- {kind} | {p!r} ({len(out)} tokens, stop={out[-1] in STOP_IDS})\n{enc.decode(out)}")
    print(f"answers that ended on a stop token: {stops}/{ok}")
    tool_demo(enc, ref)
    ids = torch.tensor([[BOS] + enc.encode(["And it came to pass"])[0]])
    with torch.no_grad():
        torch.manual_seed(7)
        out = ref.generate(input_ids=ids, max_new_tokens=80, do_sample=True, temperature=0.8, top_k=40,
                           eos_token_id=STOP_IDS, pad_token_id=PAD)[0].tolist()
    print("--- raw text, sampled:\n" + enc.decode(out))


def tool_demo(enc, ref):
    """Greedy answers with tools declared, a round trip, and exact-call accuracy on a grid of questions."""
    import torch

    def greedy(text, n=64):
        ids = torch.tensor(enc.encode([text]))
        with torch.no_grad():
            out = ref.generate(input_ids=ids, max_new_tokens=n, do_sample=False, eos_token_id=STOP_IDS,
                               pad_token_id=PAD)[0, ids.shape[1]:].tolist()
        return enc.decode(out)

    for q, tools in TOOL_DEMOS:
        print(f"--- greedy, tools {[t['function']['name'] for t in tools]} | {q!r}\n{greedy(tool_prompt(q, tools))}")
    print(f"--- greedy, round trip after the tool result\n{greedy(tool_samples.render(ROUND_TRIP))}")
    grid = [(f"What is the weather in {c}?", f'<|tool_call>call:get_weather{{city:<|"|>{c}<|"|>}}<tool_call|><|tool_response>')
            for c in tool_samples.KJV_CITIES[:12] + tool_samples.OTHER_CITIES[:4]]
    grid += [(f"Find chapter {n} of {b}", f'<|tool_call>call:find_verse{{book:<|"|>{b}<|"|>,chapter:{n}}}<tool_call|><|tool_response>')
             for b, n in (("Genesis", 3), ("Exodus", 20), ("Psalms", 23), ("John", 1), ("Romans", 8), ("Ruth", 2))]
    right = sum(greedy(tool_prompt(q, BOTH), 40) == want for q, want in grid)
    print(f"exact greedy tool calls with both tools declared: {right}/{len(grid)}")


if __name__ == "__main__":
    main()
