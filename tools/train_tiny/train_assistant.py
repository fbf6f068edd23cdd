#!/usr/bin/env python3
"""Trains a Gemma 4 assistant drafter (transformers' Gemma4AssistantForCausalLM) for the shipped models/tiny-kjv.

The target is frozen. For every position t of a training row x, the drafter gets what transformers' candidate
generator (SinglePositionMultiTokenCandidateGenerator) and g4 give it when x[t+1] is the pending token:
  input    cat(target embedding of x[t+1] (times sqrt(192) rounded to bf16, as the target scales it),
               the target's final-normed hidden state at t)
  position t + 1 (the pending token's position; it stays there for every chained step)
  keys     the target's K/V of its last sliding / last full layer at positions <= t (the last window + 1
           = 129 for the sliding layers, as transformers' drafter mask and g4 give them)
and learns the target's next-token distribution at position t+1 (cross-entropy against the target's softmax;
`--data-weight` mixes in the corpus token x[t+2]). Chained steps s = 1..chain-1 feed the previous step's
post_projection output as the hidden state and x[t+1+s] as the token (the token an accepted draft would be),
and learn the target's distribution at t+1+s. All positions of a row train in parallel (one forward over the
row per chained step, with the masks above).
Data: plain KJV rows and chat conversations as train.py builds them (same held-out chapters), plus the
target's own continuations of training text (`--gen-rows`, half greedy half sampled).
Outputs in OUT: the assistant (save_pretrained: config.json + model.safetensors, bf16), metrics.json (train and
validation loss, top-1 agreement with the target per chained step on held-out rows, and acceptance per draft
position on the target's greedy continuations of held-out text, measured on the saved bf16 weights),
checkpoint/ (saved about every minute while training). `--dry-run` builds the data and stops before torch.
Usage (repo root): python3 tools/train_tiny/train_assistant.py --corpus kjv.jsonl.gz --out OUT
"""
import argparse, copy, gzip, json, math, os, random, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import samples
import train as base  # Encoder, build_data, set_embed_scale, PAD, BOS

T0 = time.time()


def log(*a):
    print(f"[{time.time() - T0:6.1f}s]", *a, flush=True)


def read_verses(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True, help="kjv.jsonl or kjv.jsonl.gz (prepare_corpus.py)")
    ap.add_argument("--target", default="models/tiny-kjv", help="the target model folder (also its tokenizer)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-seconds", type=float, default=150.0, help="seconds of the training loop")
    ap.add_argument("--deadline", type=float, default=225.0, help="seconds from start by which all is saved")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--intermediate", type=int, default=512)
    ap.add_argument("--layers", type=int, default=2, help="layers - 1 sliding, then 1 full")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--chain", type=int, default=3, help="chained draft steps trained per position")
    ap.add_argument("--data-weight", type=float, default=0.0, help="weight of the corpus-token loss (0..1)")
    ap.add_argument("--plain-rows", type=int, default=4000)
    ap.add_argument("--chat-convs", type=int, default=30000)
    ap.add_argument("--gen-rows", type=int, default=256, help="target continuations added to training")
    ap.add_argument("--eval-k", type=int, default=4, help="draft positions measured")
    ap.add_argument("--checkpoint-every", type=float, default=60.0)
    ap.add_argument("--eval-every", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dry-run", action="store_true")
    return ap.parse_args()


def main():
    a = parse_args()
    verses = read_verses(a.corpus)
    train_pool, val_pool = samples.split_by_chapter(verses)
    enc = base.Encoder(a.target)
    log(f"{len(verses)} verses: {len(train_pool)} train, {len(val_pool)} validation; tokenizer "
        f"{'HF tokenizers' if enc.hf else 'bpe.py'}")
    scale = 100 if a.dry_run else 1
    rng = random.Random(a.seed)
    log("train data:")
    tr_plain, tr_chat, _ = base.build_data(verses, enc, train_pool, a.plain_rows // scale, a.chat_convs // scale, a.seq, rng)
    log("validation data:")
    va_plain, va_chat, _ = base.build_data(verses, enc, val_pool, 128, 640, a.seq, random.Random(a.seed + 1))
    if a.dry_run:
        log("dry run: example plain row", repr(enc.decode(tr_plain[0])[:160]))
        log("dry run: stopping before torch")
        return
    os.makedirs(a.out, exist_ok=True)
    metrics = {"args": vars(a), "errors": []}
    try:
        Trainer(a, metrics).run(tr_plain, tr_chat, va_plain, va_chat)
    except Exception as e:  # noqa: BLE001 - report, keep what was saved
        import traceback
        tb = traceback.format_exc()
        log("ERROR:", repr(e), "\n" + tb)
        metrics["errors"].append(tb)
    finally:
        metrics["wall_s"] = round(time.time() - T0, 1)
        with open(os.path.join(a.out, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=1)
        log("wrote", os.path.join(a.out, "metrics.json"), "; errors:", len(metrics["errors"]))
    sys.exit(1 if metrics["errors"] else 0)


class Trainer:
    def __init__(self, a, metrics):
        import torch
        self.torch, self.a, self.m = torch, a, metrics
        self.dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.manual_seed(a.seed)

    # ---------------- models
    def load_target(self):
        torch = self.torch
        from transformers.models.gemma4.modeling_gemma4 import Gemma4ForConditionalGeneration
        with open(os.path.join(self.a.target, "config.json")) as f:
            self.tcfg = json.load(f)["text_config"]
        t = Gemma4ForConditionalGeneration.from_pretrained(self.a.target, dtype=torch.float32).to(self.dev).eval()
        t.requires_grad_(False)
        base.set_embed_scale(t, self.tcfg["hidden_size"])
        self.target, self.tm = t, t.model.language_model
        self.softcap = self.tcfg.get("final_logit_softcapping")
        log(f"target {self.a.target} on {self.dev}, embed scale {float(self.tm.embed_tokens.embed_scale):.4f}")

    def make_assistant(self):
        torch, a, t = self.torch, self.a, self.tcfg
        from transformers.models.gemma4_assistant.configuration_gemma4_assistant import Gemma4AssistantConfig
        from transformers.models.gemma4_assistant.modeling_gemma4_assistant import Gemma4AssistantForCausalLM
        full = [i for i, lt in enumerate(t["layer_types"]) if lt == "full_attention"][-1]
        plc = (t.get("per_layer_config") or {}).get(str(full), {})
        text = dict(
            model_type="gemma4_text", vocab_size=t["vocab_size"], hidden_size=a.hidden, intermediate_size=a.intermediate,
            num_hidden_layers=a.layers, layer_types=["sliding_attention"] * (a.layers - 1) + ["full_attention"],
            num_kv_shared_layers=a.layers, num_attention_heads=a.heads,
            num_key_value_heads=t["num_key_value_heads"], head_dim=t["head_dim"],
            global_head_dim=t.get("global_head_dim", plc.get("head_dim")),
            num_global_key_value_heads=t.get("num_global_key_value_heads", plc.get("num_key_value_heads")),
            attention_k_eq_v=t["attention_k_eq_v"], sliding_window=t["sliding_window"],
            rope_parameters=copy.deepcopy(t["rope_parameters"]), max_position_embeddings=t["max_position_embeddings"],
            rms_norm_eps=t["rms_norm_eps"], hidden_activation=t["hidden_activation"],
            hidden_size_per_layer_input=0, vocab_size_per_layer_input=0, final_logit_softcapping=None,
            tie_word_embeddings=True, bos_token_id=t["bos_token_id"], eos_token_id=copy.deepcopy(t["eos_token_id"]),
            pad_token_id=t["pad_token_id"])
        cfg = Gemma4AssistantConfig(text_config=text, backbone_hidden_size=t["hidden_size"], use_ordered_embeddings=False)
        asst = Gemma4AssistantForCausalLM(cfg)
        try:
            asst.set_attn_implementation("sdpa")
        except Exception as e:  # noqa: BLE001 - the masks below follow whatever implementation it has
            log("set_attn_implementation('sdpa') failed:", repr(e))
        self.attn = getattr(asst.model.config, "_attn_implementation", None) or "eager"  # what its layers read
        self.cls = Gemma4AssistantForCausalLM
        n = sum(p.numel() for p in asst.parameters())
        self.m["assistant_params"] = n
        log(f"assistant: {n} parameters, hidden {a.hidden}, {a.layers} layers, attention {self.attn}")
        return asst.to(self.dev)

    # ---------------- passes
    def target_pass(self, x):
        """x [B, T] -> (final-normed hidden [B,T,Hb], softcapped logits [B,T,V], shared K/V of its tapped layers)."""
        torch = self.torch
        with torch.no_grad():
            o = self.tm(input_ids=x, use_cache=False, return_shared_kv_states=True)
            h = o.last_hidden_state
            logits = self.target.lm_head(h).float()
            if self.softcap:
                logits = torch.tanh(logits / self.softcap) * self.softcap
        skv = {k: (v[0].detach(), v[1].detach()) for k, v in o.shared_kv_states.items()}
        return h.detach(), logits, skv

    def masks(self, T):
        """Row t sees keys j <= t (all of them on full layers, the last `window` + 1 on sliding ones)."""
        torch = self.torch
        i = torch.arange(T, device=self.dev)
        d = i[:, None] - i[None, :]
        full = d >= 0
        slide = full & (d <= self.tcfg["sliding_window"])
        if self.attn == "sdpa":
            return {"full_attention": full[None, None], "sliding_attention": slide[None, None]}
        neg = torch.finfo(torch.float32).min
        f = lambda m: torch.zeros(m.shape, device=self.dev).masked_fill(~m, neg)[None, None]  # noqa: E731
        return {"full_attention": f(full), "sliding_attention": f(slide)}

    def draft_step(self, asst, tok, h, skv, masks):
        """One draft step for every row position at once: tok [B,T] (the pending token of row t), h [B,T,Hb]."""
        torch = self.torch
        B, T = tok.shape
        pos = torch.arange(1, T + 1, device=self.dev).expand(B, T)
        x = asst.pre_projection(torch.cat([self.tm.embed_tokens(tok), h], dim=-1))
        y = asst.model(inputs_embeds=x, attention_mask=masks, position_ids=pos, shared_kv_states=skv,
                       use_cache=False).last_hidden_state
        return asst.lm_head(y).float(), asst.post_projection(y)

    @staticmethod
    def shift(z, k, fill):
        """z[:, t] <- z[:, t + k] (fill past the end)."""
        if k == 0:
            return z
        out = z.new_full(z.shape, fill) if not z.is_floating_point() else z.new_zeros(z.shape)
        out[:, :-k] = z[:, k:]
        return out

    def losses(self, asst, x, chain):
        """Per chained step: (soft CE vs the target, data CE, top-1 agreement with the target, count)."""
        torch = self.torch
        F = torch.nn.functional
        B, T = x.shape
        h_t, logits_t, skv = self.target_pass(x)
        masks = self.masks(T)
        h = h_t
        out = []
        for s in range(chain):
            tok = self.shift(x, 1 + s, base.PAD)                  # x[t+1+s]
            valid = tok != base.PAD
            valid[:, T - 1 - s:] = False
            tl = self.shift(logits_t, 1 + s, 0)                   # target logits at t+1+s
            dl, h = self.draft_step(asst, tok, h, skv, masks)
            logp = F.log_softmax(dl, dim=-1)
            soft = -(F.softmax(tl, dim=-1) * logp).sum(-1)
            lab = self.shift(x, 2 + s, base.PAD)                  # x[t+2+s]
            dvalid = valid & (lab != base.PAD)
            dce = -logp.gather(-1, lab.unsqueeze(-1)).squeeze(-1)
            n = valid.sum().clamp(min=1)
            agree = (dl.argmax(-1) == tl.argmax(-1)) & valid
            out.append((soft[valid].sum() / n, dce[dvalid].sum() / dvalid.sum().clamp(min=1), agree.sum(), valid.sum()))
        return out

    # ---------------- data
    def gen_rows(self, prefixes, n_new, sample):
        """The target's continuations of prefixes [n, P]: n_new tokens each (no stop token), greedy or sampled
        from its full distribution."""
        torch = self.torch
        kw = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, min_p=None) if sample else dict(do_sample=False)
        with torch.no_grad():
            return self.target.generate(input_ids=prefixes, attention_mask=torch.ones_like(prefixes),
                                        max_new_tokens=n_new, eos_token_id=None, pad_token_id=base.PAD, **kw)

    # ---------------- evaluation
    def evaluate(self, asst, rows, chain):
        torch = self.torch
        asst.eval()
        tot = [[0.0, 0.0, 0, 0] for _ in range(chain)]
        with torch.no_grad():
            for i in range(0, len(rows), 32):
                for s, (soft, dce, agree, n) in enumerate(self.losses(asst, rows[i:i + 32], chain)):
                    tot[s][0] += soft.item() * n.item()
                    tot[s][1] += dce.item() * n.item()
                    tot[s][2] += agree.item()
                    tot[s][3] += n.item()
        asst.train()
        return [{"soft_ce": t[0] / max(1, t[3]), "data_ce": t[1] / max(1, t[3]), "top1_agree": t[2] / max(1, t[3])}
                for t in tot]

    def acceptance(self, asst, y, start, k):
        """Greedy drafting with its own tokens on the target's greedy text y [n, T] from row position start."""
        torch = self.torch
        n, T = y.shape
        asst.eval()
        with torch.no_grad():
            h, _, skv = self.target_pass(y)
            masks = self.masks(T)
            tok = self.shift(y, 1, base.PAD)
            ok = torch.ones(n, T, dtype=torch.bool, device=self.dev)
            for s in range(k + 1):  # rows whose pending token and k following tokens are text (no padding)
                ok &= self.shift(y, 1 + s, base.PAD) != base.PAD
            acc = []
            for s in range(k):
                dl, h = self.draft_step(asst, tok, h, skv, masks)
                tok = dl.argmax(-1)
                ok &= tok == self.shift(y, 2 + s, -1)
                acc.append(ok[:, start:T - 1 - k].float().mean().item())
        asst.train()
        exp = [1 + sum(acc[:j]) for j in range(1, k + 1)]
        return {"accepted_at_position": acc, "conditional": [acc[0]] + [acc[j] / max(1e-9, acc[j - 1]) for j in range(1, k)],
                "tokens_per_verify_k": exp, "rows": n, "positions_per_row": T - 1 - k - start}

    # ---------------- main loop
    def save(self, asst, path):
        torch = self.torch
        c = copy.deepcopy(asst).to(torch.bfloat16)
        c.save_pretrained(path)

    def run(self, tr_plain, tr_chat, va_plain, va_chat):
        torch, a = self.torch, self.a
        self.load_target()
        asst = self.make_assistant()
        dev = self.dev
        tp = torch.tensor(tr_plain, dtype=torch.long, device=dev)
        tc = torch.tensor(tr_chat, dtype=torch.long, device=dev)
        vrows = torch.tensor(va_plain[:64] + va_chat[:64], dtype=torch.long, device=dev)
        gen = torch.Generator(device=dev).manual_seed(a.seed)
        tg = None
        if a.gen_rows > 0:
            try:
                t1 = time.time()
                half = a.gen_rows // 2
                pre = tp[torch.randint(len(tp), (a.gen_rows,), device=dev, generator=gen)][:, :64]
                parts = [self.gen_rows(pre[:half], a.seq - 64, False), self.gen_rows(pre[half:], a.seq - 64, True)]
                tg = torch.cat(parts)
                log(f"generated {len(tg)} target continuations in {time.time() - t1:.1f} s")
            except Exception as e:  # noqa: BLE001 - train on the corpus alone
                log("generation failed, corpus only:", repr(e))
                self.m["errors_nonfatal"] = repr(e)
        # held-out greedy continuations for the acceptance measurement
        vpre = torch.tensor([r[:64] for r in va_plain[:48]], dtype=torch.long, device=dev)
        t1 = time.time()
        vgreedy = self.gen_rows(vpre, 192, False)
        log(f"held-out greedy continuations {tuple(vgreedy.shape)} in {time.time() - t1:.1f} s")

        decay = [p for p in asst.parameters() if p.dim() >= 2]
        rest = [p for p in asst.parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                                lr=a.lr, betas=(0.9, 0.95))
        asst.train()
        t_start = time.time()
        t_end = min(t_start + a.max_seconds, T0 + a.deadline - 40)
        last_ckpt = last_eval = t_start
        weights = [1.0 / (1 + s) for s in range(a.chain)]
        step, hist, best = 0, [], None
        third = max(1, a.batch // 3)
        log(f"training until {t_end - T0:.0f} s (chain {a.chain}, batch {a.batch} x {a.seq})")
        while time.time() < t_end:
            frac = (time.time() - t_start) / max(1e-9, t_end - t_start)
            lr = a.lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))
            for g in opt.param_groups:
                g["lr"] = lr
            parts = [tp[torch.randint(len(tp), (third,), device=dev, generator=gen)],
                     tc[torch.randint(len(tc), (third,), device=dev, generator=gen)]]
            src = tg if tg is not None else tp
            parts.append(src[torch.randint(len(src), (a.batch - 2 * third,), device=dev, generator=gen)])
            x = torch.cat(parts)
            ls = self.losses(asst, x, a.chain)
            loss = sum(w * ((1 - a.data_weight) * soft + a.data_weight * dce) for w, (soft, dce, _, _) in zip(weights, ls))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(asst.parameters(), 1.0)
            opt.step()
            step += 1
            now = time.time()
            if step % 50 == 0 or step == 1:
                log(f"step {step} loss {loss.item():.4f} step0 soft {ls[0][0].item():.4f} "
                    f"agree0 {ls[0][2].item() / max(1, ls[0][3].item()):.3f} lr {lr:.2e}")
            if now - last_eval >= a.eval_every or now >= t_end:
                ev = self.evaluate(asst, vrows, a.chain)
                rec = {"step": step, "elapsed_s": round(now - t_start, 1), "train_loss": loss.item(), "val": ev}
                hist.append(rec)
                log("eval", json.dumps(rec))
                if best is None or ev[0]["soft_ce"] < best[0]:
                    best = (ev[0]["soft_ce"], step, {k: v.detach().clone() for k, v in asst.state_dict().items()})
                last_eval = time.time()
            if now - last_ckpt >= a.checkpoint_every:
                self.save(asst, os.path.join(a.out, "checkpoint"))
                with open(os.path.join(a.out, "checkpoint", "progress.json"), "w") as f:
                    json.dump({"step": step, "history": hist}, f)
                log(f"checkpoint at step {step}")
                last_ckpt = time.time()
        self.m.update(steps=step, train_seconds=round(time.time() - t_start, 1), history=hist)
        if best is not None:
            asst.load_state_dict(best[2])
            self.m["best_step"] = best[1]
        self.save(asst, a.out)
        log(f"saved the assistant (step {self.m.get('best_step')}) to {a.out}")
        # Final numbers on what was saved (bf16 weights, computed in f32).
        saved = self.cls.from_pretrained(a.out, dtype=torch.float32).to(dev)
        try:
            saved.set_attn_implementation(self.attn)
        except Exception as e:  # noqa: BLE001
            log("reloaded assistant: set_attn_implementation failed:", repr(e))
        if getattr(saved.model.config, "_attn_implementation", None) != self.attn:
            raise RuntimeError(f"reloaded assistant uses {saved.model.config._attn_implementation}, masks are for {self.attn}")
        self.m["val"] = self.evaluate(saved, vrows, a.chain)
        self.m["train_loss_last"] = hist[-1]["train_loss"] if hist else None
        self.m["acceptance_heldout_greedy"] = self.acceptance(saved, vgreedy, 63, a.eval_k)
        log("final val", json.dumps(self.m["val"]))
        log("acceptance on held-out greedy text", json.dumps(self.m["acceptance_heldout_greedy"]))


if __name__ == "__main__":
    main()
