"""Seal+open per second from Python, in one run: the `mqseal` package (the
installed wheel), the `cryptography` package's ChaCha20Poly1305
encrypt+decrypt (what a Python user would use instead), and native Rust
mqseal (benches/examples/seal_open_rate.rs) on the same sizes.

    bash scripts/test-parts/25-python.sh         # once: the venv and the wheel
    cargo build --release -p mqseal-benches --example seal_open_rate
    target/python-venv/bin/python benches/python/bench.py [--seconds 1] [--rounds 3]

Each round measures every row once, rows interleaved, so a busy machine
slows all of them alike; the table gives the best round of each row. Ratios
are cryptography / mqseal (1.0: as fast; below 1: mqseal slower) and native
/ Python mqseal. Every opened payload is checked against what was sealed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

import mqseal

SIZES = [64, 1024, 16384]
TOPIC = "factory/line1/press7/tel"  # as in the native benches
KEY_BYTES = bytes([0x42]) * 32
REPO = Path(__file__).resolve().parents[2]


def payload(n: int) -> bytes:
    return bytes(((i * 31) ^ 0x5A) & 0xFF for i in range(n))


def timed(step: Callable[[], None], seconds: float) -> float:
    """Calls of `step` per second over about `seconds` (batches of 256)."""
    start = time.perf_counter()
    ops = 0
    while True:
        for _ in range(256):
            step()
        ops += 256
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return ops / elapsed


def mqseal_rate(size: int, seconds: float) -> float:
    key = mqseal.Key.from_bytes(1, KEY_BYTES)
    sealer = mqseal.Sealer.in_memory(key, 7)
    opener = mqseal.Opener(mqseal.Keyring([key]))
    msg = payload(size)
    seal, open_ = sealer.seal, opener.open

    def step() -> None:
        if open_(TOPIC, seal(TOPIC, msg)).payload != msg:
            raise AssertionError("mqseal: opened payload differs")

    return timed(step, seconds)


def cryptography_rate(size: int, seconds: float) -> float:
    """A fresh 12-byte nonce from a counter, the topic as associated data:
    the least a user must add to ChaCha20Poly1305 to bind a topic and never
    repeat a nonce (no header, replay window or counter file)."""
    aead = ChaCha20Poly1305(KEY_BYTES)
    msg = payload(size)
    aad = TOPIC.encode()
    counter = [0]
    encrypt, decrypt = aead.encrypt, aead.decrypt

    def step() -> None:
        counter[0] += 1
        nonce = counter[0].to_bytes(12, "little")
        if decrypt(nonce, encrypt(nonce, msg, aad), aad) != msg:
            raise AssertionError("cryptography: decrypted payload differs")

    return timed(step, seconds)


def native_rates(binary: Path, seconds: float) -> Dict[int, float]:
    out = subprocess.run([str(binary), str(seconds), *map(str, SIZES)], check=True, capture_output=True,
                         text=True).stdout
    rates = {}
    for line in out.splitlines():
        size, ops = line.split()
        rates[int(size)] = float(ops)
    return rates


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=1.0, help="per row and round")
    p.add_argument("--rounds", type=int, default=3)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    p.add_argument("--native", type=Path, default=target / "release" / "examples" / "seal_open_rate",
                   help="the seal_open_rate binary (cargo build --release -p mqseal-benches --example "
                        "seal_open_rate)")
    args = p.parse_args()
    if not os.access(args.native, os.X_OK):
        print(f"{args.native} is not built: cargo build --release -p mqseal-benches --example seal_open_rate",
              file=sys.stderr)
        return 2
    best: Dict[str, Dict[int, float]] = {"mqseal": {}, "cryptography": {}, "native": {}}
    for r in range(args.rounds):
        for size in SIZES:
            for name, fn in (("mqseal", mqseal_rate), ("cryptography", cryptography_rate)):
                best[name][size] = max(best[name].get(size, 0.0), fn(size, args.seconds))
        for size, ops in native_rates(args.native, args.seconds).items():
            best["native"][size] = max(best["native"].get(size, 0.0), ops)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    import cryptography

    print(f"Python {sys.version.split()[0]}, mqseal {mqseal.__version__}, cryptography {cryptography.__version__}; "
          f"best of {args.rounds} rounds of {args.seconds} s per row")
    print()
    print("| payload | Python mqseal ops/s | cryptography ChaCha20Poly1305 ops/s | cryptography / mqseal | "
          "native mqseal ops/s | native / Python mqseal |")
    print("|---:|---:|---:|---:|---:|---:|")
    rows: List[str] = []
    for size in SIZES:
        m, c, n = best["mqseal"][size], best["cryptography"][size], best["native"][size]
        rows.append(f"| {size} B | {m:.0f} | {c:.0f} | {c / m:.2f} | {n:.0f} | {n / m:.2f} |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
