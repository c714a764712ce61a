#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, from the shared test vectors.

Writes fuzz/corpus/<target>/<name> (not committed; fuzz/corpus/ is in
.gitignore). Usage: python3 fuzz/make-corpus.py [vectors.json] [out dir]

Input layouts follow core/src/fuzzing.rs:
  open_envelope               [topic length] topic envelope
  parse_header                envelope bytes
  import_keys                 key text (UTF-8)
  typed_open                  postcard bytes of FuzzReading (and plaintexts)
  replay_window_differential  [width - 1] then 3-byte ops (selector, u16 LE)
  backend_differential        [flags] [key 32] [counter 8 LE] [aad len] aad body
  control_message             a control body, ack body, member-state record or
                              control envelope (seeds from control-v1.json)
"""
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "core", "tests", "vectors", "v1.json")
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "corpus")


def varint(x):
    out = bytearray()
    while True:
        b = x & 0x7F
        x >>= 7
        if x:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf, i):
    x, shift = 0, 0
    while i < len(buf):
        b = buf[i]
        i += 1
        x |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return x, i
    raise ValueError("truncated varint")


def header_counter(env):
    """The counter of a well-formed envelope header (PROTOCOL.md section 4)."""
    i = 1
    _flags, i = read_varint(env, i)
    _key_id, i = read_varint(env, i)
    _sender, i = read_varint(env, i)
    counter, _ = read_varint(env, i)
    return counter


def write(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    with open(VECTORS) as f:
        v = json.load(f)
    if v.get("format") != "mqseal-test-vectors":
        sys.exit(f"{VECTORS}: not an mqseal test vector file")
    counts = {}

    def emit(target, data):
        write(target, data)
        counts[target] = counts.get(target, 0) + 1

    envelopes = []
    for p in v["positive"]:
        env = bytes.fromhex(p["envelope_hex"])
        envelopes.append((p["topic"], env))
        emit("typed_open", bytes.fromhex(p["plaintext_hex"]))
        for k in ("sender_key", "open_key"):
            emit("import_keys", p[k].encode())
        if p.get("pairwise"):
            for k in ("sender_secret", "receiver_secret"):
                emit("import_keys", p["pairwise"][k].encode())
    for n in v["negative"]:
        envelopes.append((n["topic"], bytes.fromhex(n["envelope_hex"])))
        emit("import_keys", n["open_key"].encode())
        # The window scenario of the vector, as absolute counters (selector
        # 3) when they fit the 16-bit delta of the op encoding.
        try:
            ctrs = [header_counter(bytes.fromhex(e)) for e in n["preopen"] + [n["envelope_hex"]]]
        except (ValueError, IndexError):
            continue
        if n["preopen"] and all(c < 65536 for c in ctrs) and 1 <= n["window"] <= 256:
            emit("replay_window_differential", bytes([n["window"] - 1]) + b"".join(bytes([3]) + c.to_bytes(2, "little") for c in ctrs))

    for topic, env in envelopes:
        t = topic.encode()[:255]
        emit("open_envelope", bytes([len(t)]) + t + env)
        emit("parse_header", env)

    # Typed payloads: postcard FuzzReading { value: i64 (zigzag varint),
    # label: &str (varint length + bytes), flags: Option<[u8; 4]> }.
    def zigzag(x):
        return (x << 1) ^ (x >> 63)

    for value, label, flags in [(0, b"", None), (-1, b"temp", b"\x01\x02\x03\x04"), (2**40, b"x" * 40, None)]:
        body = varint(zigzag(value) & (2**64 - 1)) + varint(len(label)) + label
        body += b"\x00" if flags is None else b"\x01" + flags
        emit("typed_open", body)

    # Window scenarios: in order, reordered, far jumps, near u64::MAX.
    emit("replay_window_differential", bytes([63]) + b"".join(bytes([0, 1, 0]) for _ in range(40)))
    emit("replay_window_differential", bytes([255]) + b"".join(bytes([s, d, 0]) for s, d in [(0, 5), (1, 3), (1, 1), (0, 200), (1, 250), (1, 10), (0, 1)]))
    emit("replay_window_differential", bytes([127]) + bytes([2, 0, 0, 2, 5, 0, 2, 3, 0, 2, 5, 0, 3, 0, 0]))

    # Both suites; bodies on both sides of the ring backend's copy tiers
    # (256 and 2048 bytes) and empty ones.
    for flags in (0, 1):
        for aad_len, body_len in [(0, 0), (41, 64), (13, 256), (41, 257), (41, 1024), (0, 2049)]:
            emit("backend_differential", bytes([flags]) + bytes(range(32)) + (7).to_bytes(8, "little")
                 + bytes([aad_len]) + b"\xa5" * aad_len + b"\x5a" * body_len)

    # Key distribution (PROTOCOL.md section 14): the input is tried as each
    # of these, so every form of the control vectors seeds it.
    with open(os.path.join(os.path.dirname(VECTORS), "control-v1.json")) as f:
        c = json.load(f)
    for p in c["positive"]:
        for k in ("body_hex", "ack_body_hex", "member_state_hex", "envelope_hex", "ack_envelope_hex"):
            emit("control_message", bytes.fromhex(p[k]))
    for n in c["negative"]:
        emit("control_message", bytes.fromhex(n["envelope_hex"]))

    for target in sorted(counts):
        print(f"{target}: {counts[target]} seeds")


if __name__ == "__main__":
    main()
