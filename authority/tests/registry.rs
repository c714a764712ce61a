#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! The registry against real member agents: a property test over random
//! sequences of create / add / join / rotate / revoke / time passing, and
//! the file and schema checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use mqseal::{Error, MemberAgent, PublicKey, StaticKeyPair, Suite};
use mqseal_authority::{AuthorityError, Outgoing, Registry};
use mqseal_test_support::member::ApplyInMemory;
use proptest::prelude::*;

const T0: u64 = 1_800_000_000;
const GROUPS: [&str; 3] = ["telemetry", "cmd", "alarms"];
const MEMBERS: usize = 5;

fn member_pair(i: usize) -> StaticKeyPair {
    StaticKeyPair::from_secret_bytes([0x40 + i as u8; 32])
}

fn member_id(i: usize) -> String {
    format!("dev-{i}")
}

#[derive(Clone, Debug)]
enum Op {
    Create(usize, bool),
    Add(usize, Vec<usize>),
    Join(usize, usize),
    Rotate(usize, u64, u64),
    Revoke(usize, bool),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..GROUPS.len(), any::<bool>()).prop_map(|(g, s)| Op::Create(g, s)),
        (0..MEMBERS, proptest::collection::vec(0..GROUPS.len(), 0..3)).prop_map(|(m, g)| Op::Add(m, g)),
        (0..MEMBERS, 0..GROUPS.len()).prop_map(|(m, g)| Op::Join(m, g)),
        (0..GROUPS.len(), 0u64..200, 0u64..400).prop_map(|(g, at, grace)| Op::Rotate(g, at, grace)),
        (0..MEMBERS, any::<bool>()).prop_map(|(m, h)| Op::Revoke(m, h)),
        (1u64..300).prop_map(Op::Advance),
    ]
}

/// The errors a valid request may meet (the registry refusing it); any
/// other error fails the test.
fn expected_refusal(e: &AuthorityError) -> bool {
    matches!(
        e,
        AuthorityError::GroupExists(_)
            | AuthorityError::UnknownGroup(_)
            | AuthorityError::MemberExists(_)
            | AuthorityError::UnknownMember(_)
            | AuthorityError::AlreadyMember { .. }
            | AuthorityError::Revoked(_)
            | AuthorityError::TooManyKeys { .. }
            | AuthorityError::RotationPending { .. }
            | AuthorityError::BadRotationTime { .. }
    )
}

struct World {
    reg: Registry,
    now: u64,
    agents: BTreeMap<String, MemberAgent>,
    /// Every (key id, sender id) ever seen, and its member.
    senders: BTreeMap<(u32, u32), String>,
    /// Every key id ever seen, and its group.
    key_groups: BTreeMap<u32, String>,
    /// The last epoch sealed per member.
    epochs: BTreeMap<String, u64>,
}

impl World {
    fn new(dir: &Path) -> World {
        let (reg, _) = Registry::init(&dir.join("reg.db"), None).unwrap();
        World {
            reg,
            now: T0,
            agents: BTreeMap::new(),
            senders: BTreeMap::new(),
            key_groups: BTreeMap::new(),
            epochs: BTreeMap::new(),
        }
    }

    fn apply(&mut self, op: &Op) {
        let now = self.now;
        let r = match op {
            Op::Create(g, hmac) => {
                let suite = if *hmac { Suite::HmacSha256 } else { Suite::ChaCha20Poly1305 };
                self.reg.create_group(GROUPS[*g], suite, now).map(|_| ())
            }
            Op::Add(m, groups) => {
                let gs: BTreeSet<&str> = groups.iter().map(|g| GROUPS[*g]).collect();
                let gs: Vec<&str> = gs.into_iter().collect();
                let public = member_pair(*m).public().to_text();
                let r = self.reg.add_member(&member_id(*m), public.as_str(), &gs, now);
                if r.is_ok() {
                    let agent = MemberAgent::new(
                        &member_pair(*m),
                        &member_id(*m),
                        &PublicKey::from_text(&self.reg.public_text()).unwrap(),
                        &self.reg.topics(),
                        None,
                    )
                    .unwrap();
                    self.agents.insert(member_id(*m), agent);
                }
                r
            }
            Op::Join(m, g) => self.reg.join(&member_id(*m), GROUPS[*g], now),
            Op::Rotate(g, at, grace) => self.reg.rotate(GROUPS[*g], Some(now + at), *grace, now).map(|_| ()),
            Op::Revoke(m, hard) => {
                let r = self.reg.revoke(&member_id(*m), *hard, 120, now);
                if r.is_ok() {
                    self.agents.remove(&member_id(*m));
                }
                r
            }
            Op::Advance(dt) => {
                self.now += dt;
                Ok(())
            }
        };
        if let Err(e) = r {
            assert!(expected_refusal(&e), "{op:?}: unexpected error {e:?}");
        }
        self.reg.verify().unwrap();
        self.deliver();
    }

    fn deliver(&mut self) {
        let out = self.reg.seal_pending(self.now).unwrap();
        for item in &out {
            if let Outgoing::State { member, topic, epoch, envelope } = item {
                let last = self.epochs.get(member).copied().unwrap_or(0);
                assert!(*epoch > last, "{member}: epoch {epoch} after {last}");
                self.epochs.insert(member.clone(), *epoch);
                let agent = self.agents.get_mut(member).unwrap();
                let applied = agent.apply(topic, envelope, Some(self.now)).unwrap();
                assert_eq!(applied.epoch, *epoch);
                let state = agent.state().unwrap().clone();
                assert_eq!(state, self.reg.state(member, self.now).unwrap());
                state.check().unwrap();
                // The same envelope again changes nothing.
                assert_eq!(agent.apply(topic, envelope, Some(self.now)).unwrap_err(), Error::Duplicate);
                let rec = self.reg.record_ack(agent.ack_topic(), &applied.ack).unwrap();
                assert_eq!((rec.epoch, rec.current), (*epoch, true));
                for g in state.groups() {
                    for k in g.keys() {
                        let owner = self.senders.entry((k.key_id(), k.sender_id())).or_insert_with(|| member.clone());
                        assert_eq!(owner, member, "sender id {} under key {} given twice", k.sender_id(), k.key_id());
                        let group = self.key_groups.entry(k.key_id()).or_insert_with(|| g.name().to_owned());
                        assert_eq!(group, g.name(), "key id {} in two groups", k.key_id());
                    }
                }
            }
            self.reg.mark_published(item).unwrap();
        }
        assert!(self.reg.unpublished().unwrap().is_empty());
        // The registry's own view: unique per key, never reassigned.
        for a in self.reg.assignments().unwrap() {
            let owner = self.senders.entry((a.key_id, a.sender_id)).or_insert_with(|| a.member.clone());
            assert_eq!(owner, &a.member);
        }
        for k in self.reg.keys().unwrap() {
            assert_ne!(k.key_id, 0);
            let group = self.key_groups.entry(k.key_id).or_insert_with(|| k.group.clone());
            assert_eq!(group, &k.group);
        }
        for s in self.reg.status().unwrap() {
            assert!(!s.behind(), "{s:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_every_registry_rule(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut w = World::new(dir.path());
        for op in &ops {
            w.apply(op);
        }
    }
}

#[test]
fn registry_file_is_0600_and_a_readable_one_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reg.db");
    let (reg, public) = Registry::init(&path, None).unwrap();
    assert!(public.starts_with("mqseal:x25519-public:v1:"), "{public}");
    assert_eq!(reg.public_text(), public);
    drop(reg);
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(matches!(Registry::init(&path, None), Err(AuthorityError::AlreadyExists(_))));
    assert_eq!(Registry::open(&path).unwrap().public_text(), public);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let e = Registry::open(&path).unwrap_err();
    assert!(matches!(e, AuthorityError::InsecurePermissions { mode: 0o640, .. }), "{e:?}");
    assert!(e.to_string().contains("chmod 600"), "{e}");
    assert!(matches!(Registry::open(&dir.path().join("none.db")), Err(AuthorityError::NotFound(_))));
}

#[test]
fn an_unknown_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reg.db");
    drop(Registry::init(&path, None).unwrap());
    // Another build's registry: same file, another version number.
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute("UPDATE schema_version SET version = 99", []).unwrap();
    drop(c);
    assert!(matches!(Registry::open(&path), Err(AuthorityError::UnknownSchemaVersion(99))));
}

#[test]
fn rotation_limits_and_revocation_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (mut reg, _) = Registry::init(&dir.path().join("reg.db"), None).unwrap();
    let k1 = reg.create_group("g", Suite::ChaCha20Poly1305, T0).unwrap();
    assert_eq!(k1, 1);
    for i in 0..3 {
        reg.add_member(&member_id(i), member_pair(i).public().to_text().as_str(), &["g"], T0).unwrap();
    }
    // A second planned rotation is refused; a switch before the newest key too.
    let k2 = reg.rotate("g", Some(T0 + 100), 1000, T0).unwrap();
    assert!(
        matches!(reg.rotate("g", Some(T0 + 200), 1000, T0), Err(AuthorityError::RotationPending { key_id, .. }) if key_id == k2)
    );
    assert!(matches!(reg.rotate("g", Some(T0 + 50), 1000, T0 + 150), Err(AuthorityError::BadRotationTime { .. })));
    reg.rotate("g", Some(T0 + 200), 1000, T0 + 150).unwrap();
    reg.rotate("g", Some(T0 + 300), 1000, T0 + 250).unwrap();
    // Four keys still accepted: a fifth is refused, with nothing changed.
    let before = reg.keys().unwrap();
    let e = reg.rotate("g", Some(T0 + 400), 1000, T0 + 350).unwrap_err();
    assert!(matches!(e, AuthorityError::TooManyKeys { live: 4, .. }), "{e:?}");
    assert_eq!(reg.keys().unwrap(), before);
    // Past the first key's end of acceptance it is dropped and a rotation fits.
    reg.rotate("g", Some(T0 + 1200), 1000, T0 + 1150).unwrap();
    let state = reg.state("dev-0", T0 + 1150).unwrap();
    assert!(state.group("g").unwrap().key(k1).is_none());

    // Revoke dev-0: the others get a new key dev-0 never held, the planned
    // key (which dev-0 holds) is withdrawn, its topic is cleared.
    let held: BTreeSet<u32> =
        reg.state("dev-0", T0 + 1150).unwrap().group("g").unwrap().keys().iter().map(|k| k.key_id()).collect();
    reg.revoke("dev-0", true, 0, T0 + 1160).unwrap();
    let out = reg.seal_pending(T0 + 1160).unwrap();
    assert!(out.iter().any(|o| matches!(o, Outgoing::Clear { member, .. } if member == "dev-0")));
    let s1 = reg.state("dev-1", T0 + 1160).unwrap();
    let g = s1.group("g").unwrap();
    let now_key = g.key(g.seal_now()).unwrap();
    assert!(!held.contains(&now_key.key_id()), "new key {} was held by the revoked member", now_key.key_id());
    assert!(g.seal_next().is_none());
    // Hard: every old key still listed ends at the switch.
    for k in g.keys().iter().filter(|k| k.key_id() != now_key.key_id()) {
        assert_eq!(k.end_of_acceptance(), Some(now_key.activation()), "{k:?}");
    }
    assert!(reg.keys().unwrap().iter().any(|k| k.withdrawn));
    assert!(matches!(reg.revoke("dev-0", false, 0, T0 + 1170), Err(AuthorityError::Revoked(_))));
    assert!(matches!(reg.join("dev-0", "g", T0 + 1170), Err(AuthorityError::Revoked(_))));
    assert!(matches!(
        reg.add_member("dev-0", member_pair(0).public().to_text().as_str(), &[], T0),
        Err(AuthorityError::MemberExists(_))
    ));
    reg.verify().unwrap();
}

#[test]
fn a_revocation_can_switch_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let (mut reg, _) = Registry::init(&dir.path().join("reg.db"), None).unwrap();
    let k1 = reg.create_group("g", Suite::ChaCha20Poly1305, T0).unwrap();
    for i in 0..2 {
        reg.add_member(&member_id(i), member_pair(i).public().to_text().as_str(), &["g"], T0).unwrap();
    }
    // A switch not after the newest key's activation is refused, nothing changed.
    let e = reg.revoke_at("dev-0", false, Some(T0), 30, T0 + 10).unwrap_err();
    assert!(matches!(e, AuthorityError::BadRotationTime { .. }), "{e:?}");
    assert!(reg.status().unwrap().iter().all(|m| !m.revoked));
    // Switch 5 s ahead: the new key is handed out as the next one (rule 3), the
    // old key stays the one to seal with until then, accepted until the
    // switch plus the grace period.
    reg.revoke_at("dev-0", false, Some(T0 + 15), 30, T0 + 10).unwrap();
    let g = reg.state("dev-1", T0 + 10).unwrap();
    let g = g.group("g").unwrap();
    assert_eq!(g.seal_now(), k1);
    let next = g.key(g.seal_next().unwrap()).unwrap();
    assert_eq!(next.activation(), T0 + 15);
    assert_eq!(g.key(k1).unwrap().end_of_acceptance(), Some(T0 + 45));
    // dev-0 never receives it.
    assert!(reg
        .seal_pending(T0 + 10)
        .unwrap()
        .iter()
        .any(|o| matches!(o, Outgoing::Clear { member, .. } if member == "dev-0")));
    reg.verify().unwrap();
}

#[test]
fn acks_that_do_not_verify_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (mut reg, public) = Registry::init(&dir.path().join("reg.db"), None).unwrap();
    reg.create_group("g", Suite::ChaCha20Poly1305, T0).unwrap();
    for i in 0..2 {
        reg.add_member(&member_id(i), member_pair(i).public().to_text().as_str(), &["g"], T0).unwrap();
    }
    let auth = PublicKey::from_text(&public).unwrap();
    let out = reg.seal_pending(T0).unwrap();
    let mut acks = Vec::new();
    for (i, item) in out.iter().enumerate() {
        let mut agent = MemberAgent::new(&member_pair(i), &member_id(i), &auth, &reg.topics(), None).unwrap();
        let applied = agent.apply(item.topic(), item.payload(), Some(T0)).unwrap();
        acks.push((agent.ack_topic().to_owned(), applied.ack.clone()));
    }
    // dev-0's ack on dev-1's topic: does not verify there.
    let e = reg.record_ack(&acks[1].0, &acks[0].1).unwrap_err();
    assert!(matches!(e, AuthorityError::Core(Error::Auth)), "{e:?}");
    reg.record_ack(&acks[0].0, &acks[0].1).unwrap();
    let e = reg.record_ack(&acks[0].0, &acks[0].1).unwrap_err();
    assert!(matches!(e, AuthorityError::Core(Error::Duplicate)), "{e:?}");
    let mut forged = acks[1].1.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert!(matches!(reg.record_ack(&acks[1].0, &forged), Err(AuthorityError::Core(Error::Auth))));
    assert!(matches!(reg.record_ack("elsewhere/dev-1", &acks[1].1), Err(AuthorityError::NotAnAckTopic(_))));
    assert!(matches!(reg.record_ack("mqseal/v1/ack/dev-9", &acks[1].1), Err(AuthorityError::UnknownMember(_))));
    let st = reg.status().unwrap();
    assert!(!st[0].behind() && st[1].behind(), "{st:?}");
}

/// The counter of a control envelope (its header, in the clear).
fn control_counter_of(out: &Outgoing) -> u64 {
    mqseal::Header::parse(out.payload()).unwrap().0.counter
}

#[test]
fn a_registry_restored_from_a_backup_never_reuses_a_control_counter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reg.db");
    let backup = dir.path().join("backup.db");
    let (mut reg, _) = Registry::init(&path, None).unwrap();
    reg.create_group("g", Suite::ChaCha20Poly1305, T0).unwrap();
    reg.add_member(&member_id(0), member_pair(0).public().to_text().as_str(), &["g"], T0).unwrap();
    let mut used = vec![control_counter_of(&reg.seal_pending(T0).unwrap()[0])];
    // A backup (the file copied while the registry is closed: WAL checkpointed).
    drop(reg);
    std::fs::copy(&path, &backup).unwrap();
    let mut reg = Registry::open(&path).unwrap();
    // Three more states, sealed at later times: counters rise.
    for now in [T0 + 2, T0 + 4, T0 + 6] {
        reg.rotate("g", None, 1, now).unwrap();
        let c = control_counter_of(&reg.seal_pending(now).unwrap()[0]);
        assert!(used.iter().all(|&u| c > u), "counter {c} after {used:?}");
        used.push(c);
    }
    assert!(used.len() >= 2, "{used:?}");
    // Restore the backup: it knows only the first counter. A change sealed
    // a second later must still be above every counter used since.
    drop(reg);
    std::fs::copy(&backup, &path).unwrap();
    let mut reg = Registry::open(&path).unwrap();
    assert!(reg.next_control_counter(&member_id(0)).unwrap() <= used[1], "the backup is older");
    reg.rotate("g", None, 1, T0 + 8).unwrap();
    let out = reg.seal_pending(T0 + 8).unwrap();
    let c = control_counter_of(&out[0]);
    assert!(used.iter().all(|&u| c > u), "restored registry sealed under {c}, already used: {used:?}");
}
