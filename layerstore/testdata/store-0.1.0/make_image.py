# Builds a tiny two-layer OCI image layout, deterministically, in ./oci.
import hashlib, io, json, os, tarfile

def layer(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1764576000
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()

def blob(data):
    digest = hashlib.sha256(data).hexdigest()
    os.makedirs("oci/blobs/sha256", exist_ok=True)
    with open("oci/blobs/sha256/" + digest, "wb") as f:
        f.write(data)
    return "sha256:" + digest

layers = [
    layer([("etc", None), ("etc/motd", b"hello from 0.1.0\n"), ("etc/os", b"fixture\n")]),
    layer([("etc/motd", b"v2\n"), ("data", None), ("data/keep", b"keep\n" * 100)]),
]
layer_descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blob(l), "size": len(l)} for l in layers]
config = json.dumps({
    "architecture": "amd64", "os": "linux",
    "config": {"Cmd": ["/bin/sh"]},
    "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in layer_descs]},
}, sort_keys=True).encode()
manifest = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(config), "size": len(config)},
    "layers": layer_descs,
}, sort_keys=True).encode()
index = {"schemaVersion": 2, "manifests": [{
    "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": blob(manifest), "size": len(manifest),
    "annotations": {"org.opencontainers.image.ref.name": "fixture:1"}}]}
with open("oci/index.json", "w") as f:
    json.dump(index, f)
with open("oci/oci-layout", "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
