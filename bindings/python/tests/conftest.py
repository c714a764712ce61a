"""Shared fixtures: the repository's vector files and the installed package check."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List

import pytest

REPO = Path(__file__).resolve().parents[3]
VECTOR_DIR = REPO / "core" / "tests" / "vectors"


def vector_files() -> List[Path]:
    """The envelope vector files (format `mqseal-test-vectors`). The
    key-distribution vectors (`mqseal-control-vectors`, PROTOCOL.md section
    14) are run by test_member.py."""
    files = [
        f
        for f in sorted(VECTOR_DIR.glob("*.json"))
        if json.loads(f.read_text()).get("format") == "mqseal-test-vectors"
    ]
    assert files, f"no vector files in {VECTOR_DIR}"
    return files


def load_vectors() -> Dict[str, List[Dict[str, Any]]]:
    """Every list of every vector file, concatenated by section."""
    out: Dict[str, List[Dict[str, Any]]] = {}
    for f in vector_files():
        data = json.loads(f.read_text())
        for section in ("positive", "negative", "keys", "pairwise", "sequences"):
            out.setdefault(section, []).extend(data.get(section, []))
    return out


@pytest.fixture(scope="session")
def vectors() -> Dict[str, List[Dict[str, Any]]]:
    return load_vectors()


def pytest_report_header() -> str:
    import mqseal

    return f"mqseal {mqseal.__version__} from {os.path.dirname(mqseal.__file__)}"


@pytest.fixture(scope="session")
def mosquitto():  # type: ignore[no-untyped-def]
    import shutil

    import broker

    m = broker.start()
    yield m
    m.stop()
    shutil.rmtree(m.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def cli() -> str:
    path = os.environ.get("MQSEAL_CLI") or str(REPO / "target" / "debug" / "mqseal")
    assert os.access(path, os.X_OK), f"the mqseal CLI is not built at {path} (set MQSEAL_CLI)"
    return path
