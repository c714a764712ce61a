#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Key distribution: the control protocol (docs/PROTOCOL.md section 14)
//! between an authority and a member agent, through real sealing and
//! opening (no mocks): round trips, every rejection rule, restarts from the
//! persisted state, scheduled and clockless switches.

use mqseal::{
    control_counter, control_sealer, open_ack, open_own_control, seal_control, ControlError, ControlState,
    ControlTopics, Error, Group, GroupKey, Key, MemberAgent, MemoryCounterStore, PairwiseKeys, Sealer, StaticKeyPair,
    Suite, AUTHORITY_SENDER_ID, CONTROL_KEY_ID, MAX_ACK_ENVELOPE_LEN, MAX_CONTROL_ENVELOPE_LEN, MAX_MEMBER_STATE_LEN,
};
use proptest::prelude::*;
use std::sync::OnceLock;

// The spec's layout of a member state with `Vec`s (14.4), to build bodies
// the typed builder refuses to make: the vector generator's types.
#[path = "vectors/generate_control.rs"]
#[allow(dead_code, clippy::unwrap_used, clippy::panic)]
mod generate_control;
use generate_control::{WGroup, WKey, WState};

const T0: u64 = 1_800_000_000;

fn authority() -> StaticKeyPair {
    StaticKeyPair::from_secret_bytes([0xA1; 32])
}

fn member_kp() -> StaticKeyPair {
    StaticKeyPair::from_secret_bytes([0xB2; 32])
}

fn topics() -> ControlTopics<'static> {
    ControlTopics::default()
}

/// Group "telemetry": key 7 active at T0, key 8 planned at T0 + 100, key 7
/// accepted until T0 + 200.
fn state(member: &str, epoch: u64) -> ControlState {
    let mut s = ControlState::new(member, epoch).unwrap();
    let mut g = Group::new("telemetry", 7, Some(8)).unwrap();
    g.push_key(GroupKey::new(&Key::from_bytes(7, [7; 32]), Suite::ChaCha20Poly1305, 11, T0, Some(T0 + 200))).unwrap();
    g.push_key(GroupKey::new(&Key::from_bytes(8, [8; 32]), Suite::ChaCha20Poly1305, 12, T0 + 100, None)).unwrap();
    s.push_group(g).unwrap();
    let mut cmd = Group::new("cmd", 1, None).unwrap();
    cmd.push_key(GroupKey::new(&Key::from_bytes(1, [1; 32]), Suite::HmacSha256, 3, 0, None)).unwrap();
    s.push_group(cmd).unwrap();
    s
}

struct Authority {
    sealer: Sealer<MemoryCounterStore>,
}

/// The pairwise keys of both sides, derived once (X25519 is slow in debug
/// builds, and the tests make thousands of agents).
fn pairwise() -> &'static (PairwiseKeys, PairwiseKeys) {
    static KEYS: OnceLock<(PairwiseKeys, PairwiseKeys)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let a = authority().pairwise(&member_kp().public(), CONTROL_KEY_ID).unwrap();
        let m = member_kp().pairwise(&authority().public(), CONTROL_KEY_ID).unwrap();
        (a, m)
    })
}

impl Authority {
    fn new() -> Self {
        let sealer =
            Sealer::new(&pairwise().0.send, AUTHORITY_SENDER_ID, Suite::ChaCha20Poly1305, MemoryCounterStore::new())
                .unwrap();
        Authority { sealer }
    }

    fn seal(&mut self, s: &ControlState) -> Vec<u8> {
        let mut out = vec![0u8; MAX_CONTROL_ENVELOPE_LEN];
        let n = seal_control(&mut self.sealer, &topics(), s, &mut out).unwrap();
        out.truncate(n);
        out
    }

    /// Seals arbitrary bytes as a control body (to test what a buggy or
    /// hostile authority could send).
    fn seal_raw(&mut self, member: &str, body: &[u8]) -> Vec<u8> {
        self.sealer.seal_to_vec(&format!("mqseal/v1/ctl/{member}"), body).unwrap()
    }
}

// The in-memory `apply` of the test harness, by path: a dependency on
// mqseal-test-support would turn on the core's default features in the
// core's own test runs (the RustCrypto-backend run among them).
#[path = "../../tests/support/src/member.rs"]
mod member_support;
use member_support::ApplyInMemory;

fn agent(persisted: Option<&[u8]>) -> MemberAgent {
    try_agent("dev-1", persisted).unwrap()
}

fn try_agent(id: &str, persisted: Option<&[u8]>) -> Result<MemberAgent, Error> {
    MemberAgent::with_pairwise(pairwise().1.clone(), id, &topics(), persisted)
}

#[test]
fn new_and_with_pairwise_agree_and_control_sealer_matches() {
    let a = MemberAgent::new(&member_kp(), "dev-1", &authority().public(), &topics(), None).unwrap();
    let mut s = control_sealer(&authority(), &member_kp().public(), MemoryCounterStore::new()).unwrap();
    let mut out = vec![0u8; MAX_CONTROL_ENVELOPE_LEN];
    let n = seal_control(&mut s, &topics(), &state("dev-1", 1), &mut out).unwrap();
    for mut m in [a, agent(None)] {
        assert_eq!(m.apply(CTL, &out[..n], None).unwrap().epoch, 1);
    }
    let wrong = member_kp().pairwise(&authority().public(), 5).unwrap();
    assert_eq!(MemberAgent::with_pairwise(wrong, "dev-1", &topics(), None).unwrap_err(), Error::InvalidConfig);
}

const CTL: &str = "mqseal/v1/ctl/dev-1";

#[test]
fn the_authority_opens_its_own_control_messages_and_its_counters_keep_to_the_clock_floor() {
    let start = control_counter(3, 1_800_000_000_000);
    assert_eq!(start, mqseal::clock_floor(1_800_000_000_000));
    assert_eq!(control_counter(start + 5, 1_800_000_000_000), start + 5, "never below the stored counter");
    let mut s = control_sealer(&authority(), &member_kp().public(), MemoryCounterStore::starting_at(start)).unwrap();
    let mut out = vec![0u8; MAX_CONTROL_ENVELOPE_LEN];
    let n = seal_control(&mut s, &topics(), &state("dev-1", 7), &mut out).unwrap();
    let env = out[..n].to_vec();
    let own = open_own_control(&authority(), &member_kp().public(), "dev-1", &topics(), CTL, &mut env.clone()).unwrap();
    assert_eq!((own.counter, own.epoch), (start, 7));
    // The member still accepts it (any higher counter).
    assert_eq!(agent(None).apply(CTL, &env, None).unwrap().epoch, 7);
    // Another member's topic, another member's key, another authority: refused.
    let e = open_own_control(
        &authority(),
        &member_kp().public(),
        "dev-2",
        &topics(),
        "mqseal/v1/ctl/dev-2",
        &mut env.clone(),
    );
    assert_eq!(e.unwrap_err(), Error::Auth);
    let e = open_own_control(
        &authority(),
        &member_kp().public(),
        "dev-1",
        &topics(),
        "mqseal/v1/ctl/dev-2",
        &mut env.clone(),
    );
    assert_eq!(e.unwrap_err(), Error::InvalidControl(ControlError::WrongTopic));
    let other = StaticKeyPair::from_secret_bytes([0x77; 32]);
    let e = open_own_control(&other, &member_kp().public(), "dev-1", &topics(), CTL, &mut env.clone());
    assert_eq!(e.unwrap_err(), Error::Auth);
}

#[test]
fn round_trip_applies_state_and_ack_opens_at_the_authority() {
    let mut auth = Authority::new();
    let mut m = agent(None);
    assert_eq!(m.control_topic(), CTL);
    assert_eq!(m.ack_topic(), "mqseal/v1/ack/dev-1");
    let env = auth.seal(&state("dev-1", 1));
    let staged = format!("{:?}", m.stage(CTL, &env, Some(T0)).unwrap());
    let applied = m.apply(CTL, &env, Some(T0)).unwrap();
    assert_eq!(applied.epoch, 1);
    assert_eq!(applied.wake_at, Some(T0 + 100));
    // Debug prints neither the state record nor any key secret.
    let printed = format!("{staged} {m:?}");
    assert!(printed.contains("redacted") && !printed.contains("[7, 7, 7"), "{printed}");
    assert_eq!(m.state().unwrap(), &state("dev-1", 1));

    let s = m.sealing("telemetry", Some(T0)).unwrap();
    assert_eq!((s.key.id(), s.sender_id, s.suite), (7, 11, Suite::ChaCha20Poly1305));
    let s = m.sealing("cmd", Some(T0)).unwrap();
    assert_eq!((s.key.id(), s.sender_id, s.suite), (1, 3, Suite::HmacSha256));
    assert!(m.sealing("other", Some(T0)).is_none());

    let mut ack = applied.ack.clone();
    let got = open_ack(&authority(), &member_kp().public(), "dev-1", &topics(), m.ack_topic(), &mut ack, None).unwrap();
    assert_eq!(got.ack.epoch, 1);
    assert_eq!(got.ack.member_id.as_str(), "dev-1");
    assert_eq!(got.counter, 0);
    // The same ack again is a duplicate at the authority.
    let mut again = applied.ack.clone();
    assert_eq!(
        open_ack(&authority(), &member_kp().public(), "dev-1", &topics(), m.ack_topic(), &mut again, Some(0)),
        Err(Error::Duplicate)
    );
    // On another member's ack topic, or claimed by another member: refused.
    let mut moved = applied.ack.clone();
    assert_eq!(
        open_ack(&authority(), &member_kp().public(), "dev-2", &topics(), "mqseal/v1/ack/dev-2", &mut moved, None),
        Err(Error::Auth)
    );
}

#[test]
fn the_sealed_group_keys_work_between_members() {
    let mut auth = Authority::new();
    let mut m = agent(None);
    m.apply(CTL, &auth.seal(&state("dev-1", 1)), Some(T0)).unwrap();
    let s = m.sealing("telemetry", Some(T0)).unwrap();
    let mut sealer = Sealer::new(&s.key, s.sender_id, s.suite, MemoryCounterStore::new()).unwrap();
    let env = sealer.seal_to_vec("plant/t", b"21.5").unwrap();
    let mut opener: mqseal::Opener<4, 4> = mqseal::Opener::new(m.keyring("telemetry", Some(T0)).unwrap().unwrap());
    assert_eq!(opener.open_to_vec("plant/t", &env).unwrap().header.sender_id, 11);
}

#[test]
fn scheduled_switch_and_retirement_by_the_clock() {
    let mut auth = Authority::new();
    let mut m = agent(None);
    m.apply(CTL, &auth.seal(&state("dev-1", 1)), Some(T0)).unwrap();
    assert_eq!(tick(m.tick(Some(T0 + 99))), (false, Some(T0 + 100)));
    assert_eq!(m.sealing("telemetry", Some(T0 + 99)).unwrap().key.id(), 7);
    // At the activation time: key 8, sender id 12; key 7 still accepted.
    assert_eq!(tick(m.tick(Some(T0 + 100))), (true, Some(T0 + 200)));
    let s = m.sealing("telemetry", Some(T0 + 100)).unwrap();
    assert_eq!((s.key.id(), s.sender_id), (8, 12));
    let ring = m.keyring::<4>("telemetry", Some(T0 + 150)).unwrap().unwrap();
    assert_eq!(ring.ids().collect::<Vec<_>>(), vec![7, 8]);
    assert_eq!(ring.primary().unwrap().id(), 8);
    // End of acceptance of key 7.
    assert_eq!(tick(m.tick(Some(T0 + 200))), (true, None));
    let ring = m.keyring::<4>("telemetry", Some(T0 + 200)).unwrap().unwrap();
    assert_eq!(ring.ids().collect::<Vec<_>>(), vec![8]);
    assert_eq!(tick(m.tick(Some(T0 + 300))), (false, None));
}

fn tick(t: mqseal::Tick) -> (bool, Option<u64>) {
    (t.changed, t.wake_at)
}

#[test]
fn a_member_without_a_clock_switches_on_first_sight_of_the_next_key_and_remembers_it() {
    let mut auth = Authority::new();
    let mut m = agent(None);
    m.apply(CTL, &auth.seal(&state("dev-1", 1)), None).unwrap();
    assert_eq!(m.sealing("telemetry", None).unwrap().key.id(), 7);
    assert_eq!(m.keyring::<4>("telemetry", None).unwrap().unwrap().len(), 2);
    assert!(!m.key_seen("telemetry", 7, None));
    assert!(m.key_seen("telemetry", 8, None));
    assert!(!m.key_seen("telemetry", 8, None));
    assert_eq!(m.sealing("telemetry", None).unwrap().key.id(), 8);
    let mut buf = vec![0u8; MAX_MEMBER_STATE_LEN];
    let n = m.encode_state(&mut buf).unwrap();
    let m2 = agent(Some(&buf[..n]));
    assert_eq!(m2.sealing("telemetry", None).unwrap().key.id(), 8);
    // A new epoch that plans the same next key keeps the switch.
    let mut m3 = agent(Some(&buf[..n]));
    m3.apply(CTL, &auth.seal(&state("dev-1", 2)), None).unwrap();
    assert_eq!(m3.sealing("telemetry", None).unwrap().key.id(), 8);
}

#[test]
fn old_epoch_and_same_epoch_are_stale_and_change_nothing() {
    let mut auth = Authority::new();
    let mut m = agent(None);
    m.apply(CTL, &auth.seal(&state("dev-1", 5)), Some(T0)).unwrap();
    for e in [1, 4, 5] {
        let env = auth.seal(&state("dev-1", e));
        assert_eq!(m.apply(CTL, &env, Some(T0)).unwrap_err(), Error::StaleEpoch { held: 5, received: e });
    }
    assert_eq!(m.epoch(), 5);
    m.apply(CTL, &auth.seal(&state("dev-1", 6)), Some(T0)).unwrap();
    assert_eq!(m.epoch(), 6);
}

#[test]
fn a_replayed_retained_message_changes_nothing_even_after_a_restart() {
    let mut auth = Authority::new();
    let mut m = agent(None);
    let env = auth.seal(&state("dev-1", 1));
    let applied = m.apply(CTL, &env, Some(T0)).unwrap();
    let persisted = applied.state.clone();
    assert_eq!(m.apply(CTL, &env, Some(T0)).unwrap_err(), Error::Duplicate);
    // Restart from the persisted state: the retained message again.
    let mut r = agent(Some(&persisted));
    assert_eq!(r.epoch(), 1);
    assert_eq!(r.apply(CTL, &env, Some(T0)).unwrap_err(), Error::Duplicate);
    let mut buf = vec![0u8; MAX_MEMBER_STATE_LEN];
    let n = r.encode_state(&mut buf).unwrap();
    assert_eq!(&buf[..n], &persisted[..]);
    // The next ack after a restart uses the next counter.
    let a2 = r.apply(CTL, &auth.seal(&state("dev-1", 2)), Some(T0)).unwrap();
    let mut ack = a2.ack.clone();
    let got =
        open_ack(&authority(), &member_kp().public(), "dev-1", &topics(), r.ack_topic(), &mut ack, Some(0)).unwrap();
    assert_eq!((got.counter, got.ack.epoch), (1, 2));
}

#[test]
fn an_older_envelope_counter_is_a_replay() {
    let mut auth = Authority::new();
    let mut m = agent(None);
    let first = auth.seal(&state("dev-1", 1));
    let second = auth.seal(&state("dev-1", 2));
    m.apply(CTL, &second, Some(T0)).unwrap();
    assert_eq!(m.apply(CTL, &first, Some(T0)).unwrap_err(), Error::Replay);
}

#[test]
fn forged_moved_and_misdirected_messages_are_refused() {
    let mut m = agent(None);
    // Sealed by someone else (not the authority's key pair).
    let rogue = StaticKeyPair::from_secret_bytes([0xCC; 32]);
    let mut forger = control_sealer(&rogue, &member_kp().public(), MemoryCounterStore::new()).unwrap();
    let mut out = vec![0u8; MAX_CONTROL_ENVELOPE_LEN];
    let n = seal_control(&mut forger, &topics(), &state("dev-1", 9), &mut out).unwrap();
    assert_eq!(m.apply(CTL, &out[..n], Some(T0)).unwrap_err(), Error::Auth);
    // Another member's control message, moved to this member's topic.
    let other = StaticKeyPair::from_secret_bytes([0xDD; 32]);
    let mut to_other = control_sealer(&authority(), &other.public(), MemoryCounterStore::new()).unwrap();
    let n = seal_control(&mut to_other, &topics(), &state("dev-2", 9), &mut out).unwrap();
    assert_eq!(m.apply(CTL, &out[..n], Some(T0)).unwrap_err(), Error::Auth);
    // Received on another topic than the member's control topic.
    assert_eq!(
        m.apply("mqseal/v1/ctl/dev-2", &out[..n], Some(T0)).unwrap_err(),
        Error::InvalidControl(ControlError::WrongTopic)
    );
    // The member's own ack reflected onto its control topic.
    let mut auth = Authority::new();
    let applied = m.apply(CTL, &auth.seal(&state("dev-1", 1)), Some(T0)).unwrap();
    assert_eq!(m.apply(CTL, &applied.ack, Some(T0)).unwrap_err(), Error::Auth);
    assert_eq!(m.epoch(), 1);
}

#[test]
fn a_state_for_another_member_id_is_refused() {
    let mut auth = Authority::new();
    let mut m = agent(None);
    let mut body = vec![0u8; 4096];
    let n = state("dev-9", 3).encode(&mut body).unwrap();
    let env = auth.seal_raw("dev-1", &body[..n]);
    assert_eq!(m.apply(CTL, &env, Some(T0)).unwrap_err(), Error::InvalidControl(ControlError::WrongMember));
}

fn wkey(id: u32, activation: u64, end: Option<u64>) -> WKey {
    WKey { key_id: id, suite: 1, secret: [id as u8; 32], sender_id: id + 100, activation, end_of_acceptance: end }
}

fn wstate() -> WState {
    WState {
        format: 1,
        member_id: "dev-1".into(),
        epoch: 1,
        groups: vec![WGroup {
            name: "g".into(),
            seal_now: 1,
            seal_next: Some(2),
            keys: vec![wkey(1, 10, Some(30)), wkey(2, 20, None)],
        }],
    }
}

fn refused(body: &[u8]) -> Error {
    let mut auth = Authority::new();
    let mut m = agent(None);
    let env = auth.seal_raw("dev-1", body);
    let e = m.apply(CTL, &env, Some(T0)).unwrap_err();
    assert_eq!(m.epoch(), 0);
    assert!(m.state().is_none());
    e
}

fn reason(w: &WState) -> Option<ControlError> {
    let body = postcard::to_allocvec(w).unwrap();
    let mut auth = Authority::new();
    let mut m = agent(None);
    match m.apply(CTL, &auth.seal_raw("dev-1", &body), Some(T0)) {
        Ok(_) => None,
        Err(Error::InvalidControl(r)) => Some(r),
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn every_rule_has_its_reason() {
    use ControlError as C;
    assert_eq!(reason(&wstate()), None);
    let mut w = wstate();
    w.format = 2;
    assert_eq!(reason(&w), Some(C::UnsupportedFormat));
    let mut w = wstate();
    w.groups = (0..9).map(|i| WGroup { name: format!("g{i}"), ..wstate().groups[0].clone() }).collect();
    assert_eq!(reason(&w), Some(C::TooManyGroups));
    let mut w = wstate();
    w.groups = (0..8).map(|i| WGroup { name: format!("g{i}"), ..wstate().groups[0].clone() }).collect();
    assert_eq!(reason(&w), None);
    let mut w = wstate();
    w.groups[0].keys = (1..=5).map(|i| wkey(i, 10 * u64::from(i), None)).collect();
    assert_eq!(reason(&w), Some(C::TooManyKeys));
    let mut w = wstate();
    w.groups[0].keys.clear();
    assert_eq!(reason(&w), Some(C::TooManyKeys));
    for bad in ["", "a/b", "a+", "#", "é", &"x".repeat(65)] {
        let mut w = wstate();
        w.member_id = bad.into();
        assert_eq!(reason(&w), Some(C::BadName), "{bad:?}");
        let mut w = wstate();
        w.groups[0].name = bad.into();
        assert_eq!(reason(&w), Some(C::BadName), "{bad:?}");
    }
    let mut w = wstate();
    w.member_id = "x".repeat(64);
    assert_eq!(reason(&w), Some(C::WrongMember));
    let mut w = wstate();
    w.epoch = 0;
    assert_eq!(reason(&w), Some(C::ZeroEpoch));
    let mut w = wstate();
    w.groups.push(w.groups[0].clone());
    assert_eq!(reason(&w), Some(C::DuplicateGroup));
    let mut w = wstate();
    w.groups[0].keys[1].key_id = 1;
    assert_eq!(reason(&w), Some(C::DuplicateKeyId));
    let mut w = wstate();
    w.groups[0].keys[0].suite = 3;
    assert_eq!(reason(&w), Some(C::BadSuite));
    let mut w = wstate();
    w.groups[0].keys[0].end_of_acceptance = Some(10);
    assert_eq!(reason(&w), Some(C::EndBeforeActivation));
    let mut w = wstate();
    w.groups[0].seal_now = 9;
    assert_eq!(reason(&w), Some(C::SealKeyMissing));
    let mut w = wstate();
    w.groups[0].seal_next = Some(9);
    assert_eq!(reason(&w), Some(C::BadNextKey));
    let mut w = wstate();
    w.groups[0].seal_next = Some(1);
    assert_eq!(reason(&w), Some(C::BadNextKey));
    let mut w = wstate();
    w.groups[0].keys[1].activation = 10;
    assert_eq!(reason(&w), Some(C::BadNextKey));
    let mut w = wstate();
    w.groups[0].seal_next = None;
    assert_eq!(reason(&w), None);
}

#[test]
fn malformed_bodies_are_refused() {
    let good = postcard::to_allocvec(&wstate()).unwrap();
    let m = |e| Error::InvalidControl(e);
    // Trailing byte, truncation at every length, empty.
    let mut long = good.clone();
    long.push(0);
    assert_eq!(refused(&long), m(ControlError::Malformed));
    for n in 0..good.len() {
        let e = refused(&good[..n]);
        assert!(matches!(e, Error::InvalidControl(ControlError::Malformed)), "{n}: {e:?}");
    }
    // A non-canonical varint: epoch 1 as 0x81 0x00.
    let mut nc = vec![1u8, 5];
    nc.extend_from_slice(b"dev-1");
    nc.extend_from_slice(&[0x81, 0x00]);
    nc.extend_from_slice(&good[1 + 1 + 5 + 1..]);
    assert_eq!(refused(&nc), m(ControlError::Malformed));
    // A huge declared group count with nothing behind it.
    let mut huge = good[..1 + 1 + 5 + 1].to_vec();
    huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(refused(&huge), m(ControlError::Malformed));
    // An option tag of 2.
    let mut opt = good.clone();
    let pos = 1 + 1 + 5 + 1 + 1 + 2 + 1;
    assert_eq!(opt[pos], 1, "seal_next tag");
    opt[pos] = 2;
    assert_eq!(refused(&opt), m(ControlError::Malformed));
}

#[test]
fn the_persisted_state_is_checked() {
    let mut auth = Authority::new();
    let mut m = agent(None);
    let applied = m.apply(CTL, &auth.seal(&state("dev-1", 1)), Some(T0)).unwrap();
    let good = applied.state.clone();
    assert!(good.starts_with(b"mqseal-member v1\n"));
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x10;
        let e = try_agent("dev-1", Some(&bad)).unwrap_err();
        assert_eq!(e, Error::InvalidSnapshot, "byte {i}");
    }
    for n in 0..good.len() {
        let e = try_agent("dev-1", Some(&good[..n])).unwrap_err();
        assert_eq!(e, Error::InvalidSnapshot);
    }
    let e = try_agent("dev-2", Some(&good)).unwrap_err();
    assert_eq!(e, Error::InvalidSnapshot);
}

#[test]
fn buffers_too_small_change_nothing() {
    let mut auth = Authority::new();
    let mut m = agent(None);
    let env = auth.seal(&state("dev-1", 1));
    let (mut st, mut ack) = (vec![0u8; 10], vec![0u8; MAX_ACK_ENVELOPE_LEN]);
    let e = m.handle(CTL, &mut env.clone(), Some(T0), &mut st, &mut ack, |_| Ok(())).unwrap_err();
    assert!(matches!(e, Error::BufferTooSmall { .. }));
    assert_eq!(m.epoch(), 0);
    let (mut st, mut ack) = (vec![0u8; MAX_MEMBER_STATE_LEN], vec![0u8; 10]);
    let e = m.handle(CTL, &mut env.clone(), Some(T0), &mut st, &mut ack, |_| Ok(())).unwrap_err();
    assert!(matches!(e, Error::BufferTooSmall { .. }));
    assert_eq!(m.epoch(), 0);
    let mut buf = env.clone();
    let (mut st, mut ack) = (vec![0u8; MAX_MEMBER_STATE_LEN], vec![0u8; MAX_ACK_ENVELOPE_LEN]);
    m.handle(CTL, &mut buf, Some(T0), &mut st, &mut ack, |_| Ok(())).unwrap();
    // The decrypted body (with the secrets) does not stay in the buffer.
    assert!(buf.iter().all(|&b| b == 0));
}

#[test]
fn the_authority_refuses_to_seal_an_invalid_state() {
    let mut auth = Authority::new();
    let mut s = ControlState::new("dev-1", 1).unwrap();
    let g = Group::new("g", 1, None).unwrap();
    s.push_group(g).unwrap();
    let mut out = vec![0u8; MAX_CONTROL_ENVELOPE_LEN];
    assert_eq!(
        seal_control(&mut auth.sealer, &topics(), &s, &mut out),
        Err(Error::InvalidControl(ControlError::TooManyKeys))
    );
    assert_eq!(auth.sealer.next_counter().unwrap(), 0, "no counter used");
}

fn arb_state() -> impl Strategy<Value = WState> {
    let key =
        (any::<u32>(), 1u8..=2, any::<[u8; 32]>(), any::<u32>(), 0u64..1 << 40, proptest::option::of(1u64..1 << 20));
    let group = (proptest::collection::vec(key, 1..=4), any::<bool>());
    (1u64.., proptest::collection::vec(group, 0..=8)).prop_map(|(epoch, groups)| WState {
        format: 1,
        member_id: "dev-1".into(),
        epoch,
        groups: groups
            .into_iter()
            .enumerate()
            .map(|(i, (keys, next))| {
                // Distinct ids (low bits = index); activations in list order
                // from one random base, so a planned next key activates later.
                let base = keys[0].4;
                let mut keys: Vec<WKey> = keys
                    .into_iter()
                    .enumerate()
                    .map(|(j, (id, suite, secret, sender_id, _, len))| WKey {
                        key_id: id,
                        suite,
                        secret,
                        sender_id,
                        activation: base + 1000 * j as u64,
                        end_of_acceptance: len.map(|l| base + 1000 * j as u64 + l),
                    })
                    .collect();
                for (j, k) in keys.iter_mut().enumerate() {
                    k.key_id = (k.key_id & !3) | j as u32;
                }
                let seal_next = (next && keys.len() > 1).then(|| keys[keys.len() - 1].key_id);
                WGroup { name: format!("g{i}"), seal_now: keys[0].key_id, seal_next, keys }
            })
            .collect(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn valid_states_round_trip(w in arb_state()) {
        let body = postcard::to_allocvec(&w).unwrap();
        let s = ControlState::decode(&body).unwrap();
        let mut out = vec![0u8; body.len()];
        prop_assert_eq!(s.encode(&mut out).unwrap(), body.len());
        prop_assert_eq!(&out, &body);
        let mut auth = Authority::new();
        let mut m = agent(None);
        let env = auth.seal(&s);
        prop_assert_eq!(m.apply(CTL, &env, Some(T0)).unwrap().epoch, w.epoch);
        prop_assert_eq!(m.state().unwrap(), &s);
    }

    #[test]
    fn any_bit_flip_of_the_envelope_is_rejected(i in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut auth = Authority::new();
        let mut m = agent(None);
        let mut env = auth.seal(&state("dev-1", 1));
        let i = i.index(env.len());
        env[i] ^= 1 << bit;
        prop_assert!(m.apply(CTL, &env, Some(T0)).is_err());
        prop_assert_eq!(m.epoch(), 0);
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = ControlState::decode(&body);
        let _ = mqseal::Ack::decode(&body);
        let _ = try_agent("dev-1", Some(&body));
    }
}

#[test]
fn the_longest_state_has_the_documented_length() {
    // docs/PROTOCOL.md 14.4: 2,741 bytes, every field at its longest.
    let mut s = ControlState::new(&"m".repeat(64), u64::MAX).unwrap();
    for g in 0..8u32 {
        let mut group = Group::new(&format!("{g}{}", "n".repeat(63)), u32::MAX - 3, Some(u32::MAX)).unwrap();
        for k in 0..4u32 {
            let key = Key::from_bytes(u32::MAX - 3 + k, [9; 32]);
            let act = u64::MAX - 10 + u64::from(k);
            group.push_key(GroupKey::new(&key, Suite::ChaCha20Poly1305, u32::MAX, act, Some(u64::MAX))).unwrap();
        }
        s.push_group(group).unwrap();
    }
    assert_eq!(mqseal::MAX_CONTROL_LEN, 2741);
    assert_eq!(mqseal::MAX_CONTROL_ENVELOPE_LEN, 2789);
    assert_eq!(mqseal::MAX_ACK_LEN, 77);
    let mut out = vec![0u8; 4096];
    assert_eq!(s.encode(&mut out).unwrap(), mqseal::MAX_CONTROL_LEN);
    let mut auth = Authority::new();
    let mut m = try_agent(&"m".repeat(64), None).unwrap();
    let env = auth.seal_raw(&"m".repeat(64), &out[..mqseal::MAX_CONTROL_LEN]);
    assert!(env.len() <= mqseal::MAX_CONTROL_ENVELOPE_LEN);
    let (mut st, mut ack) = (vec![0u8; MAX_MEMBER_STATE_LEN], vec![0u8; MAX_ACK_ENVELOPE_LEN]);
    let a = m
        .handle(&format!("mqseal/v1/ctl/{}", "m".repeat(64)), &mut env.clone(), Some(0), &mut st, &mut ack, |_| Ok(()))
        .unwrap();
    assert_eq!(a.epoch, u64::MAX);
}

#[test]
fn the_fuzz_entry_takes_valid_and_invalid_bodies() {
    let mut body = vec![0u8; 4096];
    let n = state("fuzz", 1).encode(&mut body).unwrap();
    mqseal::fuzzing::control_message(&body[..n]);
    mqseal::fuzzing::control_message(&body[..n - 1]);
    mqseal::fuzzing::control_message(b"");
    mqseal::fuzzing::control_message(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f]);
}
