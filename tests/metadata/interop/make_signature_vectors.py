#!/usr/bin/python3
"""Writes TUF keys and signatures made by python3-cryptography (Debian's
package), the way python-securesystemslib makes them, for flotilla's tests:
an implementation of the three TUF signature schemes independent of
flotilla's own signer.

  ed25519              keyval.public = 64 hex digits, signature = 64 bytes
  ecdsa-sha2-nistp256  keyval.public = PEM SubjectPublicKeyInfo,
                       signature = DER (r, s) over SHA-256
  rsassa-pss-sha256    keyval.public = PEM SubjectPublicKeyInfo, PSS with
                       MGF1-SHA-256 and a salt of the digest length

The key id is the SHA-256 of the key object's canonical JSON
(securesystemslib's encode_canonical: sorted keys, no whitespace, only '"'
and '\\' escaped). Each vector signs the canonical JSON of a small "signed"
object. A few keys TUF does not allow are written as negative vectors.

Usage: make_signature_vectors.py OUT.json
"""
import hashlib
import json
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa


def canonical(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(canonical(k) + ":" + canonical(value[k]) for k in sorted(value)) + "}"
    raise TypeError(type(value))


def pem(public_key):
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def key_object(keytype, scheme, public):
    key = {"keytype": keytype, "scheme": scheme, "keyval": {"public": public}}
    return hashlib.sha256(canonical(key).encode()).hexdigest(), key


def vector(name, keytype, scheme, public, sign):
    keyid, key = key_object(keytype, scheme, public)
    signed = {"_type": "targets", "note": "signed by " + name, "version": 1}
    message = canonical(signed).encode()
    return {"name": name, "keyid": keyid, "key": key, "signed": signed,
            "sig": sign(message).hex(), "valid": True}


def main(out):
    vectors = []
    ed = ed25519.Ed25519PrivateKey.generate()
    raw = ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    vectors.append(vector("ed25519", "ed25519", "ed25519", raw.hex(), ed.sign))

    p256 = ec.generate_private_key(ec.SECP256R1())
    ecdsa_sign = lambda m: p256.sign(m, ec.ECDSA(hashes.SHA256()))
    vectors.append(vector("ecdsa", "ecdsa", "ecdsa-sha2-nistp256", pem(p256.public_key()), ecdsa_sign))
    vectors.append(vector("ecdsa-spec-keytype", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256",
                          pem(p256.public_key()), ecdsa_sign))

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    vectors.append(vector("rsa", "rsa", "rsassa-pss-sha256", pem(rsa_key.public_key()),
                          lambda m: rsa_key.sign(m, pss, hashes.SHA256())))
    pss_max = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    vectors.append(vector("rsa-max-salt", "rsa", "rsassa-pss-sha256", pem(rsa_key.public_key()),
                          lambda m: rsa_key.sign(m, pss_max, hashes.SHA256())))

    # Keys TUF does not allow: flotilla must refuse the key itself.
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    bad = vector("rsa-1024", "rsa", "rsassa-pss-sha256", pem(small.public_key()),
                 lambda m: small.sign(m, pss, hashes.SHA256()))
    p384 = ec.generate_private_key(ec.SECP384R1())
    bad384 = vector("ecdsa-p384", "ecdsa", "ecdsa-sha2-nistp256", pem(p384.public_key()),
                    lambda m: p384.sign(m, ec.ECDSA(hashes.SHA256())))
    pkcs1 = vector("rsa-pkcs1v15", "rsa", "rsassa-pss-sha256", pem(rsa_key.public_key()),
                   lambda m: rsa_key.sign(m, padding.PKCS1v15(), hashes.SHA256()))
    for v, why in ((bad, "key"), (bad384, "key"), (pkcs1, "signature")):
        v["valid"] = False
        v["refused"] = why
        vectors.append(v)
    with open(out, "w") as f:
        json.dump({"generator": "python3-cryptography", "vectors": vectors}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
