"""mqseal.Member, the key-distribution member agent (PROTOCOL.md section 14),
through the installed wheel with the control vectors
(core/tests/vectors/control-v1.json): every positive state gives the
vector record and ack, every negative case its error code and reason, and
the persist-before-ack contract of 14.8 (ack() before persisted() raises)."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

import pytest

import mqseal
from conftest import VECTOR_DIR

C = json.loads((VECTOR_DIR / "control-v1.json").read_text())
assert C["format"] == "mqseal-control-vectors"


def member(state: Optional[bytes] = None, member_id: str = C["member_id"]) -> mqseal.Member:
    return mqseal.Member(
        mqseal.StaticKeyPair.from_secret_text(C["member_secret"]),
        mqseal.PublicKey.from_text(C["authority_public"]),
        member_id,
        state,
    )


def after_positive(n: int) -> Optional[bytes]:
    return None if n == 0 else bytes.fromhex(C["positive"][n - 1]["member_state_hex"])


def test_topics_and_a_new_member() -> None:
    m = member()
    assert m.control_topic == C["control_topic"]
    assert m.ack_topic == C["ack_topic"]
    assert (m.epoch, m.groups) == (0, [])
    assert m.sealing("telemetry") is None
    assert m.keyring("telemetry") is None


def test_positive_states_in_order_give_the_vector_records_and_acks() -> None:
    m = member()
    for v in C["positive"]:
        staged = m.handle(C["control_topic"], bytes.fromhex(v["envelope_hex"]))
        assert staged.epoch == v["state"]["epoch"]
        assert staged.state.hex() == v["member_state_hex"]
        assert m.epoch != v["state"]["epoch"], "nothing in use before persisted()"
        with pytest.raises(mqseal.InvalidConfigError):
            m.ack()
        m.persisted()
        assert m.ack().hex() == v["ack_envelope_hex"], v["name"]
        with pytest.raises(mqseal.InvalidConfigError):
            m.ack()  # once
        assert m.epoch == v["state"]["epoch"]
        assert m.groups == [g["name"] for g in v["state"]["groups"]]
        assert m.encode_state().hex() == v["member_state_hex"]


@pytest.mark.parametrize("v", C["negative"], ids=lambda v: v["name"])
def test_negative_cases_are_refused_with_their_error(v: Dict[str, Any]) -> None:
    before = after_positive(v["after_positive"])
    m = member(before)
    epoch = m.epoch
    with pytest.raises(mqseal.Error) as e:
        m.handle(v["topic"], bytes.fromhex(v["envelope_hex"]))
    assert e.value.code == v["error"]
    if v.get("reason"):
        assert isinstance(e.value, mqseal.InvalidControlError)
        assert e.value.reason == v["reason"]
    if v["error"] == "staleEpoch":
        assert e.value.held == epoch
    assert m.epoch == epoch
    with pytest.raises(mqseal.InvalidConfigError):
        m.persisted()
    if before is not None:
        assert m.encode_state() == before


def test_discarded_state_spends_nothing() -> None:
    v = C["positive"][0]
    m = member()
    m.handle(C["control_topic"], bytes.fromhex(v["envelope_hex"]))
    m.discard()  # the write failed
    with pytest.raises(mqseal.InvalidConfigError):
        m.persisted()
    assert m.epoch == 0 and m.sealing("telemetry") is None
    m.handle(C["control_topic"], bytes.fromhex(v["envelope_hex"]))
    m.persisted()
    assert m.ack().hex() == v["ack_envelope_hex"]


def test_bad_or_foreign_records_are_invalid_snapshot() -> None:
    good = bytearray(after_positive(1) or b"")
    bad = bytes(good[:-1]) + bytes([good[-1] ^ 1])
    with pytest.raises(mqseal.InvalidSnapshotError):
        member(bad)
    with pytest.raises(mqseal.InvalidSnapshotError):
        member(bytes(good), member_id="sensor-8")
    assert member(bytes(good)).epoch == 1


def test_which_key_when_and_group_traffic() -> None:
    v = C["positive"][0]
    tele = v["state"]["groups"][0]
    k1, k2 = (mqseal.Key.from_bytes(k["key_id"], bytes.fromhex(k["secret"])) for k in tele["keys"])
    m = member()
    now = tele["keys"][0]["activation"] + 100
    staged = m.handle(C["control_topic"], bytes.fromhex(v["envelope_hex"]), now)
    assert staged.wake_at == tele["keys"][1]["activation"]
    m.persisted()
    s = m.sealing("telemetry", now)
    assert s is not None and (s.key_id, s.sender_id, s.suite) == (1, 17, "chacha20poly1305")
    c = m.sealing("commands", now)
    assert c is not None and (c.key_id, c.sender_id, c.suite) == (300, 1, "hmac-sha256")

    # Seal with the assignment; a peer with the group keys opens it.
    sealer = mqseal.Sealer.in_memory(s.key, s.sender_id, s.suite)
    peer = mqseal.Opener(mqseal.Keyring([k1, k2]), system_clock=False)
    opened = peer.open("plant/t", sealer.seal("plant/t", b"hello"))
    assert (opened.key_id, opened.sender_id) == (1, 17)

    # The member's keyring opens group traffic.
    ring = m.keyring("telemetry", now)
    assert ring is not None and sorted(ring.ids()) == [1, 2] and ring.primary_id == 1
    device = mqseal.Sealer.in_memory(k2, 50)
    assert mqseal.Opener(ring, system_clock=False).open("plant/t", device.seal("plant/t", b"x")).payload == b"x"

    # Scheduled switch, then the end of key 1.
    at = tele["keys"][1]["activation"]
    assert m.tick(at) == (True, tele["keys"][0]["end_of_acceptance"])
    s2 = m.sealing("telemetry", at)
    assert s2 is not None and (s2.key_id, s2.sender_id) == (2, 4)
    end = tele["keys"][0]["end_of_acceptance"]
    ring2 = m.keyring("telemetry", end)
    assert ring2 is not None and ring2.ids() == [2]


def test_no_clock_switches_on_first_sight_of_the_next_key() -> None:
    v = C["positive"][0]
    m = member()
    m.handle(C["control_topic"], bytes.fromhex(v["envelope_hex"]))
    m.persisted()
    before = m.encode_state()
    s = m.sealing("telemetry")
    assert s is not None and s.key_id == 1
    assert m.key_seen("telemetry", 2) is True
    s2 = m.sealing("telemetry")
    assert s2 is not None and s2.key_id == 2
    assert m.encode_state() != before, "persist encode_state() before sealing with it"
    assert member(m.encode_state()).sealing("telemetry").key_id == 2  # type: ignore[union-attr]
