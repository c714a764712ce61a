//! Helpers of the CLI tests (`examples/tests/`): the `mqseal` binary with a
//! clean environment, output checks, and a plain MQTT subscriber that
//! records raw envelopes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `mqseal` with a clean environment (no keys from the caller's env) and
/// default counter files under `state`.
pub fn mqseal(state: &Path) -> Command {
    let mut c = Command::new(mqseal_bin());
    for var in [
        "MQSEAL_KEY",
        "MQSEAL_KEY_FILE",
        "MQSEAL_SENDER_ID",
        "MQSEAL_COUNTER_FILE",
        "MQSEAL_REPLAY_STATE",
        "MQSEAL_USERNAME",
        "MQSEAL_PASSWORD",
    ] {
        c.env_remove(var);
    }
    c.env("XDG_STATE_HOME", state).stdin(Stdio::null());
    c
}

/// The `mqseal` binary cargo built for the running integration test of
/// `mqseal-cli`: `CARGO_BIN_EXE_mqseal` when cargo sets it at run time, else
/// next to the test's `deps/` directory (`target/<profile>/mqseal`).
pub fn mqseal_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CARGO_BIN_EXE_mqseal") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = profile_dir.join(format!("mqseal{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "{} not found: run the CLI tests with cargo test -p mqseal-cli", bin.display());
    bin
}

/// Runs `cmd` to completion.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

/// Asserts success; returns stdout.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a failure whose stderr contains `needle`; returns stderr.
pub fn fails_with(out: &Output, needle: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected failure, got success; stderr: {err}");
    assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
    err
}

/// `mqseal keygen group --id ID -o DIR/NAME`, plus `--sender-id` for each
/// of `senders` (their counter files under DIR's XDG state).
pub fn group_key(dir: &Path, name: &str, id: u32, senders: &[u32]) -> String {
    let path = dir.join(name);
    let mut cmd = mqseal(dir);
    cmd.args(["keygen", "group", "--id", &id.to_string(), "-o"]).arg(&path);
    for s in senders {
        cmd.args(["--sender-id", &s.to_string()]);
    }
    ok(&run(&mut cmd));
    path.display().to_string()
}

/// Starts `cmd` with stdout and stderr piped: a long-running `mqseal sub`
/// (or any process) whose lines the test reads, with [`line_reader`].
pub fn spawn_reading(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// Starts `cmd` with stdin piped (the lines a `mqseal pub -l` publishes)
/// and stderr piped; its stdout is discarded.
pub fn spawn_fed(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

/// Writes a group key file (`{"keys":["mqseal:key:..."]}`) holding `key`
/// to `DIR/group.json`; returns its path.
pub fn write_key_file(dir: &Path, key: &mqseal::Key) -> String {
    let path = dir.join("group.json");
    std::fs::write(&path, format!("{{\"keys\":[\"{}\"]}}", key.to_text())).unwrap();
    path.display().to_string()
}

/// `-h 127.0.0.1 -p PORT --key-text KEY`: where a `mqseal pub` or `sub`
/// connects, with the group key given inline.
pub fn connect_with_key(port: u16, key: &mqseal::Key) -> Vec<String> {
    let (port, key) = (port.to_string(), key.to_text().as_str().to_owned());
    ["-h", "127.0.0.1", "-p", &port, "--key-text", &key].map(str::to_owned).to_vec()
}

/// Envelopes (topic, bytes) sealed with `key` by `senders` senders (sender
/// ids from `first_sender` on), `per_sender` each, interleaved: the first
/// message of every sender, then the second, ... The sender with index `s`
/// seals on `<prefix>/d<s>` the payload `payload(s, c)` as its message `c`.
pub fn interleaved_envelopes(
    key: &mqseal::Key,
    first_sender: u32,
    senders: u32,
    per_sender: u64,
    prefix: &str,
    payload: impl Fn(u32, u64) -> String,
) -> Vec<(String, Vec<u8>)> {
    use mqseal::{MemoryCounterStore, Sealer, Suite};
    let mut sealers: Vec<_> = (0..senders)
        .map(|s| (s, Sealer::new(key, first_sender + s, Suite::ChaCha20Poly1305, MemoryCounterStore::new()).unwrap()))
        .collect();
    let mut out = Vec::new();
    for c in 0..per_sender {
        for (s, sealer) in &mut sealers {
            let topic = format!("{prefix}/d{s}");
            let env = sealer.seal_to_vec(&topic, payload(*s, c).as_bytes()).unwrap();
            out.push((topic, env));
        }
    }
    out
}

/// Reads lines from a child's stdout or stderr on a thread, so the test
/// can wait for one with a timeout.
pub fn line_reader(stream: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The limit a counter file holds (`mqseal-counter v1 <limit>`).
pub fn counter_file_limit(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap();
    text.trim_end().strip_prefix("mqseal-counter v1 ").unwrap().parse().unwrap()
}

/// A plain (unsealing-free) MQTT subscriber, a raw rumqttc client, that
/// records every payload it receives: the envelopes as the broker carries
/// them.
pub struct Recorder {
    payloads: Arc<Mutex<Vec<Vec<u8>>>>,
    client: rumqttc::Client,
}

impl Recorder {
    /// Subscribes to `filter` (QoS 1) and returns once the broker confirmed
    /// the subscription.
    pub fn start(port: u16, filter: &str) -> Recorder {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let mut o = rumqttc::MqttOptions::new(format!("recorder-{}-{nanos:x}", std::process::id()), "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut connection) = rumqttc::Client::new(o, 1000);
        client.subscribe(filter, rumqttc::QoS::AtLeastOnce).unwrap();
        let payloads = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = payloads.clone();
        std::thread::spawn(move || {
            for ev in connection.iter() {
                match ev {
                    Ok(rumqttc::Event::Incoming(rumqttc::Incoming::Publish(p))) => {
                        sink.lock().unwrap().push(p.payload.to_vec());
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Incoming::SubAck(_))) => {
                        let _ = tx.send(());
                    }
                    Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(20)).expect("the recorder's subscription was not acknowledged");
        Recorder { payloads, client }
    }

    /// Payloads received so far.
    pub fn len(&self) -> usize {
        self.payloads.lock().unwrap().len()
    }

    /// True before the first payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every payload received so far, in arrival order.
    pub fn payloads(&self) -> Vec<Vec<u8>> {
        self.payloads.lock().unwrap().clone()
    }

    /// Waits until at least `n` payloads arrived (or `timeout` passed) and
    /// returns the counters of all of them, in arrival order. Panics on a
    /// payload that is not an envelope.
    pub fn counters_after(&self, n: usize, timeout: Duration) -> Vec<u64> {
        let deadline = Instant::now() + timeout;
        while self.len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.payloads
            .lock()
            .unwrap()
            .iter()
            .map(|p| {
                mqseal::Envelope::parse(p).expect("the broker carried something that is not an envelope").header.counter
            })
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.client.try_disconnect();
    }
}

/// Publishes raw envelopes at QoS 1 as client `id` and waits for every
/// PUBACK.
pub fn publish_all(port: u16, id: &str, envs: Vec<(String, Vec<u8>)>) {
    let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_inflight(200);
    let n = envs.len();
    let (client, mut connection) = rumqttc::Client::new(o, 1000);
    let feeder = std::thread::spawn(move || {
        for (topic, env) in envs {
            client.publish(topic, rumqttc::QoS::AtLeastOnce, false, env).unwrap();
        }
        client
    });
    let mut acks = 0;
    for ev in connection.iter() {
        match ev {
            Ok(rumqttc::Event::Incoming(rumqttc::Incoming::PubAck(_))) => {
                acks += 1;
                if acks == n {
                    break;
                }
            }
            Err(e) => panic!("publisher {id}: {e}"),
            Ok(_) => {}
        }
    }
    let client = feeder.join().unwrap();
    let _ = client.disconnect();
}
