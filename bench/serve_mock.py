#!/usr/bin/env python3
# A stand-in server for checking the serving clients themselves (serve_sweep.py, or any other): /tokenize
# counts space-separated words as tokens, and /v1/completions streams max_tokens SSE events on a global grid
# of TICK seconds, so that every stream emits at the same instants (the worst case for a client: all its
# streams wake together). A faithful client reads an inter-token latency of TICK and N / TICK tokens/s at N
# streams; what it reads beyond that is its own delay.
#
# Usage: python3 bench/serve_mock.py PORT [TICK=0.02]; then e.g.
#   python3 bench/serve_sweep.py --port PORT --streams 1,8,32 --prompt 64 --max-tokens 50 --requests 2
import http.server
import json
import sys
import time

TICK = float(sys.argv[2]) if len(sys.argv) > 2 else 0.02


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if self.path == "/tokenize":
            out = json.dumps({"tokens": [1] * len(body["content"].split())}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
            return
        n = body["max_tokens"]
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def send(data):
            b = b"data: " + data + b"\n\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
            self.wfile.flush()

        for k in range(n):
            time.sleep(TICK - time.time() % TICK)
            send(json.dumps({"choices": [{"index": 0, "text": " w",
                                          "finish_reason": "length" if k == n - 1 else None}]}).encode())
        usage = {"prompt_tokens": len(body["prompt"].split()) + 1, "completion_tokens": n}  # + <bos>
        send(json.dumps({"choices": [], "usage": usage}).encode())
        send(b"[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # 32 clients connecting at once must not overflow the listen backlog


Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
