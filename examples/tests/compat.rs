//! `mqseal pub`/`sub` behaving like mosquitto_pub/sub (issue 15), against a
//! real Mosquitto.
//!
//! Tests that need Mosquitto start it with `mosquitto_or_skip!` (or `require_mosquitto!`)
//! (mqseal-test-support): skipped when it is not installed, a failure under CI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::std_instead_of_core)]

use std::time::Duration;

use mqseal_test_support::cli::{fails_with, line_reader, mqseal, ok, run, spawn_fed, spawn_reading};
use mqseal_test_support::Mosquitto;

fn key(dir: &std::path::Path) -> String {
    mqseal_test_support::cli::group_key(dir, "k", 5, &[1])
}

/// A broker, a temp dir with a group key file in it (`key`), the key file's
/// path and the broker's TCP port as text.
fn broker_and_key() -> (Mosquitto, tempfile::TempDir, String, String) {
    let m = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let k = key(dir.path());
    let port = m.tcp.to_string();
    (m, dir, k, port)
}

/// Asserts that `out` failed with `needle` before it tried to connect;
/// returns stderr.
fn fails_before_connecting(out: &std::process::Output, needle: &str) -> String {
    let err = fails_with(out, needle);
    assert!(!err.contains("cannot connect"), "{err}");
    err
}

#[test]
fn an_oversized_message_is_rejected_once_counted_and_not_redelivered() {
    mqseal_test_support::require_mosquitto!();
    let (m, dir, k, port) = broker_and_key();
    let conn = ["-h", "127.0.0.1", "-p", &port, "--key-file", &k];
    let sub = |w: &str| {
        run(mqseal(dir.path())
            .args(["sub", "-t", "big/t", "-q", "1", "-c", "-i", "big-sub", "--max-packet-size", "1000000"])
            .args(["--stats", "-W", w])
            .args(conn))
    };
    // Create the persistent session.
    ok(&run(mqseal(dir.path()).args(["sub", "-t", "big/t", "-q", "1", "-c", "-i", "big-sub", "-E"]).args(conn)));
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![b'x'; 2_000_000]).unwrap();
    m.mosquitto_pub(&["-t", "big/t", "-q", "1", "-f", big.to_str().unwrap()]);
    let out = sub("4");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(27), "{err}");
    assert_eq!(err.matches("(tooLarge)").count(), 1, "rejected once: {err}");
    assert!(err.contains("exceeds the maximum packet size of 1000000 bytes (--max-packet-size)"), "{err}");
    assert!(err.contains("oversized=1"), "{err}");
    // Acknowledged: the session does not get it again.
    let out = sub("3");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("tooLarge") && err.contains("oversized=0"), "redelivered: {err}");

    // By default the MQTT maximum applies: 3 MB (above the old 1 MiB) pass, on 3.1.1 and 5.
    let file = dir.path().join("three.bin");
    std::fs::write(&file, vec![b'y'; 3_000_000]).unwrap();
    for v in ["311", "5"] {
        let topic = format!("ten/{v}");
        ok(&run(mqseal(dir.path())
            .args(["pub", "-V", v, "-t", &topic, "-q", "1", "-r", "-f", file.to_str().unwrap(), "--sender-id", "1"])
            .args(conn)));
        let out = ok(&run(mqseal(dir.path())
            .args(["sub", "-V", v, "-t", &topic, "-q", "1", "-C", "1", "-W", "30", "-F", "%t %l"])
            .args(conn)));
        assert_eq!(out, format!("{topic} 3000000\n"), "MQTT {v}");
    }
    // Above --max-packet-size, pub names the limit and sends nothing.
    fails_with(
        &run(mqseal(dir.path())
            .args(["pub", "-t", "ten/t", "-f", file.to_str().unwrap(), "--sender-id", "1", "--max-packet-size", "1000"])
            .args(conn)),
        "above --max-packet-size 1000",
    );
}

#[test]
fn tls_options_mean_tls_and_bad_combinations_are_refused() {
    mqseal_test_support::require_mosquitto!();
    let (m, dir, k, _) = broker_and_key();
    let ca = m.ca_file.display().to_string();
    let tls = m.tls.to_string();
    // -h/-p with --cafile: TLS, as with mosquitto_pub.
    ok(&run(mqseal(dir.path())
        .args(["pub", "-h", "127.0.0.1", "-p", &tls, "--cafile", &ca, "-t", "tls/t", "-r", "-q", "1", "-m", "hi"])
        .args(["--sender-id", "1", "--key-file", &k])));
    let out = ok(&run(mqseal(dir.path())
        .args(["sub", "-h", "127.0.0.1", "-p", &tls, "--tls-version", "tlsv1.3", "-t", "tls/t", "-C", "1"])
        .args(["-W", "10", "--cafile", &ca, "--key-file", &k])));
    assert_eq!(out, "hi\n");
    // --capath: a directory of CA certificates.
    let capath = dir.path().join("cas");
    std::fs::create_dir(&capath).unwrap();
    std::fs::copy(&m.ca_file, capath.join("ca.pem")).unwrap();
    let out = ok(&run(mqseal(dir.path())
        .args(["sub", "-h", "localhost", "-p", &tls, "--capath", capath.to_str().unwrap(), "-t", "tls/t"])
        .args(["-C", "1", "-W", "10", "--insecure", "--key-file", &k])));
    assert_eq!(out, "hi\n");
    let url = format!("mqtt://127.0.0.1:{}", m.tcp);
    fails_with(
        &run(mqseal(dir.path()).args(["sub", "-L", &url, "-t", "x", "--cafile", &ca, "--key-file", &k])),
        "not TLS: use mqtts://",
    );
    fails_with(
        &run(mqseal(dir.path()).args(["sub", "-p", &tls, "-t", "x", "--tls-version", "tlsv1.1", "--key-file", &k])),
        "supported are tlsv1.3 and tlsv1.2",
    );
    // Without a TLS option, plain MQTT on that port fails (not silently TLS).
    fails_with(
        &run(mqseal(dir.path()).args([
            "sub",
            "-h",
            "127.0.0.1",
            "-p",
            &tls,
            "-t",
            "x",
            "--connect-timeout",
            "2",
            "--key-file",
            &k,
        ])),
        "cannot connect to broker at mqtt://",
    );
}

#[test]
fn an_x509_v1_client_certificate_is_named_with_how_to_make_v3() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let k = key(d);
    let sh = |script: &str| {
        let out = std::process::Command::new("sh").arg("-c").arg(script).current_dir(d).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    // `openssl x509 -req` without extensions writes a v1 certificate.
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -subj /CN=ca -days 1 2>/dev/null && \
        openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=client 2>/dev/null && \
        openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -out client.crt 2>/dev/null");
    let err = fails_with(
        &run(mqseal(d)
            .args(["pub", "-p", "1", "--cafile", "ca.crt", "--cert", "client.crt", "--key", "client.key"])
            .args(["-t", "a", "-m", "x", "--sender-id", "1", "--key-file", &k])
            .current_dir(d)),
        "client certificate client.crt: the certificate is X.509 v1",
    );
    assert!(err.contains("-extfile"), "{err}");
}

#[test]
fn invalid_topics_are_refused_up_front_with_mosquitto_like_messages() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(dir.path());
    // Port 1: nothing listens; the topic is refused before connecting.
    let base = ["-h", "127.0.0.1", "-p", "1", "--key-file", &k];
    for t in ["plant/#", "a/+/b", ""] {
        fails_before_connecting(
            &run(mqseal(dir.path()).args(["pub", "-t", t, "-m", "x", "--sender-id", "1"]).args(base)),
            &format!("invalid publish topic '{t}', does it contain '+' or '#'?"),
        );
    }
    for t in ["a/#/b", "a+", ""] {
        fails_with(
            &run(mqseal(dir.path()).args(["sub", "-t", t]).args(base)),
            &format!("invalid subscription topic '{t}', are all '+' and '#' wildcards correct?"),
        );
    }
    fails_with(
        &run(mqseal(dir.path()).args(["sub", "-t", "ok/#", "--plain-topic", "x/#/y"]).args(base)),
        "invalid --plain-topic topic",
    );
    fails_with(
        &run(mqseal(dir.path())
            .args(["pub", "-t", "a", "-m", "x", "--will-topic", "w/+", "--will-payload", "gone"])
            .args(["--sender-id", "1"])
            .args(base)),
        "invalid will topic 'w/+'",
    );
    fails_with(&run(mqseal(dir.path()).args(["sub", "-t", "a", "-C", "0"]).args(base)), "--count");
    fails_with(
        &run(mqseal(dir.path()).args(["sub", "-t", "a", "--connect-timeout", "0"]).args(base)),
        "--connect-timeout",
    );
    fails_with(&run(mqseal(dir.path()).args(["sub", "-t", "a", "-x", "60"]).args(base)), "needs MQTT 5");
}

#[cfg(unix)]
#[test]
fn sigterm_and_sigint_end_sub_with_0_stats_and_saved_replay_state() {
    mqseal_test_support::require_mosquitto!();
    let (_m, dir, k, port) = broker_and_key();
    let conn = ["-h", "127.0.0.1", "-p", &port, "--key-file", &k];
    ok(&run(mqseal(dir.path())
        .args(["pub", "-t", "sig/t", "-r", "-q", "1", "-m", "one", "--sender-id", "1"])
        .args(conn)));
    for (n, sig) in ["TERM", "INT"].into_iter().enumerate() {
        let state = dir.path().join(format!("replay-{n}"));
        let mut s = spawn_reading(
            mqseal(dir.path())
                .args(["sub", "-t", "sig/t", "-q", "1", "--stats", "--replay-state", state.to_str().unwrap()])
                .args(conn),
        );
        let lines = line_reader(s.stdout.take().unwrap());
        assert_eq!(lines.recv_timeout(Duration::from_secs(20)).unwrap(), "one");
        let killed =
            std::process::Command::new("kill").arg(format!("-{sig}")).arg(s.id().to_string()).status().unwrap();
        assert!(killed.success());
        let out = s.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "SIG{sig}: {err}");
        assert!(err.contains("mqseal: stats: accepted=1"), "SIG{sig}: {err}");
        assert!(std::fs::read(&state).unwrap().starts_with(b"mqseal-replay v2\n"));
    }
}

#[test]
fn format_null_message_retained_flags_repeat_and_url_topic() {
    mqseal_test_support::require_mosquitto!();
    let (m, dir, k, port) = broker_and_key();
    let conn = ["-h", "127.0.0.1", "-p", &port, "--key-file", &k];
    let url = format!("mqtt://127.0.0.1:{port}/fmt/t");
    // Topic from the -L URL path; --repeat.
    ok(&run(mqseal(dir.path())
        .args(["pub", "-L", &url, "-r", "-q", "1", "-m", "ab", "--repeat", "2", "--repeat-delay", "0.1"])
        .args(["--sender-id", "1", "--key-file", &k])));
    let sub = |extra: &[&str]| {
        run(mqseal(dir.path()).args(["sub", "-t", "fmt/#", "-q", "1", "-W", "3"]).args(conn).args(extra))
    };
    // The retained message is the second of the two: counter 1.
    let out = ok(&sub(&["-C", "1", "-F", "%t|%q|%r|%l|%x|%S|%K|%C|%p\\t", "-N"]));
    assert_eq!(out, "fmt/t|1|1|2|6162|1|5|1|ab\t");
    // -R hides it (stale), --retained-only prints it, then -n clears it.
    assert_eq!(sub(&["-R"]).status.code(), Some(27));
    assert_eq!(ok(&sub(&["--retained-only", "-C", "1"])), "ab\n");
    ok(&run(mqseal(dir.path()).args(["pub", "-t", "fmt/t", "-r", "-n", "--sender-id", "1"]).args(conn)));
    let raw = m.mosquitto_sub(&["-t", "fmt/#", "-W", "2", "-v"]);
    assert!(raw.stdout.is_empty(), "cleared: {:?}", String::from_utf8_lossy(&raw.stdout));
    // --remove-retained clears what it receives.
    ok(&run(mqseal(dir.path()).args(["pub", "-t", "fmt/u", "-r", "-m", "x", "--sender-id", "1"]).args(conn)));
    assert_eq!(ok(&sub(&["--remove-retained", "-C", "1"])), "x\n");
    assert_eq!(sub(&[]).status.code(), Some(27), "nothing retained any more");
}

#[test]
fn pub_reconnects_and_sends_what_it_had_read_after_a_broker_restart() {
    mqseal_test_support::require_mosquitto!();
    let (mut m, dir, k, port) = broker_and_key();
    let conn = ["-h", "127.0.0.1", "-p", &port, "--key-file", &k];
    ok(&run(mqseal(dir.path()).args(["sub", "-t", "rc/t", "-q", "1", "-c", "-i", "rc-sub", "-E"]).args(conn)));
    let mut p =
        spawn_fed(mqseal(dir.path()).args(["pub", "-t", "rc/t", "-q", "1", "-l", "--sender-id", "1"]).args(conn));
    let mut stdin = p.stdin.take().unwrap();
    use std::io::Write;
    writeln!(stdin, "one").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    m.stop();
    writeln!(stdin, "two").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    m.restart_stopped();
    writeln!(stdin, "three").unwrap();
    drop(stdin);
    let out = p.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("reconnected"), "{err}");
    let got = ok(&run(mqseal(dir.path())
        .args(["sub", "-t", "rc/t", "-q", "1", "-c", "-i", "rc-sub", "-C", "3", "-W", "10"])
        .args(conn)));
    assert_eq!(got, "one\ntwo\nthree\n");

    // Without a broker, pub gives up after --reconnect-timeout.
    let mut p = spawn_fed(
        mqseal(dir.path())
            .args(["pub", "-t", "rc/t", "-q", "1", "-l", "--sender-id", "1", "--reconnect-timeout", "2"])
            .args(conn),
    );
    let mut stdin = p.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    m.stop();
    writeln!(stdin, "lost").unwrap();
    let out = p.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not re-established within 2 s (--reconnect-timeout)"));
}

/// Waits until a line containing `needle` arrives (or panics after 20 s);
/// returns every line seen so far.
fn wait_for(lines: &std::sync::mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(l) => {
                let hit = l.contains(needle);
                seen.push(l);
                if hit {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no line with {needle:?}; got {seen:#?}");
}

#[test]
fn a_sealed_will_is_published_when_the_publisher_is_killed_and_debug_shows_the_steps() {
    mqseal_test_support::require_mosquitto!();
    let (m, dir, k, port) = broker_and_key();
    let conn = ["-h", "127.0.0.1", "-p", &port, "--key-file", &k];
    // The subscriber, with -d: connection steps and packets on stderr.
    let mut sub = spawn_reading(
        mqseal(dir.path())
            .args(["sub", "-d", "-t", "will/#", "-q", "1", "-C", "1", "-W", "30", "-F", "%t %p sender=%S counter=%C"])
            .args(conn),
    );
    let sub_err = line_reader(sub.stderr.take().unwrap());
    let steps = wait_for(&sub_err, "SubAck");
    assert!(
        steps.iter().any(|l| l.contains(&format!("mqseal: debug: connecting to mqtt://127.0.0.1:{port}"))),
        "{steps:#?}"
    );
    assert!(steps.iter().any(|l| l.contains("ConnAck")), "{steps:#?}");
    assert!(steps.iter().any(|l| l.contains("Subscribe")), "{steps:#?}");
    // A publisher holding the connection open (-l, nothing on stdin yet),
    // with a sealed will; -d shows its CONNACK.
    let mut publ = spawn_fed(
        mqseal(dir.path())
            .args(["pub", "-d", "-t", "will/data", "-q", "1", "-l", "--sender-id", "1"])
            .args(["--will-topic", "will/dev1", "--will-payload", "offline", "--will-qos", "1", "--will-retain"])
            .args(conn),
    );
    let pub_err = line_reader(publ.stderr.take().unwrap());
    wait_for(&pub_err, "ConnAck");
    // kill -9: no DISCONNECT, so the broker publishes the will.
    publ.kill().unwrap();
    publ.wait().unwrap();
    let out = sub.wait_with_output().unwrap();
    let rest: Vec<String> = sub_err.iter().collect();
    assert!(out.status.success(), "{rest:#?}");
    // Verified by mqseal sub (sealed by sender 1, first counter).
    assert_eq!(String::from_utf8_lossy(&out.stdout), "will/dev1 offline sender=1 counter=0\n");
    assert!(
        rest.iter().any(|l| l.contains("received PUBLISH (q1, r0")
            && l.contains("'will/dev1'")
            && l.contains("verified, sender 1 key 5 counter 0")),
        "{rest:#?}"
    );
    // Retained and sealed on the wire: a plain subscriber sees an
    // envelope, not the text.
    let raw = m.mosquitto_sub(&["-t", "will/dev1", "-C", "1", "-W", "5"]);
    assert!(raw.status.success(), "will not retained");
    assert!(!raw.stdout.is_empty() && !String::from_utf8_lossy(&raw.stdout).contains("offline"), "not sealed");
    // A later mqseal sub gets the retained will and verifies it (-r flag 1).
    let again =
        ok(&run(mqseal(dir.path()).args(["sub", "-t", "will/dev1", "-C", "1", "-W", "10", "-F", "%r %p"]).args(conn)));
    assert_eq!(again, "1 offline\n");
    // -C stops at the count although more messages are there; -W exits 27.
    ok(&run(mqseal(dir.path())
        .args(["pub", "-t", "will/dev2", "-r", "-q", "1", "-m", "two", "--sender-id", "2", "--new-counter-file"])
        .args(conn)));
    let one = ok(&run(mqseal(dir.path()).args(["sub", "-t", "will/#", "-q", "1", "-C", "1", "-W", "10"]).args(conn)));
    assert_eq!(one.lines().count(), 1, "{one}");
    let two = ok(&run(mqseal(dir.path()).args(["sub", "-t", "will/#", "-q", "1", "-C", "2", "-W", "10"]).args(conn)));
    assert_eq!(two.lines().count(), 2, "{two}");
    let out = run(mqseal(dir.path()).args(["sub", "-t", "will/none", "-W", "1"]).args(conn));
    assert_eq!(out.status.code(), Some(27));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out after 1 s"));
}

#[test]
fn small_cli_rules_help_paths_checked_before_connecting_and_zero_counts_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let k = key(d);
    let help = |cmd: &str| ok(&run(mqseal(d).args([cmd, "--help"])));
    for cmd in ["pub", "sub"] {
        let text = help(cmd);
        // The usage line does not make -h/-p (or anything else) required.
        let usage = text.lines().find(|l| l.starts_with("Usage:")).unwrap();
        assert_eq!(usage, format!("Usage: mqseal {cmd} [OPTIONS]"), "{cmd}");
        // The JSON key-file format is in --help.
        for field in ["\"primary\"", "\"keys\"", "\"x25519\"", "\"peers\"", "\"key_id\""] {
            assert!(text.contains(field), "{cmd} --help lacks {field}");
        }
        assert!(text.contains("at least 1"), "{cmd}: --connect-timeout range not documented");
    }
    assert!(help("sub").contains("-C, --count <COUNT>"));
    // -C 0, -W 0 and --connect-timeout 0 are refused (not "forever").
    let port1 = ["-h", "127.0.0.1", "-p", "1", "--key-file", &k];
    for (args, needle) in [
        (&["sub", "-t", "a", "-C", "0"][..], "invalid value '0' for '--count <COUNT>'"),
        (&["sub", "-t", "a", "-W", "0"][..], "invalid value '0' for '--timeout <SECONDS>'"),
        (&["sub", "-t", "a", "--connect-timeout", "0"][..], "invalid value '0' for '--connect-timeout"),
        (
            &["pub", "-t", "a", "-m", "x", "--sender-id", "1", "--connect-timeout", "0"][..],
            "invalid value '0' for '--connect-timeout",
        ),
    ] {
        let out = run(mqseal(d).args(args).args(port1));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        fails_with(&out, needle);
    }
    // --counter-file and --replay-state are checked before connecting: port
    // 1 refuses connections, so an error about the file proves the order.
    let missing_dir = d.join("no-such-dir");
    let counter = missing_dir.join("counter");
    fails_before_connecting(
        &run(mqseal(d)
            .args(["pub", "-t", "a", "-m", "x", "--sender-id", "1", "--counter-file"])
            .arg(&counter)
            .args(port1)),
        &counter.display().to_string(),
    );
    fails_before_connecting(
        &run(mqseal(d)
            .args(["pub", "-t", "a", "-m", "x", "--sender-id", "1", "--new-counter-file", "--counter-file"])
            .arg(&counter)
            .args(port1)),
        &counter.display().to_string(),
    );
    let state = missing_dir.join("replay");
    fails_before_connecting(
        &run(mqseal(d).args(["sub", "-t", "a", "--replay-state"]).arg(&state).args(port1)),
        &state.display().to_string(),
    );
    // A directory is not a replay-state file either.
    fails_before_connecting(
        &run(mqseal(d).args(["sub", "-t", "a", "--replay-state"]).arg(d).args(port1)),
        &d.display().to_string(),
    );
}

#[test]
fn the_readme_lists_exactly_flags_that_exist() {
    mqseal_test_support::require_mosquitto!();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme.find("Supported mosquitto_pub/mosquitto_sub flags:").expect("flag list in README");
    let para = &readme[start..start + readme[start..].find("\n\n").unwrap()];
    let list = &para[..para.find("Exit codes").unwrap()];
    let (common_part, sub_part) = list.split_once("for `sub`").unwrap();
    let flags = |s: &str| -> Vec<String> {
        s.split('`')
            .skip(1)
            .step_by(2)
            .flat_map(|chunk| chunk.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let help = |cmd: &str| ok(&run(mqseal(dir.path()).args([cmd, "--help"])));
    let (pub_help, sub_help) = (help("pub"), help("sub"));
    let has = |text: &str, flag: &str| {
        text.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with(&format!("{flag} "))
                || l.starts_with(&format!("{flag},"))
                || l.contains(&format!(", {flag} "))
                || l.ends_with(flag) && l.starts_with('-')
        })
    };
    let common = flags(common_part);
    assert!(common.len() > 20, "{common:?}");
    for f in &common {
        // The will and repeat flags are mosquitto_pub's; everything else both.
        let in_pub = has(&pub_help, f);
        let pub_only = f.starts_with("--will")
            || f.starts_with("--repeat")
            || ["-r", "-m", "-f", "-s", "-l", "-n"].contains(&f.as_str());
        assert!(in_pub, "README lists {f}, `mqseal pub --help` lacks it");
        if !pub_only {
            assert!(has(&sub_help, f), "README lists {f}, `mqseal sub --help` lacks it");
        }
    }
    let sub_flags = flags(sub_part);
    assert!(sub_flags.len() >= 8, "{sub_flags:?}");
    for f in &sub_flags {
        assert!(has(&sub_help, f), "README lists {f} for sub, `mqseal sub --help` lacks it");
    }
}
