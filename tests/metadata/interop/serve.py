#!/usr/bin/env python3
"""Serves a TUF repository directory over HTTP on 127.0.0.1 for the tests.

Layout (metadata::TestRepository and the tuf-js writer both write it):
  DIR/metadata/<name percent-encoded as one file name>   e.g. 1.a%2Fb.json
  DIR/targets/<decoded path segments>
A request for /metadata/X is answered from the file named by X decoded and
re-encoded (RFC 3986 unreserved characters kept), so clients may encode a
role name as they like ("%3F" or "%3f") and a name never becomes a path. A
request under /targets/ is decoded segment by segment; an empty, "." or ".."
segment is refused. Prints "port N" on its first line; logs requests on stderr.

Usage: serve.py DIR
"""
import http.server
import os
import sys
from urllib.parse import quote, unquote, urlsplit

ROOT = os.path.abspath(sys.argv[1])


def local_path(url_path):
    segments = url_path.split("/")[1:]
    if len(segments) == 2 and segments[0] == "metadata":
        return os.path.join(ROOT, "metadata", quote(unquote(segments[1]), safe=""))
    decoded = [unquote(s) for s in segments]
    if any(s in ("", ".", "..") or "/" in s for s in decoded):
        return None
    return os.path.join(ROOT, *decoded)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = local_path(urlsplit(self.path).path)
        if path is None or not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("port", server.server_address[1], flush=True)
server.serve_forever()
