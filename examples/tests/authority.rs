//! `mqseal authority` as real processes against a real Mosquitto, with
//! in-process members (the core's `MemberAgent` over rumqttc): enrolment,
//! retained states and acks, rotation while serving, revocation, a member
//! offline across two rotations, forged / replayed / moved control
//! messages, and kill -9 of the authority in the middle of enrolment,
//! rotations and serving.
//!
//! Needs Mosquitto (`mosquitto_or_skip!`): skipped when it is not
//! installed, a failure under CI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::std_instead_of_core)]

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use mqseal::{Error, MemberAgent, MemoryCounterStore, PublicKey, Sealer, StaticKeyPair};
use mqseal_authority::Registry;
use mqseal_test_support::cli::{mqseal, ok, run};
use mqseal_test_support::member::ApplyInMemory;
use mqseal_test_support::mosquitto_or_skip;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

struct TestMember {
    id: String,
    pair: StaticKeyPair,
    /// The persisted member-state record (None before the first state).
    record: Option<Vec<u8>>,
}

/// What one member session saw.
#[derive(Debug, Default)]
struct Session {
    applied: Vec<u64>,
    refused: Vec<Error>,
    cleared: bool,
    messages: usize,
}

impl TestMember {
    fn new(i: u8) -> TestMember {
        TestMember { id: format!("dev-{i}"), pair: StaticKeyPair::from_secret_bytes([0x30 + i; 32]), record: None }
    }

    fn agent(&self, authority: &PublicKey) -> MemberAgent {
        MemberAgent::new(&self.pair, &self.id, authority, &mqseal::ControlTopics::default(), self.record.as_deref())
            .unwrap()
    }

    /// Connects, takes control messages (and `inject`ed ones, published by
    /// the test on the member's topic once subscribed) until the agent
    /// holds `want` (or, with `want == 0`, for `linger`), acks each applied
    /// state, persists the record.
    fn session(&mut self, port: u16, authority: &PublicKey, want: u64, inject: &[(String, Vec<u8>)]) -> Session {
        let mut agent = self.agent(authority);
        let mut o = MqttOptions::new(format!("{}-{}", self.id, std::process::id()), "127.0.0.1", port);
        o.set_max_packet_size(1 << 16, 1 << 16);
        o.set_clean_session(true);
        let (client, mut conn) = Client::new(o, 16);
        client.subscribe(agent.control_topic(), QoS::AtLeastOnce).unwrap();
        let mut s = Session::default();
        let deadline = Instant::now() + Duration::from_secs(if want == 0 { 3 } else { 30 });
        let mut injected = false;
        let mut acks_out = 0usize;
        while Instant::now() < deadline {
            let ev = match conn.recv_timeout(Duration::from_millis(200)) {
                Ok(Ok(ev)) => ev,
                Ok(Err(e)) => panic!("{}: broker: {e}", self.id),
                Err(_) => {
                    if want != 0 && agent.state().is_some_and(|st| st.epoch() >= want) && acks_out == 0 {
                        break;
                    }
                    continue;
                }
            };
            match ev {
                Event::Incoming(Packet::SubAck(_)) if !injected => {
                    injected = true;
                    for (topic, bytes) in inject {
                        client.publish(topic.clone(), QoS::AtLeastOnce, false, bytes.clone()).unwrap();
                    }
                }
                Event::Incoming(Packet::PubAck(_)) => acks_out = acks_out.saturating_sub(1),
                Event::Incoming(Packet::Publish(p)) => {
                    s.messages += 1;
                    if p.payload.is_empty() {
                        s.cleared = true;
                        continue;
                    }
                    match agent.apply(&p.topic, &p.payload, Some(mqseal_authority::unix_now())) {
                        Ok(applied) => {
                            self.record = Some(applied.state.to_vec());
                            s.applied.push(applied.epoch);
                            client.publish(agent.ack_topic(), QoS::AtLeastOnce, false, applied.ack.clone()).unwrap();
                            acks_out += 1;
                        }
                        Err(e) => s.refused.push(e),
                    }
                }
                _ => {}
            }
        }
        let _ = client.disconnect();
        s
    }

    /// The record's agent, to check its keys.
    fn held(&self, authority: &PublicKey) -> MemberAgent {
        self.agent(authority)
    }
}

fn registry_cmd(reg: &Path, args: &[&str]) -> String {
    let dir = reg.parent().unwrap();
    ok(&run(mqseal(dir).arg("authority").arg("--registry").arg(reg).args(args)))
}

/// A running `mqseal authority serve`, killed (by its own handle) when the
/// test ends, also when it fails.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `mqseal authority serve` on the registry `reg`, its stdout in
/// `serve.log` next to it (started afresh each time).
fn serve(reg: &Path, port: u16) -> Server {
    let dir = reg.parent().unwrap();
    let child = mqseal(dir)
        .arg("authority")
        .arg("--registry")
        .arg(reg)
        .args(["serve", "-h", "127.0.0.1", "-p", &port.to_string(), "--poll", "1"])
        .stdout(Stdio::from(std::fs::File::create(dir.join("serve.log")).unwrap()))
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Server(child)
}

fn kill9(child: &mut Child) {
    // SIGKILL of the child we spawned, by its own handle.
    child.kill().unwrap();
    child.wait().unwrap();
}

fn epoch_of(reg: &Path, member: &str) -> u64 {
    Registry::open(reg).unwrap().status().unwrap().into_iter().find(|m| m.id == member).unwrap().epoch
}

/// Waits until `status` shows every listed member current.
fn wait_current(reg: &Path, members: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = registry_cmd(reg, &["status"]);
        if members.iter().all(|m| out.lines().any(|l| l.starts_with(&format!("{m} ")) && l.contains(" current "))) {
            return;
        }
        assert!(Instant::now() < deadline, "members not current:\n{out}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A registry in `dir` (groups `telemetry` and `cmd`) with `n` members
/// (`dev-0`, ...) enrolled in both: the members, the registry's path and
/// the authority's public key.
fn setup(dir: &Path, n: u8) -> (Vec<TestMember>, PathBuf, PublicKey) {
    let members: Vec<TestMember> = (0..n).map(TestMember::new).collect();
    let reg = dir.join("authority.db");
    let public = registry_cmd(&reg, &["init"]);
    let auth = PublicKey::from_text(public.trim()).unwrap();
    registry_cmd(&reg, &["group", "create", "telemetry"]);
    registry_cmd(&reg, &["group", "create", "cmd", "--suite", "hmac-sha256"]);
    for m in &members {
        let public = m.pair.public().to_text();
        registry_cmd(&reg, &["member", "add", "--id", &m.id, "--public", public.as_str(), "--group", "telemetry,cmd"]);
    }
    (members, reg, auth)
}

#[test]
fn serve_hands_out_states_rotates_revokes_and_survives_kill_9() {
    let broker = mosquitto_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let (mut members, reg, auth) = setup(dir.path(), 4);
    let mut server = serve(&reg, broker.tcp);

    // Every member finds its retained state, applies it, acks.
    for m in &mut members {
        let want = epoch_of(&reg, &m.id);
        let s = m.session(broker.tcp, &auth, want, &[]);
        assert_eq!(s.applied, vec![want], "{}: {s:?}", m.id);
    }
    wait_current(&reg, &["dev-0", "dev-1", "dev-2", "dev-3"]);
    // The first retained envelope of dev-0 and one of dev-1, for the attacks.
    let old_dev0 = Registry::open(&reg).unwrap().all_sealed().unwrap()[0].clone();
    let dev1_env = Registry::open(&reg).unwrap().all_sealed().unwrap()[1].clone();

    // Two rotations while dev-3 is offline; the others follow each.
    registry_cmd(&reg, &["rotate", "telemetry", "--at", "now", "--grace", "1h"]);
    std::thread::sleep(Duration::from_millis(1100));
    for m in &mut members[..3] {
        let want = epoch_of(&reg, &m.id);
        let s = m.session(broker.tcp, &auth, want, &[]);
        assert_eq!(s.applied, vec![want], "{}: {s:?}", m.id);
    }
    registry_cmd(&reg, &["rotate", "telemetry", "--at", "now", "--grace", "1h"]);
    std::thread::sleep(Duration::from_millis(1100));
    for m in &mut members[..3] {
        let want = epoch_of(&reg, &m.id);
        m.session(broker.tcp, &auth, want, &[]);
    }
    // dev-3 converges from the retained message alone: one message.
    let want = epoch_of(&reg, "dev-3");
    let s = members[3].session(broker.tcp, &auth, want, &[]);
    assert_eq!((s.applied.clone(), s.messages), (vec![want], 1), "{s:?}");
    let now = mqseal_authority::unix_now();
    let d0 = members[0].held(&auth);
    let d3 = members[3].held(&auth);
    assert_eq!(
        d3.sealing("telemetry", Some(now)).unwrap().key.id(),
        d0.sealing("telemetry", Some(now)).unwrap().key.id()
    );
    wait_current(&reg, &["dev-0", "dev-1", "dev-2", "dev-3"]);

    // An old retained state re-published, a forged one, and dev-1's state on
    // dev-0's topic: each refused and reported, dev-0's epoch unchanged.
    let before = members[0].held(&auth).state().unwrap().epoch();
    let topic0 = old_dev0.topic().to_owned();
    let mut forged = old_dev0.payload().to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 0x55;
    let inject = vec![
        (topic0.clone(), old_dev0.payload().to_vec()),
        (topic0.clone(), forged),
        (topic0.clone(), dev1_env.payload().to_vec()),
    ];
    let s = members[0].session(broker.tcp, &auth, 0, &inject);
    assert!(s.applied.is_empty(), "{s:?}");
    // The retained current state (duplicate), then the three attacks.
    assert_eq!(s.refused, vec![Error::Duplicate, Error::Replay, Error::Auth, Error::Auth], "{s:?}");
    assert_eq!(members[0].held(&auth).state().unwrap().epoch(), before);

    // Revoke dev-2: the others get a key it never held; its topic is cleared.
    let dev2_keys: Vec<u32> =
        members[2].held(&auth).state().unwrap().group("telemetry").unwrap().keys().iter().map(|k| k.key_id()).collect();
    registry_cmd(&reg, &["revoke", "dev-2", "--at", "now", "--grace", "1h"]);
    for i in [0usize, 1, 3] {
        let want = epoch_of(&reg, &members[i].id);
        let s = members[i].session(broker.tcp, &auth, want, &[]);
        assert_eq!(s.applied, vec![want], "{s:?}");
    }
    // Its retained state is deleted (an empty retained message): a new
    // session of the revoked member finds nothing on its control topic.
    let s = members[2].session(broker.tcp, &auth, 0, &[]);
    assert!(s.messages == 0 && s.applied.is_empty(), "{s:?}");
    let now = mqseal_authority::unix_now();
    let seal = members[0].held(&auth).sealing("telemetry", Some(now)).unwrap();
    assert!(!dev2_keys.contains(&seal.key.id()), "new key {} known to the revoked member", seal.key.id());
    let mut sealer = Sealer::new(&seal.key, seal.sender_id, seal.suite, MemoryCounterStore::new()).unwrap();
    let env = sealer.seal_to_vec("plant/t", b"after revoke").unwrap();
    let mut revoked_view: mqseal::Opener<4, 8> =
        mqseal::Opener::new(members[2].held(&auth).keyring("telemetry", Some(now)).unwrap().unwrap());
    assert_eq!(revoked_view.open_to_vec("plant/t", &env).unwrap_err(), Error::UnknownKey(seal.key.id()));
    let mut peer: mqseal::Opener<4, 8> =
        mqseal::Opener::new(members[1].held(&auth).keyring("telemetry", Some(now)).unwrap().unwrap());
    assert_eq!(peer.open_to_vec("plant/t", &env).unwrap().payload, b"after revoke");
    let status = registry_cmd(&reg, &["status"]);
    assert!(status.lines().any(|l| l.starts_with("dev-2 ") && l.contains("revoked")), "{status}");

    // Kill -9 serve right after rotations, restart, members converge.
    for round in 0..3u64 {
        std::thread::sleep(Duration::from_millis(1100));
        registry_cmd(&reg, &["rotate", "cmd", "--at", "now", "--grace", "1s"]);
        std::thread::sleep(Duration::from_millis(150 * round));
        kill9(&mut server.0);
        Registry::open(&reg).unwrap().verify().unwrap();
        server = serve(&reg, broker.tcp);
        for i in [0usize, 1, 3] {
            let want = epoch_of(&reg, &members[i].id);
            let s = members[i].session(broker.tcp, &auth, want, &[]);
            assert!(s.applied.last() == Some(&want) || s.applied.is_empty(), "{s:?}");
            assert_eq!(members[i].held(&auth).state().unwrap().epoch(), want);
        }
        wait_current(&reg, &["dev-0", "dev-1", "dev-3"]);
    }
    kill9(&mut server.0);
}

/// A small deterministic generator (the seed is printed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[test]
fn kill_9_during_enrolment_rotations_and_serving_keeps_the_registry_consistent() {
    let broker = mosquitto_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let (_, reg, auth) = setup(dir.path(), 0);
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("seed {seed}");
    let mut rng = Lcg(seed);
    let mut server = serve(&reg, broker.tcp);
    let mut members: Vec<TestMember> = Vec::new();
    let mut counters: std::collections::BTreeMap<String, u64> = Default::default();
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..24u8 {
        let m = TestMember::new(i);
        let public = m.pair.public().to_text();
        let mut child = mqseal(dir.path())
            .arg("authority")
            .arg("--registry")
            .arg(&reg)
            .args(["member", "add", "--id", &m.id, "--public", public.as_str(), "--group", "telemetry,cmd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.next(40)));
        let killed = child.try_wait().unwrap().is_none();
        if killed {
            kill9(&mut child);
        }
        if i % 4 == 3 {
            let mut rot = mqseal(dir.path())
                .arg("authority")
                .arg("--registry")
                .arg(&reg)
                .args(["rotate", "telemetry", "--at", "now", "--grace", "1h"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(rng.next(40)));
            if rot.try_wait().unwrap().is_none() {
                kill9(&mut rot);
            }
        }
        if rng.next(3) == 0 {
            kill9(&mut server.0);
            server = serve(&reg, broker.tcp);
        }
        // Consistency after every kill: integrity, ids below their counters
        // and unique per key, counters never back.
        let r = Registry::open(&reg).unwrap();
        r.verify().unwrap();
        for a in r.assignments().unwrap() {
            let owner = seen.entry((a.key_id, a.sender_id)).or_insert_with(|| a.member.clone());
            assert_eq!(owner, &a.member, "sender id handed out twice");
        }
        for s in r.status().unwrap() {
            let c = r.next_control_counter(&s.id).unwrap();
            let last = counters.insert(s.id.clone(), c).unwrap_or(0);
            assert!(c >= last, "{}: control counter went back {last} -> {c}", s.id);
        }
        let enrolled = r.status().unwrap().iter().any(|s| s.id == m.id);
        if enrolled {
            members.push(m);
        } else {
            assert!(killed, "{} not enrolled but its command was not killed", m.id);
        }
        std::thread::sleep(Duration::from_millis(1000 * u64::from(i % 4 == 3)));
    }
    assert!(!members.is_empty());
    // Every enrolled member converges from its retained state.
    for m in &mut members {
        let want = epoch_of(&reg, &m.id);
        m.session(broker.tcp, &auth, want, &[]);
        assert_eq!(m.held(&auth).state().unwrap().epoch(), want, "{}", m.id);
    }
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    wait_current(&reg, &ids);
    kill9(&mut server.0);
}

/// Copies the registry and its WAL files (the registry closed: no process
/// has it open while this runs).
fn copy_registry(from: &Path, to: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let (f, t) =
            (PathBuf::from(format!("{}{suffix}", from.display())), PathBuf::from(format!("{}{suffix}", to.display())));
        let _ = std::fs::remove_file(&t);
        if f.exists() {
            std::fs::copy(&f, &t).unwrap();
        }
    }
}

#[test]
fn serve_refuses_a_registry_restored_from_a_backup_before_it_publishes() {
    let broker = mosquitto_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let (mut members, reg, auth) = setup(dir.path(), 2);
    let backup = dir.path().join("backup.db");
    let server = serve(&reg, broker.tcp);
    for m in &mut members {
        let want = epoch_of(&reg, &m.id);
        m.session(broker.tcp, &auth, want, &[]);
    }
    wait_current(&reg, &["dev-0", "dev-1"]);
    drop(server);
    copy_registry(&reg, &backup);

    // After the backup: a rotation every member applies, and dev-2 enrolled.
    let server = serve(&reg, broker.tcp);
    registry_cmd(&reg, &["rotate", "telemetry", "--at", "now", "--grace", "1h"]);
    let mut dev2 = TestMember::new(2);
    let public = dev2.pair.public().to_text();
    registry_cmd(&reg, &["member", "add", "--id", &dev2.id, "--public", public.as_str(), "--group", "telemetry"]);
    let want = epoch_of(&reg, "dev-0");
    members[0].session(broker.tcp, &auth, want, &[]);
    dev2.session(broker.tcp, &auth, epoch_of(&reg, "dev-2"), &[]);
    wait_current(&reg, &["dev-0", "dev-2"]);
    let dev2_ids: Vec<(u32, u32)> = Registry::open(&reg)
        .unwrap()
        .assignments()
        .unwrap()
        .into_iter()
        .filter(|a| a.member == "dev-2")
        .map(|a| (a.key_id, a.sender_id))
        .collect();
    drop(server);

    // Restore the backup and enrol dev-3: the restored registry hands it
    // dev-2's sender id again. `serve` must refuse before it publishes.
    copy_registry(&backup, &reg);
    let mut dev3 = TestMember::new(3);
    let public = dev3.pair.public().to_text();
    registry_cmd(&reg, &["member", "add", "--id", &dev3.id, "--public", public.as_str(), "--group", "telemetry"]);
    let reused = Registry::open(&reg)
        .unwrap()
        .assignments()
        .unwrap()
        .into_iter()
        .any(|a| a.member == "dev-3" && dev2_ids.contains(&(a.key_id, a.sender_id)));
    assert!(reused, "the restored registry should hand out dev-2's sender id again (the hazard under test)");
    let err = dir.path().join("serve.err");
    let mut child = mqseal(dir.path())
        .arg("authority")
        .arg("--registry")
        .arg(&reg)
        .args(["serve", "-h", "127.0.0.1", "-p", &broker.tcp.to_string(), "--poll", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&err).unwrap()))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            kill9(&mut child);
            panic!("serve kept running on a rolled-back registry: {}", std::fs::read_to_string(&err).unwrap());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(!status.success() && stderr.contains("[rolledBack]"), "{status:?}: {stderr}");
    // Nothing was published: dev-3 finds no state, dev-0 keeps its newer one.
    let s = dev3.session(broker.tcp, &auth, 0, &[]);
    assert!(s.applied.is_empty() && s.messages == 0, "{s:?}");
    let s = members[0].session(broker.tcp, &auth, 0, &[]);
    assert!(s.applied.is_empty() && s.refused.iter().all(|e| matches!(e, Error::Duplicate)), "{s:?}");
}
