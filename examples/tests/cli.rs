//! The `mqseal` command line end to end, against a real Mosquitto.
// Helpers outside #[test] fns fail loudly too; std paths are fine in tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::std_instead_of_core)]

#[path = "../../bindings/rumqttc/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{free_port, tool, Mosquitto};

/// `mqseal` with a clean environment (no keys from the caller's env) and
/// counters under `state`.
fn mqseal(state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mqseal"));
    for var in [
        "MQSEAL_KEY",
        "MQSEAL_KEY_FILE",
        "MQSEAL_SENDER_ID",
        "MQSEAL_COUNTER_FILE",
        "MQSEAL_USERNAME",
        "MQSEAL_PASSWORD",
    ] {
        c.env_remove(var);
    }
    c.env("XDG_STATE_HOME", state).stdin(Stdio::null());
    c
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails_with(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, got success; stderr: {err}");
    assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
}

fn group_key(dir: &Path, name: &str, id: u32) -> String {
    let path = dir.join(name);
    ok(&run(mqseal(dir).args(["keygen", "group", "--id", &id.to_string(), "-o"]).arg(&path)));
    path.display().to_string()
}

#[test]
fn help_on_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&[][..], &["demo"], &["keygen"], &["keygen", "group"], &["keygen", "x25519"], &["pub"], &["sub"]] {
        let out = run(mqseal(dir.path()).args(args).arg("--help"));
        let text = ok(&out);
        assert!(text.contains("Usage: mqseal"), "{args:?}: {text}");
    }
}

#[cfg(unix)]
#[test]
fn keygen_writes_private_files_and_refuses_to_overwrite() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("group.key");
    ok(&run(mqseal(dir.path()).args(["keygen", "group", "--id", "7", "-o"]).arg(&path)));
    let first = std::fs::read_to_string(&path).unwrap();
    assert!(first.starts_with("mqseal:key:v1:7:"), "{first}");
    assert!(mqseal::Key::from_text(first.trim()).is_ok());
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

    fails_with(&run(mqseal(dir.path()).args(["keygen", "group", "-o"]).arg(&path)), "already exists");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first, "not overwritten");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    ok(&run(mqseal(dir.path()).args(["keygen", "group", "--force", "-o"]).arg(&path)));
    assert_ne!(std::fs::read_to_string(&path).unwrap(), first);
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "--force resets the mode");

    let pair = dir.path().join("device");
    let public = ok(&run(mqseal(dir.path()).args(["keygen", "x25519", "-o"]).arg(&pair)));
    let secret = std::fs::read_to_string(&pair).unwrap();
    assert!(secret.starts_with("mqseal:x25519-secret:v1:"));
    assert_eq!(std::fs::metadata(&pair).unwrap().permissions().mode() & 0o777, 0o600);
    let pub_file = std::fs::read_to_string(dir.path().join("device.pub")).unwrap();
    assert_eq!(pub_file.trim(), public.trim());
    assert!(public.starts_with("mqseal:x25519-public:v1:"));
    fails_with(&run(mqseal(dir.path()).args(["keygen", "x25519", "-o"]).arg(&pair)), "already exists");
}

#[test]
fn clear_errors_for_missing_key_bad_key_bad_url_and_unreachable_broker() {
    let dir = tempfile::tempdir().unwrap();
    let key = group_key(dir.path(), "k", 1);
    let port = free_port().to_string();
    let base = ["pub", "-h", "127.0.0.1", "-t", "a/b", "-m", "x", "--sender-id", "1"];

    fails_with(&run(mqseal(dir.path()).args(base).args(["-p", &port])), "no key");
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "hello\n").unwrap();
    fails_with(&run(mqseal(dir.path()).args(base).args(["-p", &port, "--key-file"]).arg(&bad)), "not an mqseal key");
    fails_with(
        &run(mqseal(dir.path()).args(base).args(["-p", &port]).env("MQSEAL_KEY", "mqseal:key:v1:1:short")),
        "not an mqseal key",
    );
    fails_with(
        &run(mqseal(dir.path()).args(base).args(["-L", "foo://127.0.0.1:1", "--key-file", &key])),
        "bad broker URL",
    );
    fails_with(
        &run(mqseal(dir.path()).args(base).args(["-L", "mqtt://127.0.0.1:x", "--key-file", &key])),
        "invalid port",
    );
    fails_with(
        &run(mqseal(dir.path()).args([
            "pub",
            "-p",
            &port,
            "-h",
            "127.0.0.1",
            "-t",
            "a",
            "-m",
            "x",
            "--key-file",
            &key,
        ])),
        "missing --sender-id",
    );
    // Nothing listens on port 1: refused at once.
    fails_with(
        &run(mqseal(dir.path()).args(base).args(["-p", "1", "--key-file", &key, "--connect-timeout", "2"])),
        "cannot connect to broker at mqtt://127.0.0.1:1: I/O",
    );
    // A listener that never answers the MQTT handshake: the connect timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port().to_string();
    let sub = ["sub", "-h", "127.0.0.1", "-p", &silent_port, "-t", "#", "--connect-timeout", "1", "--key-file"];
    fails_with(&run(mqseal(dir.path()).args(sub).arg(&key)), "cannot connect to broker at mqtt://127.0.0.1:");
    drop(silent);
}

/// Reads lines from a child's stdout on a thread, so the test can wait for
/// one with a timeout.
fn line_reader(stdout: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn pub_then_sub_verifies_and_a_raw_republish_is_rejected() {
    let m = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let key = group_key(dir.path(), "group.key", 3);
    let counter = dir.path().join("sender-5.counter");
    let port = m.tcp.to_string();
    let conn = ["-h", "127.0.0.1", "-p", &port, "--key-file", &key];

    // A retained, sealed message, published with mqseal.
    ok(&run(mqseal(dir.path())
        .args(["pub", "-t", "cli/t", "-q", "1", "-r", "-m", "hello", "--sender-id", "5", "--counter-file"])
        .arg(&counter)
        .args(conn)));
    assert!(counter.exists(), "the counter is persisted");

    // What a plain mosquitto_sub sees: the envelope, not the text.
    let raw = run(Command::new(tool("mosquitto_sub")).args([
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "cli/t",
        "-C",
        "1",
        "-N",
        "-W",
        "10",
    ]))
    .stdout;
    assert!(!raw.is_empty());
    assert!(!raw.windows(5).any(|w| w == b"hello"), "plaintext on the broker");
    let raw_file = dir.path().join("raw.bin");
    std::fs::write(&raw_file, &raw).unwrap();

    let mut sub = mqseal(dir.path())
        .args(["sub", "-t", "cli/#", "-q", "1", "-v", "--meta", "-C", "2", "-W", "30", "--stats"])
        .args(conn)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_reader(sub.stdout.take().unwrap());
    // The retained message: verified, which also shows the subscription is live.
    let first = lines.recv_timeout(std::time::Duration::from_secs(20)).expect("no retained message");
    assert_eq!(first, "cli/t [sender=5 key=3 counter=0 retained] hello");

    // The same envelope again, raw, through Debian's mosquitto_pub.
    m.mosquitto_pub(&["-t", "cli/t", "-q", "1", "-f", raw_file.to_str().unwrap()]);
    // A fresh message from the same sender continues the persisted counter.
    ok(&run(mqseal(dir.path())
        .args(["pub", "-t", "cli/t", "-q", "1", "-m", "world", "--sender-id", "5", "--counter-file"])
        .arg(&counter)
        .args(conn)));
    let second = lines.recv_timeout(std::time::Duration::from_secs(20)).expect("no second message");
    assert!(second.starts_with("cli/t [sender=5 key=3 counter="), "{second}");
    assert!(second.ends_with("] world"), "{second}");
    let status = sub.wait().unwrap();
    let mut err = String::new();
    sub.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "sub failed: {err}");
    assert!(err.contains("rejected message on cli/t: duplicate message"), "{err}");
    assert!(err.contains("(duplicate)"), "{err}");
    assert!(err.contains("accepted=2") && err.contains("duplicate=1"), "{err}");
}

#[test]
fn websocket_tls_mqtt5_and_pairwise_keys_from_the_cli() {
    let m = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = m.ca_file.display().to_string();
    // Pairwise keys: the device seals to the server, the server opens.
    ok(&run(mqseal(d).args(["keygen", "x25519", "-o"]).arg(d.join("device"))));
    ok(&run(mqseal(d).args(["keygen", "x25519", "-o"]).arg(d.join("server"))));
    let (device, server) = (d.join("device").display().to_string(), d.join("server").display().to_string());
    let to_server = ["--x25519", &device, "--peer", &format!("{server}.pub"), "--pair-key-id", "40"];
    let as_server = ["--x25519", &server, "--peer", &format!("{device}.pub"), "--pair-key-id", "40"];

    // Publish retained over TLS with MQTT 5 ...
    ok(&run(mqseal(d)
        .args(["pub", "-V", "5", "-L", &format!("mqtts://127.0.0.1:{}", m.tls), "--cafile", &ca])
        .args(["-t", "pw/up", "-q", "2", "-r", "-m", "over tls", "--sender-id", "9"])
        .args(to_server)));
    // ... receive it over WebSocket with MQTT 3.1.1 ...
    let out = ok(&run(mqseal(d)
        .args(["sub", "-L", &format!("ws://127.0.0.1:{}/mqtt", m.ws), "-t", "pw/#", "-C", "1", "-W", "20", "-v"])
        .args(as_server)));
    assert_eq!(out, "pw/up over tls\n");
    // ... over WebSocket + TLS with MQTT 5 ...
    let out = ok(&run(mqseal(d)
        .args(["sub", "-V", "5", "-L", &format!("wss://127.0.0.1:{}/mqtt", m.wss), "--cafile", &ca])
        .args(["-t", "pw/#", "-C", "1", "-W", "20"])
        .args(as_server)));
    assert_eq!(out, "over tls\n");
    // ... and over TCP with MQTT 5.
    let out = ok(&run(mqseal(d)
        .args(["sub", "-V", "5", "-h", "127.0.0.1", "-p", &m.tcp.to_string(), "-t", "pw/up", "-C", "1", "-W", "20"])
        .args(as_server)));
    assert_eq!(out, "over tls\n");
    // The device's own key pair cannot open what it sent (directional keys).
    let out = run(mqseal(d)
        .args(["sub", "-h", "127.0.0.1", "-p", &m.tcp.to_string(), "-t", "pw/up", "-C", "1", "-W", "3", "--stats"])
        .args(to_server));
    assert_eq!(out.status.code(), Some(27), "timed out without a verified message");
    assert!(String::from_utf8_lossy(&out.stderr).contains("(auth)"));
    // TLS without the right CA fails clearly.
    let other_ca = d.join("other-ca.pem");
    std::fs::write(&other_ca, std::fs::read(d.join("device.pub")).unwrap()).unwrap();
    let out = run(mqseal(d)
        .args(["pub", "-L", &format!("mqtts://127.0.0.1:{}", m.tls), "--cafile"])
        .arg(&other_ca)
        .args(["-t", "x", "-m", "x", "--sender-id", "1", "--connect-timeout", "3"])
        .args(to_server));
    fails_with(&out, "cannot connect to broker at mqtts://127.0.0.1");
}

#[test]
fn demo_runs_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(mqseal(dir.path()).arg("demo"));
    let text = ok(&out);
    assert!(text.contains("Demo complete"), "{text}");
    assert!(!text.contains("FAILED"), "{text}");
}

#[test]
fn replay_state_survives_subscriber_restarts() {
    let m = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let key = group_key(dir.path(), "k", 2);
    let state = dir.path().join("replay.json");
    let counter = dir.path().join("ctr");
    let port = m.tcp.to_string();
    let conn = ["-h", "127.0.0.1", "-p", &port, "--key-file", &key];
    let publish = |text: &str| {
        ok(&run(mqseal(dir.path())
            .args(["pub", "-t", "rs/t", "-q", "1", "-r", "-m", text, "--sender-id", "3", "--counter-file"])
            .arg(&counter)
            .args(conn)));
    };
    publish("one");
    let sub = |extra: &[&str]| {
        let mut c = mqseal(dir.path());
        c.args(["sub", "-t", "rs/t", "-q", "1", "-C", "1", "-W", "20"]).args(conn).args(extra);
        c
    };
    // First run accepts the retained message and records it.
    let out = ok(&run(&mut sub(&["--replay-state", state.to_str().unwrap()])));
    assert_eq!(out, "one\n");
    assert!(state.exists());
    // Without the state, a new subscriber cannot tell it was seen before.
    assert_eq!(ok(&run(&mut sub(&[]))), "one\n");
    // With it, the retained copy is a duplicate; the next message is fine.
    let mut restarted = sub(&["--replay-state", state.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err_lines = BufReader::new(restarted.stderr.take().unwrap()).lines();
    let first = err_lines.next().unwrap().unwrap();
    assert!(first.contains("rejected message on rs/t") && first.contains("(duplicate)"), "{first}");
    publish("two");
    let out = restarted.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "two\n");
}
