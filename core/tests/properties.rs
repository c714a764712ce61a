#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Property and behaviour tests of the public API.

use mqseal::{
    CounterStore, Error, Eviction, Header, Key, Keyring, MemoryCounterStore, Opener, OpenerConfig, PrefixRewrite,
    Sealer, SenderSnapshot, StoreError, Suite, SuiteSet, MAX_OVERHEAD,
};
use proptest::prelude::*;
use std::collections::HashSet;

fn key(id: u32) -> Key {
    Key::from_bytes(id, [id as u8 ^ 0x5c; 32])
}

fn sealer(suite: Suite, sender: u32) -> Sealer<MemoryCounterStore> {
    Sealer::new(&key(1), sender, suite, MemoryCounterStore::new()).unwrap()
}

fn opener() -> Opener<4, 8> {
    let mut ring = Keyring::with_primary(key(1)).unwrap();
    ring.insert(key(2)).unwrap();
    Opener::new(ring)
}

/// The default configuration with `f` applied.
fn config(f: impl FnOnce(&mut OpenerConfig)) -> OpenerConfig {
    let mut c = OpenerConfig::default();
    f(&mut c);
    c
}

fn opener_with(f: impl FnOnce(&mut OpenerConfig)) -> Opener<4, 8> {
    let mut o = opener();
    o.set_config(&config(f)).unwrap();
    o
}

fn suite_strategy() -> impl Strategy<Value = Suite> {
    prop_oneof![Just(Suite::ChaCha20Poly1305), Just(Suite::HmacSha256)]
}

fn topic_strategy() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9/]{1,40}", "[a-z/]{129,300}"]
}

/// Replaces the header of `env` by `h` (same body and tag).
fn reheader(env: &[u8], h: &Header) -> Vec<u8> {
    let (_, hl) = Header::parse(env).unwrap();
    let mut out = vec![0u8; mqseal::MAX_HEADER_LEN];
    let n = h.encode(&mut out).unwrap();
    out.truncate(n);
    out.extend_from_slice(&env[hl..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_up_to_64k(suite in suite_strategy(), len in prop_oneof![0usize..64, 64usize..=65_536], topic in topic_strategy(), seed: u8) {
        let payload: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed | 1)).collect();
        let mut s = sealer(suite, 3);
        let env = s.seal_to_vec(&topic, &payload).unwrap();
        prop_assert_eq!(env.len(), payload.len() + Header::parse(&env).unwrap().1 + 16);
        if suite.is_confidential() && len >= 16 {
            prop_assert!(!env.windows(16).any(|w| w == &payload[..16]));
        }
        let mut o = opener();
        let got = o.open_to_vec(topic.as_str(), &env).unwrap();
        prop_assert_eq!(got.payload, payload);
    }

    #[test]
    fn every_single_bit_flip_is_rejected(suite in suite_strategy(), payload in proptest::collection::vec(any::<u8>(), 0..24), topic in topic_strategy(), ts in proptest::option::of(any::<u64>())) {
        let mut s = sealer(suite, 77);
        let mut env = vec![0u8; payload.len() + MAX_OVERHEAD];
        let n = s.seal_into_at(&topic, ts, &payload, &mut env).unwrap();
        env.truncate(n);
        for bit in 0..env.len() * 8 {
            let mut e = env.clone();
            e[bit / 8] ^= 1 << (bit % 8);
            let mut o = opener();
            let before = e.clone();
            let r = o.open_in_place(topic.as_str(), &mut e).map(|x| x.header);
            prop_assert!(r.is_err(), "bit {} accepted", bit);
            let err = r.unwrap_err();
            if err == Error::Auth || err.is_format() {
                prop_assert_eq!(&e, &before, "failed open changed the buffer");
            }
        }
    }

    #[test]
    fn topic_sender_and_key_changes_are_rejected(suite in suite_strategy(), payload in proptest::collection::vec(any::<u8>(), 0..64), topic in topic_strategy(), other in topic_strategy()) {
        let mut s = sealer(suite, 10);
        let env = s.seal_to_vec(&topic, &payload).unwrap();
        let (h, _) = Header::parse(&env).unwrap();
        if other != topic {
            prop_assert_eq!(opener().open_to_vec(other.as_str(), &env), Err(Error::Auth));
        }
        let moved_sender = reheader(&env, &Header { sender_id: 11, ..h });
        prop_assert_eq!(opener().open_to_vec(topic.as_str(), &moved_sender), Err(Error::Auth));
        let moved_key = reheader(&env, &Header { key_id: 2, ..h });
        prop_assert_eq!(opener().open_to_vec(topic.as_str(), &moved_key), Err(Error::Auth));
        let unknown_key = reheader(&env, &Header { key_id: 3, ..h });
        prop_assert_eq!(opener().open_to_vec(topic.as_str(), &unknown_key), Err(Error::UnknownKey(3)));
        let other_suite = Suite::ALL.into_iter().find(|x| *x != suite).unwrap();
        let moved_suite = reheader(&env, &Header { suite: other_suite, ..h });
        prop_assert_eq!(opener().open_to_vec(topic.as_str(), &moved_suite), Err(Error::Auth));
        let with_ts = reheader(&env, &Header { timestamp: Some(5), ..h });
        prop_assert_eq!(opener().open_to_vec(topic.as_str(), &with_ts), Err(Error::Auth));
    }

    #[test]
    fn reordering_inside_window_accepted_once_outside_rejected(window in 1u32..=256, perm_seed: u64, n in 1usize..300) {
        let mut s = sealer(Suite::ChaCha20Poly1305, 5);
        let envs: Vec<Vec<u8>> = (0..n).map(|i| s.seal_to_vec("t", &i.to_le_bytes()).unwrap()).collect();
        // Deliver in a shuffled order, twice over.
        let mut order: Vec<usize> = (0..n).chain(0..n).collect();
        let mut x = perm_seed | 1;
        for i in (1..order.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut o = opener_with(|c| c.window = window);
        let mut accepted = HashSet::new();
        let mut highest: Option<usize> = None;
        for i in order {
            let r = o.open_to_vec("t", &envs[i]);
            let seen = accepted.contains(&i);
            match r {
                Ok(m) => {
                    prop_assert!(!seen, "message {} accepted twice", i);
                    prop_assert_eq!(m.payload, i.to_le_bytes().to_vec());
                    accepted.insert(i);
                    highest = Some(highest.map_or(i, |h| h.max(i)));
                }
                Err(Error::Duplicate) => prop_assert!(seen),
                Err(Error::Replay) => {
                    let h = highest.unwrap();
                    prop_assert!(h - i >= window as usize, "in-window message {} rejected as replay (highest {})", i, h);
                }
                Err(e) => prop_assert!(false, "unexpected {:?}", e),
            }
        }
        // In-order delivery is always fully accepted.
        let mut o = opener_with(|c| c.window = window);
        for e in &envs {
            prop_assert!(o.open_to_vec("t", e).is_ok());
        }
    }

    #[test]
    fn opening_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), topic in "[ -~]{0,20}") {
        let mut o = opener();
        let mut b = bytes.clone();
        let r = o.open_in_place(topic.as_str(), &mut b).map(|x| x.header);
        prop_assert!(r.is_err());
        prop_assert_eq!(&b, &bytes);
        mqseal::fuzzing::parse_header(&bytes);
        mqseal::fuzzing::open_envelope(&bytes);
        mqseal::fuzzing::import_keys(&bytes);
        mqseal::fuzzing::typed_open(&bytes);
        mqseal::fuzzing::replay_window_differential(&bytes);
    }
}

/// A store that crashes (fails, losing nothing already durable) on chosen
/// persist calls, like a device losing power during the write.
struct CrashingStore {
    durable: Option<u64>,
    persists: usize,
    crash_on: usize,
}

impl CounterStore for CrashingStore {
    fn load(&mut self) -> Result<Option<u64>, StoreError> {
        Ok(self.durable)
    }
    fn persist(&mut self, current: Option<u64>, limit: u64) -> Result<(), StoreError> {
        mqseal::check_swap(self.durable, current, limit)?;
        self.persists += 1;
        if self.persists == self.crash_on {
            return Err(StoreError::Write);
        }
        self.durable = Some(limit);
        Ok(())
    }
}

#[test]
fn reboots_at_any_point_never_reuse_a_counter() {
    for block in [1u64, 2, 5] {
        for crash_on in 1..6 {
            for msgs_before_reboot in 0..12 {
                let mut store = CrashingStore { durable: Some(0), persists: 0, crash_on };
                let mut used = HashSet::new();
                for _boot in 0..3 {
                    let mut s = Sealer::new(&key(1), 1, Suite::ChaCha20Poly1305, &mut store)
                        .unwrap()
                        .with_reservation_block(block)
                        .unwrap();
                    for _ in 0..msgs_before_reboot {
                        match s.seal_to_vec("t", b"x") {
                            Ok(env) => {
                                let c = Header::parse(&env).unwrap().0.counter;
                                assert!(used.insert(c), "counter {c} reused");
                            }
                            Err(Error::CounterStore(_)) => break, // power lost mid-write
                            Err(e) => panic!("{e}"),
                        }
                    }
                    // Reboot: the sealer and its memory are gone.
                    store.persists = 0;
                }
            }
        }
    }
}

#[test]
fn failed_store_means_no_envelope_and_no_counter_use() {
    let mut store = CrashingStore { durable: Some(10), persists: 0, crash_on: 1 };
    let mut s = Sealer::new(&key(1), 1, Suite::ChaCha20Poly1305, &mut store).unwrap();
    let mut out = [0u8; 64];
    assert_eq!(s.seal_into("t", b"x", &mut out), Err(Error::CounterStore(StoreError::Write)));
    assert_eq!(s.next_counter(), Ok(10));
    let n = s.seal_into("t", b"x", &mut out).unwrap();
    assert_eq!(Header::parse(&out[..n]).unwrap().0.counter, 10);

    // In place: a failing store leaves the caller's payload where it was.
    let mut store = CrashingStore { durable: Some(10), persists: 0, crash_on: 1 };
    let mut s = Sealer::new(&key(1), 1, Suite::ChaCha20Poly1305, &mut store).unwrap();
    let mut buf = [0u8; 64];
    buf[..5].copy_from_slice(b"hello");
    let before = buf;
    assert_eq!(s.seal_in_place("t", &mut buf, 5), Err(Error::CounterStore(StoreError::Write)));
    assert_eq!(buf, before);
    let n = s.seal_in_place("t", &mut buf, 5).unwrap();
    let mut o = opener();
    assert_eq!(o.open_in_place("t", &mut buf[..n]).unwrap().payload, b"hello");
}

#[test]
fn buffer_too_small_uses_no_counter() {
    let mut s = sealer(Suite::ChaCha20Poly1305, 1);
    let mut out = [0u8; 20];
    assert_eq!(s.seal_into("t", b"hello", &mut out), Err(Error::BufferTooSmall { needed: 5 + 5 + 16 }));
    assert_eq!(s.next_counter(), Ok(0));
}

#[test]
fn seal_in_place_matches_seal_into() {
    for suite in Suite::ALL {
        let mut a = sealer(suite, 9);
        let mut b = sealer(suite, 9);
        let payload = b"in place payload";
        let mut buf = [0u8; 64];
        buf[..payload.len()].copy_from_slice(payload);
        let n = a.seal_in_place("x/y", &mut buf, payload.len()).unwrap();
        assert_eq!(buf[..n], b.seal_to_vec("x/y", payload).unwrap()[..]);
        let mut small = [0u8; 20];
        assert!(matches!(a.seal_in_place("x/y", &mut small, 10), Err(Error::BufferTooSmall { .. })));
    }
}

#[test]
fn longest_topic_and_too_long_topic() {
    let t = "a".repeat(mqseal::MAX_TOPIC_LEN);
    let mut s = sealer(Suite::ChaCha20Poly1305, 1);
    let env = s.seal_to_vec(&t, b"x").unwrap();
    assert_eq!(opener().open_to_vec(t.as_str(), &env).unwrap().payload, b"x");
    let t2 = "a".repeat(mqseal::MAX_TOPIC_LEN + 1);
    assert_eq!(s.seal_to_vec(&t2, b"x"), Err(Error::TopicTooLong));
    assert_eq!(opener().open_to_vec(t2.as_str(), &env), Err(Error::TopicTooLong));
}

#[test]
fn verified_but_rejected_payload_is_wiped() {
    let mut s = sealer(Suite::ChaCha20Poly1305, 1);
    let env = s.seal_to_vec("t", b"secret!").unwrap();
    let mut o = opener();
    o.open_to_vec("t", &env).unwrap();
    let mut again = env.clone();
    assert_eq!(o.open_in_place("t", &mut again).map(|m| m.header), Err(Error::Duplicate));
    let (_, hl) = Header::parse(&env).unwrap();
    assert!(again[hl..hl + 7].iter().all(|b| *b == 0), "duplicate left plaintext behind");
}

#[test]
fn timestamp_policies() {
    const NOW: u64 = 1_800_000_000;
    fn clock() -> u64 {
        NOW
    }
    let mut s = sealer(Suite::HmacSha256, 1).with_timestamps(clock);
    let fresh = s.seal_to_vec("t", b"1").unwrap();
    assert_eq!(Header::parse(&fresh).unwrap().0.timestamp, Some(NOW));
    let mut o = opener_with(|c| {
        c.max_age = Some(60);
        c.max_skew = Some(5);
    });
    assert_eq!(o.open_to_vec("t", &fresh), Err(Error::ClockRequired));
    let mut o = o.with_clock(clock);
    assert!(o.open_to_vec("t", &fresh).is_ok());

    let mut t = vec![0u8; 64];
    let n = s.seal_into_at("t", Some(NOW - 61), b"2", &mut t).unwrap();
    assert_eq!(o.open_to_vec("t", &t[..n]), Err(Error::Expired));
    let n = s.seal_into_at("t", Some(NOW + 6), b"3", &mut t).unwrap();
    assert_eq!(o.open_to_vec("t", &t[..n]), Err(Error::FromFuture));
    let n = s.seal_into_at("t", None, b"4", &mut t).unwrap();
    assert_eq!(o.open_to_vec("t", &t[..n]), Err(Error::TimestampRequired));
    let n = s.seal_into_at("t", Some(NOW - 30), b"5", &mut t).unwrap();
    assert_eq!(o.open_to_vec("t", &t[..n]).unwrap().payload, b"5");
}

#[test]
fn suite_policy() {
    let env = sealer(Suite::HmacSha256, 1).seal_to_vec("t", b"x").unwrap();
    let mut o = opener_with(|c| c.suites = SuiteSet::only(Suite::ChaCha20Poly1305));
    assert_eq!(o.open_to_vec("t", &env), Err(Error::SuiteNotAllowed(Suite::HmacSha256)));
}

#[test]
fn bridge_prefix_rewrite() {
    let env = sealer(Suite::ChaCha20Poly1305, 1).seal_to_vec("site-a/temp", b"x").unwrap();
    let rule = PrefixRewrite { received: "cloud/site-a/", sealed: "site-a/" };
    let mut o = opener();
    assert_eq!(o.open_to_vec("cloud/site-a/temp", &env), Err(Error::Auth));
    assert_eq!(o.open_to_vec(rule.bound_topic("cloud/site-a/temp").unwrap(), &env).unwrap().payload, b"x");
    assert_eq!(rule.bound_topic("cloud/site-b/temp"), Err(Error::TopicNotRewritable));
}

#[test]
fn sender_table_bound_and_eviction() {
    fn clock() -> u64 {
        1_800_000_000
    }
    let envs: Vec<Vec<u8>> = (0..3)
        .map(|id| sealer(Suite::ChaCha20Poly1305, id).with_timestamps(clock).seal_to_vec("t", b"x").unwrap())
        .collect();
    let ring = || Keyring::with_primary(key(1)).unwrap();
    // Fail closed by default.
    let mut o: Opener<1, 2> = Opener::new(ring());
    assert!(o.open_to_vec("t", &envs[0]).is_ok());
    assert!(o.open_to_vec("t", &envs[1]).is_ok());
    assert_eq!(o.open_to_vec("t", &envs[2]), Err(Error::TooManySenders));
    assert_eq!(o.tracked_senders(), 2);
    // A forged message from a new sender never takes a slot.
    let mut forged = envs[2].clone();
    *forged.last_mut().unwrap() ^= 1;
    assert_eq!(o.open_to_vec("t", &forged), Err(Error::Auth));
    // LRU eviction forgets the least recent sender (documented risk).
    let lru = config(|c| c.eviction = Eviction::LeastRecentlyUsed);
    assert_eq!(Opener::<1, 2>::with_config(ring(), &lru).err(), Some(Error::InvalidConfig), "LRU without bounds");
    let lru = config(|c| {
        c.eviction = Eviction::LeastRecentlyUsed;
        c.max_age = Some(3600);
    });
    let mut o: Opener<1, 2> = Opener::with_config(ring(), &lru).unwrap().with_clock(clock);
    assert!(o.open_to_vec("t", &envs[0]).is_ok());
    assert!(o.open_to_vec("t", &envs[1]).is_ok());
    assert!(o.open_to_vec("t", &envs[2]).is_ok());
    assert_eq!(o.open_to_vec("t", &envs[1]), Err(Error::Duplicate));
    assert!(o.open_to_vec("t", &envs[0]).is_ok(), "evicted sender's window was forgotten");
}

#[test]
fn key_rotation_and_retirement() {
    let mut ring: Keyring<4> = Keyring::with_primary(key(1)).unwrap();
    let mut o: Opener<4, 8> = Opener::new(ring.clone());
    let mut s = Sealer::from_keyring(&ring, 1, Suite::ChaCha20Poly1305, MemoryCounterStore::new()).unwrap();
    let old = s.seal_to_vec("t", b"old").unwrap();
    // Rotation: receivers first, then the sender.
    o.add_key(key(2)).unwrap();
    ring.insert(key(2)).unwrap();
    ring.set_primary(2).unwrap();
    s.rotate_key(ring.primary().unwrap());
    let new = s.seal_to_vec("t", b"new").unwrap();
    assert_eq!(Header::parse(&new).unwrap().0.key_id, 2);
    assert_eq!(o.open_to_vec("t", &new).unwrap().payload, b"new");
    assert_eq!(o.open_to_vec("t", &old).unwrap().payload, b"old");
    o.retire_key(1).unwrap();
    assert_eq!(o.open_to_vec("t", &old), Err(Error::UnknownKey(1)));
}

#[test]
fn snapshot_and_restore_keep_replay_state() {
    let mut s = sealer(Suite::ChaCha20Poly1305, 4);
    let a = s.seal_to_vec("t", b"a").unwrap();
    let mut o = opener();
    o.open_to_vec("t", &a).unwrap();
    let snap: Vec<_> = o.snapshot().collect();
    let json = serde_json::to_string(&snap).unwrap();
    let mut o2 = opener();
    for st in serde_json::from_str::<Vec<mqseal::SenderSnapshot>>(&json).unwrap() {
        o2.restore(&st).unwrap();
    }
    assert_eq!(o2.open_to_vec("t", &a), Err(Error::Duplicate));
    let b = s.seal_to_vec("t", b"b").unwrap();
    assert_eq!(o2.open_to_vec("t", &b).unwrap().payload, b"b");
}

#[test]
fn typed_payloads() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Cmd<'a> {
        op: &'a str,
        level: u8,
    }
    let mut s = sealer(Suite::ChaCha20Poly1305, 1);
    let env = s.seal_value_to_vec("cmd", &Cmd { op: "dim", level: 40 }).unwrap();
    let mut o = opener();
    let mut buf = env.clone();
    let (h, cmd): (_, Cmd<'_>) = o.open_value("cmd", &mut buf).unwrap();
    assert_eq!(cmd, Cmd { op: "dim", level: 40 });
    assert_eq!(h.sender_id, 1);
    // A verified payload of the wrong shape is a decode error, not a panic.
    let env = s.seal_to_vec("cmd", &[0xff, 0xff, 0xff]).unwrap();
    let mut buf = env.clone();
    let r: Result<(Header, Cmd<'_>), Error> = o.open_value("cmd", &mut buf);
    assert_eq!(r.map(|x| x.0), Err(Error::Decode));
    let mut small = [0u8; 8];
    assert_eq!(
        s.seal_value_into("cmd", &Cmd { op: "dim", level: 1 }, &mut small),
        Err(Error::BufferTooSmall { needed: 5 + 5 + 16 })
    );
}

#[test]
fn file_store_sealer_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sender.ctr");
    let first = {
        let mut s = Sealer::new(&key(1), 1, Suite::ChaCha20Poly1305, mqseal::FileCounterStore::create(&path).unwrap())
            .unwrap()
            .with_reservation_block(100)
            .unwrap();
        for _ in 0..5 {
            s.seal_to_vec("t", b"x").unwrap();
        }
        s.next_counter().unwrap()
    };
    assert_eq!(first, 5);
    let s = Sealer::new(&key(1), 1, Suite::ChaCha20Poly1305, mqseal::FileCounterStore::open(&path).unwrap()).unwrap();
    assert_eq!(s.next_counter(), Ok(100), "restart skips the unused rest of the block");
    // A second sealer on the same file while the first holds it: refused at once.
    let err = mqseal::FileCounterStore::open(&path).unwrap_err();
    assert_eq!(err.kind, StoreError::Locked);
    assert!(err.to_string().contains("sender.ctr"), "{err}");
    drop(s);
    // The file deleted (a container without a volume): refused, not "start at 0".
    std::fs::remove_file(&path).unwrap();
    let lost = Sealer::new(&key(1), 1, Suite::ChaCha20Poly1305, mqseal::FileCounterStore::open(&path).unwrap());
    assert_eq!(lost.err(), Some(Error::CounterStore(StoreError::Missing)));
    // ... unless told: a clock floor, or an explicit create.
    let floored = Sealer::new_with_clock_floor(
        &key(1),
        1,
        Suite::ChaCha20Poly1305,
        mqseal::FileCounterStore::open(&path).unwrap(),
        1_800_000_000_000,
    )
    .unwrap();
    assert_eq!(floored.next_counter(), Ok(mqseal::clock_floor(1_800_000_000_000)));
    drop(floored);
    let fresh = Sealer::new(&key(1), 1, Suite::ChaCha20Poly1305, mqseal::FileCounterStore::create(&path).unwrap());
    assert_eq!(fresh.unwrap().next_counter(), Ok(0));
}

#[test]
fn store_with_no_state_is_refused() {
    let r = Sealer::new(&key(1), 1, Suite::ChaCha20Poly1305, MemoryCounterStore::empty());
    assert_eq!(r.err(), Some(Error::CounterStore(StoreError::Missing)));
}

#[test]
fn second_writer_on_one_store_fails_sealing() {
    // Two sealers over stores that share the persisted value (as two
    // processes sharing a file without its lock would): the second one to
    // persist sees a value it did not write, and fails.
    let shared = std::rc::Rc::new(core::cell::Cell::new(Some(0u64)));
    struct Shared(std::rc::Rc<core::cell::Cell<Option<u64>>>);
    impl CounterStore for Shared {
        fn load(&mut self) -> Result<Option<u64>, StoreError> {
            Ok(self.0.get())
        }
        fn persist(&mut self, current: Option<u64>, limit: u64) -> Result<(), StoreError> {
            mqseal::check_swap(self.0.get(), current, limit)?;
            self.0.set(Some(limit));
            Ok(())
        }
    }
    let mut a = Sealer::new(&key(1), 1, Suite::ChaCha20Poly1305, Shared(shared.clone())).unwrap();
    let mut b = Sealer::new(&key(1), 1, Suite::ChaCha20Poly1305, Shared(shared)).unwrap();
    let ea = a.seal_to_vec("t", b"a").unwrap();
    assert_eq!(Header::parse(&ea).unwrap().0.counter, 0);
    assert_eq!(b.seal_to_vec("t", b"b"), Err(Error::CounterStore(StoreError::Conflict)));
}

#[test]
fn topic_names_are_checked_on_both_sides() {
    let mut s = sealer(Suite::ChaCha20Poly1305, 1);
    for bad in ["", "a/+", "a/#", "a\0b"] {
        assert_eq!(s.seal_to_vec(bad, b"x"), Err(Error::InvalidTopic), "{bad:?}");
    }
    assert_eq!(s.next_counter(), Ok(0), "no counter used by a refused topic");
    let env = s.seal_to_vec("t", b"x").unwrap();
    assert_eq!(opener().open_to_vec("", &env), Err(Error::InvalidTopic));
    assert_eq!(opener().open_to_vec("t/#", &env), Err(Error::InvalidTopic));
}

#[test]
fn max_age_bounds_the_future_too() {
    const NOW: u64 = 1_800_000_000;
    fn clock() -> u64 {
        NOW
    }
    let mut s = sealer(Suite::HmacSha256, 1);
    let mut o = opener_with(|c| c.max_age = Some(60)).with_clock(clock);
    let mut t = vec![0u8; 64];
    let n = s.seal_into_at("t", Some(NOW + 365 * 86_400), b"year", &mut t).unwrap();
    assert_eq!(o.open_to_vec("t", &t[..n]), Err(Error::FromFuture), "dated a year ahead");
    let n = s.seal_into_at("t", Some(NOW + 61), b"x", &mut t).unwrap();
    assert_eq!(o.open_to_vec("t", &t[..n]), Err(Error::FromFuture), "implied skew is min(max_age, 300)");
    let n = s.seal_into_at("t", Some(NOW + 59), b"x", &mut t).unwrap();
    assert!(o.open_to_vec("t", &t[..n]).is_ok());
}

#[test]
fn restore_merges_validates_and_refuses_unknown_keys() {
    let mut s = sealer(Suite::ChaCha20Poly1305, 4);
    let envs: Vec<_> = (0..300).map(|_| s.seal_to_vec("t", b"m").unwrap()).collect();
    let mut o = opener();
    o.open_to_vec("t", &envs[0]).unwrap();
    let old: Vec<SenderSnapshot> = o.snapshot().collect();
    for e in &envs[1..=200] {
        o.open_to_vec("t", e).unwrap();
    }
    // An older snapshot restored onto the live window: no roll back.
    o.restore(&old[0]).unwrap();
    assert_eq!(o.open_to_vec("t", &envs[200]), Err(Error::Duplicate));
    assert_eq!(o.open_to_vec("t", &envs[150]), Err(Error::Duplicate));
    assert_eq!(o.open_to_vec("t", &envs[0]), Err(Error::Replay));
    // A snapshot that accepted nothing is refused.
    let empty = SenderSnapshot { bits: [0; 4], ..old[0].clone() };
    assert_eq!(o.restore(&empty), Err(Error::InvalidSnapshot));
    // Bits beyond the width are masked off; restored into a wider window,
    // the counters below the record's window stay rejected (it declared
    // them replays: it has no gaps).
    let narrow = SenderSnapshot { width: 2, highest: 1000, bits: [u64::MAX; 4], ..old[0].clone() };
    assert_eq!(narrow.window().unwrap().state(), (2, 1000, [0b11, 0, 0, 0]));
    let mut fresh = opener();
    fresh.restore(&narrow).unwrap();
    assert_eq!(fresh.snapshot().next().unwrap().bits, [u64::MAX, u64::MAX, 0, 0]);
    // Unknown key ids are refused (they could never be removed).
    let unknown = SenderSnapshot { key_id: 99, ..old[0].clone() };
    assert_eq!(o.restore(&unknown), Err(Error::UnknownKey(99)));
    // A full table says so.
    let ring = Keyring::with_primary(key(1)).unwrap();
    let mut small: Opener<1, 1> = Opener::new(ring);
    small.restore(&old[0]).unwrap();
    let other = SenderSnapshot { sender_id: 5, ..old[0].clone() };
    assert_eq!(small.restore(&other), Err(Error::TooManySenders));
    // Forgetting a sender frees its slot.
    assert!(small.forget_sender(1, 4));
    assert!(!small.forget_sender(1, 4));
    small.restore(&other).unwrap();
}

#[test]
fn buffer_too_small_counts_the_header() {
    let mut s = sealer(Suite::ChaCha20Poly1305, 1);
    let mut buf = [0u8; 4];
    // Payload length beyond the buffer: the figure is the whole envelope.
    assert_eq!(s.seal_in_place("t", &mut buf, 10), Err(Error::BufferTooSmall { needed: 5 + 10 + 16 }));
}

#[test]
fn postcard_accepts_overlong_varints_which_is_why_the_header_does_not_use_it() {
    // docs/DESIGN.md: postcard's decoder is lenient; ours is canonical.
    let lenient: Result<u32, _> = postcard::from_bytes(&[0x80, 0x00]);
    let ours = Header::parse(&[0x11, 0x00, 0x80, 0x00, 0x00, 0x00]);
    assert_eq!(ours, Err(Error::BadVarint));
    assert_eq!(lenient.ok(), Some(0), "postcard became strict: docs/DESIGN.md can drop this argument");
}

#[test]
fn configuration_is_replaced_whole() {
    let mut s = sealer(Suite::HmacSha256, 1);
    let mut buf = vec![0u8; 64];
    let n = s.seal_into_at("t", Some(100), b"x", &mut buf).unwrap();
    let env = buf[..n].to_vec();
    let mut o = opener();
    assert_eq!(o.set_config(&config(|c| c.window = 0)), Err(Error::InvalidConfig));
    assert_eq!(o.config(), &OpenerConfig::default(), "a refused configuration changes nothing");
    o.set_config(&config(|c| {
        c.window = 1;
        c.max_age = Some(10);
    }))
    .unwrap();
    assert_eq!(o.open_in_place_at("t", &mut env.clone(), Some(200)).map(|m| m.header), Err(Error::Expired));
    o.set_config(&config(|c| c.suites = SuiteSet::only(Suite::ChaCha20Poly1305))).unwrap();
    assert_eq!(o.open_to_vec("t", &env), Err(Error::SuiteNotAllowed(Suite::HmacSha256)));
    o.set_config(&OpenerConfig::default()).unwrap();
    assert!(o.open_in_place_at("t", &mut env.clone(), Some(200)).is_ok());
    // In-place sealing with an explicit timestamp.
    let mut b = [0u8; 64];
    b[..3].copy_from_slice(b"abc");
    let n = s.seal_in_place_at("t", Some(7), &mut b, 3).unwrap();
    assert_eq!(Header::parse(&b[..n]).unwrap().0.timestamp, Some(7));
}

#[test]
fn gaps_outlive_no_maximum_age() {
    // A sender stamps counter c at 1000 + c; a receiver with a window of 4,
    // max_age 60 s (skew then 60 s too).
    let mut s = sealer(Suite::ChaCha20Poly1305, 9);
    let envs: Vec<Vec<u8>> = (0..200u64)
        .map(|c| {
            let mut out = vec![0; 64];
            let n = s.seal_into_at("t", Some(1000 + c), b"x", &mut out).unwrap();
            out.truncate(n);
            out
        })
        .collect();
    let open = |o: &mut Opener<4, 8>, c: usize, now: u64| {
        let mut buf = envs[c].clone();
        o.open_in_place_at("t", &mut buf, Some(now)).map(|_| ()).err()
    };
    let mut aged = opener_with(|c| {
        c.window = 4;
        c.max_age = Some(60);
    });
    assert_eq!(open(&mut aged, 10, 1010), None);
    assert_eq!(open(&mut aged, 100, 1100), None); // gaps 7..=9, 11..=96, dated 1100
    assert_eq!(aged.snapshot().next().unwrap().gaps(), &[(7, 9), (11, 96)][..]);
    // Within the age limit the late message is accepted once.
    assert_eq!(open(&mut aged, 50, 1100), None);
    assert_eq!(open(&mut aged, 50, 1100), Some(Error::Replay));
    assert_eq!(aged.snapshot().next().unwrap().gaps(), &[(7, 9), (11, 49), (51, 96)][..]);
    // Later (1100 + 60 + 60 < now), every message of those gaps is too
    // old: the next accepted message drops them. (97..=99 joins 51..=96,
    // which then takes the later date, 1199, of the message that made it.)
    assert_eq!(open(&mut aged, 60, 1221), Some(Error::Expired));
    assert_eq!(open(&mut aged, 199, 1221), None);
    assert_eq!(aged.snapshot().next().unwrap().gaps(), &[(51, 99), (101, 195)][..]);
    // Without a maximum age the gaps stay (only the budget bounds them).
    let mut plain = opener_with(|c| c.window = 4);
    for (c, now) in [(10, 1010), (100, 1100), (199, 5000)] {
        assert_eq!(open(&mut plain, c, now), None);
    }
    assert_eq!(plain.snapshot().next().unwrap().gaps(), &[(7, 9), (11, 99), (101, 195)][..]);
}

#[test]
fn a_boxed_sealer_keeps_its_counters_and_its_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sender.ctr");
    let mut s = Sealer::new(&key(1), 1, Suite::HmacSha256, mqseal::FileCounterStore::create(&path).unwrap())
        .unwrap()
        .with_reservation_block(4)
        .unwrap();
    s.seal_to_vec("t", b"x").unwrap();
    let mut boxed: Sealer<Box<dyn mqseal::CounterStore + Send>> = s.boxed();
    assert_eq!(boxed.next_counter(), Ok(1), "the granted block moves with the sealer");
    let mut o = opener();
    for counter in 1..6 {
        let opened = o.open_to_vec("t", &boxed.seal_to_vec("t", b"x").unwrap()).unwrap();
        assert_eq!(opened.header.counter, counter);
    }
    // Counter 4 needed a new block: persisted through the box to the file,
    // still locked by it.
    assert_eq!(mqseal::FileCounterStore::open(&path).unwrap_err().kind, StoreError::Locked);
    drop(boxed);
    let s = Sealer::new(&key(1), 1, Suite::HmacSha256, mqseal::FileCounterStore::open(&path).unwrap()).unwrap();
    assert_eq!(s.next_counter(), Ok(8));
}
