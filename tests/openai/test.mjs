// End-to-end test of g4 serve with the official `openai` npm client over loopback, on the model that
// ships in models/tiny-kjv: models, chat (streaming reassembled == non-streaming at temperature 0),
// completions, a tool call parsed into tool_calls, logprobs, structured output (response_format json_schema),
// a forced tool_choice, and 4xx JSON errors for bad requests.
// Usage: node test.mjs G4_BINARY MODEL_DIR
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const [g4, modelDir] = process.argv.slice(2);
const KEY = 'test-key-' + Math.random().toString(36).slice(2);

const server = spawn(g4, ['serve', '-m', modelDir, '--port', '0', '--api-key', KEY, '-c', '1024'],
                     { stdio: ['ignore', 'ignore', 'pipe'] });
let log = '';
const port = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('g4 serve did not start: ' + log)), 60000);
  server.stderr.on('data', (d) => {
    log += d.toString();
    const m = log.match(/on http:\/\/127\.0\.0\.1:(\d+)/);
    if (m) { clearTimeout(timer); resolve(Number(m[1])); }
  });
  server.on('exit', (code) => reject(new Error(`g4 serve exited with ${code}: ${log}`)));
});

const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: KEY, maxRetries: 0 });
let failures = 0;
async function check(name, fn) {
  try { await fn(); console.log('PASS', name); }
  catch (e) { failures++; console.log('FAIL', name, '\n ', e && e.stack || e); }
}

const messages = [{ role: 'user', content: 'In the beginning' }];

await check('models.list names the model', async () => {
  const list = await client.models.list();
  assert.equal(list.data.length, 1);
  assert.equal(list.data[0].id, 'tiny-kjv');
});

let plain;
await check('chat completion (non-streaming)', async () => {
  plain = await client.chat.completions.create({ model: 'tiny-kjv', messages, temperature: 0, max_tokens: 40 });
  const c = plain.choices[0];
  assert.equal(c.message.role, 'assistant');
  assert.ok(typeof c.message.content === 'string' && c.message.content.length > 0);
  assert.ok(['stop', 'length'].includes(c.finish_reason));
  assert.ok(plain.usage.prompt_tokens > 0 && plain.usage.completion_tokens > 0);
  assert.equal(plain.usage.total_tokens, plain.usage.prompt_tokens + plain.usage.completion_tokens);
});

await check('streaming reassembles to the non-streaming text', async () => {
  const stream = await client.chat.completions.create({ model: 'tiny-kjv', messages, temperature: 0, max_tokens: 40,
                                                          stream: true, stream_options: { include_usage: true } });
  let text = '', finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    if (c.delta && c.delta.content) text += c.delta.content;
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.ok(chunks > 3, 'streamed in several chunks');
  assert.equal(text, plain.choices[0].message.content);
  assert.equal(finish, plain.choices[0].finish_reason);
  // Same prompt, so the prompt cache reuses all of it but the last token (run again for fresh logits).
  assert.deepEqual(usage, { ...plain.usage, prompt_tokens_details: { cached_tokens: plain.usage.prompt_tokens - 1 } });
});

// The greedy continuation of a raw prompt computed without the server: g4 tokenize (with <bos>), g4 generate
// on the ref backend (the scripted interface, straight on a Session), g4 detokenize.
function greedyText(prompt, n) {
  const g = (...args) => execFileSync(g4, args, { encoding: 'utf8' });
  const ids = JSON.parse(g('tokenize', '-m', modelDir, '--bos', '--json', '--text', prompt));
  const dir = mkdtempSync(join(tmpdir(), 'g4-openai-'));
  try {
    const out = join(dir, 'g.safetensors');
    g('generate', '-m', modelDir, '--tokens', ids.join(','), '-n', String(n), '--temperature', '0', '--backend', 'ref',
      '--out', out);
    const buf = readFileSync(out);
    const hlen = Number(buf.readBigUInt64LE(0));
    const info = JSON.parse(buf.subarray(8, 8 + hlen).toString('utf8')).tokens;
    assert.equal(info.dtype, 'I32');
    const [begin, end] = info.data_offsets;
    const tokens = [];
    for (let o = 8 + hlen + begin; o < 8 + hlen + end; o += 4) tokens.push(buf.readInt32LE(o));
    assert.equal(tokens.length, n);
    return g('detokenize', '-m', modelDir, '--skip-special', '--ids', tokens.join(',')).replace(/\n$/, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await check('completions endpoint', async () => {
  const r = await client.completions.create({ model: 'tiny-kjv', prompt: 'And God said', temperature: 0, max_tokens: 12 });
  assert.equal(r.choices[0].text, greedyText('And God said', 12));
  assert.equal(r.usage.completion_tokens, 12);
});

await check('stop strings cut the reply', async () => {
  const words = plain.choices[0].message.content.split(' ');
  const stop = ' ' + words[2];
  const r = await client.chat.completions.create({ model: 'tiny-kjv', messages, temperature: 0, max_tokens: 40, stop: [stop] });
  const full = plain.choices[0].message.content;
  assert.equal(r.choices[0].message.content, full.slice(0, full.indexOf(stop)));
  assert.equal(r.choices[0].finish_reason, 'stop');
});

await check('a tool call is returned in tool_calls', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Get the current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string', description: 'The city' } }, required: ['city'] } } }];
  const r = await client.chat.completions.create({ model: 'tiny-kjv', temperature: 0, max_tokens: 60, tools,
    messages: [{ role: 'user', content: 'What is the weather in Jerusalem?' }] });
  const c = r.choices[0];
  assert.equal(c.finish_reason, 'tool_calls', JSON.stringify(c));
  assert.equal(c.message.tool_calls.length, 1);
  assert.equal(c.message.tool_calls[0].type, 'function');
  assert.equal(c.message.tool_calls[0].function.name, 'get_weather');
  const args = JSON.parse(c.message.tool_calls[0].function.arguments);
  assert.equal(typeof args.city, 'string');

  // The same call through the stream: delta.tool_calls reassembled equal the non-streaming ones.
  const stream = await client.chat.completions.create({ model: 'tiny-kjv', temperature: 0, max_tokens: 60, tools,
    stream: true, messages: [{ role: 'user', content: 'What is the weather in Jerusalem?' }] });
  const calls = []; let finish = null;
  for await (const chunk of stream) {
    const ch = chunk.choices[0];
    if (!ch) continue;
    for (const d of (ch.delta && ch.delta.tool_calls) || []) {
      calls[d.index] = calls[d.index] || { name: '', arguments: '' };
      if (d.function && d.function.name) calls[d.index].name += d.function.name;
      if (d.function && d.function.arguments) calls[d.index].arguments += d.function.arguments;
    }
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  assert.equal(finish, 'tool_calls');
  assert.deepEqual(calls, [{ name: 'get_weather', arguments: c.message.tool_calls[0].function.arguments }]);
});

await check('logprobs: the model\'s log probabilities, streaming and not', async () => {
  const ask = { model: 'tiny-kjv', messages, temperature: 0, max_tokens: 8, logprobs: true, top_logprobs: 3 };
  const r = await client.chat.completions.create(ask);
  const content = r.choices[0].logprobs.content;
  assert.ok(content.length > 0 && content.length <= 8, JSON.stringify(r.choices[0]));
  for (const t of content) {
    assert.ok(t.logprob <= 0);
    assert.equal(t.top_logprobs.length, 3);
    assert.equal(t.top_logprobs[0].token, t.token);  // greedy: the chosen token is the likeliest
    assert.equal(t.top_logprobs[0].logprob, t.logprob);
    assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob && t.top_logprobs[1].logprob >= t.top_logprobs[2].logprob);
    assert.deepEqual(t.bytes, [...Buffer.from(t.token, 'utf8')]);
  }
  assert.ok(content.map((t) => t.token).join('').includes(r.choices[0].message.content.trim()));
  const streamed = [];
  for await (const chunk of await client.chat.completions.create({ ...ask, stream: true }))
    for (const t of (chunk.choices[0] && chunk.choices[0].logprobs && chunk.choices[0].logprobs.content) || []) streamed.push(t);
  assert.deepEqual(streamed, content);
  const legacy = await client.completions.create({ model: 'tiny-kjv', prompt: 'In the beginning', temperature: 0, max_tokens: 4, logprobs: 2 });
  const lp = legacy.choices[0].logprobs;
  assert.equal(lp.tokens.join(''), legacy.choices[0].text);
  assert.deepEqual(lp.text_offset, [0, 1, 2, 3].map((i) => lp.tokens.slice(0, i).join('').length));
  lp.top_logprobs.forEach((top, i) => assert.equal(top[lp.tokens[i]], lp.token_logprobs[i]));
});

await check('structured output: response_format json_schema parses and validates', async () => {
  const schema = { type: 'object', additionalProperties: false, required: ['book', 'chapter', 'words'],
    properties: { book: { enum: ['Genesis', 'Exodus'] }, chapter: { type: 'integer' },
                  words: { type: 'array', items: { type: 'string', maxLength: 12 }, maxItems: 3 } } };
  const r = await client.chat.completions.create({ model: 'tiny-kjv', messages, temperature: 0, max_tokens: 120,
    response_format: { type: 'json_schema', json_schema: { name: 'verse', schema, strict: true } } });
  assert.equal(r.choices[0].finish_reason, 'stop', JSON.stringify(r.choices[0]));
  const v = JSON.parse(r.choices[0].message.content);
  assert.deepEqual(Object.keys(v).sort(), ['book', 'chapter', 'words']);
  assert.ok(['Genesis', 'Exodus'].includes(v.book));
  assert.ok(Number.isInteger(v.chapter));
  assert.ok(Array.isArray(v.words) && v.words.length <= 3);
  for (const w of v.words) assert.ok(typeof w === 'string' && [...w].length <= 12);
});

await check('tool_choice naming a function forces that call', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object',
      properties: { city: { type: 'string' } }, required: ['city'] } } },
    { type: 'function', function: { name: 'read_verse', parameters: { type: 'object', additionalProperties: false,
      properties: { book: { enum: ['Genesis', 'Exodus'] } }, required: ['book'] } } }];
  const r = await client.chat.completions.create({ model: 'tiny-kjv', temperature: 0, max_tokens: 60, tools,
    tool_choice: { type: 'function', function: { name: 'read_verse' } },
    messages: [{ role: 'user', content: 'What is the weather in Jerusalem?' }] });
  const c = r.choices[0];
  assert.equal(c.finish_reason, 'tool_calls', JSON.stringify(c));
  assert.equal(c.message.tool_calls[0].function.name, 'read_verse');
  assert.ok(['Genesis', 'Exodus'].includes(JSON.parse(c.message.tool_calls[0].function.arguments).book));
});

async function expectStatus(name, status, fn) {
  await check(name, async () => {
    try { await fn(); } catch (e) {
      assert.ok(e instanceof OpenAI.APIError, String(e));
      assert.equal(e.status, status);
      assert.ok(typeof e.error.message === 'string' && e.error.message.length > 0);
      return;
    }
    assert.fail('expected HTTP ' + status);
  });
}
await expectStatus('temperature out of range is a 400', 400, () =>
  client.chat.completions.create({ model: 'tiny-kjv', messages, temperature: 7 }));
await expectStatus('empty messages is a 400', 400, () =>
  client.chat.completions.create({ model: 'tiny-kjv', messages: [] }));
await expectStatus('unknown role is a 400', 400, () =>
  client.chat.completions.create({ model: 'tiny-kjv', messages: [{ role: 'wizard', content: 'x' }] }));
await expectStatus('a schema that cannot be compiled is a 400', 400, () =>
  client.chat.completions.create({ model: 'tiny-kjv', messages, response_format: { type: 'json_schema',
    json_schema: { name: 'x', schema: { type: 'object', properties: { a: { $ref: '#/$defs/a' } } } } } }));
await expectStatus('n > 1 is a 400', 400, () =>
  client.chat.completions.create({ model: 'tiny-kjv', messages, n: 2 }));
await expectStatus('max_tokens 0 is a 400', 400, () =>
  client.chat.completions.create({ model: 'tiny-kjv', messages, max_tokens: 0 }));
await expectStatus('a wrong API key is a 401', 401, () =>
  new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'wrong', maxRetries: 0 })
    .chat.completions.create({ model: 'tiny-kjv', messages }));
await check('unknown endpoint is a JSON 404', async () => {
  const r = await fetch(`http://127.0.0.1:${port}/v1/nothing`);
  assert.equal(r.status, 404);
  assert.ok((await r.json()).error.message);
});

server.kill('SIGTERM');
await new Promise((r) => server.on('exit', r));
console.log(failures ? `${failures} FAILED` : 'all passed');
process.exit(failures ? 1 : 0);
