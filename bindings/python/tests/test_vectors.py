"""The shared vector files (core/tests/vectors/*.json), through the installed wheel."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest

import mqseal
from conftest import load_vectors

V = load_vectors()


def _opt(v: Dict[str, Any], field: str) -> Optional[int]:
    value = v.get(field)
    return None if value is None else int(value)


@pytest.mark.parametrize("v", V["positive"], ids=lambda v: v["name"])
def test_positive_seals_byte_identically_and_opens(v: Dict[str, Any]) -> None:
    key = mqseal.Key.from_text(v["sender_key"])
    if v["pairwise"] is not None:
        pw = v["pairwise"]
        sender = mqseal.StaticKeyPair.from_secret_text(pw["sender_secret"])
        receiver = mqseal.StaticKeyPair.from_secret_text(pw["receiver_secret"])
        assert sender.pairwise(receiver.public_key, pw["key_id"]).send.to_text() == v["sender_key"]
        assert receiver.pairwise(sender.public_key, pw["key_id"]).recv.to_text() == v["open_key"]
    plaintext = bytes.fromhex(v["plaintext_hex"])
    expected = bytes.fromhex(v["envelope_hex"])
    counter = int(v["counter_dec"])
    sealer = mqseal.Sealer.in_memory(key, v["sender_id"], v["suite"], first_counter=counter)
    timestamp = None if v["timestamp_dec"] is None else int(v["timestamp_dec"])
    assert sealer.seal(v["topic"], plaintext, timestamp=timestamp).hex() == expected.hex()

    opener = mqseal.Opener(mqseal.Keyring([mqseal.Key.from_text(v["open_key"])]), system_clock=False)
    opened = opener.open(v["topic"], expected)
    assert opened.payload == plaintext
    assert opened.counter == counter
    assert opened.sender_id == v["sender_id"]
    assert opened.key_id == key.id
    assert opened.timestamp == timestamp
    assert opened.suite == v["suite"]
    # The same envelope again is a duplicate.
    with pytest.raises(mqseal.DuplicateError):
        opener.open(v["topic"], expected)


def _opener(v: Dict[str, Any]) -> mqseal.Opener:
    return mqseal.Opener(
        mqseal.Keyring([mqseal.Key.from_text(v["open_key"])]),
        window=v["window"],
        max_age=_opt(v, "max_age_dec"),
        max_skew=_opt(v, "max_skew_dec"),
        require_timestamp=v["require_timestamp"],
        suites=v["suites"],
        eviction=v["eviction"],
        max_senders=v["senders"] if v["senders"] is not None else mqseal.DEFAULT_MAX_SENDERS,
        system_clock=False,
    )


@pytest.mark.parametrize("v", V["negative"], ids=lambda v: v["name"])
def test_negative_gives_its_code(v: Dict[str, Any]) -> None:
    try:
        opener = _opener(v)
    except mqseal.Error as e:
        assert e.code == v["error"], "configuration"
        assert isinstance(e, mqseal.BY_CODE[v["error"]])
        return
    rewrite = None if v["rewrite"] is None else (v["rewrite"]["received"], v["rewrite"]["sealed"])
    now = _opt(v, "now_dec")
    for pre in v["preopen"]:
        opener.open(v["topic"], bytes.fromhex(pre), now=now, rewrite=rewrite)
    with pytest.raises(mqseal.Error) as info:
        opener.open(v["topic"], bytes.fromhex(v["envelope_hex"]), now=now, rewrite=rewrite)
    assert info.value.code == v["error"]
    assert type(info.value) is mqseal.BY_CODE[v["error"]]


def test_every_receiver_code_is_covered() -> None:
    codes = {v["error"] for v in V["negative"]}
    for code in [
        "truncated", "unsupportedVersion", "unknownSuite", "badVarint", "unknownFlags", "auth",
        "unknownKey", "duplicate", "replay", "expired", "fromFuture", "timestampRequired",
        "clockRequired", "suiteNotAllowed", "tooManySenders", "topicNotRewritable",
        "topicTooLong", "invalidTopic", "invalidConfig",
    ]:
        assert code in codes, code
        assert code in mqseal.BY_CODE, code


@pytest.mark.parametrize("v", V["keys"], ids=lambda v: v["name"])
def test_key_texts(v: Dict[str, Any]) -> None:
    kind = v["kind"]
    try:
        if kind == "key":
            key = mqseal.Key.from_text(v["text"])
            assert key.id == v["key_id"]
            canonical = key.to_text()
            assert mqseal.Key.from_bytes(key.id, bytes.fromhex(v["bytes_hex"])).to_text() == canonical
            public: Optional[str] = None
        elif kind == "x25519-secret":
            pair = mqseal.StaticKeyPair.from_secret_text(v["text"])
            canonical = pair.secret_text()
            assert mqseal.StaticKeyPair.from_secret_bytes(bytes.fromhex(v["bytes_hex"])).secret_text() == canonical
            public = pair.public_key.to_text()
        else:
            assert kind == "x25519-public", kind
            canonical = mqseal.PublicKey.from_text(v["text"]).to_text()
            public = None
    except mqseal.Error as e:
        assert v["error"] is not None, f"unexpected {e.code}: {e}"
        assert e.code == v["error"]
        return
    assert v["error"] is None, "accepted an invalid text"
    assert canonical == v["canonical_text"]
    assert public == v["public_text"]


@pytest.mark.parametrize("v", V["pairwise"], ids=lambda v: v["name"])
def test_pairwise_derivations(v: Dict[str, Any]) -> None:
    own = mqseal.StaticKeyPair.from_secret_text(v["secret"])
    peer = mqseal.PublicKey.from_text(v["peer_public"])
    if v["error"] is not None:
        with pytest.raises(mqseal.Error) as info:
            own.pairwise(peer, v["key_id"])
        assert info.value.code == v["error"]
        return
    keys = own.pairwise(peer, v["key_id"])
    assert keys.send.to_text() == v["send_key"]
    assert keys.recv.to_text() == v["recv_key"]


@pytest.mark.parametrize("v", V["sequences"], ids=lambda v: v["name"])
def test_sequence_opens_as_stated(v: Dict[str, Any]) -> None:
    """The gap cases: one receiver, envelopes in order, each with its result."""
    def opener() -> mqseal.Opener:
        return mqseal.Opener(
            mqseal.Keyring([mqseal.Key.from_text(v["open_key"])]),
            window=v["window"],
            gaps=v["gaps"],
            max_age=_opt(v, "max_age_dec"),
            max_skew=_opt(v, "max_skew_dec"),
            system_clock=False,
        )
    if v["config_error"] is not None:
        with pytest.raises(mqseal.Error) as info:
            opener()
        assert info.value.code == v["config_error"]
        return
    o = opener()
    for i, step in enumerate(v["steps"]):
        now = _opt(step, "now_dec")
        if step["expect"] is None:
            assert o.open(v["topic"], bytes.fromhex(step["envelope_hex"]), now=now).counter == int(step["counter_dec"])
        else:
            with pytest.raises(mqseal.Error) as info:
                o.open(v["topic"], bytes.fromhex(step["envelope_hex"]), now=now)
            assert info.value.code == step["expect"], f"step {i}"


def test_vector_counts() -> None:
    counts: List[int] = [len(V[s]) for s in ("positive", "negative", "keys", "pairwise", "sequences")]
    assert counts[0] >= 26 and counts[1] >= 113 and counts[2] >= 60 and counts[3] >= 8 and counts[4] >= 9, counts
