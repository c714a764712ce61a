"""A real Mosquitto for the tests: started on free loopback ports with its own
config (TCP, WebSocket, TLS with username/password), killed by its pid."""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

USER, PASSWORD = "sensor", "s3cret-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tool(name: str) -> str:
    for d in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"):
        if os.access(os.path.join(d, name), os.X_OK):
            return os.path.join(d, name)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found (scripts/test-parts/25-python.sh installs it)")
    return found


def _write_certs(d: Path) -> "tuple[Path, Path, Path]":
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mqseal test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=7))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = (d / "ca.pem", d / "server.pem", d / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@dataclass
class Mosquitto:
    dir: Path
    tcp: int = 0
    ws: int = 0
    tls: int = 0
    proc: Optional["subprocess.Popen[bytes]"] = None

    @property
    def ca_file(self) -> Path:
        return self.dir / "ca.pem"

    def log(self) -> str:
        p = self.dir / "mosquitto.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def start(self) -> "Mosquitto":
        ca, cert, key = _write_certs(self.dir)
        passwd = self.dir / "passwd"
        subprocess.run([_tool("mosquitto_passwd"), "-b", "-c", str(passwd), USER, PASSWORD], check=True,
                       capture_output=True)
        os.chmod(passwd, 0o600)
        for _attempt in range(5):
            self.tcp, self.ws, self.tls = free_port(), free_port(), free_port()
            d = self.dir
            (d / "mosquitto.conf").write_text(
                "# written by the mqseal Python tests\n"
                f"{'user root' if os.geteuid() == 0 else ''}\n"
                "per_listener_settings true\n"
                "persistence false\n"
                f"log_dest file {d}/mosquitto.log\n"
                "log_type error\nlog_type warning\nlog_type notice\n"
                f"listener {self.tcp} 127.0.0.1\nprotocol mqtt\nallow_anonymous true\n"
                f"listener {self.ws} 127.0.0.1\nprotocol websockets\n"
                # Without a socket_domain Mosquitto 2.0 does not hand the
                # address to libwebsockets: it would listen on every interface.
                "socket_domain ipv4\nallow_anonymous true\n"
                f"listener {self.tls} 127.0.0.1\nprotocol mqtt\nallow_anonymous false\n"
                f"password_file {passwd}\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
            )
            self.proc = subprocess.Popen([_tool("mosquitto"), "-c", str(d / "mosquitto.conf")],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._wait([self.tcp, self.ws, self.tls]):
                return self
            self.stop()
        raise RuntimeError("mosquitto did not start:\n" + self.log())

    def _wait(self, ports: List[int]) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            ok = True
            for p in ports:
                try:
                    socket.create_connection(("127.0.0.1", p), timeout=0.5).close()
                except OSError:
                    ok = False
            if ok:
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        self.proc = None


def stop_process(p: "subprocess.Popen[Any]") -> None:
    """Terminates a child the tests started (by its handle), killing it if
    it does not exit within 5 s."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def start() -> Mosquitto:
    return Mosquitto(Path(tempfile.mkdtemp(prefix="mqseal-py-mosquitto-"))).start()
