#!/usr/bin/env python3
"""Writes a docker-archive (the `docker save` format) for the node's tests.

Usage: make_node_image.py OUT.tar RANDOM_KIB [SEED [VARIANT [ARCH]]]
Layer 1: busybox (the host's static binary) + /bin/sh link + /etc/motd.
Layer 2: /data/random.bin, RANDOM_KIB of incompressible bytes from SEED,
so the artifact is big enough to interrupt and its bytes change with SEED.
VARIANT (default 0) changes /etc/motd and the first 4 KiB of random.bin only:
the next release of an image, which publish ships as small deltas.
ARCH (default: the host's, as OCI names it) is the config's architecture:
another one makes an image this host's node refuses to fetch.
"""
import hashlib, io, json, platform, random, sys, tarfile, time

OCI_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386"}

def layer(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o755
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()

def main():
    out, kib = sys.argv[1], int(sys.argv[2])
    seed = sys.argv[3] if len(sys.argv) > 3 else "1"
    variant = sys.argv[4] if len(sys.argv) > 4 else "0"
    machine = platform.machine()
    arch = sys.argv[5] if len(sys.argv) > 5 else OCI_ARCH.get(machine, machine)
    busybox = open("/usr/bin/busybox", "rb").read()
    base = layer([("bin", "dir", None), ("bin/busybox", "file", busybox),
                  ("bin/sh", "sym", "busybox"), ("etc", "dir", None),
                  ("etc/motd", "file", b"release " + seed.encode() + b"." + variant.encode() + b"\n")])
    rnd = random.Random(seed)
    data = bytearray(rnd.randbytes(kib * 1024))
    if variant != "0":
        data[:4096] = random.Random(variant).randbytes(4096)
    top = layer([("data", "dir", None), ("data/random.bin", "file", bytes(data))])
    layers = [base, top]
    diff_ids = ["sha256:" + hashlib.sha256(l).hexdigest() for l in layers]
    config = json.dumps({"architecture": arch, "os": "linux",
                         "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    names = [d[7:] + "/layer.tar" for d in diff_ids]
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["test/node:" + seed + "." + variant],
                            "Layers": names}]).encode()
    with tarfile.open(out, "w") as tar:
        for name, data in [(config_name, config), ("manifest.json", manifest)] + \
                list(zip(names, layers)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))

main()
