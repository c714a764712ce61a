"""The README's Python example and examples/python/*.py, run as real processes
against the installed wheel, sealing to and from the Rust CLI through a real
Mosquitto (TCP, and TLS with username/password for paho_tls.py)."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, List, Optional


import broker
from clients import tap
from conftest import REPO

EXAMPLES = REPO / "examples" / "python"


class Proc:
    """A child process whose stdout and stderr lines are collected by threads,
    so a test can wait for a line without blocking on a pipe."""

    def __init__(self, args: List[str], cwd: Optional[Path] = None, env: Optional[dict] = None) -> None:
        self.args = args
        self.p = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.out: List[str] = []
        self.err: List[str] = []
        self._lines: "queue.Queue[str]" = queue.Queue()
        assert self.p.stdout is not None and self.p.stderr is not None
        self._threads = [threading.Thread(target=self._read, args=(s, into), daemon=True)
                         for s, into in ((self.p.stdout, self.out), (self.p.stderr, self.err))]
        for t in self._threads:
            t.start()

    def _read(self, stream: IO[str], into: List[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))
            self._lines.put(line)

    def wait_line(self, pattern: str, timeout: float = 30) -> str:
        """The first line (stdout or stderr, seen so far or to come) matching `pattern`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.out + self.err:
                if rx.search(line):
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r} from {self.args[:3]}: {self.report()}")
            try:
                self._lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.p.poll() is not None and all(not t.is_alive() for t in self._threads):
                    for line in self.out + self.err:
                        if rx.search(line):
                            return line
                    raise AssertionError(f"{self.args[:3]} exited ({self.p.returncode}) without "
                                         f"{pattern!r}: {self.report()}")

    def finish(self, timeout: float = 30) -> int:
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.args[:3]} still running after {timeout} s: {self.report()}") from None
        for t in self._threads:
            t.join(timeout=5)
        return rc

    def stop(self) -> None:
        broker.stop_process(self.p)
        for t in self._threads:
            t.join(timeout=5)

    def report(self) -> str:
        return "\nstdout:\n" + "\n".join(self.out) + "\nstderr:\n" + "\n".join(self.err)


def keygen(cli: str, d: Path, key_id: int, sender_id: Optional[int] = None, counter: Optional[str] = None) -> Path:
    """`mqseal keygen group` into d/group.key, with the counter file of one
    sender if given."""
    key = d / "group.key"
    extra = [] if sender_id is None else ["--sender-id", str(sender_id), "--counter-file", str(d / str(counter))]
    subprocess.run([cli, "keygen", "group", "--id", str(key_id), "-o", str(key), *extra], check=True,
                   capture_output=True)
    return key


def cli_sub(cli: str, conn: List[str], topic: str, key: Path) -> Proc:
    """`mqseal sub` for one verified message; returns once it is subscribed."""
    sub = Proc([cli, "sub", "-d", *conn, "-t", topic, "-q", "1", "-C", "1", "-W", "60", "-F", "%S %p",
                "--key-file", str(key)])
    sub.wait_line("SubAck")
    return sub


def cli_pub(cli: str, conn: List[str], topic: str, message: str, key: Path, sender_id: int, counter: Path,
            *extra: str) -> None:
    new = [] if counter.exists() else ["--new-counter-file"]
    pub = subprocess.run([cli, "pub", *conn, "-t", topic, "-q", "1", "-m", message, "--sender-id", str(sender_id),
                          "--counter-file", str(counter), *new, "--key-file", str(key), *extra],
                         capture_output=True, text=True, timeout=60)
    assert pub.returncode == 0, pub.stderr


def tcp(m: Any) -> List[str]:
    return ["-h", "127.0.0.1", "-p", str(m.tcp)]


def readme_python_example() -> str:
    """The ```python block of the README's Python section, as written."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python services", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"^```python\n(.*?)^```", section, re.S | re.M)
    assert found, "README.md's Python section has no ```python block"
    return found.group(1)


def test_readme_example_against_the_cli(mosquitto: Any, cli: str, tmp_path: Path) -> None:
    code = readme_python_example()
    assert len(code.splitlines()) <= 12, code
    # The one change: the example's broker address becomes the test broker's
    # port (a free one, never 1883). Everything else runs as printed.
    address = '"127.0.0.1", 1883'
    assert code.count(address) == 1, code
    code = code.replace(address, f'"127.0.0.1", {mosquitto.tcp}')
    # As the README says: the counter file is made once, by `mqseal keygen`.
    key = keygen(cli, tmp_path, 7, 900, "service.counter")

    # Python -> CLI: the command the example publishes once connected.
    sub = cli_sub(cli, tcp(mosquitto), "cmd/dev1", key)
    example = Proc([sys.executable, "-u", "-c", code], cwd=tmp_path)
    try:
        assert sub.finish(60) == 0, sub.report()
        assert sub.out == ["900 on"], sub.report()
        # CLI -> Python: telemetry the example verifies and prints. It
        # subscribes when connected; publish until it has printed one.
        counter = tmp_path / "cli.counter"
        deadline = time.monotonic() + 30
        while not any("telemetry/dev2" in line for line in example.out) and time.monotonic() < deadline:
            assert example.p.poll() is None, example.report()
            cli_pub(cli, tcp(mosquitto), "telemetry/dev2", "21.5", key, 5, counter)
            time.sleep(0.2)
        assert example.wait_line(r"^telemetry/dev2 b'21\.5'$", 5)
        assert not example.err, example.report()
    finally:
        example.stop()
        sub.stop()


def test_paho_tls_example(cli: str, tmp_path: Path) -> None:
    m = broker.start()
    try:
        key = keygen(cli, tmp_path, 3)
        tls = ["-h", "localhost", "-p", str(m.tls), "--cafile", str(m.ca_file), "-u", broker.USER, "-P",
               broker.PASSWORD]
        topic = "factory/line1/temp"
        sub = cli_sub(cli, tls, topic, key)
        env = dict(os.environ, MQTT_PASSWORD=broker.PASSWORD)
        example = Proc([sys.executable, "-u", str(EXAMPLES / "paho_tls.py"), "--host", "localhost", "--port",
                        str(m.tls), "--cafile", str(m.ca_file), "--username", broker.USER, "--key-file", str(key),
                        "--sender-id", "5", "--counter-file", str(tmp_path / "sensor.counter"),
                        "--new-counter-file", "--topic", topic, "--message", "21.5", "--count", "2"], env=env)
        try:
            # The example publishes its reading once subscribed; the CLI
            # verifies it, and the example verifies its own echo.
            assert sub.finish(60) == 0, sub.report()
            assert sub.out == ["5 21.5"], sub.report()
            example.wait_line(r"^verified from sender 5 \(counter \d+\): 21\.5$")
            # The CLI's reading over the same TLS listener, verified by the example.
            cli_pub(cli, tls, topic, "22.0", key, 77, tmp_path / "cli.counter")
            assert example.finish(30) == 0, example.report()
            assert re.fullmatch(r"verified from sender 77 \(counter \d+\): 22\.0", example.out[-1]), example.report()
        finally:
            example.stop()
            sub.stop()
        # The listener is the one the tutorial describes: no password, no connection.
        bad = subprocess.run([sys.executable, "-u", str(EXAMPLES / "paho_tls.py"), "--host", "localhost", "--port",
                              str(m.tls), "--cafile", str(m.ca_file), "--username", broker.USER, "--password",
                              "wrong", "--key-file", str(key), "--sender-id", "5", "--counter-file",
                              str(tmp_path / "sensor.counter")], capture_output=True, text=True, timeout=60)
        assert bad.returncode != 0 and "verified" not in bad.stdout, bad
    finally:
        m.stop()


def test_aiomqtt_service_example(mosquitto: Any, cli: str, tmp_path: Path) -> None:
    key = keygen(cli, tmp_path, 9)
    service_args = [sys.executable, "-u", str(EXAMPLES / "aiomqtt_service.py"), "--host", "127.0.0.1", "--port",
                    str(mosquitto.tcp), "--key-file", str(key), "--sender-id", "900", "--counter-file",
                    str(tmp_path / "service.counter"), "--replay-state", str(tmp_path / "service.replay"),
                    "--count", "1"]
    counter = tmp_path / "dev7.counter"
    # A plain MQTT client that records the envelopes on the wire, to replay one.
    with tap(mosquitto, "telemetry/dev7/up") as (wiretap, wire):
        service = Proc([*service_args, "--new-counter-file"])
        sub = cli_sub(cli, tcp(mosquitto), "cmd/dev7", key)
        try:
            service.wait_line("^ready$")
            cli_pub(cli, tcp(mosquitto), "telemetry/dev7/up", "21.5", key, 7, counter, "--timestamps")
            assert service.finish(30) == 0, service.report()
            first = re.fullmatch(r"dev7 \(sender 7, counter (\d+)\): 21\.5", service.out[-1])
            assert first, service.report()
            assert sub.finish(30) == 0, sub.report()
            assert sub.out == [f"900 ack {first[1]}: 21.5"], sub.report()
        finally:
            service.stop()
            sub.stop()
        envelope = wire.get(timeout=10)

        # Restarted on its counter file and saved replay state: the old
        # envelope sent again is rejected, the next reading is answered with
        # a command under a fresh counter.
        service = Proc(service_args)
        sub = cli_sub(cli, tcp(mosquitto), "cmd/dev7", key)
        try:
            service.wait_line("^ready$")
            wiretap.publish("telemetry/dev7/up", envelope, qos=1).wait_for_publish(5)
            service.wait_line(r"^rejected on telemetry/dev7/up: duplicate$")
            cli_pub(cli, tcp(mosquitto), "telemetry/dev7/up", "21.7", key, 7, counter, "--timestamps")
            assert service.finish(30) == 0, service.report()
            second = re.fullmatch(r"dev7 \(sender 7, counter (\d+)\): 21\.7", service.out[-1])
            assert second and int(second[1]) > int(first[1]), service.report()
            assert sub.finish(30) == 0, sub.report()
            assert sub.out == [f"900 ack {second[1]}: 21.7"], sub.report()
        finally:
            service.stop()
            sub.stop()
