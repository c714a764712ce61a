//! The `mqseal` command line end to end, against a real Mosquitto.
//!
//! Tests that need Mosquitto start it with `mosquitto_or_skip!` (or `require_mosquitto!`)
//! (mqseal-test-support): skipped when it is not installed, a failure under CI.
// Helpers outside #[test] fns fail loudly too; std paths are fine in tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::std_instead_of_core)]

use mqseal_test_support::cli::{fails_with, line_reader, mqseal, ok, run, spawn_reading};
use mqseal_test_support::free_port;
use std::io::{BufRead, BufReader, Read};

/// A group key file with key id `id` (no counter files).
fn group_key(dir: &std::path::Path, name: &str, id: u32) -> String {
    mqseal_test_support::cli::group_key(dir, name, id, &[])
}

/// A group key file `k` with key id `id`, and the key it holds (for the
/// test to seal or open with itself).
fn group_key_and_key(dir: &std::path::Path, id: u32) -> (String, mqseal::Key) {
    let path = group_key(dir, "k", id);
    let key = mqseal::Key::from_text(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
    (path, key)
}

/// A sealer of `key` as `sender`, its counter in memory.
fn sealer(key: &mqseal::Key, sender: u32) -> mqseal::Sealer<mqseal::MemoryCounterStore> {
    mqseal::Sealer::new(key, sender, mqseal::Suite::ChaCha20Poly1305, mqseal::MemoryCounterStore::new()).unwrap()
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
        &run(mqseal(dir.path()).args(base).args([
            "-p",
            "1",
            "--key-file",
            &key,
            "--connect-timeout",
            "2",
            "--clock-floor",
        ])),
        "cannot connect to broker at mqtt://127.0.0.1:1: I/O",
    );
    // A listener that never answers the MQTT handshake: the connect timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port().to_string();
    let sub = ["sub", "-h", "127.0.0.1", "-p", &silent_port, "-t", "#", "--connect-timeout", "1", "--key-file"];
    fails_with(&run(mqseal(dir.path()).args(sub).arg(&key)), "cannot connect to broker at mqtt://127.0.0.1:");
    drop(silent);
}

#[test]
fn pub_then_sub_verifies_and_a_raw_republish_is_rejected() {
    let m = mqseal_test_support::mosquitto_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let key = group_key(dir.path(), "group.key", 3);
    let counter = dir.path().join("sender-5.counter");
    let port = m.tcp.to_string();
    let conn = ["-h", "127.0.0.1", "-p", &port, "--key-file", &key];

    // A retained, sealed message, published with mqseal.
    ok(&run(mqseal(dir.path())
        .args(["pub", "-t", "cli/t", "-q", "1", "-r", "-m", "hello", "--sender-id", "5", "--new-counter-file"])
        .args(["--counter-file"])
        .arg(&counter)
        .args(conn)));
    assert!(counter.exists(), "the counter is persisted");

    // What a plain mosquitto_sub sees: the envelope, not the text.
    let raw = m.mosquitto_sub(&["-t", "cli/t", "-C", "1", "-N", "-W", "10"]).stdout;
    assert!(!raw.is_empty());
    assert!(!raw.windows(5).any(|w| w == b"hello"), "plaintext on the broker");
    let raw_file = dir.path().join("raw.bin");
    std::fs::write(&raw_file, &raw).unwrap();

    let mut sub = spawn_reading(
        mqseal(dir.path())
            .args(["sub", "-t", "cli/#", "-q", "1", "-v", "--meta", "-C", "2", "-W", "30", "--stats"])
            .args(conn),
    );
    let lines = line_reader(sub.stdout.take().unwrap());
    // The retained message: verified, which also shows the subscription is live.
    let first = lines.recv_timeout(std::time::Duration::from_secs(20)).expect("no retained message");
    assert_eq!(first, "cli/t [sender=5 key=3 counter=0 retained] hello");

    // The same envelope again, raw, through Debian's mosquitto_pub.
    m.mosquitto_pub(&["-t", "cli/t", "-q", "1", "-f", raw_file.to_str().unwrap()]);
    // A plain payload on the sealed topic: reported as unsealed.
    m.mosquitto_pub(&["-t", "cli/t", "-q", "1", "-m", "valve=open"]);
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
    assert!(
        err.contains("rejected message on cli/t: not an mqseal envelope (unsealed")
            && err.contains("(unsupportedVersion)"),
        "a plain payload is reported as unsealed, with the stable code: {err}"
    );
    assert!(!err.contains("unsupported envelope version"), "{err}");
    assert!(err.contains("accepted=2") && err.contains("duplicate=1") && err.contains("unsealed=1"), "{err}");
}

#[test]
fn websocket_tls_mqtt5_and_pairwise_keys_from_the_cli() {
    let m = mqseal_test_support::mosquitto_or_skip!();
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
        .args(["-t", "pw/up", "-q", "2", "-r", "-m", "over tls", "--sender-id", "9", "--new-counter-file"])
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
    // A CA file that holds no certificate is refused before connecting.
    let other_ca = d.join("other-ca.pem");
    std::fs::write(&other_ca, std::fs::read(d.join("device.pub")).unwrap()).unwrap();
    let out = run(mqseal(d)
        .args(["pub", "-L", &format!("mqtts://127.0.0.1:{}", m.tls), "--cafile"])
        .arg(&other_ca)
        .args(["-t", "x", "-m", "x", "--sender-id", "1", "--connect-timeout", "3", "--clock-floor"])
        .args(to_server));
    fails_with(&out, "other-ca.pem: no PEM certificate in it");
}

#[test]
fn demo_runs_from_a_fresh_state_and_again() {
    let dir = tempfile::tempdir().unwrap();
    for run_no in 0..2 {
        let out = run(mqseal(dir.path()).arg("demo"));
        let text = ok(&out);
        assert!(text.contains("Demo complete"), "run {run_no}: {text}");
        assert!(!text.contains("FAILED"), "run {run_no}: {text}");
        assert!(text.contains("a second publisher on the same counter file is refused"), "{text}");
        assert!(text.contains("in use by another process (pid"), "{text}");
    }
}

#[test]
fn replay_state_survives_subscriber_restarts() {
    let m = mqseal_test_support::mosquitto_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let key = mqseal_test_support::cli::group_key(dir.path(), "k", 2, &[3]);
    let state = dir.path().join("replay.state");
    let port = m.tcp.to_string();
    let conn = ["-h", "127.0.0.1", "-p", &port, "--key-file", &key];
    let publish = |text: &str| {
        ok(&run(mqseal(dir.path())
            .args(["pub", "-t", "rs/t", "-q", "1", "-r", "-m", text, "--sender-id", "3"])
            .args(conn)));
    };
    publish("one");
    let sub = |extra: &[&str]| {
        let mut c = mqseal(dir.path());
        c.args(["sub", "-t", "rs/t", "-q", "1", "-C", "1", "-W", "20"]).args(conn).args(extra);
        c
    };
    let with_state = ["--replay-state", state.to_str().unwrap()];
    // First run accepts the retained message and records it, in the core's
    // replay-state format.
    let out = ok(&run(&mut sub(&with_state)));
    assert_eq!(out, "one\n");
    let bytes = std::fs::read(&state).unwrap();
    assert!(bytes.starts_with(b"mqseal-replay v2\n"), "{bytes:?}");
    assert_eq!(bytes.len(), 17 + 4 + 52 + 32, "one record");
    // Without the state, a new subscriber cannot tell it was seen before.
    assert_eq!(ok(&run(&mut sub(&[]))), "one\n");
    // With it, the retained copy is a duplicate; the next message is fine.
    let mut restarted = spawn_reading(&mut sub(&with_state));
    let mut err_lines = BufReader::new(restarted.stderr.take().unwrap()).lines();
    let first = err_lines.next().unwrap().unwrap();
    assert!(first.contains("rejected message on rs/t") && first.contains("(duplicate)"), "{first}");
    // While it runs, a second subscriber on the same file is refused before
    // it connects (port 1: nothing listens there).
    let second = run(mqseal(dir.path())
        .args(["sub", "-t", "rs/t", "-h", "127.0.0.1", "-p", "1", "--key-file", &key])
        .args(with_state));
    let err = fails_with(&second, "is in use by another process (pid");
    assert!(err.contains(&format!("replay-state file {}", state.display())), "{err}");
    assert!(err.contains(&format!("pid {}", restarted.id())), "names the holder: {err}");
    publish("two");
    let out = restarted.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "two\n");

    // A corrupt file is refused before connecting, never treated as empty.
    let mut bytes = std::fs::read(&state).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&state, &bytes).unwrap();
    fails_with(
        &run(mqseal(dir.path())
            .args(["sub", "-t", "x", "-h", "127.0.0.1", "-p", "1", "--key-file", &key])
            .args(with_state)),
        "not a valid mqseal replay-state file",
    );
}

/// The JSON replay state of older `mqseal sub` versions is migrated: what it
/// recorded stays rejected, and the file is rewritten in the core's format.
#[test]
fn an_old_json_replay_state_is_migrated() {
    let m = mqseal_test_support::mosquitto_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let (key_path, key) = group_key_and_key(dir.path(), 4);
    let envelope = sealer(&key, 8).seal_to_vec("mig/t", b"seen before").unwrap();
    let mut opener: mqseal::Opener = mqseal::Opener::new(mqseal::Keyring::with_primary(key).unwrap());
    opener.open_to_vec("mig/t", &envelope).unwrap();
    let snaps: Vec<mqseal::SenderSnapshot> = opener.snapshot().collect();
    let state = dir.path().join("replay.json");
    std::fs::write(&state, serde_json::to_string(&snaps).unwrap()).unwrap();
    m.publish_retained("mig/t", &envelope);

    let out = run(mqseal(dir.path())
        .args(["sub", "-h", "127.0.0.1", "-p", &m.tcp.to_string(), "-t", "mig/t", "-C", "1", "-W", "3"])
        .args(["--key-file", &key_path, "--replay-state", state.to_str().unwrap()]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(27), "nothing accepted: {err}");
    assert!(err.contains("migrated from the old JSON format (1 senders)"), "{err}");
    assert!(err.contains("(duplicate)"), "what the JSON file recorded is still rejected: {err}");
    assert!(std::fs::read(&state).unwrap().starts_with(b"mqseal-replay v2\n"));
}

#[test]
fn key_id_collisions_and_bad_key_texts_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let group = group_key(d, "group.key", 1);
    ok(&run(mqseal(d).args(["keygen", "x25519", "-o"]).arg(d.join("dev"))));
    ok(&run(mqseal(d).args(["keygen", "x25519", "-o"]).arg(d.join("srv"))));
    let (dev, srv_pub) = (d.join("dev").display().to_string(), d.join("srv.pub").display().to_string());
    let pair = ["--x25519", &dev, "--peer", &srv_pub];
    // Port 1: nothing listens; getting that far means the keys loaded.
    let sub = ["sub", "-t", "x", "-h", "127.0.0.1", "-p", "1", "--connect-timeout", "1"];

    // The group key's id and the default --pair-key-id are both 1.
    let err = fails_with(&run(mqseal(d).args(sub).args(["--key-file", &group]).args(pair)), "key id 1 is used twice");
    assert!(err.contains(&group) && err.contains("--pair-key-id 1, the default"), "{err}");
    fails_with(
        &run(mqseal(d).args(sub).args(["--key-file", &group]).args(pair).args(["--pair-key-id", "2"])),
        "cannot connect to broker",
    );
    // In a JSON key file.
    let text = std::fs::read_to_string(&group).unwrap();
    let secret = std::fs::read_to_string(d.join("dev")).unwrap();
    let public = std::fs::read_to_string(d.join("srv.pub")).unwrap();
    let other = mqseal_test_support::cli::group_key(d, "other.key", 1, &[]);
    let other = std::fs::read_to_string(other).unwrap();
    for (json, needle) in [
        (
            format!(
                r#"{{"primary":1,"keys":["{}"],"x25519":"{}","peers":[{{"public":"{}","key_id":1}}]}}"#,
                text.trim(),
                secret.trim(),
                public.trim()
            ),
            "key id 1 is both a group key in \"keys\" and the key_id of a pairwise key in \"peers\"",
        ),
        (
            format!(r#"{{"primary":1,"keys":["{}","{}"]}}"#, text.trim(), other.trim()),
            "2 group keys in \"keys\" have key id 1",
        ),
    ] {
        let f = d.join("keys.json");
        std::fs::write(&f, json).unwrap();
        let err = fails_with(&run(mqseal(d).args(sub).arg("--key-file").arg(&f)), needle);
        assert!(err.contains("keys.json"), "{err}");
    }

    // A bad key text names where it came from.
    fails_with(
        &run(mqseal(d).args(sub).args(["--key-text", "mqseal:key:v1:1:short"])),
        "mqseal: --key-text: not an mqseal key",
    );
    fails_with(
        &run(mqseal(d).args(sub).env("MQSEAL_KEY", "mqseal:key:v1:1:short")),
        "mqseal: MQSEAL_KEY (environment variable): not an mqseal key",
    );
    // Only ASCII whitespace is trimmed (the core's rule): U+00A0 is not.
    fails_with(
        &run(mqseal(d).args(sub).args(["--key-text", &format!("{}\u{a0}", text.trim())])),
        "--key-text: not an mqseal key",
    );
    fails_with(
        &run(mqseal(d).args(sub).args(["--key-text", &format!(" {}\n", text.trim())])),
        "cannot connect to broker",
    );
    let bad = d.join("bad.key");
    std::fs::write(&bad, "hello\n").unwrap();
    fails_with(&run(mqseal(d).args(sub).arg("--key-file").arg(&bad)), &format!("{}: not an mqseal key", bad.display()));
}

fn ahead_one_hour() -> u64 {
    mqseal::system_clock() + 3600
}

fn ahead_150_seconds() -> u64 {
    mqseal::system_clock() + 150
}

/// A message dated an hour ahead: refused under --max-skew, and under
/// --max-age alone (which implies min(max-age, 300) of skew); accepted by a
/// receiver with no freshness policy. --eviction lru without --max-age is
/// refused with the reason.
#[test]
fn future_timestamps_are_bounded_by_max_skew_and_max_age() {
    let m = mqseal_test_support::mosquitto_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let (key_path, key) = group_key_and_key(dir.path(), 6);
    let publish_dated = |topic: &str, clock: fn() -> u64| {
        let mut dated = sealer(&key, 2).with_timestamps(clock);
        m.publish_retained(topic, &dated.seal_to_vec(topic, b"dated").unwrap());
    };
    publish_dated("skew/hour", ahead_one_hour);
    publish_dated("skew/mid", ahead_150_seconds);
    let port = m.tcp.to_string();
    let sub = |topic: &str, extra: &[&str]| {
        run(mqseal(dir.path())
            .args(["sub", "-h", "127.0.0.1", "-p", &port, "-t", topic, "-C", "1", "-W", "2", "--key-file", &key_path])
            .args(extra))
    };
    let refused = |topic: &str, policy: &[&str]| {
        let out = sub(topic, policy);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(27), "{policy:?} accepted a message on {topic} from the future: {err}");
        assert!(err.contains("(fromFuture)"), "{policy:?}: {err}");
    };
    // An hour ahead: refused by an explicit skew, and by any max-age alone
    // (implied skew min(max-age, 300)), however long the age.
    for policy in [
        &["--max-skew", "60"][..],
        &["--max-age", "60"],
        &["--max-age", "86400"],
        &["--max-age", "86400", "--max-skew", "120"],
    ] {
        refused("skew/hour", policy);
    }
    assert_eq!(ok(&sub("skew/hour", &[])), "dated\n", "no freshness policy: no bound");
    // 150 s ahead: within a skew of 600 or the implied 300 of a long age,
    // beyond 60.
    refused("skew/mid", &["--max-skew", "60"]);
    refused("skew/mid", &["--max-age", "60"]);
    assert_eq!(ok(&sub("skew/mid", &["--max-skew", "600"])), "dated\n");
    assert_eq!(ok(&sub("skew/mid", &["--max-age", "3600"])), "dated\n", "within the implied skew of 300");

    fails_with(&sub("skew/mid", &["--eviction", "lru"]), "--eviction lru needs --max-age");
    assert_eq!(ok(&sub("skew/mid", &["--eviction", "lru", "--max-age", "3600"])), "dated\n");
    fails_with(&sub("skew/mid", &["--window", "0"]), "--window 0 is out of range: 1..=256");
    fails_with(&sub("skew/mid", &["--gaps", "5"]), "--gaps 5 is out of range: 0..=4");
    assert_eq!(ok(&sub("skew/mid", &["--gaps", "0", "--max-skew", "600"])), "dated\n");
}
