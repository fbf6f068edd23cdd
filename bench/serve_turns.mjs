// Multi-turn chat against a running server (g4 serve or any OpenAI-compatible one): how much of each
// turn's prompt the prompt cache reuses and how soon the answer starts.
//
// Turn 1 sends a history of about HISTORY tokens (fixed user/assistant messages of deterministic text,
// ending with a user message); turns 2..TURNS each append an assistant message and a new user message
// (about 100-300 tokens together) and ask for a short streamed reply (greedy, MAX_TOKENS tokens:
// `ignore_eos`). As a chat UI does with its stored history, the client sends its own fixed text as the
// earlier assistant turns, not the generated replies.
// Per turn it prints prompt tokens, usage.prompt_tokens_details.cached_tokens, the tokens of the previous
// prompt that were not reused, time to first token and total time. Last, a "cold" row: the final turn's
// messages with a different first word, so that no slot holds its prefix (a cold prefill of the same length).
//
// Usage: node bench/serve_turns.mjs [--port 8080] [--host 127.0.0.1] [--history 8192] [--turns 5]
//          [--max-tokens 16] [--thinking] [--model NAME]
// The server needs a context (-c) of at least HISTORY + (TURNS - 1) * 300 + MAX_TOKENS tokens; when the
// history does not fit, the server's refusal is printed and the exit status is 1.
// Time to first token: from sending the request to the first chunk carrying generated text (g4 sends the
// role chunk before reading the prompt, so that one does not count).
// Node 20 (global fetch), no packages. Exit status 1 on any error.
import { parseArgs } from "node:util";
import { sseEvents } from "./sse.mjs";

const { values: a } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8080" },
    history: { type: "string", default: "8192" },
    turns: { type: "string", default: "5" },
    "max-tokens": { type: "string", default: "16" },
    thinking: { type: "boolean", default: false },
    model: { type: "string", default: "bench" },
  },
});
const base = `http://${a.host}:${a.port}`;
const history = Number(a.history), turns = Number(a.turns), maxTokens = Number(a["max-tokens"]);
const die = (msg) => { console.error(`serve_turns: error: ${msg}`); process.exit(1); };
if (!(history >= 16) || !(turns >= 1) || !(maxTokens >= 1)) die("--history >= 16, --turns >= 1 and --max-tokens >= 1");

// Deterministic text: sentences of common words from a fixed generator.
const words = ("the a of and to in that it with as for was on are be this by from at or have an they which one " +
  "you were all we when there can said each use how their if will up other about out many then them these so " +
  "some her would make like him into time has look two more write go see number no way could people my than " +
  "first water been call who oil its now find long down day did get come made may part light land river city").split(" ");
let seed = 20261202;
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);  // a 32-bit LCG
function text(nWords) {
  const out = [];
  for (let i = 0; i < nWords; ++i) {
    let w = words[Math.floor(rand() * words.length)];
    if (i === 0 || out[i - 1].endsWith(".")) w = w[0].toUpperCase() + w.slice(1);
    out.push(rand() < 0.08 || i === nWords - 1 ? w + "." : w);
  }
  return out.join(" ");
}

// One streamed chat request: {promptTokens, cached, ttftMs, totalMs, text}.
async function ask(messages) {
  const body = { model: a.model, messages, max_tokens: maxTokens, ignore_eos: true, temperature: 0, stream: true,
    stream_options: { include_usage: true }, chat_template_kwargs: { enable_thinking: a.thinking } };
  const t0 = performance.now();
  const res = await fetch(base + "/v1/chat/completions", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  }).catch((e) => die(`cannot reach ${base}: ${e.cause ? e.cause.message : e.message}`));
  if (res.status !== 200) {
    const t = await res.text();
    let msg = t;
    try { msg = JSON.parse(t).error.message; } catch {}
    die(`HTTP ${res.status}: ${msg}` + (/context|n_ctx|exceed/i.test(msg) ? " (start the server with a larger -c, or ask for a shorter --history)" : ""));
  }
  let ttft = null, usage = null, out = "";
  for await (const { json: j, now } of sseEvents(res.body)) {
    if (j.error) die(`stream error: ${JSON.stringify(j.error)}`);
    if (j.usage) usage = j.usage;
    const d = j.choices && j.choices[0] && j.choices[0].delta;
    const piece = d ? (d.content || "") + (d.reasoning_content || "") : "";
    if (piece && ttft === null) ttft = now - t0;  // the first generated text, not the role chunk
    out += piece;
  }
  const total = performance.now() - t0;
  if (!usage) die("the server sent no usage (stream_options.include_usage)");
  const cached = usage.prompt_tokens_details ? usage.prompt_tokens_details.cached_tokens : undefined;
  return { promptTokens: usage.prompt_tokens, cached, ttftMs: ttft ?? total, totalMs: total, text: out };
}

// The history: user questions of ~150 words and assistant answers of ~300 words until about `history`
// tokens (checked against the server's count: the first request is sized from a sample), then a user turn.
const perWord = (await ask([{ role: "user", content: text(500) }])).promptTokens / 500;  // also a warm-up
const messages = [];
let words_ = 0;
while ((words_ + 150) * perWord < history) {
  messages.push({ role: "user", content: text(60) });
  messages.push({ role: "assistant", content: text(240) });
  words_ += 300;
}
messages.push({ role: "user", content: text(Math.max(5, Math.round((history - words_ * perWord) / perWord))) });

const fmt = (x, w) => String(x).padStart(w);
console.log(`# ${base}, history ~${history} tokens (${perWord.toFixed(2)} tokens/word), ${turns} turns, ` +
  `max_tokens ${maxTokens}, thinking ${a.thinking ? "on" : "off"}`);
console.log("turn  prompt  cached  not-reused  ttft_ms  total_ms");
let prev = null, last = null;
for (let t = 1; t <= turns; ++t) {
  if (t > 1) {
    messages.push({ role: "assistant", content: text(90) });  // the client's stored reply, not the generated one
    messages.push({ role: "user", content: text(50) });
  }
  const r = await ask(messages);
  const lost = prev === null || r.cached === undefined ? "-" : prev - r.cached;
  console.log(`${fmt(t, 4)}  ${fmt(r.promptTokens, 6)}  ${fmt(r.cached ?? "-", 6)}  ${fmt(lost, 10)}  ` +
    `${fmt(r.ttftMs.toFixed(1), 7)}  ${fmt(r.totalMs.toFixed(1), 8)}`);
  prev = r.promptTokens;
  last = r;
}
// Cold: the same messages but the first word changed, so no cached prefix beyond the template's first tokens.
messages[0] = { ...messages[0], content: "Cold " + messages[0].content };
const c = await ask(messages);
console.log(`cold  ${fmt(c.promptTokens, 6)}  ${fmt(c.cached ?? "-", 6)}  ${fmt("-", 10)}  ${fmt(c.ttftMs.toFixed(1), 7)}  ` +
  `${fmt(c.totalMs.toFixed(1), 8)}`);
console.log(`turn ${turns}: ttft ${last.ttftMs.toFixed(1)} ms against ${c.ttftMs.toFixed(1)} ms cold (${(c.ttftMs / last.ttftMs).toFixed(1)}x)`);
