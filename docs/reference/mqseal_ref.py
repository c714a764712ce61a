#!/usr/bin/env python3
"""An independent implementation of docs/PROTOCOL.md (mqseal envelope v1).

Written from the protocol document alone, in Python with the `cryptography`
package, to show that the document is complete and to cross-check the Rust
core: it seals every positive vector byte for byte, opens it, and checks
every negative vector's error.

    python3 docs/reference/mqseal_ref.py core/tests/vectors/v1.json
"""
import base64
import hashlib
import hmac
import json
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import serialization
from cryptography.exceptions import InvalidTag


class MqsealError(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


SUITES = {1: "chacha20poly1305", 2: "hmac-sha256"}
SUITE_IDS = {v: k for k, v in SUITES.items()}


def varint(x):
    out = bytearray()
    while True:
        b = x & 0x7F
        x >>= 7
        if x == 0:
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def read_varint(buf, pos, bits):
    max_len = 5 if bits == 32 else 10
    value = 0
    for i in range(max_len):
        if pos + i >= len(buf):
            raise MqsealError("truncated")
        b = buf[pos + i]
        shift = 7 * i
        group = b & 0x7F
        if shift + 7 > bits and (group >> (bits - shift)) != 0:
            raise MqsealError("badVarint")
        value |= group << shift
        if b & 0x80 == 0:
            if b == 0 and i > 0:
                raise MqsealError("badVarint")
            return value, pos + i + 1
    raise MqsealError("badVarint")


def parse(env):
    if not env:
        raise MqsealError("truncated")
    if env[0] >> 4 != 1:
        raise MqsealError("unsupportedVersion")
    suite = env[0] & 0x0F
    if suite not in SUITES:
        raise MqsealError("unknownSuite")
    pos = 1
    flags, pos = read_varint(env, pos, 32)
    if flags & ~1:
        raise MqsealError("unknownFlags")
    key_id, pos = read_varint(env, pos, 32)
    sender_id, pos = read_varint(env, pos, 32)
    counter, pos = read_varint(env, pos, 64)
    ts = None
    if flags & 1:
        ts, pos = read_varint(env, pos, 64)
    if len(env) - pos < 16:
        raise MqsealError("truncated")
    return dict(suite=suite, key_id=key_id, sender_id=sender_id, counter=counter, timestamp=ts, header_len=pos)


def encode_header(suite, key_id, sender_id, counter, ts):
    out = bytes([0x10 | suite]) + varint(1 if ts is not None else 0)
    out += varint(key_id) + varint(sender_id) + varint(counter)
    if ts is not None:
        out += varint(ts)
    return out


def hkdf(ikm, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"mqseal/v1", info=info).derive(ikm)


def subkey(key, suite, key_id, sender_id):
    info = b"mqseal/v1 subkey" + bytes([suite]) + key_id.to_bytes(4, "big") + sender_id.to_bytes(4, "big")
    return hkdf(key, info)


def aad(header, topic):
    t = topic.encode("utf-8")
    field = t if len(t) <= 128 else hashlib.sha256(t).digest()
    return b"mqseal/v1" + header + varint(len(t)) + field


def nonce(counter):
    return b"\0\0\0\0" + counter.to_bytes(8, "big")


def b64(s):
    return base64.urlsafe_b64decode(s + "=")


def parse_key(text):
    prefix, kind, v, rest = text.split(":", 3)
    assert (prefix, kind, v) == ("mqseal", "key", "v1")
    key_id, material = rest.split(":")
    return int(key_id), b64(material)


def x25519_secret(text):
    assert text.startswith("mqseal:x25519-secret:v1:")
    return X25519PrivateKey.from_private_bytes(b64(text.split(":")[3]))


def raw_public(priv):
    return priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def pairwise(own_secret, peer_public_raw, key_id):
    shared = own_secret.exchange(X25519PublicKey.from_public_bytes(peer_public_raw))
    if shared == bytes(32):
        raise MqsealError("weakSharedSecret")
    me = raw_public(own_secret)
    send = hkdf(shared, b"mqseal/v1 pairwise" + me + peer_public_raw)
    recv = hkdf(shared, b"mqseal/v1 pairwise" + peer_public_raw + me)
    return (key_id, send), (key_id, recv)


def seal(key, suite, sender_id, counter, ts, topic, plaintext):
    key_id, material = key
    header = encode_header(suite, key_id, sender_id, counter, ts)
    sk = subkey(material, suite, key_id, sender_id)
    a = aad(header, topic)
    if suite == 1:
        return header + ChaCha20Poly1305(sk).encrypt(nonce(counter), plaintext, a)
    tag = hmac.new(sk, a + plaintext, hashlib.sha256).digest()[:16]
    return header + plaintext + tag


class Receiver:
    def __init__(self, key, window=128, max_age=None, max_skew=None):
        self.keys = {key[0]: key[1]}
        self.window, self.max_age, self.max_skew = window, max_age, max_skew
        self.state = {}  # (key_id, sender_id) -> (highest, set of accepted in window)

    def open(self, topic, env, now=None):
        h = parse(env)
        if h["key_id"] not in self.keys:
            raise MqsealError("unknownKey")
        hl = h["header_len"]
        header, body, tag = env[:hl], env[hl:-16], env[-16:]
        sk = subkey(self.keys[h["key_id"]], h["suite"], h["key_id"], h["sender_id"])
        a = aad(header, topic)
        if h["suite"] == 1:
            try:
                plaintext = ChaCha20Poly1305(sk).decrypt(nonce(h["counter"]), body + tag, a)
            except InvalidTag:
                raise MqsealError("auth")
        else:
            expect = hmac.new(sk, a + body, hashlib.sha256).digest()[:16]
            if not hmac.compare_digest(expect, tag):
                raise MqsealError("auth")
            plaintext = body
        ts = h["timestamp"]
        if self.max_age is not None and ts is None:
            raise MqsealError("timestampRequired")
        if ts is not None and (self.max_age is not None or self.max_skew is not None):
            if now is None:
                raise MqsealError("clockRequired")
            if self.max_age is not None and now - ts > self.max_age:
                raise MqsealError("expired")
            if self.max_skew is not None and ts - now > self.max_skew:
                raise MqsealError("fromFuture")
        k = (h["key_id"], h["sender_id"])
        c = h["counter"]
        if k in self.state:
            highest, seen = self.state[k]
            if c <= highest:
                if highest - c >= self.window:
                    raise MqsealError("replay")
                if c in seen:
                    raise MqsealError("duplicate")
        highest = max(c, self.state.get(k, (c, set()))[0])
        seen = {x for x in self.state.get(k, (0, set()))[1] | {c} if highest - x < self.window}
        self.state[k] = (highest, seen)
        return h, plaintext


def main(path):
    data = json.load(open(path))
    assert data["format"] == "mqseal-test-vectors" and data["version"] == 1
    ok = 0
    failed = 0
    for v in data["positive"]:
        try:
            key = parse_key(v["sender_key"])
            if v["pairwise"]:
                pw = v["pairwise"]
                s = x25519_secret(pw["sender_secret"])
                r = x25519_secret(pw["receiver_secret"])
                send, _ = pairwise(s, raw_public(r), pw["key_id"])
                _, recv = pairwise(r, raw_public(s), pw["key_id"])
                assert send == key, "pairwise send key"
                assert recv == parse_key(v["open_key"]), "pairwise recv key"
            env = seal(key, SUITE_IDS[v["suite"]], v["sender_id"], v["counter"], v["timestamp"], v["topic"],
                       bytes.fromhex(v["plaintext_hex"]))
            assert env.hex() == v["envelope_hex"], "sealed bytes differ"
            _, pt = Receiver(parse_key(v["open_key"])).open(v["topic"], env)
            assert pt.hex() == v["plaintext_hex"], "opened plaintext differs"
            ok += 1
        except Exception as e:  # report every vector, then fail
            failed += 1
            print(f"FAIL positive {v['name']}: {e!r}")
    for v in data["negative"]:
        r = Receiver(parse_key(v["open_key"]), v["window"], v["max_age"], v["max_skew"])
        try:
            for pre in v["preopen"]:
                r.open(v["topic"], bytes.fromhex(pre), v["now"])
            r.open(v["topic"], bytes.fromhex(v["envelope_hex"]), v["now"])
            failed += 1
            print(f"FAIL negative {v['name']}: opened")
        except MqsealError as e:
            if e.code == v["error"]:
                ok += 1
            else:
                failed += 1
                print(f"FAIL negative {v['name']}: got {e.code}, want {v['error']}")
    print(f"reference: {ok} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "core/tests/vectors/v1.json"))
