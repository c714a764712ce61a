//! A real Mosquitto (Debian's `mosquitto`) on free loopback ports, with its
//! own config, persistence and TLS certificates in a temp dir; stopped on
//! drop.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::server::{self, Server};
use crate::{free_port, tool};

/// A running Mosquitto; killed on drop.
pub struct Mosquitto {
    child: Option<Child>,
    /// Its config, persistence database, log and certificates.
    pub dir: tempfile::TempDir,
    conf: PathBuf,
    /// Plain MQTT.
    pub tcp: u16,
    /// MQTT over WebSocket.
    pub ws: u16,
    /// MQTT over TLS.
    pub tls: u16,
    /// WebSocket over TLS (same certificate).
    pub wss: u16,
    /// PEM of the CA that signed the broker's certificate (SAN 127.0.0.1, localhost).
    pub ca_file: PathBuf,
    /// The broker's certificate and key.
    cert: PathBuf,
    key: PathBuf,
    /// The persistence lines of its config.
    autosave: String,
}

fn write_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "mqseal test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let srv_key = KeyPair::generate().unwrap();
    let mut srv_params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    srv_params.distinguished_name.push(DnType::CommonName, "localhost");
    let srv_cert = srv_params.signed_by(&srv_key, &issuer).unwrap();
    let (ca, cert, key) = (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"));
    fs::write(&ca, ca_cert.pem()).unwrap();
    fs::write(&cert, srv_cert.pem()).unwrap();
    fs::write(&key, srv_key.serialize_pem()).unwrap();
    (ca, cert, key)
}

/// Starts `bin` with `args` (no stdio) and waits up to 10 s until it listens
/// on every port of `ports`; None (the process killed) when it exited first
/// or did not get there.
pub(crate) fn spawn_listening(bin: &str, args: &[&std::ffi::OsStr], ports: &[u16]) -> Option<Child> {
    let mut child = Command::new(tool(bin))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        if ports.iter().all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok()) {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn is_loopback_hex(hex: &str) -> bool {
    // /proc/net/tcp{,6}: the address as 32-bit words in host (little-endian) order.
    match hex.len() {
        8 => hex.get(6..8) == Some("7F"),
        32 => {
            hex == "00000000000000000000000001000000" // ::1
                || (hex.starts_with("0000000000000000FFFF0000") && hex.get(30..32) == Some("7F"))
            // ::ffff:127.x
        }
        _ => false,
    }
}

/// The listening TCP sockets of process `pid` as (hex address, port,
/// loopback?), from its socket inodes (/proc/PID/fd) and /proc/PID/net/tcp{,6}.
pub fn listening_sockets(pid: u32) -> Vec<(String, u16, bool)> {
    let inodes: std::collections::HashSet<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let mut out = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // f[3] == "0A": LISTEN; f[9]: the socket's inode.
            if f.len() < 10 || f[3] != "0A" || !inodes.contains(f[9]) {
                continue;
            }
            let (hex, port) = f[1].split_once(':').unwrap();
            out.push((hex.to_owned(), u16::from_str_radix(port, 16).unwrap(), is_loopback_hex(hex)));
        }
    }
    out
}

/// Panics unless process `pid` has at least `min` listening TCP sockets and
/// every one is bound to loopback: a test broker never listens beyond it.
pub fn assert_loopback_listeners(pid: u32, min: usize) {
    let socks = listening_sockets(pid);
    let bad: Vec<_> = socks.iter().filter(|s| !s.2).collect();
    assert!(bad.is_empty(), "the test broker (pid {pid}) listens beyond loopback: {bad:?}");
    assert!(
        socks.len() >= min,
        "the test broker (pid {pid}) has {} listening sockets, expected at least {min}",
        socks.len()
    );
}

impl Mosquitto {
    /// Starts mosquitto with TCP, WebSocket and TLS listeners on free
    /// loopback ports, persistence on (saved when it stops).
    pub fn start() -> Mosquitto {
        Mosquitto::start_with("autosave_interval 0\n")
    }

    /// As [`Mosquitto::start`], but the database is also saved after every
    /// change (`autosave_on_changes true`, `autosave_interval 1`: one
    /// queued message, subscription or retained message is enough), so a
    /// SIGKILL ([`Mosquitto::kill`]) loses at most what arrived in the
    /// broker's last loop iteration.
    pub fn start_durable() -> Mosquitto {
        Mosquitto::start_with("autosave_on_changes true\nautosave_interval 1\n")
    }

    fn start_with(autosave: &str) -> Mosquitto {
        Mosquitto::start_in_temp_dir("mosquitto.conf", |dir, conf| {
            let (ca_file, cert, key) = write_certs(dir.path());
            let autosave = autosave.to_owned();
            Mosquitto { child: None, conf, tcp: 0, ws: 0, tls: 0, wss: 0, ca_file, cert, key, autosave, dir }
        })
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// Stops mosquitto gracefully (SIGTERM: it saves its persistence
    /// database) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills mosquitto with SIGKILL (no save on the way out) and waits for it.
    pub fn kill(&mut self) {
        server::kill(&mut self.child);
    }

    /// Starts it again with the same config, ports and persistence.
    pub fn restart_stopped(&mut self) {
        self.restart_on_same_ports(50);
    }

    /// `mosquitto_pub` against the TCP listener with extra arguments.
    pub fn mosquitto_pub(&self, args: &[&str]) {
        let out = Command::new(tool("mosquitto_pub"))
            .args(["-h", "127.0.0.1", "-p", &self.tcp.to_string()])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "mosquitto_pub {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Publishes `payload` (raw bytes, e.g. an envelope the test sealed
    /// itself) retained at QoS 1 on `topic` with `mosquitto_pub`.
    pub fn publish_retained(&self, topic: &str, payload: &[u8]) {
        let f = self.dir.path().join("payload.bin");
        fs::write(&f, payload).unwrap();
        self.mosquitto_pub(&["-t", topic, "-r", "-q", "1", "-f", f.to_str().unwrap()]);
    }

    /// `mosquitto_sub` (a plain subscriber: it prints payloads as the
    /// broker carries them) against the TCP listener with extra arguments,
    /// run to completion.
    pub fn mosquitto_sub(&self, args: &[&str]) -> Output {
        Command::new(tool("mosquitto_sub"))
            .args(["-h", "127.0.0.1", "-p", &self.tcp.to_string()])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Server for Mosquitto {
    const PROGRAM: &'static str = "mosquitto";

    fn configure(&mut self) {
        self.tcp = free_port();
        self.ws = free_port();
        self.tls = free_port();
        self.wss = free_port();
        let d = self.dir.path().display().to_string();
        // Mosquitto 2.0 hands a WebSocket listener's address to
        // libwebsockets only with a `socket_domain`: without it, it
        // listens on every interface (asserted in `spawn`).
        let text = format!(
            "# written by the mqseal test harness\n\
             user root\n\
             allow_anonymous true\n\
             persistence true\n\
             persistence_location {d}/\n\
             {autosave}\
             log_dest file {d}/mosquitto.log\n\
             log_type error\nlog_type warning\nlog_type notice\nlog_type information\n\
             max_queued_messages 10000\n\
             listener {tcp} 127.0.0.1\nprotocol mqtt\n\
             listener {ws} 127.0.0.1\nprotocol websockets\nsocket_domain ipv4\n\
             listener {tls} 127.0.0.1\nprotocol mqtt\n\
             cafile {ca}\ncertfile {cert}\nkeyfile {key}\n\
             listener {wss} 127.0.0.1\nprotocol websockets\nsocket_domain ipv4\n\
             cafile {ca}\ncertfile {cert}\nkeyfile {key}\n",
            autosave = self.autosave,
            tcp = self.tcp,
            ws = self.ws,
            tls = self.tls,
            wss = self.wss,
            ca = self.ca_file.display(),
            cert = self.cert.display(),
            key = self.key.display(),
        );
        fs::write(&self.conf, text).unwrap();
    }

    fn spawn(&mut self) -> bool {
        let Some(child) = spawn_listening(
            Self::PROGRAM,
            &["-c".as_ref(), self.conf.as_ref()],
            &[self.tcp, self.ws, self.tls, self.wss],
        ) else {
            return false;
        };
        let pid = child.id();
        self.child = Some(child);
        assert_loopback_listeners(pid, 4);
        true
    }

    fn log(&self) -> String {
        Mosquitto::log(self)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        server::kill(&mut self.child);
    }
}
