//! `mqseal member init`, `mqseal pub/sub --member`: members of key
//! distribution as real processes over a real Mosquitto. The authority's
//! side is played with the core's own functions (`seal_control`,
//! `open_ack`): the protocol's real other side. Every envelope on the
//! telemetry and ack topics is recorded by a plain subscriber and checked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::std_instead_of_core)]

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::process::Child;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use mqseal::{
    control_sealer, open_ack, seal_control, ControlState, ControlTopics, Envelope, Group, GroupKey, Key,
    MemoryCounterStore, PublicKey, Sealer, StaticKeyPair, Suite, MAX_CONTROL_ENVELOPE_LEN,
};
use mqseal_test_support::cli::{line_reader, mqseal, ok, run, spawn_fed, spawn_reading, Recorder};
use mqseal_test_support::Mosquitto;

const GROUP: &str = "telemetry";

/// The authority: its key pair and one control sealer per member (its
/// counter never goes back while the test runs).
struct Authority {
    pair: StaticKeyPair,
    sealers: Vec<(String, PublicKey, Sealer<MemoryCounterStore>)>,
}

impl Authority {
    fn new() -> Self {
        Authority { pair: StaticKeyPair::generate().unwrap(), sealers: Vec::new() }
    }

    /// An authority with `members` initialised in `dir` (`mqseal member
    /// init`) and enrolled.
    fn enrolled(dir: &Path, members: &[&str]) -> Self {
        let mut auth = Authority::new();
        for m in members {
            let public = init(dir, m, &auth.public_text());
            auth.enrol(m, &public);
        }
        auth
    }

    fn public_text(&self) -> String {
        self.pair.public().to_text().as_str().to_owned()
    }

    fn enrol(&mut self, id: &str, public: &str) {
        let public = PublicKey::from_text(public.trim()).unwrap();
        let sealer = control_sealer(&self.pair, &public, MemoryCounterStore::new()).unwrap();
        self.sealers.push((id.to_owned(), public, sealer));
    }

    /// The sealed state `s` for its member (the control topic's payload).
    fn seal(&mut self, s: &ControlState) -> Vec<u8> {
        let (_, _, sealer) = self.sealers.iter_mut().find(|(id, _, _)| id == s.member_id()).unwrap();
        let mut out = vec![0u8; MAX_CONTROL_ENVELOPE_LEN];
        let n = seal_control(sealer, &ControlTopics::default(), s, &mut out).unwrap();
        out.truncate(n);
        out
    }

    /// Seals `s` and publishes it, retained, on its member's control topic
    /// (`mqseal/v1/ctl/<member>`); returns the envelope.
    fn publish(&mut self, m: &Mosquitto, s: &ControlState) -> Vec<u8> {
        let envelope = self.seal(s);
        m.publish_retained(&format!("mqseal/v1/ctl/{}", s.member_id()), &envelope);
        envelope
    }

    /// Opens every ack of `member` recorded, in order; returns (epoch,
    /// counter) of each. Fails on an ack that does not verify or a counter
    /// that does not grow.
    fn acks(&self, member: &str, recorded: &[Vec<u8>]) -> Vec<(u64, u64)> {
        let (_, public, _) = self.sealers.iter().find(|(id, _, _)| id == member).unwrap();
        let topic = format!("mqseal/v1/ack/{member}");
        let mut last = None;
        let mut out = Vec::new();
        for env in recorded {
            let mut buf = env.clone();
            let got = open_ack(&self.pair, public, member, &ControlTopics::default(), &topic, &mut buf, last)
                .unwrap_or_else(|e| panic!("ack of {member} rejected: {e} (an ack counter reused?)"));
            last = Some(got.counter);
            out.push((got.ack.epoch, got.counter));
        }
        out
    }
}

/// The members of a test and their authority: initialised in a temp dir
/// and enrolled, their acks (on `acks`, a topic filter) and the telemetry
/// (`tel/#`) recorded from the start.
struct Fleet {
    tmp: tempfile::TempDir,
    auth: Authority,
    acks: Recorder,
    wire: Recorder,
}

impl Fleet {
    fn enrolled(m: &Mosquitto, members: &[&str], acks: &str) -> Fleet {
        let tmp = tempfile::tempdir().unwrap();
        let auth = Authority::enrolled(tmp.path(), members);
        let acks = Recorder::start(m.tcp, acks);
        let wire = Recorder::start(m.tcp, "tel/#");
        Fleet { tmp, auth, acks, wire }
    }
}

fn key(id: u32) -> Key {
    Key::from_bytes(id, [u8::try_from(id).unwrap(); 32])
}

/// A state with the group's keys `(key id, sender id, activation, end)`.
fn state(
    member: &str,
    epoch: u64,
    seal_now: u32,
    seal_next: Option<u32>,
    keys: &[(u32, u32, u64, Option<u64>)],
) -> ControlState {
    let mut s = ControlState::new(member, epoch).unwrap();
    let mut g = Group::new(GROUP, seal_now, seal_next).unwrap();
    for &(id, sender, activation, end) in keys {
        g.push_key(GroupKey::new(&key(id), Suite::ChaCha20Poly1305, sender, activation, end)).unwrap();
    }
    s.push_group(g).unwrap();
    s
}

/// A member's first state: epoch 1, key 7, with `sender` as its sender id.
fn first_state(member: &str, sender: u32) -> ControlState {
    state(member, 1, 7, None, &[(7, sender, 0, None)])
}

fn now() -> u64 {
    mqseal::system_clock()
}

fn init(dir: &Path, id: &str, authority: &str) -> String {
    let out =
        ok(&run(mqseal(dir).args(["member", "init", "--id", id, "--authority", authority, "--dir"]).arg(dir.join(id))));
    assert!(out.trim().starts_with("mqseal:x25519-public:v1:"), "{out}");
    out.trim().to_owned()
}

fn port_args(m: &Mosquitto) -> Vec<String> {
    ["-h", "127.0.0.1", "-p", &m.tcp.to_string()].iter().map(|s| (*s).to_owned()).collect()
}

/// Waits for a line of `rx` containing `needle`; returns every line read.
fn wait_for(rx: &Receiver<String>, needle: &str, timeout: Duration, seen: &mut Vec<String>) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                return;
            }
        }
    }
    panic!("no line with {needle:?} within {timeout:?}; got {seen:#?}");
}

/// Takes the stderr of `child` and waits (20 s at most) for a line with
/// `needle`: the reader and the lines seen so far.
fn stderr_until(child: &mut Child, needle: &str) -> (Receiver<String>, Vec<String>) {
    let err = line_reader(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    wait_for(&err, needle, Duration::from_secs(20), &mut seen);
    (err, seen)
}

/// `sub --member` on `tel/#`, running; stdout and stderr piped.
fn sub_member(dir: &Path, m: &Mosquitto, member: &str, extra: &[&str]) -> Child {
    spawn_reading(
        mqseal(dir)
            .arg("sub")
            .args(port_args(m))
            .args(["-t", "tel/#", "-q", "1", "--group", GROUP, "--member"])
            .arg(dir.join(member))
            .args(extra),
    )
}

/// `pub --member -l` on `tel/a`, running: it publishes the lines written to
/// its stdin.
fn pub_member(dir: &Path, m: &Mosquitto, member: &str, extra: &[&str]) -> Child {
    spawn_fed(
        mqseal(dir)
            .arg("pub")
            .args(port_args(m))
            .args(["-t", "tel/a", "-q", "1", "-l", "--group", GROUP, "--member"])
            .arg(dir.join(member))
            .args(extra),
    )
}

/// A one-shot `pub --member -m MSG` on `tel/a` at QoS 1 that must succeed.
fn pub_member_once(dir: &Path, m: &Mosquitto, member: &str, msg: &str, extra: &[&str]) {
    ok(&run(mqseal(dir)
        .arg("pub")
        .args(port_args(m))
        .args(["-t", "tel/a", "-q", "1", "-m", msg, "--group", GROUP, "--member"])
        .arg(dir.join(member))
        .args(extra)));
}

/// (key id, sender id) of every envelope `wire` recorded, in order.
fn keys_on_the_wire(wire: &Recorder) -> Vec<(u32, u32)> {
    wire.payloads()
        .iter()
        .map(|e| {
            let h = Envelope::parse(e).unwrap().header;
            (h.key_id, h.sender_id)
        })
        .collect()
}

/// Sealed telemetry between a `pub --member` and a `sub --member` across a
/// scheduled rotation: no verified message lost, old-key messages accepted
/// during the grace period; a stale, a forged and a copied control message
/// change nothing and are reported.
#[test]
fn members_exchange_telemetry_across_a_scheduled_rotation_and_reject_bad_control_messages() {
    let m = mqseal_test_support::mosquitto_or_skip!();
    let Fleet { tmp, mut auth, acks, wire } = Fleet::enrolled(&m, &["sensor", "dash"], "mqseal/v1/ack/sensor");
    let d = tmp.path();

    let t0 = now();
    let sensor1 = auth.publish(&m, &first_state("sensor", 1));
    auth.publish(&m, &first_state("dash", 2));

    let mut sub = sub_member(d, &m, "dash", &[]);
    let sub_out = line_reader(sub.stdout.take().unwrap());
    let (sub_err, _) = stderr_until(&mut sub, "epoch 1");
    let mut publisher = pub_member(d, &m, "sensor", &[]);
    let (pub_err, mut pub_seen) = stderr_until(&mut publisher, "epoch 1");
    let mut stdin = publisher.stdin.take().unwrap();

    // Epoch 2: key 8 from t0 + 6, key 7 accepted until t0 + 60.
    let switch = t0 + 6;
    let rotate = |who: &str, sender7: u32, sender8: u32| {
        state(who, 2, 7, Some(8), &[(7, sender7, 0, Some(t0 + 60)), (8, sender8, switch, None)])
    };
    let mut sent = 0u32;
    let mut send = |stdin: &mut std::process::ChildStdin, n: u32| {
        for _ in 0..n {
            sent += 1;
            writeln!(stdin, "m{sent}").unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    send(&mut stdin, 10);
    let sensor2 = auth.publish(&m, &rotate("sensor", 1, 3));
    let dash2 = auth.publish(&m, &rotate("dash", 2, 4));
    while now() < switch + 2 {
        send(&mut stdin, 5);
    }

    // A stale state (epoch 1 again), a forged one, one copied from dash's
    // topic: each reported, none applied.
    m.publish_retained("mqseal/v1/ctl/sensor", &sensor1);
    wait_for(&pub_err, "rejected", Duration::from_secs(10), &mut pub_seen);
    let mut forged = sensor2.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    m.publish_retained("mqseal/v1/ctl/sensor", &forged);
    wait_for(&pub_err, "(auth)", Duration::from_secs(10), &mut pub_seen);
    m.publish_retained("mqseal/v1/ctl/sensor", &dash2);
    send(&mut stdin, 5);
    drop(stdin);
    let status = publisher.wait().unwrap();
    let rest: Vec<String> = pub_err.try_iter().collect();
    pub_seen.extend(rest);
    assert!(status.success(), "pub failed: {pub_seen:#?}");
    let rejected = pub_seen.iter().filter(|l| l.contains("control message on mqseal/v1/ctl/sensor rejected")).count();
    assert_eq!(rejected, 3, "stale, forged and copied states each reported once: {pub_seen:#?}");

    // Every line arrived, in order.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < sent as usize && Instant::now() < deadline {
        if let Ok(l) = sub_out.recv_timeout(Duration::from_millis(100)) {
            got.push(l);
        }
    }
    let _ = sub.kill();
    let _ = sub.wait();
    let want: Vec<String> = (1..=sent).map(|i| format!("m{i}")).collect();
    let sub_lines: Vec<String> = sub_err.try_iter().collect();
    assert_eq!(got, want, "sub stderr: {sub_lines:#?}");

    // Both keys on the wire: key 7 (sender 1) before the switch, key 8
    // (sender 3) after; counters unique per (key, sender).
    let mut pairs = HashSet::new();
    let mut keys_seen = Vec::new();
    for env in wire.payloads() {
        let h = Envelope::parse(&env).unwrap().header;
        assert!(pairs.insert((h.key_id, h.sender_id, h.counter)), "counter reused: {h:?}");
        if keys_seen.last() != Some(&(h.key_id, h.sender_id)) {
            keys_seen.push((h.key_id, h.sender_id));
        }
    }
    assert_eq!(keys_seen, vec![(7, 1), (8, 3)], "one switch, at the scheduled time");
    assert!(
        d.join("sensor/seal-telemetry-7-1.counter").exists() && d.join("sensor/seal-telemetry-8-3.counter").exists()
    );

    // Acks: epochs 1 and 2, verified by the authority, counters growing.
    let epochs: Vec<u64> = auth.acks("sensor", &acks.payloads()).iter().map(|a| a.0).collect();
    assert_eq!(epochs, vec![1, 2]);
    let status = ok(&run(mqseal(d).args(["member", "status", "--dir"]).arg(d.join("sensor"))));
    assert!(status.contains("epoch 2") && status.contains("seals with key 8 as sender 3"), "{status}");
}

/// `kill -9` right after applying a state, then a restart while the member
/// missed two epochs: it converges from the retained message alone, and
/// no ack counter or sealing counter is used twice.
#[test]
fn a_killed_member_restarts_without_reusing_counters_and_converges_from_the_retained_state() {
    let m = mqseal_test_support::mosquitto_or_skip!();
    let Fleet { tmp, mut auth, acks, wire } = Fleet::enrolled(&m, &["sensor"], "mqseal/v1/ack/sensor");
    let d = tmp.path();
    auth.publish(&m, &first_state("sensor", 1));

    for round in 0..2 {
        let mut publisher = pub_member(d, &m, "sensor", &[]);
        let err = line_reader(publisher.stderr.take().unwrap());
        let mut seen = Vec::new();
        if round == 0 {
            wait_for(&err, "epoch 1", Duration::from_secs(20), &mut seen);
        }
        let mut stdin = publisher.stdin.take().unwrap();
        for i in 0..5 {
            writeln!(stdin, "r{round}-{i}").unwrap();
        }
        std::thread::sleep(Duration::from_millis(1500));
        // kill -9: no clean shutdown.
        publisher.kill().unwrap();
        let _ = publisher.wait();
    }
    // Offline across epochs 2 and 3: only the last stays retained.
    auth.publish(&m, &state("sensor", 2, 7, None, &[(7, 1, 0, None)]));
    auth.publish(&m, &state("sensor", 3, 9, None, &[(7, 1, 0, Some(now() + 600)), (9, 5, 0, None)]));
    let mut publisher = pub_member(d, &m, "sensor", &[]);
    let (_err, seen) = stderr_until(&mut publisher, "epoch 3");
    let mut stdin = publisher.stdin.take().unwrap();
    writeln!(stdin, "after").unwrap();
    drop(stdin);
    assert!(publisher.wait().unwrap().success(), "{seen:#?}");

    // Acks: epoch 1 once, then 3; counters strictly growing (open_ack checks).
    std::thread::sleep(Duration::from_millis(500));
    let got = auth.acks("sensor", &acks.payloads());
    assert_eq!(got.iter().map(|a| a.0).collect::<Vec<_>>(), vec![1, 3], "{got:?}");
    let mut pairs = HashSet::new();
    let mut last_key = None;
    for env in wire.payloads() {
        let h = Envelope::parse(&env).unwrap().header;
        assert!(pairs.insert((h.key_id, h.sender_id, h.counter)), "sealing counter reused: {h:?}");
        last_key = Some((h.key_id, h.sender_id));
    }
    assert!(pairs.len() >= 11, "{} envelopes", pairs.len());
    assert_eq!(last_key, Some((9, 5)), "sealed with the key of epoch 3 after converging");
    let status = ok(&run(mqseal(d).args(["member", "status", "--dir"]).arg(d.join("sensor"))));
    assert!(status.contains("epoch 3"), "{status}");
}

/// One `sub --member` run that waits for `want` on stdout (or, with `None`,
/// for `-W` to expire), then is killed with SIGKILL: (stdout, stderr).
fn sub_member_round(
    d: &Path,
    m: &Mosquitto,
    extra: &[&str],
    want: Option<&str>,
    quiet_for: Duration,
) -> (Vec<String>, Vec<String>) {
    let mut sub = sub_member(d, m, "dash", extra);
    let out = line_reader(sub.stdout.take().unwrap());
    let err = line_reader(sub.stderr.take().unwrap());
    let mut got = Vec::new();
    let deadline = Instant::now() + if want.is_some() { Duration::from_secs(20) } else { quiet_for };
    while Instant::now() < deadline {
        if let Ok(l) = out.recv_timeout(Duration::from_millis(100)) {
            let hit = want.is_some_and(|w| l == w);
            got.push(l);
            if hit {
                break;
            }
        }
    }
    // kill -9: no clean shutdown, no final save.
    sub.kill().unwrap();
    let _ = sub.wait();
    got.extend(out.try_iter());
    (got, err.try_iter().collect())
}

/// `sub --member --replay-state FILE`: a member subscriber killed with
/// SIGKILL after printing a message rejects that envelope, published
/// again, after its restart. The same run without --replay-state accepts
/// it again (what the test catches if the option were ignored).
#[test]
fn a_restarted_member_subscriber_with_replay_state_rejects_what_it_accepted() {
    let m = mqseal_test_support::mosquitto_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let mut auth = Authority::enrolled(d, &["sensor", "dash"]);
    auth.publish(&m, &first_state("sensor", 1));
    auth.publish(&m, &first_state("dash", 2));
    let wire = Recorder::start(m.tcp, "tel/#");

    // The member publishes one message, retained: every subscription gets
    // it, the same envelope each time.
    pub_member_once(d, &m, "sensor", "once", &["-r"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while wire.payloads().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let envelope = wire.payloads().first().cloned().expect("the envelope on the wire");

    for (replay, file) in [(true, "replay.state"), (false, "")] {
        let state = d.join(file);
        let state_arg = state.to_str().unwrap();
        let extra: &[&str] = if replay { &["--replay-state", state_arg] } else { &[] };
        let (got, err) = sub_member_round(d, &m, extra, Some("once"), Duration::ZERO);
        assert_eq!(got, vec!["once".to_owned()], "first run accepts it: {err:#?}");
        if replay {
            assert!(state.exists(), "the replay state is saved before the message is printed");
        }
        // The envelope again, as a new retained publish of the same bytes.
        m.publish_retained("tel/a", &envelope);
        let (got, err) = sub_member_round(d, &m, extra, None, Duration::from_secs(4));
        if replay {
            assert!(got.is_empty(), "accepted twice across a restart: {got:?}");
            assert!(
                err.iter().any(|l| l.contains("rejected message on tel/a") && l.contains("(duplicate)")),
                "the copy is reported as a duplicate: {err:#?}"
            );
        } else {
            assert_eq!(got, vec!["once".to_owned()], "without --replay-state the copy opens again: {err:#?}");
        }
    }
}

/// Options `sub --member` does not support are refused, never ignored;
/// the receiver policy it does support is checked (a bad window fails).
#[test]
fn sub_member_refuses_unsupported_options_and_checks_the_receiver_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let base = ["sub", "-h", "127.0.0.1", "-p", "1", "-t", "tel/#", "--group", GROUP, "--member"];
    for extra in [&["--replay-redis", "redis://127.0.0.1:1"][..], &["--retained-only"], &["--remove-retained"], &["-E"]]
    {
        let out = run(mqseal(d).args(base).arg(d.join("dash")).args(extra));
        assert!(!out.status.success(), "{extra:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot be used with"), "{extra:?}: {err}");
    }
    let pub_base = ["pub", "-h", "127.0.0.1", "-p", "1", "-t", "tel/a", "-m", "x", "--group", GROUP, "--member"];
    for extra in [&["--timestamps"][..], &["--clock-floor"], &["--new-counter-file"]] {
        let out = run(mqseal(d).args(pub_base).arg(d.join("dash")).args(extra));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("cannot be used with"), "pub {extra:?}: {err}");
    }
    let a = StaticKeyPair::generate().unwrap().public().to_text().as_str().to_owned();
    init(d, "dash", &a);
    for (extra, needle) in [
        (&["--window", "0"][..], "--window 0 is out of range"),
        (&["--eviction", "lru"], "--eviction lru needs --max-age"),
        (&["--gaps", "9"], "--gaps 9 is out of range"),
    ] {
        let out = run(mqseal(d).args(base).arg(d.join("dash")).args(extra));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(needle), "{extra:?}: {err}");
    }
}

/// MQTT 5 members (`-V 5`): a `sub --member` and a `pub --member` apply
/// their control states over MQTT 5 and exchange telemetry; a new state
/// applied while the subscriber runs (a new key) is used by both.
#[test]
fn mqtt5_members_apply_control_states_and_exchange_telemetry() {
    let m = mqseal_test_support::mosquitto_or_skip!();
    let Fleet { tmp, mut auth, acks, wire } = Fleet::enrolled(&m, &["sensor", "dash"], "mqseal/v1/ack/#");
    let d = tmp.path();
    auth.publish(&m, &first_state("sensor", 1));
    auth.publish(&m, &first_state("dash", 2));

    let mut sub = sub_member(d, &m, "dash", &["-V", "5"]);
    let out = line_reader(sub.stdout.take().unwrap());
    let (err, mut seen) = stderr_until(&mut sub, "applied the control state of epoch 1");
    let mut publisher = pub_member(d, &m, "sensor", &["-V", "5"]);
    let (pub_err, mut pub_seen) = stderr_until(&mut publisher, "applied the control state of epoch 1");
    let mut stdin = publisher.stdin.take().unwrap();
    writeln!(stdin, "v5-one").unwrap();
    let mut lines = Vec::new();
    wait_for(&out, "v5-one", Duration::from_secs(20), &mut lines);

    // Epoch 2: key 8 now, key 7 still accepted; applied by both running
    // members.
    let rotated = |who: &str, s7: u32, s8: u32| state(who, 2, 8, None, &[(7, s7, 0, None), (8, s8, 0, None)]);
    auth.publish(&m, &rotated("dash", 2, 4));
    wait_for(&err, "applied the control state of epoch 2", Duration::from_secs(20), &mut seen);
    auth.publish(&m, &rotated("sensor", 1, 3));
    wait_for(&pub_err, "applied the control state of epoch 2", Duration::from_secs(20), &mut pub_seen);
    writeln!(stdin, "v5-two").unwrap();
    drop(stdin);
    assert!(publisher.wait().unwrap().success(), "{pub_seen:#?}");
    wait_for(&out, "v5-two", Duration::from_secs(20), &mut lines);
    let _ = sub.kill();
    let _ = sub.wait();
    assert_eq!(lines, vec!["v5-one".to_owned(), "v5-two".to_owned()], "{seen:#?}");

    assert_eq!(
        keys_on_the_wire(&wire),
        vec![(7, 1), (8, 3)],
        "sealed with the assigned key and sender id of each epoch"
    );
    // Both members acknowledged both epochs over MQTT 5.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(acks.payloads().len(), 4, "two acks from each member");
}

/// A one-shot `pub --member -m` (a cron job) that was not running when the
/// group rotated takes the retained state before it seals: it seals with
/// the new key and acknowledges the new epoch. Without the wait it sealed
/// with the key it held when it last ran and never acknowledged.
#[test]
fn a_one_shot_publisher_takes_the_retained_state_before_it_seals() {
    let m = mqseal_test_support::mosquitto_or_skip!();
    let Fleet { tmp, mut auth, acks, wire } = Fleet::enrolled(&m, &["sensor"], "mqseal/v1/ack/#");
    let d = tmp.path();
    let once = |msg: &str| pub_member_once(d, &m, "sensor", msg, &[]);
    auth.publish(&m, &first_state("sensor", 1));
    once("first");
    // Rotated while no publisher runs: key 8 now, key 7 still accepted.
    let rotated = state("sensor", 2, 8, None, &[(7, 1, 0, None), (8, 5, 0, None)]);
    auth.publish(&m, &rotated);
    once("second");
    once("third");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        keys_on_the_wire(&wire),
        vec![(7, 1), (8, 5), (8, 5)],
        "each run seals with the newest retained state's key"
    );
    let epochs: Vec<u64> = auth.acks("sensor", &acks.payloads()).into_iter().map(|(epoch, _)| epoch).collect();
    assert_eq!(epochs, vec![1, 2], "each epoch acknowledged once, by the run that first saw it");
}
