// Load test for `g4 serve` (a benchmark, not a CI test): CLIENTS clients for SECONDS, each looping over
// random greedy requests (mixed prompt and answer lengths, streaming or not), some of which disconnect at a
// random moment. It checks that
//  - every answer that completes equals the same request's answer on the idle server (its solo run),
//  - no reply is an error other than the 503 of a full queue,
//  - the server's resident memory after the load returns to its baseline (within SLACK_MB).
// Usage: node bench/serve_load.mjs PORT SERVER_PID [CLIENTS=64] [SECONDS=600] [DISCONNECT=0.15] [SLACK_MB=64]
// HANG_MS (default 180000): a request not settled after this long on the client side counts as hung.
// Start the server first, e.g. build/release/g4 serve -m models/tiny-kjv --parallel 4 --port 18440 -c 2048.
// Exit status 1 when a check fails. Node 20 (global fetch), no packages.
import { readFileSync } from "node:fs";
import { sseEvents } from "./sse.mjs";

const [port, pid, clients = "64", seconds = "600", disconnect = "0.15", slackMb = "64"] = process.argv.slice(2);
if (!port || !pid) {
  console.error("usage: node bench/serve_load.mjs PORT SERVER_PID [CLIENTS] [SECONDS] [DISCONNECT] [SLACK_MB]");
  process.exit(2);
}
const base = `http://127.0.0.1:${port}`;
const rssMb = () => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
};

// A fixed set of requests (so that each has a solo answer): prompt lengths from a few words to a few
// hundred, answers from 1 to 96 tokens, chat and plain completions.
const words = "and the lord said unto moses in the beginning god created heaven earth light darkness".split(" ");
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const text = (n) => Array.from({ length: n }, () => words[Math.floor(rand() * words.length)]).join(" ");
const cases = [];
for (let i = 0; i < 24; ++i) {
  const n = [3, 12, 40, 150, 400][i % 5];
  const max_tokens = [1, 8, 32, 96][i % 4];
  cases.push(i % 3 === 0
    ? { path: "/v1/completions", body: { prompt: text(n), max_tokens, temperature: 0 } }
    : { path: "/v1/chat/completions", body: { messages: [{ role: "user", content: text(n) }], max_tokens, temperature: 0 } });
}

// One request; returns {status, text} ({status: "aborted"} when this client hung up on purpose).
async function ask(c, stream, abortAfterMs) {
  const ctl = new AbortController();
  const timer = abortAfterMs >= 0 ? setTimeout(() => ctl.abort(), abortAfterMs) : null;
  try {
    const res = await fetch(base + c.path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...c.body, stream }),
      signal: ctl.signal,
    });
    if (res.status !== 200) {
      // No hang-up once a refusal has arrived: Node's fetch (undici, Node 20) was seen to leave the body read
      // of a complete 503 pending forever when the request was aborted right then.
      if (timer) clearTimeout(timer);
      return { status: res.status, text: await res.text() };
    }
    if (!stream) {
      const j = await res.json();
      const ch = j.choices[0];
      return { status: 200, text: ch.message ? ch.message.content : ch.text };
    }
    let out = "";
    for await (const { json: j } of sseEvents(res.body)) {
      if (j.error) return { status: "stream-error", text: JSON.stringify(j.error) };
      const ch = j.choices && j.choices[0];
      if (ch) out += (ch.delta ? ch.delta.content || "" : ch.text || "");
    }
    return { status: 200, text: out };
  } catch (e) {
    if (ctl.signal.aborted) return { status: "aborted" };
    return { status: "exception", text: String(e) + (e.cause ? ` (${e.cause})` : "") };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

const solo = [];
for (const c of cases) {
  const r = await ask(c, false, -1);
  if (r.status !== 200) {
    console.error(`solo run failed: ${r.status} ${r.text}`);
    process.exit(1);
  }
  solo.push(r.text);
}
const baseline = rssMb();
console.log(`${cases.length} requests answered solo; server RSS baseline ${baseline.toFixed(1)} MB`);

const counts = { ok: 0, busy503: 0, aborted: 0, mismatch: 0, error: 0, hung: 0 };
const errors = [];
let peak = baseline;
const end = Date.now() + Number(seconds) * 1000;
const sampler = setInterval(() => { peak = Math.max(peak, rssMb()); }, 500);
async function client() {
  while (Date.now() < end) {
    const k = Math.floor(rand() * cases.length);
    const stream = rand() < 0.5;
    const cut = rand() < Number(disconnect) ? Math.floor(rand() * 400) : -1;
    // A hard limit per request, so that a promise that never settles (seen once: a client idle with no
    // connection open) is counted instead of hanging the test.
    let timer;
    const r = await Promise.race([ask(cases[k], stream, cut),
      new Promise((ok) => { timer = setTimeout(() => ok({ status: "client-hang" }), Number(process.env.HANG_MS || 180000)); })]);
    clearTimeout(timer);
    if (r.status === 200) {
      if (r.text === solo[k]) ++counts.ok;
      else {
        ++counts.mismatch;
        if (errors.length < 10) errors.push(`case ${k} ${stream ? "stream" : "plain"}: ${JSON.stringify(r.text).slice(0, 120)} != solo ${JSON.stringify(solo[k]).slice(0, 120)}`);
      }
    } else if (r.status === 503) {
      ++counts.busy503;
      await new Promise((ok) => setTimeout(ok, 50));
    } else if (r.status === "aborted") {
      ++counts.aborted;
    } else if (r.status === "client-hang") {
      ++counts.hung;
      if (errors.length < 10) errors.push(`case ${k} ${stream ? "stream" : "plain"}, hang-up planned at ${cut} ms: never settled`);
    } else {
      ++counts.error;
      if (errors.length < 10) errors.push(`case ${k}: ${r.status} ${String(r.text).slice(0, 200)}`);
    }
  }
}
const t0 = Date.now();
await Promise.all(Array.from({ length: Number(clients) }, client));
clearInterval(sampler);
// Let the server finish what disconnected clients left behind, then compare memory with the baseline.
await new Promise((ok) => setTimeout(ok, 3000));
const after = rssMb();
const secs = (Date.now() - t0) / 1000;
console.log(`${clients} clients, ${secs.toFixed(0)} s: ${counts.ok} answers equal to their solo run, ${counts.busy503} x 503, ` +
  `${counts.aborted} disconnected on purpose, ${counts.mismatch} differing answers, ${counts.error} other errors, ` +
  `${counts.hung} requests unsettled after 180 s on the client side`);
console.log(`server RSS: baseline ${baseline.toFixed(1)} MB, peak ${peak.toFixed(1)} MB, after ${after.toFixed(1)} MB`);
for (const e of errors) console.log("  " + e);
const memOk = after - baseline <= Number(slackMb);
if (counts.mismatch || counts.error || counts.hung || !memOk || counts.ok === 0) {
  console.log("FAIL" + (memOk ? "" : `: memory after the load exceeds the baseline by more than ${slackMb} MB`));
  process.exit(1);
}
console.log("PASS");
