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
import re
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import serialization
from cryptography.exceptions import InvalidTag


class MqsealError(Exception):
    """An error of PROTOCOL.md section 10: its name and, for `invalidControl`, its reason."""

    def __init__(self, code, reason=None):
        super().__init__(code if reason is None else f"{code}/{reason}")
        self.code = code
        self.reason = reason


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


def read_varint(buf, pos, bits, canonical=True):
    """Section 3; with `canonical` False an overlong form (rule 3) is let through, for a
    decoder that checks canonical form by re-encoding (14.6 step 5)."""
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
            if b == 0 and i > 0 and canonical:
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


# Key texts (PROTOCOL.md 5.4): exactly these five ASCII characters are
# trimmed; base64url is strict (43 characters of the URL alphabet, no
# padding, canonical last character).
KEY_WS = " \t\r\n\x0c"
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
GROUP_PREFIX = "mqseal:key:v1:"
SECRET_PREFIX = "mqseal:x25519-secret:v1:"
PUBLIC_PREFIX = "mqseal:x25519-public:v1:"


def b64_decode(text):
    if len(text) != 43 or any(c not in B64URL for c in text):
        raise MqsealError("invalidKey")
    if B64URL.index(text[-1]) & 3:
        raise MqsealError("invalidKey")  # non-canonical: unused low bits set
    value = 0
    for c in text:
        value = value << 6 | B64URL.index(c)
    return (value >> 2).to_bytes(32, "big")


def b64_encode(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def strip_prefix(text, prefix):
    t = text.strip(KEY_WS)
    if not t.startswith(prefix):
        raise MqsealError("invalidKey")
    return t[len(prefix):]


def parse_key(text):
    rest = strip_prefix(text, GROUP_PREFIX)
    if ":" not in rest:
        raise MqsealError("invalidKey")
    key_id, material = rest.split(":", 1)
    if not re.fullmatch(r"0|[1-9][0-9]{0,9}", key_id, re.ASCII) or int(key_id) > 0xFFFFFFFF:
        raise MqsealError("invalidKey")
    return int(key_id), b64_decode(material)


def key_text(key):
    return "%s%d:%s" % (GROUP_PREFIX, key[0], b64_encode(key[1]))


def x25519_secret(text):
    return X25519PrivateKey.from_private_bytes(b64_decode(strip_prefix(text, SECRET_PREFIX)))


def x25519_public(text):
    return b64_decode(strip_prefix(text, PUBLIC_PREFIX))


def raw_public(priv):
    return priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def raw_secret(priv):
    return priv.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                              serialization.NoEncryption())


def pairwise(own_secret, peer_public_raw, key_id):
    me = raw_public(own_secret)
    if peer_public_raw == me:
        raise MqsealError("selfPairing")
    try:
        shared = own_secret.exchange(X25519PublicKey.from_public_bytes(peer_public_raw))
    except ValueError:  # the library refuses an all-zero shared secret itself
        raise MqsealError("weakSharedSecret")
    if shared == bytes(32):
        raise MqsealError("weakSharedSecret")
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


def unseal(material, h, env, topic):
    """Section 9.1 step 5: verify the tag of the parsed envelope `env` (header `h`) under the key
    `material`, bound to `topic`, and return the plaintext; any mismatch is `auth`."""
    hl = h["header_len"]
    header, body, tag = env[:hl], env[hl:-16], env[-16:]
    sk = subkey(material, h["suite"], h["key_id"], h["sender_id"])
    a = aad(header, topic)
    if h["suite"] == 1:
        try:
            return ChaCha20Poly1305(sk).decrypt(nonce(h["counter"]), body + tag, a)
        except InvalidTag:
            raise MqsealError("auth")
    expect = hmac.new(sk, a + body, hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(expect, tag):
        raise MqsealError("auth")
    return body


def check_topic(topic):
    t = topic.encode("utf-8")
    if len(t) > 65535:
        raise MqsealError("topicTooLong")
    if not t or any(b in t for b in b"+#\0"):
        raise MqsealError("invalidTopic")


class Receiver:
    """The receiver of PROTOCOL.md section 9, with the configuration of 9.2."""

    def __init__(self, key, window=128, max_age=None, max_skew=None, require_timestamp=False,
                 suites=(1, 2), senders=None, eviction="rejectNew", rewrite=None, gaps=4):
        if (not 1 <= window <= 256 or not 0 <= gaps <= 4 or not suites
                or (eviction == "leastRecentlyUsed" and max_age is None)):
            raise MqsealError("invalidConfig")
        self.keys = {key[0]: key[1]}
        self.window, self.gaps, self.max_age, self.require_timestamp = window, gaps, max_age, require_timestamp
        # A maximum age implies a future bound: min(max_age, 300) unless one is given.
        self.max_skew = max_skew if max_skew is not None else (None if max_age is None else min(max_age, 300))
        self.suites, self.senders, self.eviction, self.rewrite = set(suites), senders, eviction, rewrite
        # (key_id, sender_id) -> [highest, set of accepted in window, last heard, gaps]; gaps is an
        # ascending list of [lo, hi] ranges of never-accepted counters below the window (9.4).
        # The age bound of 9.4 (dropping gaps whose messages are all too old) changes no verdict,
        # so this receiver leaves it out.
        self.state = {}
        self.tick = 0

    def check_time(self, ts, now):
        if ts is None:
            if self.require_timestamp or self.max_age is not None:
                raise MqsealError("timestampRequired")
            return
        if self.max_age is None and self.max_skew is None:
            return
        if now is None:
            raise MqsealError("clockRequired")
        if self.max_age is not None and now - ts > self.max_age:
            raise MqsealError("expired")
        if self.max_skew is not None and ts - now > self.max_skew:
            raise MqsealError("fromFuture")

    def open(self, topic, env, now=None):
        if self.rewrite is not None:
            received, sealed = self.rewrite
            if not topic.startswith(received):
                raise MqsealError("topicNotRewritable")
            topic = sealed + topic[len(received):]
        h = parse(env)
        if h["suite"] not in self.suites:
            raise MqsealError("suiteNotAllowed")
        if h["key_id"] not in self.keys:
            raise MqsealError("unknownKey")
        check_topic(topic)
        plaintext = unseal(self.keys[h["key_id"]], h, env, topic)
        self.check_time(h["timestamp"], now)
        k = (h["key_id"], h["sender_id"])
        c = h["counter"]
        if k in self.state:
            highest, seen, _, gaps = self.state[k]
            if c <= highest:
                if highest - c >= self.window:
                    if not any(lo <= c <= hi for lo, hi in gaps):
                        raise MqsealError("replay")
                elif c in seen:
                    raise MqsealError("duplicate")
        elif self.senders is not None and len(self.state) >= self.senders:
            if self.eviction != "leastRecentlyUsed":
                raise MqsealError("tooManySenders")
            del self.state[min(self.state, key=lambda s: self.state[s][2])]
        self.tick += 1
        if k not in self.state:
            self.state[k] = [c, {c}, self.tick, []]
            return h, plaintext
        highest, seen, _, gaps = self.state[k]
        if c > highest:
            bottom, new_bottom = max(highest - self.window + 1, 0), max(c - self.window + 1, 0)
            # The never-accepted runs of the counters leaving the window, then the block jumped over.
            runs, run = [], None
            for x in range(bottom, min(new_bottom, highest + 1)):
                if x in seen:
                    if run:
                        runs.append(run)
                    run = None
                else:
                    run = [run[0] if run else x, x]
            if run:
                runs.append(run)
            if new_bottom - 1 > highest:
                runs.append([highest + 1, new_bottom - 1])
            for lo, hi in runs:
                if self.gaps == 0:
                    break
                if gaps and gaps[-1][1] + 1 == lo:
                    gaps[-1][1] = hi
                else:
                    gaps.append([lo, hi])
                del gaps[:max(len(gaps) - self.gaps, 0)]
            highest = c
        elif highest - c >= self.window:
            i = next(i for i, (lo, hi) in enumerate(gaps) if lo <= c <= hi)
            lo, hi = gaps[i]
            gaps[i:i + 1] = [g for g in ([lo, c - 1], [c + 1, hi]) if g[0] <= g[1]]
            del gaps[:max(len(gaps) - self.gaps, 0)]
        seen = {x for x in seen | {c} if highest - x < self.window}
        self.state[k] = [highest, seen, self.tick, gaps]
        return h, plaintext


def u64(v, field):
    """A u64 field: the exact JSON number must equal its decimal-string twin."""
    n, d = v[field], v.get(field + "_dec")
    assert (n is None and d is None) or (isinstance(n, int) and d == str(n)), f"{field} / {field}_dec"
    return n


class Tally:
    """Counts the vectors that pass and reports each one that fails, so
    that every vector runs before the script fails."""

    def __init__(self, what):
        self.what = what
        self.ok = 0
        self.failed = 0

    def passed(self):
        self.ok += 1

    def fail(self, name, why):
        self.failed += 1
        print(f"FAIL {name}: {why}")

    def expect(self, name, got, want):
        if got == want:
            self.passed()
        else:
            self.fail(name, f"got {got}, want {want}")

    def report(self):
        print(f"{self.what}: {self.ok} passed, {self.failed} failed")
        return 1 if self.failed else 0


def main(path):
    data = json.load(open(path))
    assert data["format"] == "mqseal-test-vectors" and data["version"] == 1
    assert data["max_u64"] == 2**64 - 1 and data["max_u64_dec"] == str(2**64 - 1)
    t = Tally("reference")
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
            env = seal(key, SUITE_IDS[v["suite"]], v["sender_id"], u64(v, "counter"), u64(v, "timestamp"), v["topic"],
                       bytes.fromhex(v["plaintext_hex"]))
            assert env.hex() == v["envelope_hex"], "sealed bytes differ"
            _, pt = Receiver(parse_key(v["open_key"])).open(v["topic"], env)
            assert pt.hex() == v["plaintext_hex"], "opened plaintext differs"
            t.passed()
        except Exception as e:  # report every vector, then fail
            t.fail(f"positive {v['name']}", repr(e))
    for v in data["negative"]:
        name = f"negative {v['name']}"
        try:
            suites = (1, 2) if v["suites"] is None else tuple(SUITE_IDS[n] for n in v["suites"])
            rw = v["rewrite"]
            r = Receiver(parse_key(v["open_key"]), v["window"], u64(v, "max_age"), u64(v, "max_skew"),
                         v["require_timestamp"], suites, v["senders"], v["eviction"],
                         None if rw is None else (rw["received"], rw["sealed"]), v.get("gaps", 4))
            now = u64(v, "now")
            for pre in v["preopen"]:
                r.open(v["topic"], bytes.fromhex(pre), now)
        except Exception as e:
            if isinstance(e, MqsealError) and e.code == v["error"] == "invalidConfig":
                t.passed()
            else:
                t.fail(name, f"setup: {e!r}")
            continue
        try:
            r.open(v["topic"], bytes.fromhex(v["envelope_hex"]), now)
            t.fail(name, "opened")
        except MqsealError as e:
            t.expect(name, e.code, v["error"])
    for v in data["sequences"]:
        name = f"sequence {v['name']}"
        try:
            r = Receiver(parse_key(v["open_key"]), v["window"], u64(v, "max_age"), u64(v, "max_skew"),
                         gaps=v["gaps"])
        except MqsealError as e:
            t.expect(f"{name} setup", (e.code, len(v["steps"])), (v["config_error"], 0))
            continue
        if v["config_error"] is not None:
            t.fail(name, "configuration accepted")
            continue
        for i, step in enumerate(v["steps"]):
            try:
                h, _ = r.open(v["topic"], bytes.fromhex(step["envelope_hex"]), u64(step, "now"))
                got = None if h["counter"] == u64(step, "counter") else "wrong counter"
            except MqsealError as e:
                got = e.code
            if got != step["expect"]:
                t.fail(f"{name} step {i}", f"got {got}, want {step['expect']}")
                break
        else:
            t.passed()
    for v in data["keys"]:
        try:
            if v["kind"] == "key":
                key = parse_key(v["text"])
                got = dict(key_id=key[0], bytes_hex=key[1].hex(), canonical_text=key_text(key), public_text=None)
            elif v["kind"] == "x25519-secret":
                priv = x25519_secret(v["text"])
                got = dict(key_id=None, bytes_hex=raw_secret(priv).hex(),
                           canonical_text=SECRET_PREFIX + b64_encode(raw_secret(priv)),
                           public_text=PUBLIC_PREFIX + b64_encode(raw_public(priv)))
            else:
                pub = x25519_public(v["text"])
                got = dict(key_id=None, bytes_hex=pub.hex(), canonical_text=PUBLIC_PREFIX + b64_encode(pub),
                           public_text=None)
            got["error"] = None
        except MqsealError as e:
            got = dict(key_id=None, bytes_hex=None, canonical_text=None, public_text=None, error=e.code)
        t.expect(f"key {v['name']}", got, {f: v[f] for f in got})
    for v in data["pairwise"]:
        try:
            send, recv = pairwise(x25519_secret(v["secret"]), x25519_public(v["peer_public"]), v["key_id"])
            got = (key_text(send), key_text(recv), None)
        except MqsealError as e:
            got = (None, None, e.code)
        t.expect(f"pairwise {v['name']}", got, (v["send_key"], v["recv_key"], v["error"]))
    return t.report()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "core/tests/vectors/v1.json"))
