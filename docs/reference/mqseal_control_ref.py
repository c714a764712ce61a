#!/usr/bin/env python3
"""An independent implementation of docs/PROTOCOL.md section 14 (key distribution, control protocol v1).

Written from the protocol document alone, on top of the envelope functions of `mqseal_ref.py`
(sections 3 to 9), to show that section 14 is complete and to cross-check the Rust core: for every
positive vector of `control-v1.json` it derives both pairwise directions, encodes the state and
seals it byte for byte, opens it as the member does (14.6, step by step), applies it (14.8) and
checks the ack and the member-state record (14.9) byte for byte, and opens the ack as the
authority does; every negative vector is run on the member state left by the positive vectors it
follows, and must fail with the exact error and reason, changing nothing.

    python3 docs/reference/mqseal_control_ref.py core/tests/vectors/control-v1.json
"""
import hashlib
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mqseal_ref import (MqsealError, Tally, b64_encode, parse, pairwise, raw_public, read_varint, seal,  # noqa: E402
                        unseal, varint, x25519_public, x25519_secret, PUBLIC_PREFIX)

# 14.4 and section 13.
MAX_GROUPS = 8
MAX_KEYS_PER_GROUP = 4
MAX_NAME_LEN = 64
LONGEST_CONTROL_BODY = 2741
LONGEST_ACK_BODY = 77
FORMAT = 1
STATUS_APPLIED = 0
CONTROL_SUITE = 1  # 14.3: ChaCha20-Poly1305, key id 0, sender id 0, both directions
CONTROL_KEY_ID = 0
DEFAULT_CONTROL_PREFIX = "mqseal/v1/ctl"
DEFAULT_ACK_PREFIX = "mqseal/v1/ack"
RECORD_MAGIC = b"mqseal-member v1\n"
U64_MAX = 2**64 - 1


def invalid(reason):
    return MqsealError("invalidControl", reason)


# ---- postcard (14.4) ------------------------------------------------------------------------

class Reader:
    """Reads the postcard types of 14.4 from `buf`; anything that is not one is `malformed`."""

    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, n):
        if len(self.buf) - self.pos < n:
            raise invalid("malformed")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self):
        return self.take(1)[0]

    def varint(self, bits):
        # Section 3's decoder: at most 5 / 10 bytes, no overflow; an overlong form is found by
        # re-encoding (decode_body), which step 5 skips for a message that step 6 refuses.
        try:
            value, self.pos = read_varint(self.buf, self.pos, bits, canonical=False)
        except MqsealError:
            raise invalid("malformed")
        return value

    def str(self):
        try:
            return self.take(self.varint(32)).decode("utf-8")
        except UnicodeDecodeError:
            raise invalid("malformed")

    def option(self, read):
        tag = self.u8()
        if tag > 1:
            raise invalid("malformed")
        return read() if tag else None

    def seq(self, read):
        # Every element takes at least one byte, so a huge count ends at the end of the body.
        return [read() for _ in range(self.varint(32))]

    def end(self):
        if self.pos != len(self.buf):
            raise invalid("malformed")


def enc_str(s):
    raw = s.encode("utf-8")
    return varint(len(raw)) + raw


def enc_option(value, enc):
    return b"\x00" if value is None else b"\x01" + enc(value)


def enc_seq(items, enc):
    return varint(len(items)) + b"".join(enc(x) for x in items)


# A decoded state has exactly the fields of 14.4 (the JSON of the vectors; `secret` in hex).

def encode_key(k):
    return (varint(k["key_id"]) + bytes([k["suite"]]) + bytes.fromhex(k["secret"]) + varint(k["sender_id"])
            + varint(k["activation"]) + enc_option(k["end_of_acceptance"], varint))


def encode_group(g):
    return (enc_str(g["name"]) + varint(g["seal_now"]) + enc_option(g["seal_next"], varint)
            + enc_seq(g["keys"], encode_key))


def encode_state(s):
    return bytes([s["format"]]) + enc_str(s["member_id"]) + varint(s["epoch"]) + enc_seq(s["groups"], encode_group)


def read_key(r):
    return dict(key_id=r.varint(32), suite=r.u8(), secret=r.take(32).hex(), sender_id=r.varint(32),
                activation=r.varint(64), end_of_acceptance=r.option(lambda: r.varint(64)))


def read_group(r):
    return dict(name=r.str(), seal_now=r.varint(32), seal_next=r.option(lambda: r.varint(32)),
                keys=r.seq(lambda: read_key(r)))


def read_state(r):
    return dict(format=r.u8(), member_id=r.str(), epoch=r.varint(64), groups=r.seq(lambda: read_group(r)))


def encode_ack_fields(a):
    return bytes([a["format"]]) + enc_str(a["member_id"]) + varint(a["epoch"]) + bytes([a["status"]])


def encode_ack(member_id, epoch):
    return encode_ack_fields(dict(format=FORMAT, member_id=member_id, epoch=epoch, status=STATUS_APPLIED))


def read_ack(r):
    return dict(format=r.u8(), member_id=r.str(), epoch=r.varint(64), status=r.u8())


def decode_body(body, read, encode, flagged):
    """14.6 step 5: the format byte, then one postcard value and nothing after it, in canonical
    form unless `flagged` (a list over its limit or a bad name, reported by step 6)."""
    if not body:
        raise invalid("malformed")
    if body[0] != FORMAT:
        raise invalid("unsupportedFormat")
    r = Reader(body)
    value = read(r)
    r.end()
    if not flagged(value) and encode(value) != body:
        raise invalid("malformed")
    return value


def state_flagged(s):
    return (len(s["groups"]) > MAX_GROUPS or not valid_name(s["member_id"])
            or any(len(g["keys"]) > MAX_KEYS_PER_GROUP or not valid_name(g["name"]) for g in s["groups"]))


def ack_flagged(a):
    return not valid_name(a["member_id"])


# ---- checks (14.4, 14.6 step 6) -------------------------------------------------------------

def valid_name(name):
    return re.fullmatch(r"[A-Za-z0-9._-]{1,%d}" % MAX_NAME_LEN, name, re.ASCII) is not None


def check_state(s):
    """14.6 step 6, in its order."""
    if len(s["groups"]) > MAX_GROUPS:
        raise invalid("tooManyGroups")
    if not valid_name(s["member_id"]):
        raise invalid("badName")
    if s["epoch"] == 0:
        raise invalid("zeroEpoch")
    names = []
    for g in s["groups"]:
        if not valid_name(g["name"]):
            raise invalid("badName")
        if not 1 <= len(g["keys"]) <= MAX_KEYS_PER_GROUP:
            raise invalid("tooManyKeys")
        ids = []
        for k in g["keys"]:
            if k["key_id"] in ids:
                raise invalid("duplicateKeyId")
            ids.append(k["key_id"])
            if k["suite"] not in (1, 2):
                raise invalid("badSuite")
            if k["end_of_acceptance"] is not None and k["end_of_acceptance"] <= k["activation"]:
                raise invalid("endBeforeActivation")
        if g["seal_now"] not in ids:
            raise invalid("sealKeyMissing")
        nxt = g["seal_next"]
        if nxt is not None:
            activation = {k["key_id"]: k["activation"] for k in g["keys"]}
            if nxt not in ids or nxt == g["seal_now"] or activation[nxt] <= activation[g["seal_now"]]:
                raise invalid("badNextKey")
        if g["name"] in names:
            raise invalid("duplicateGroup")
        names.append(g["name"])


def check_ack(a):
    """The authority's step 6 for an ack (14.6, last paragraph)."""
    if not valid_name(a["member_id"]):
        raise invalid("badName")
    if a["epoch"] == 0:
        raise invalid("zeroEpoch")
    if a["status"] != STATUS_APPLIED:
        raise invalid("badStatus")


def open_control_envelope(topic, expected_topic, key, last_counter, env):
    """14.6 steps 1 to 4, the same for a member (control) and the authority (acks)."""
    if topic != expected_topic:
        raise invalid("wrongTopic")
    h = parse(env)
    if h["suite"] != CONTROL_SUITE:
        raise invalid("wrongSender")
    if h["key_id"] != key[0]:
        raise MqsealError("unknownKey")
    body = unseal(key[1], h, env, topic)
    if h["sender_id"] != 0:
        raise invalid("wrongSender")
    if last_counter is not None and h["counter"] <= last_counter:
        raise MqsealError("duplicate" if h["counter"] == last_counter else "replay")
    return h["counter"], body


# ---- the member (14.6 to 14.9) --------------------------------------------------------------

class Member:
    """A member's control-protocol side: accepting states, acks, its record. It opens no group
    messages, so it never sets a `next_seen` mark itself (14.7); a restored record's marks are kept
    or dropped by the states it applies."""

    def __init__(self, member_id, secret, authority_public, control_prefix=DEFAULT_CONTROL_PREFIX,
                 ack_prefix=DEFAULT_ACK_PREFIX):
        if not valid_name(member_id):
            raise invalid("badName")
        self.member_id = member_id
        self.ack_key, self.control_key = pairwise(secret, authority_public, CONTROL_KEY_ID)
        self.control_topic = f"{control_prefix}/{member_id}"
        self.ack_topic = f"{ack_prefix}/{member_id}"
        # The record of 14.9 before the first state.
        self.epoch, self.last_control_counter, self.next_ack_counter, self.next_seen, self.state = 0, None, 0, 0, None

    def accept(self, topic, env):
        """14.6: every step in order; changes nothing. Returns (counter, state)."""
        counter, body = open_control_envelope(topic, self.control_topic, self.control_key,
                                              self.last_control_counter, env)
        state = decode_body(body, read_state, encode_state, state_flagged)
        check_state(state)
        if state["member_id"] != self.member_id:
            raise invalid("wrongMember")
        if state["epoch"] <= self.epoch:
            raise MqsealError("staleEpoch")
        return counter, state

    def handle(self, topic, env):
        """14.6 then 14.8. Returns (ack counter, ack body, ack envelope)."""
        counter, state = self.accept(topic, env)
        c = self.next_ack_counter
        if c == U64_MAX:
            raise MqsealError("counterExhausted")
        old = self.state
        self.epoch, self.last_control_counter, self.next_ack_counter, self.state = state["epoch"], counter, c + 1, state
        self.next_seen = kept_switches(old, self.next_seen, state)
        body = encode_ack(self.member_id, state["epoch"])
        return c, body, seal(self.ack_key, CONTROL_SUITE, 0, c, None, self.ack_topic, body)

    def fields(self):
        return self.member_id, self.epoch, self.last_control_counter, self.next_ack_counter, self.next_seen, self.state

    def record(self):
        return encode_record(self.fields())

    def restore(self, record):
        """Validates a record (14.9) and takes it; anything invalid is `invalidSnapshot`."""
        try:
            fields = read_record(record)
        except MqsealError:
            raise MqsealError("invalidSnapshot")
        member_id, epoch, last, next_ack, next_seen, state = fields
        groups = 0 if state is None else len(state["groups"])
        if (member_id != self.member_id or next_seen >> groups
                or (state is None and (epoch != 0 or last is not None))
                or (state is not None and (state["epoch"] != epoch or state["member_id"] != member_id))):
            raise MqsealError("invalidSnapshot")
        _, self.epoch, self.last_control_counter, self.next_ack_counter, self.next_seen, self.state = fields


def kept_switches(old, next_seen, new):
    """14.7: a switch to a group's `seal_next` key is kept for the group of the same name in the new
    state (at its new index) when that group's `seal_next` is present and the same key id."""
    if old is None:
        return 0
    switched = {g["name"]: g["seal_next"] for i, g in enumerate(old["groups"]) if next_seen >> i & 1}
    return sum(1 << i for i, g in enumerate(new["groups"])
               if g["seal_next"] is not None and switched.get(g["name"]) == g["seal_next"])


def encode_record(fields):
    """14.9: magic, the postcard fields, SHA-256 of both."""
    member_id, epoch, last, next_ack, next_seen, state = fields
    body = (RECORD_MAGIC + enc_str(member_id) + varint(epoch) + enc_option(last, varint) + varint(next_ack)
            + bytes([next_seen]) + enc_option(state, encode_state))
    return body + hashlib.sha256(body).digest()


def read_record(record):
    """The fields of a record whose magic, checksum and canonical form are right, and whose state
    passes 14.6 steps 5 and 6."""
    if len(record) < len(RECORD_MAGIC) + 32 or not record.startswith(RECORD_MAGIC):
        raise MqsealError("invalidSnapshot")
    if hashlib.sha256(record[:-32]).digest() != record[-32:]:
        raise MqsealError("invalidSnapshot")
    r = Reader(record[len(RECORD_MAGIC):-32])
    fields = (r.str(), r.varint(64), r.option(lambda: r.varint(64)), r.varint(64), r.u8(),
              r.option(lambda: read_state(r)))
    r.end()
    if encode_record(fields) != record:
        raise MqsealError("invalidSnapshot")
    state = fields[5]
    if state is not None:
        if state["format"] != FORMAT:
            raise MqsealError("invalidSnapshot")
        check_state(state)
    return fields


# ---- the authority (14.5, and the ack check of 14.6) ----------------------------------------

class Authority:
    def __init__(self, secret, control_prefix=DEFAULT_CONTROL_PREFIX, ack_prefix=DEFAULT_ACK_PREFIX):
        self.secret, self.control_prefix, self.ack_prefix = secret, control_prefix, ack_prefix
        self.last_ack = {}

    def keys(self, member_public):
        """(key(A→M), key(M→A))."""
        return pairwise(self.secret, member_public, CONTROL_KEY_ID)

    def seal_state(self, member_public, counter, state):
        check_state(state)  # 14.5 rule 1
        body = encode_state(state)
        topic = f"{self.control_prefix}/{state['member_id']}"
        return body, seal(self.keys(member_public)[0], CONTROL_SUITE, 0, counter, None, topic, body)

    def open_ack(self, member_id, member_public, topic, env):
        counter, body = open_control_envelope(topic, f"{self.ack_prefix}/{member_id}", self.keys(member_public)[1],
                                              self.last_ack.get(member_id), env)
        ack = decode_body(body, read_ack, encode_ack_fields, ack_flagged)
        check_ack(ack)
        if ack["member_id"] != member_id:
            raise invalid("wrongMember")
        self.last_ack[member_id] = counter
        return ack


# ---- the vector runner ----------------------------------------------------------------------

def longest_bodies():
    """The longest control message and ack of 14.4: every field at its longest."""
    name = "n" * MAX_NAME_LEN
    key = dict(key_id=2**32 - 1, suite=1, secret="00" * 32, sender_id=2**32 - 1, activation=U64_MAX - 1,
               end_of_acceptance=U64_MAX)
    group = dict(name=name, seal_now=2**32 - 1, seal_next=2**32 - 1, keys=[key] * MAX_KEYS_PER_GROUP)
    state = dict(format=FORMAT, member_id=name, epoch=U64_MAX, groups=[group] * MAX_GROUPS)
    return len(encode_state(state)), len(encode_ack(name, U64_MAX))


def check_file(data):
    assert data["format"] == "mqseal-control-vectors" and data["version"] == 1, "format / version"
    assert data["limits"] == dict(max_groups=MAX_GROUPS, max_keys_per_group=MAX_KEYS_PER_GROUP,
                                  max_name_len=MAX_NAME_LEN), f"limits {data['limits']} differ from 14.4"
    assert longest_bodies() == (LONGEST_CONTROL_BODY, LONGEST_ACK_BODY), f"longest bodies {longest_bodies()}"
    a_secret, m_secret = x25519_secret(data["authority_secret"]), x25519_secret(data["member_secret"])
    a_public, m_public = x25519_public(data["authority_public"]), x25519_public(data["member_public"])
    assert PUBLIC_PREFIX + b64_encode(raw_public(a_secret)) == data["authority_public"], "authority public key"
    assert PUBLIC_PREFIX + b64_encode(raw_public(m_secret)) == data["member_public"], "member public key"
    member_id = data["member_id"]
    assert valid_name(member_id), "member id"
    assert data["control_topic"] == f"{DEFAULT_CONTROL_PREFIX}/{member_id}", "control topic"
    assert data["ack_topic"] == f"{DEFAULT_ACK_PREFIX}/{member_id}", "ack topic"
    authority = Authority(a_secret)
    a_send, a_recv = authority.keys(m_public)
    member = Member(member_id, m_secret, a_public)
    # Both directions, from both sides: the authority's send key is the member's receive key.
    assert a_send == member.control_key and a_recv == member.ack_key and a_send != a_recv, "pairwise directions"
    return authority, member, m_secret, a_public, m_public


def main(path):
    data = json.load(open(path))
    try:
        authority, member, m_secret, a_public, m_public = check_file(data)
    except (AssertionError, MqsealError) as e:
        print(f"FAIL {path}: {e!r}")
        return 1
    t = Tally("control reference")
    records = [member.record()]  # records[n]: the member after the first n positive vectors
    for v in data["positive"]:
        try:
            body, env = authority.seal_state(m_public, v["counter"], v["state"])
            assert body.hex() == v["body_hex"], "body differs"
            assert env.hex() == v["envelope_hex"], "sealed envelope differs"
            before = member.record()
            counter, state = member.accept(data["control_topic"], env)
            assert member.record() == before, "accepting changed the member"
            assert (counter, state) == (v["counter"], v["state"]), "opened state differs"
            ack_counter, ack_body, ack_env = member.handle(data["control_topic"], env)
            assert ack_counter == v["ack_counter"], "ack counter"
            assert ack_body.hex() == v["ack_body_hex"], "ack body differs"
            assert ack_env.hex() == v["ack_envelope_hex"], "ack envelope differs"
            ack = authority.open_ack(member.member_id, m_public, data["ack_topic"], ack_env)
            assert ack["epoch"] == v["state"]["epoch"], "acked epoch"
            record = member.record()
            assert record.hex() == v["member_state_hex"], "member-state record differs"
            restored = Member(data["member_id"], m_secret, a_public)
            restored.restore(bytes.fromhex(v["member_state_hex"]))
            assert restored.record() == record, "restored record differs"
            try:
                member.handle(data["control_topic"], env)
                raise AssertionError("applied twice")
            except MqsealError as e:
                assert e.code == "duplicate", f"again: {e}"
            records.append(record)
            t.passed()
        except Exception as e:  # report every vector, then fail
            t.fail(f"positive {v['name']}", repr(e))
            records.append(None)
            try:  # go on from the state the vector says, so that one broken vector fails alone
                member = Member(data["member_id"], m_secret, a_public)
                member.restore(bytes.fromhex(v["member_state_hex"]))
                authority.last_ack[member.member_id] = v["ack_counter"]
            except (MqsealError, ValueError):
                pass
    for v in data["negative"]:
        try:
            m = Member(data["member_id"], m_secret, a_public)
            assert records[v["after_positive"]] is not None, "the positive vector it follows failed"
            m.restore(records[v["after_positive"]])
            before = m.record()
            try:
                m.handle(v["topic"], bytes.fromhex(v["envelope_hex"]))
                raise AssertionError("accepted")
            except MqsealError as e:
                got = (e.code, e.reason)
            assert got == (v["error"], v["reason"]), f"got {got}, want {(v['error'], v['reason'])}"
            assert m.record() == before, "the member changed"
            t.passed()
        except Exception as e:
            t.fail(f"negative {v['name']}", repr(e))
    return t.report()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "core/tests/vectors/control-v1.json"))
