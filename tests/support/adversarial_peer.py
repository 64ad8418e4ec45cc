#!/usr/bin/env python3
"""A scripted BitTorrent peer that misbehaves, for end-to-end tests.

It speaks the BitTorrent wire protocol (BEP 3) for one v2-only torrent
(BEP 52: the handshake carries the first 20 bytes of the v2 info-hash and the
v2 reserved bit; hash requests are answered with hash rejects), claims every
piece, and then does what --mode says:

  good           serves the right bytes (a control for the harness itself)
  corrupt        serves the first --good-pieces pieces right, then flipped bytes
  claim          claims every piece but never unchokes
  stall          unchokes, accepts requests, never sends a byte of them
  trickle        serves the right bytes at --trickle-rate bytes/s
  flap           accepts requests, drops the connection after --flap-seconds
                 without answering them, and connects again
  malformed      sends a malformed or oversized message, then closes

It listens on --listen (port 0: any; the first line of stdout says the port
chosen and the swarm, the 40-hex info_hash announces name:
{"event":"listening","port":N,"swarm":"..."}), connects to every --connect
peer (again and again with --reconnect), and, given --announce (an http://
tracker announce URL with its passkey), announces itself from the --listen
address (a tracker hands out the address an announce comes from) every 30 s.
Counters are printed as JSON lines ({"event":"stats",...}) every 200 ms, with
"announces" (answers that were not BEP 3 failures) and "remotes" (the address
of every peer it talked to). Test-only: no effort at speed.
"""

import argparse
import hashlib
import http.client
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse
import urllib.request

PROTOCOL = b"BitTorrent protocol"
BLOCK = 16 << 10
MAX_MESSAGE = 1 << 20

CHOKE, UNCHOKE, INTERESTED, NOT_INTERESTED, HAVE, BITFIELD, REQUEST, PIECE = range(8)
HASH_REQUEST, HASHES, HASH_REJECT = 21, 22, 23


def bdecode(data, at=0):
    """Decodes one bencoded value at `at`: (value, end). Dict values keep
    their raw span in `raw` so the info-hash can be computed."""
    c = data[at:at + 1]
    if c == b"i":
        end = data.index(b"e", at)
        return int(data[at + 1:end]), end + 1
    if c == b"l":
        out, at = [], at + 1
        while data[at:at + 1] != b"e":
            value, at = bdecode(data, at)
            out.append(value)
        return out, at + 1
    if c == b"d":
        out, start, at = {}, at, at + 1
        while data[at:at + 1] != b"e":
            key, at = bdecode(data, at)
            value, at = bdecode(data, at)
            out[key] = value
        out[b"__raw__"] = data[start:at + 1]
        return out, at + 1
    colon = data.index(b":", at)
    length = int(data[at:colon])
    return data[colon + 1:colon + 1 + length], colon + 1 + length


class Torrent:
    def __init__(self, torrent_path, data_path):
        meta, _ = bdecode(open(torrent_path, "rb").read())
        info = meta[b"info"]
        self.info_hash_v2 = hashlib.sha256(info[b"__raw__"]).digest()
        self.handshake_hash = self.info_hash_v2[:20]
        self.piece_length = info[b"piece length"]
        self.data = open(data_path, "rb").read()
        self.num_pieces = (len(self.data) + self.piece_length - 1) // self.piece_length

    def block(self, index, begin, length):
        start = index * self.piece_length + begin
        chunk = self.data[start:start + length]
        return chunk + b"\0" * (length - len(chunk))  # the tail pad file reads as zeros

    def bitfield(self):
        bits = bytearray((self.num_pieces + 7) // 8)
        for i in range(self.num_pieces):
            bits[i // 8] |= 0x80 >> (i % 8)
        return bytes(bits)


class Peer:
    def __init__(self, args, torrent):
        self.args = args
        self.torrent = torrent
        self.peer_id = b"-FA0001-" + os.urandom(12)
        self.lock = threading.Lock()
        self.good_pieces = set()  # pieces served right (corrupt mode)
        self.stats = {"connections": 0, "requests": 0, "blocks_sent": 0, "corrupt_blocks": 0,
                      "bytes_sent": 0, "hash_requests": 0, "malformed_sent": 0,
                      "announces": 0}
        self.remotes = set()
        self.malformed_round = 0

    def count(self, key, n=1):
        with self.lock:
            self.stats[key] += n

    # -- wire helpers -------------------------------------------------------
    def handshake(self):
        reserved = bytearray(8)
        reserved[7] |= 0x10  # BEP 52: supports v2
        return bytes([len(PROTOCOL)]) + PROTOCOL + bytes(reserved) + \
            self.torrent.handshake_hash + self.peer_id

    @staticmethod
    def recv_exact(sock, n):
        out = b""
        while len(out) < n:
            chunk = sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out

    @staticmethod
    def message(msg_id, payload=b""):
        return struct.pack(">IB", len(payload) + 1, msg_id) + payload

    def read_handshake(self, sock):
        head = self.recv_exact(sock, 68)
        if head[1:20] != PROTOCOL or head[28:48] != self.torrent.handshake_hash:
            raise ConnectionError("not our torrent")

    # -- one connection -----------------------------------------------------
    def serve(self, sock, outgoing):
        self.count("connections")
        try:
            with self.lock:
                self.remotes.add(sock.getpeername()[0])
        except OSError:
            pass
        sock.settimeout(300)
        try:
            if outgoing:
                sock.sendall(self.handshake())
                self.read_handshake(sock)
            else:
                self.read_handshake(sock)
                sock.sendall(self.handshake())
            mode = self.args.mode
            if mode == "malformed":
                self.send_malformed(sock)
                return
            sock.sendall(self.message(BITFIELD, self.torrent.bitfield()))
            if mode != "claim":
                sock.sendall(self.message(UNCHOKE))
            if mode == "flap":
                sock.settimeout(self.args.flap_seconds)
                deadline = time.monotonic() + self.args.flap_seconds
                while time.monotonic() < deadline:
                    try:
                        self.handle(sock, self.read_message(sock))
                    except socket.timeout:
                        break
                return
            while True:
                self.handle(sock, self.read_message(sock))
        except (OSError, ConnectionError, ValueError):
            pass
        finally:
            sock.close()

    def read_message(self, sock):
        (length,) = struct.unpack(">I", self.recv_exact(sock, 4))
        if length > MAX_MESSAGE:
            raise ValueError("oversized message")
        if length == 0:
            return None, b""
        body = self.recv_exact(sock, length)
        return body[0], body[1:]

    def handle(self, sock, message):
        msg_id, payload = message
        if msg_id == REQUEST:
            self.count("requests")
            index, begin, length = struct.unpack(">III", payload)
            self.on_request(sock, index, begin, length)
        elif msg_id == HASH_REQUEST:
            self.count("hash_requests")
            sock.sendall(self.message(HASH_REJECT, payload))

    def on_request(self, sock, index, begin, length):
        mode = self.args.mode
        if mode in ("stall", "claim", "flap") or length > BLOCK or index >= self.torrent.num_pieces:
            return
        data = self.torrent.block(index, begin, length)
        if mode == "corrupt":
            with self.lock:
                good = index in self.good_pieces or len(self.good_pieces) < self.args.good_pieces
                if good:
                    self.good_pieces.add(index)
            if not good:
                data = bytes(b ^ 0x5A for b in data[:64]) + data[64:]
                self.count("corrupt_blocks")
        header = struct.pack(">IBII", 9 + len(data), PIECE, index, begin)
        if mode == "trickle":
            sock.sendall(header)
            for i in range(len(data)):
                sock.sendall(data[i:i + 1])
                self.count("bytes_sent")
                time.sleep(1.0 / self.args.trickle_rate)
        else:
            sock.sendall(header + data)
            self.count("bytes_sent", len(data))
        self.count("blocks_sent")

    def send_malformed(self, sock):
        """One kind of bad message per connection, in turn."""
        with self.lock:
            kind = self.malformed_round % 6
            self.malformed_round += 1
        n = self.torrent.num_pieces
        bad = [
            struct.pack(">I", 0x7FFFFFF0) + bytes([PIECE]) + os.urandom(64),  # oversized length
            self.message(BITFIELD, b"\xff" * ((n + 7) // 8 + 5)),  # bitfield of the wrong length
            self.message(PIECE, struct.pack(">II", n + 7, 0) + b"x" * BLOCK),  # unrequested piece
            self.message(99, os.urandom(200)),  # unknown message
            self.message(HAVE, struct.pack(">I", 0xFFFFFFFF)),  # have of no piece
            self.message(HASHES, os.urandom(20)),  # truncated hashes
        ][kind]
        sock.sendall(bad)
        self.count("malformed_sent")
        try:
            sock.settimeout(1)
            sock.recv(1 << 16)
        except OSError:
            pass

    # -- connections --------------------------------------------------------
    def listen(self, sock):
        while True:
            conn, _ = sock.accept()
            threading.Thread(target=self.serve, args=(conn, False), daemon=True).start()

    def connect_loop(self, endpoint):
        host, port = endpoint.rsplit(":", 1)
        while True:
            try:
                sock = socket.create_connection((host.strip("[]"), int(port)), timeout=5,
                                                source_address=(self.args.listen_ip, 0))
                self.serve(sock, True)
            except OSError:
                pass
            if not self.args.reconnect:
                return
            time.sleep(self.args.reconnect_seconds)

    def announce(self, port):
        url = urllib.parse.urlsplit(self.args.announce)
        target = url.path + "?" + urllib.parse.urlencode({
            "info_hash": self.torrent.handshake_hash, "peer_id": self.peer_id, "port": port,
            "uploaded": 0, "downloaded": 0, "left": 0, "compact": 1, "event": "started"})
        while True:
            try:
                conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=5,
                                                  source_address=(self.args.listen_ip, 0))
                conn.request("GET", target)
                reply = conn.getresponse()
                body = reply.read()
                conn.close()
                if reply.status == 200 and b"failure reason" not in body:
                    self.count("announces")
                else:
                    print(json.dumps({"event": "announce_refused", "status": reply.status,
                                      "body": body[:200].decode("latin-1")}), flush=True)
            except OSError:
                pass
            time.sleep(30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--torrent", required=True)
    parser.add_argument("--data", required=True, help="the artifact's right bytes")
    parser.add_argument("--listen", required=True, help="IP:PORT (port 0: any)")
    parser.add_argument("--mode", required=True, choices=[
        "good", "corrupt", "claim", "stall", "trickle", "flap", "malformed"])
    parser.add_argument("--good-pieces", type=int, default=0)
    parser.add_argument("--trickle-rate", type=float, default=1.0)
    parser.add_argument("--flap-seconds", type=float, default=0.5)
    parser.add_argument("--connect", action="append", default=[])
    parser.add_argument("--reconnect", action="store_true")
    parser.add_argument("--reconnect-seconds", type=float, default=0.2)
    parser.add_argument("--announce", default="")
    args = parser.parse_args()
    args.listen_ip, listen_port = args.listen.rsplit(":", 1)
    args.listen_ip = args.listen_ip.strip("[]")

    peer = Peer(args, Torrent(args.torrent, args.data))
    server = socket.socket(socket.AF_INET6 if ":" in args.listen_ip else socket.AF_INET)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((args.listen_ip, int(listen_port)))
    server.listen(64)
    port = server.getsockname()[1]
    print(json.dumps({"event": "listening", "port": port,
                      "swarm": peer.torrent.handshake_hash.hex()}), flush=True)
    threading.Thread(target=peer.listen, args=(server,), daemon=True).start()
    for endpoint in args.connect:
        threading.Thread(target=peer.connect_loop, args=(endpoint,), daemon=True).start()
    if args.announce:
        threading.Thread(target=peer.announce, args=(port,), daemon=True).start()
    while True:
        time.sleep(0.2)
        with peer.lock:
            print(json.dumps(dict(event="stats", remotes=sorted(peer.remotes), **peer.stats)),
                  flush=True)


if __name__ == "__main__":
    sys.exit(main())
