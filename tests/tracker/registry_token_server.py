#!/usr/bin/env python3
"""A bearer-token server for Debian's docker-registry in tests (its
`auth: token:` mode, https://distribution.github.io/distribution/spec/auth/token/).

Usage: registry_token_server.py PORT_FILE KEY.pem CERT.pem ISSUER USER:PASSWORD

Listens on 127.0.0.1 (a free port, written to PORT_FILE once it listens).
GET /token?service=S&scope=repository:NAME:ACTIONS with Basic USER:PASSWORD
answers {"token": JWT} granting the scope's actions on NAME, signed ES256 by
KEY.pem with CERT.pem in its x5c header (the registry trusts CERT.pem as its
root bundle); anything else is 401. Each request is one line on stdout.
"""
import base64, json, os, sys, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

port_file, key_file, cert_file, issuer, userpass = sys.argv[1:6]
key = serialization.load_pem_private_key(open(key_file, "rb").read(), None)
cert = x509.load_pem_x509_certificate(open(cert_file, "rb").read())
x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
expected = "Basic " + base64.b64encode(userpass.encode()).decode()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(service, scopes):
    access = []
    for scope in scopes:
        kind, name, actions = scope.split(":")[0], ":".join(scope.split(":")[1:-1]), scope.split(":")[-1]
        access.append({"type": kind, "name": name, "actions": actions.split(",")})
    now = int(time.time())
    header = {"typ": "JWT", "alg": "ES256", "x5c": [x5c]}
    claims = {"iss": issuer, "sub": userpass.split(":")[0], "aud": service, "exp": now + 600,
              "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode())).encode()
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return signing_input.decode() + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        granted = url.path == "/token" and self.headers.get("Authorization") == expected
        print("token", "granted" if granted else "refused", ",".join(query.get("scope", [])),
              flush=True)
        if not granted:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"token": make_token(query.get("service", [""])[0],
                                               query.get("scope", []))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
