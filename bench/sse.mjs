// The server-sent events of a streamed OpenAI-style response (g4 serve, llama-server): yields each event's
// parsed JSON with the arrival time (performance.now()) of the network chunk that completed it, skipping
// [DONE], until the server ends the body. Used by serve_load.mjs (serve_client.py is the Python counterpart
// that serve_sweep.py and serve_turns.py use).
export async function* sseEvents(body) {
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of body) {
    const now = performance.now();
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, i).trim();
      buf = buf.slice(i + 2);
      if (!ev.startsWith("data:")) continue;
      const data = ev.slice(5).trim();
      if (data === "[DONE]") continue;
      yield { json: JSON.parse(data), now };
    }
  }
}
