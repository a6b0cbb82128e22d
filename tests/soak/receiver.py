#!/usr/bin/env python3
"""The soak's webhook receiver: answers 200 to every POST and appends
`received_at <TAB> call_id <TAB> X-Outbound-Event-Id <TAB> body event_id`
to a log, one line per delivery, flushed before the answer (so a delivery
it logged may be repeated after a kill, never missed). A body is the call's
JSON view, or for a call queued through the Plum routes Plum's call_details,
form-encoded (no event id in it: the header's stands for it).
Usage: receiver.py PORT LOG"""
import json
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, path = int(sys.argv[1]), sys.argv[2]
out = open(path, "a", buffering=1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.answer()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(errors="replace")).items()}
        if not isinstance(doc, dict):
            doc = {}
        header_id = self.headers.get("X-Outbound-Event-Id", "")
        out.write(f"{time.time():.3f}\t{doc.get('call_id', '')}\t{header_id}\t"
                  f"{doc.get('event_id', header_id)}\n")
        out.flush()
        self.answer()

    def answer(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
