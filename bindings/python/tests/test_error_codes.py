"""Every core error code (``Error::code`` in core/src/error.rs) has its
Python error class, and every class names a core code."""

from __future__ import annotations

import re

import mqseal
from conftest import REPO


def test_every_core_code_has_a_class() -> None:
    rust = (REPO / "core" / "src" / "error.rs").read_text(encoding="utf-8")
    core = set(re.findall(r'^\s*Error::[A-Za-z]+.*=> "([a-zA-Z]+)",$', rust, re.M))
    assert len(core) >= 38
    assert core == set(mqseal.BY_CODE), core ^ set(mqseal.BY_CODE)
    assert mqseal.BY_CODE["staleEpoch"] is mqseal.StaleEpochError
    assert mqseal.BY_CODE["invalidControl"] is mqseal.InvalidControlError
