# HTTP for the serving benchmarks (serve_sweep.py, serve_turns.py), Python 3 standard library only: the GPU
# machine has python3 but no node and no packages. A JSON POST, the server's /tokenize count, and the
# server-sent events of a streamed OpenAI-style response (g4 serve, llama-server) with their arrival times.
import http.client
import json
import os
import sys
import time


def die(prog, msg):
    # os._exit, not sys.exit: a client thread's error must end the whole run, as in the node versions.
    sys.stdout.flush()
    print(f"{prog}: error: {msg}", file=sys.stderr, flush=True)
    os._exit(1)


class Server:
    def __init__(self, prog, host, port):
        self.prog, self.host, self.port = prog, host, int(port)
        self.base = f"http://{host}:{port}"

    def post(self, path, body):
        """Sends one request on its own connection; returns (status, response) once the headers are in."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        try:
            conn.request("POST", path, body=json.dumps(body).encode(), headers={"content-type": "application/json"})
            return conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            die(self.prog, f"cannot reach {self.base}: {e}")

    def post_ok(self, path, body):
        """post, stopping the run on any status but 200 (with the start of the body)."""
        res = self.post(path, body)
        if res.status != 200:
            die(self.prog, f"{path}: HTTP {res.status}: {read_all(res)[:300]}")
        return res

    def metrics(self, names):
        """The values of the Prometheus counters `names` (without the g4_ prefix) from /metrics, or None where
        the server has no such counter (llama-server names its own)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request("GET", "/metrics")
            text = read_all(conn.getresponse())
        except (OSError, http.client.HTTPException):
            return {n: None for n in names}
        values = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0].startswith("g4_"):
                try:
                    values[parts[0][3:]] = float(parts[1])
                except ValueError:
                    pass
        return {n: values.get(n) for n in names}

    def count(self, text):
        """Tokens of `text` by the server's tokenizer, without special tokens."""
        res = self.post_ok("/tokenize", {"content": text, "add_special": False})
        return len(json.loads(read_all(res))["tokens"])


def read_all(res):
    try:
        return res.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as e:
        return f"(body unreadable: {e})"


def sse_events(res):
    """Yields (parsed JSON, arrival time) for each event of a streamed body, skipping [DONE], until the server
    ends it. The time (time.perf_counter(), seconds) is taken when the blank line that completes the event is
    read. HTTPResponse.readline on a chunked body goes through peek(), which does at most one socket read, so
    each line comes back as soon as it has arrived, not when the response ends."""
    data = []
    while True:
        try:
            line = res.readline()
        except (OSError, http.client.HTTPException) as e:
            raise RuntimeError(f"the stream broke: {e}")
        now = time.perf_counter()
        if not line:
            break
        line = line.rstrip(b"\r\n")
        if line:
            if line.startswith(b"data:"):
                data.append(line[5:].strip())
            continue
        if data:  # a blank line ends the event
            payload = b"\n".join(data)
            data = []
            if payload != b"[DONE]":
                yield json.loads(payload), now
    res.close()
