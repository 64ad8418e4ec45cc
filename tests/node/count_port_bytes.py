#!/usr/bin/env python3
"""Counts the loopback frames to and from a TCP port for a while (root).

usage: count_port_bytes.py PORT SECONDS

Prints one JSON line when done (after SECONDS, or at SIGTERM): frames, frame bytes (Ethernet + IP + TCP +
payload, as on a wire), payload bytes and segments carrying data, each to
the port ("up") and from it ("down"), and the exchanges: on each connection,
an exchange starts with data sent up after data came down (a request after
its answer) and holds the frame bytes each way until the next one, with the
request's first line over plain HTTP ("tls" when encrypted) and the
connection's index. Each loopback packet is seen once (outgoing copies are
skipped)."""
import json
import signal
import socket
import struct
import sys
import time

PACKET_OUTGOING = 4


def main():
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    sock.bind(("lo", 0))
    sock.settimeout(0.2)
    counts = {d: {"frames": 0, "bytes": 0, "payload": 0, "data_segments": 0}
              for d in ("up", "down")}
    exchanges = []  # per request: its first line, the frame bytes up and down until the next
    connections = {}  # client port -> [index, its current exchange or None, data came down]
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stopped:
        try:
            frame, address = sock.recvfrom(65536)
        except (socket.timeout, InterruptedError):
            continue
        if address[2] == PACKET_OUTGOING or len(frame) < 14 + 20:
            continue
        if struct.unpack("!H", frame[12:14])[0] != 0x0800:
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 6:
            continue
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:]
        sport, dport = struct.unpack("!HH", tcp[0:4])
        if port not in (sport, dport):
            continue
        payload = total - ihl - (tcp[12] >> 4) * 4
        way = "up" if dport == port else "down"
        c = counts[way]
        data = tcp[(tcp[12] >> 4) * 4:(tcp[12] >> 4) * 4 + payload]
        client = sport if way == "up" else dport
        conn = connections.setdefault(client, [len(connections), None, False])
        if way == "up" and payload > 0 and (conn[1] is None or conn[2]):
            if data[:4] in (b"GET ", b"POST", b"PUT ", b"HEAD"):
                line = data.split(b"\r\n", 1)[0].decode("latin-1")[:100]
            else:
                line = "tls" if data[:1] == b"\x17" else "?"
            conn[1] = {"connection": conn[0], "request": line, "up": 0, "down": 0}
            conn[2] = False
            exchanges.append(conn[1])
        if conn[1] is None:  # the answer to a request sent before counting began
            conn[1] = {"connection": conn[0], "request": "(asked before)", "up": 0, "down": 0}
            exchanges.append(conn[1])
        if way == "down" and payload > 0:
            conn[2] = True
        if conn[1] is not None:
            conn[1][way] += len(frame)
        c["frames"] += 1
        c["bytes"] += len(frame)
        c["payload"] += payload
        c["data_segments"] += 1 if payload > 0 else 0
    counts["exchanges"] = exchanges
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
