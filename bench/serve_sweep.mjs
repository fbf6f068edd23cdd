// Serving sweep against a running server, g4 serve or llama-server alike: for each number of concurrent
// streams N, N clients each send REQUESTS streamed /v1/completions requests one after another, every one
// with its own prompt of exactly PROMPT tokens (sized with the server's /tokenize, so that both servers
// read the same length) and an answer of exactly MAX_TOKENS tokens (`ignore_eos: true`, llama-server's
// field, which g4 also takes, with `max_tokens`; greedy). Prints per N: aggregate output tokens/s (all
// answers' tokens over the wall time of the round), p50/p99 time to first token, p50/p99 inter-token
// latency (gaps between SSE chunks carrying text) and the median decode speed of one stream.
//
// Usage: node bench/serve_sweep.mjs [--port 8080] [--host 127.0.0.1] [--streams 1,4,8,16,32]
//          [--prompt 512] [--max-tokens 128] [--requests 4] [--prompt-set K] [--label NAME] [--json FILE]
// Prompts are the same on every run with the same --prompt-set; give another K to a server that is still up
// from an earlier run, or its prompt cache answers them.
// The server needs as many slots as the largest N (g4 serve --parallel N, llama-server -np N) and a
// context of PROMPT + MAX_TOKENS per slot. Node 20 (global fetch), no packages. Exit 1 on any error.
import { parseArgs } from "node:util";
import { writeFileSync } from "node:fs";
import { sseEvents } from "./sse.mjs";

const { values: a } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8080" },
    streams: { type: "string", default: "1,4,8,16,32" },
    prompt: { type: "string", default: "512" },
    "max-tokens": { type: "string", default: "128" },
    requests: { type: "string", default: "4" },
    label: { type: "string", default: "" },
    "prompt-set": { type: "string", default: "0" },
    json: { type: "string" },
  },
});
const base = `http://${a.host}:${a.port}`;
const streams = a.streams.split(",").map(Number);
const promptTokens = Number(a.prompt), maxTokens = Number(a["max-tokens"]), requests = Number(a.requests);
const die = (msg) => { console.error(`serve_sweep: error: ${msg}`); process.exit(1); };
if (streams.some((n) => !(n >= 1)) || !(promptTokens >= 2) || !(maxTokens >= 2) || !(requests >= 1))
  die("--streams N,... >= 1, --prompt >= 2, --max-tokens >= 2, --requests >= 1");

async function post(path, body) {
  const res = await fetch(base + path, { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify(body) }).catch((e) => die(`cannot reach ${base}: ${e.cause ? e.cause.message : e.message}`));
  if (res.status !== 200) die(`${path}: HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
  return res;
}
const count = async (text) => (await (await post("/tokenize", { content: text, add_special: false })).json()).tokens.length;

// A prompt of exactly `n` tokens with <bos> (n - 1 text tokens), its own words from `id`: words are added
// or dropped until the server's tokenizer counts n - 1.
const words = ("time light land river city water people day night morning house field mountain road stone tree " +
  "fire wind rain gold silver bread wine king servant child brother sister father mother friend word voice hand " +
  "heart eye door gate wall tower ship sea star sun moon year hour evening garden harvest seed").split(" ");
async function makePrompt(id) {
  let s = Math.imul(id, 2654435761) >>> 0;  // a 32-bit LCG per prompt (exact in integer arithmetic)
  const next = () => words[((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 16) % words.length];
  const out = [`Request ${id}:`];
  let have = await count(out.join(" "));
  while (have < promptTokens - 1) {
    const missing = promptTokens - 1 - have;
    for (let i = 0; i < Math.max(1, Math.floor(missing * 0.8)); ++i) out.push(next());
    have = await count(out.join(" "));
  }
  while (have > promptTokens - 1 && out.length > 1) {
    out.pop();
    have = await count(out.join(" "));
  }
  while (have < promptTokens - 1) {  // a dropped word was worth more than one token: pad with one-token words
    out.push("a");
    have = await count(out.join(" "));
  }
  if (have !== promptTokens - 1) die(`could not build a prompt of ${promptTokens} tokens (got ${have + 1})`);
  return out.join(" ");
}

// One streamed completion: arrival times of the chunks carrying text, and the usage when sent.
let warned = false;
async function one(prompt) {
  const t0 = performance.now();
  const res = await post("/v1/completions", { model: "bench", prompt, max_tokens: maxTokens, ignore_eos: true,
    temperature: 0, stream: true, stream_options: { include_usage: true } });
  const times = [];
  let usage = null, finish = null;
  for await (const { json: j, now } of sseEvents(res.body)) {
    if (j.error) die(`stream error: ${JSON.stringify(j.error)}`);
    if (j.usage) usage = j.usage;
    const ch = j.choices && j.choices[0];
    if (ch && ch.text) times.push(now - t0);
    if (ch && ch.finish_reason) finish = ch.finish_reason;
  }
  if (times.length === 0) die("a reply carried no text");
  if (finish !== "length") die(`an answer ended with finish_reason ${finish}, not "length" (does the server take ignore_eos?)`);
  // Without usage in the stream, the answer is max_tokens long (it ran to the length limit).
  const tokens = usage ? usage.completion_tokens : maxTokens;
  if (tokens !== maxTokens) die(`an answer had ${tokens} tokens, not ${maxTokens}`);
  if (usage && usage.prompt_tokens !== promptTokens && !warned) {
    warned = true;
    console.log(`# warning: the server counts ${usage.prompt_tokens} prompt tokens, not ${promptTokens}`);
  }
  return { times, tokens };
}

const pct = (v, p) => {
  const s = [...v].sort((x, y) => x - y);
  return s.length ? s[Math.min(s.length - 1, Math.round((p / 100) * (s.length - 1)))] : NaN;
};

const setBase = Number(a["prompt-set"]) * 1000000;
let nextId = setBase + 1;
const rows = [];
await one(await makePrompt(setBase));  // warm-up
console.log(`# ${a.label || base}: prompt ${promptTokens} tokens, ${maxTokens} generated (ignore_eos), ` +
  `${requests} requests per stream, greedy, /v1/completions streamed`);
console.log("streams  requests  tok/s   ttft_p50  ttft_p99  itl_p50  itl_p99  stream_tok/s_p50   (times in ms)");
for (const n of streams) {
  const prompts = [];
  for (let c = 0; c < n; ++c) {
    prompts.push([]);
    for (let r = 0; r < requests; ++r) prompts[c].push(await makePrompt(nextId++));
  }
  const ttft = [], itl = [], speed = [];
  let tokens = 0;
  const t0 = performance.now();
  await Promise.all(prompts.map(async (mine) => {
    for (const p of mine) {
      const r = await one(p);
      tokens += r.tokens;
      ttft.push(r.times[0]);
      for (let i = 1; i < r.times.length; ++i) itl.push(r.times[i] - r.times[i - 1]);
      const span = r.times[r.times.length - 1] - r.times[0];
      if (span > 0) speed.push(((r.tokens - 1) * 1000) / span);
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  const row = { streams: n, requests: n * requests, tok_s: tokens / secs, ttft_p50: pct(ttft, 50), ttft_p99: pct(ttft, 99),
    itl_p50: pct(itl, 50), itl_p99: pct(itl, 99), stream_tok_s_p50: pct(speed, 50) };
  rows.push(row);
  const f = (x, w, d = 1) => x.toFixed(d).padStart(w);
  console.log(`${String(n).padStart(7)}  ${String(row.requests).padStart(8)}  ${f(row.tok_s, 6)}  ${f(row.ttft_p50, 8)}  ` +
    `${f(row.ttft_p99, 8)}  ${f(row.itl_p50, 7, 2)}  ${f(row.itl_p99, 7, 2)}  ${f(row.stream_tok_s_p50, 16)}`);
}
if (a.json) writeFileSync(a.json, JSON.stringify({ label: a.label, base, prompt: promptTokens, max_tokens: maxTokens, rows }, null, 1) + "\n");
