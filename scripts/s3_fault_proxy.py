#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of an S3-compatible server (moto).

Started by scripts/test.sh. Requests are forwarded unchanged to the upstream
(path-style S3: /bucket/key) unless a rule matches; the tests install rules
through the control path /__faults__:

  POST /__faults__   {"bucket": "b", "rules": [RULE, ...]}  (replaces b's rules)
  GET  /__faults__?bucket=b                                 -> {"injected": {...}}
  DELETE /__faults__?bucket=b                               (drops b's rules)

A RULE: {"fault": F, "method": "PUT"?, "key": "substring"?, "skip": n?,
"times": n?, "every": n?, "probability": p?, "seed": s?, "seconds": s?}.
It matches requests to its bucket with that method and a key containing the
substring; the first `skip` matches pass, then `times` of them (default 1;
0 = unlimited) get the fault: every `every`-th match, or each with
`probability` (a seeded draw). Faults:

  slowdown  503 SlowDown, nothing forwarded
  error500  500 InternalError, nothing forwarded
  reset     forwarded; the response is cut off after its headers and part of
            its body, and the connection reset
  stall     nothing forwarded; the connection is held `seconds` (default 30)
            and then closed
  lost      forwarded (the server applies it); the connection is then closed
            without a response: a write whose outcome the client cannot know

Rules are per bucket so that tests running side by side do not meet each
other's faults.
"""

import argparse
import http.client
import json
import random
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
RULES = {}  # bucket -> list of rule dicts (with counters)
INJECTED = {}  # bucket -> {fault: count}

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}


def s3_error(code, message):
    return (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>").encode()


def pick_fault(method, bucket, key):
    """The fault for this request, or None (counts the match either way)."""
    with LOCK:
        for rule in RULES.get(bucket, []):
            if rule.get("method") and rule["method"] != method:
                continue
            if rule.get("key") and rule["key"] not in key:
                continue
            rule["_seen"] = rule.get("_seen", 0) + 1
            if rule["_seen"] <= rule.get("skip", 0):
                continue
            times = rule.get("times", 1)
            if times and rule.get("_fired", 0) >= times:
                continue
            if "probability" in rule:
                rng = rule.setdefault("_rng", random.Random(rule.get("seed", 0)))
                if rng.random() >= rule["probability"]:
                    continue
            elif (rule["_seen"] - rule.get("skip", 0) - 1) % rule.get("every", 1):
                continue
            rule["_fired"] = rule.get("_fired", 0) + 1
            counts = INJECTED.setdefault(bucket, {})
            counts[rule["fault"]] = counts.get(rule["fault"], 0) + 1
            return rule
    return None


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None  # (host, port)

    def log_message(self, *args):
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(length) if length else b""

    def _reply(self, status, body, content_type="application/xml", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _reset(self):
        # SO_LINGER 0: close with a RST, as a dropped connection looks.
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _control(self, method, body):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        bucket = (query.get("bucket") or [""])[0]
        with LOCK:
            if method == "POST":
                spec = json.loads(body or b"{}")
                bucket = spec["bucket"]
                RULES[bucket] = [dict(r) for r in spec.get("rules", [])]
                INJECTED[bucket] = {}
            elif method == "DELETE":
                RULES.pop(bucket, None)
            answer = {"injected": INJECTED.get(bucket, {})}
        self._reply(200, json.dumps(answer).encode(), "application/json")

    def _forward(self, method, body):
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        conn.request(method, self.path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response, data

    def _handle(self):
        method = self.command
        body = self._body()
        path = urllib.parse.urlsplit(self.path).path
        if path == "/__faults__":
            return self._control(method, body)
        parts = path.lstrip("/").split("/", 1)
        bucket, key = parts[0], urllib.parse.unquote(parts[1] if len(parts) > 1 else "")
        rule = pick_fault(method, bucket, key)
        fault = rule["fault"] if rule else None
        if fault == "slowdown":
            return self._reply(503, s3_error("SlowDown", "Please reduce your request rate."))
        if fault == "error500":
            return self._reply(500, s3_error("InternalError", "We encountered an internal error."))
        if fault == "stall":
            time.sleep(rule.get("seconds", 30))
            return self._reset()
        response, data = self._forward(method, body)
        if fault == "lost":
            return self._reset()
        self.send_response(response.status)
        for name, value in response.getheaders():
            # A HEAD answer keeps the object's length; others get the body's.
            if name.lower() in HOP_BY_HOP or name.lower() in ("server", "date") or (name.lower() == "content-length" and method != "HEAD"):
                continue
            self.send_header(name, value)
        if method != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if fault == "reset":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            return self._reset()
        if method != "HEAD":
            self.wfile.write(data)

    def do_GET(self):
        self._handle()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="http://host:port of the S3 server")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    upstream = urllib.parse.urlsplit(args.upstream)
    Proxy.upstream = (upstream.hostname, upstream.port or 80)
    ThreadingHTTPServer.daemon_threads = True
    # socketserver's default listen backlog is 5: with more clients than that
    # connecting at once, SYNs are dropped and retried after 1, 3, 7, 15, 31 s.
    ThreadingHTTPServer.request_queue_size = 1024
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Proxy)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
