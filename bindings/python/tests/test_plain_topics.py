"""The plain-topic allowlist is the core's rule (mqseal::PlainTopics)."""

import pytest

import mqseal
from mqseal._adapter import Protection, topic_matches
from mqseal._mqseal import PlainTopics


def test_sealed_unless_allowlisted_by_the_core_rule() -> None:
    plain = PlainTopics(["$SYS/#", "status/+"])
    assert plain.filters == ["$SYS/#", "status/+"]
    assert plain.allows("$SYS/broker/uptime")
    assert plain.allows("status/dev1")
    assert not plain.allows("status/dev1/cmd")
    assert not plain.allows("plant/cmd")
    assert not PlainTopics(["#"]).allows("$SYS/broker/uptime")
    assert not PlainTopics([]).allows("a")
    assert topic_matches("a/#", "a")
    assert not topic_matches("+/x", "$SYS/x")


@pytest.mark.parametrize("bad", ["", "a/#/b", "a+", "a\0b"])
def test_a_bad_filter_is_the_core_invalid_filter_error(bad: str) -> None:
    with pytest.raises(mqseal.InvalidFilterError) as e:
        PlainTopics(["ok/#", bad])
    assert e.value.code == "invalidFilter"
    with pytest.raises(mqseal.InvalidFilterError) as e:
        Protection.build(None, None, [bad])
    assert e.value.code == "invalidFilter"


def test_protection_uses_the_allowlist() -> None:
    protection = Protection.build(None, None, ["status/#"])
    message, rejected = protection.receive("status/a/b", b"online", 0, False)
    assert rejected is None and message is not None and not message.sealed
    protection.check_plain("status")
    with pytest.raises(ValueError):
        protection.check_plain("plant/cmd")
    with pytest.raises(TypeError):
        Protection.build(None, None, "status/#")
