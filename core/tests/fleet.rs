//! The growable sender table ([`FleetOpener`] over [`SenderMap`]) against
//! the fixed one ([`Opener`] over `FixedSenders`): the same decisions for
//! every message, eviction included; and a fleet far beyond the fixed
//! table's size.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use mqseal::{
    Error, Eviction, FleetOpener, Key, Keyring, MemoryCounterStore, Opener, OpenerConfig, OpenerWith, Sealer,
    SenderMap, SenderSnapshot, SenderTable, Suite,
};
use proptest::prelude::*;

const NOW: u64 = 1_700_000_000;

fn key() -> Key {
    Key::from_bytes(1, [7; 32])
}

fn envelope(sender_id: u32, counter: u64, suite: Suite) -> Vec<u8> {
    let store = MemoryCounterStore::starting_at(counter);
    let mut s = Sealer::new(&key(), sender_id, suite, store).unwrap().with_timestamps(|| NOW);
    s.seal_to_vec("fleet/up", &counter.to_le_bytes()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn map_and_fixed_tables_decide_alike(
        lru in any::<bool>(),
        ops in proptest::collection::vec((0u32..8, 0u64..300, any::<bool>(), 0u8..20), 1..120),
    ) {
        let mut config = OpenerConfig::default();
        config.window = 64;
        if lru {
            config.max_age = Some(60);
            config.eviction = Eviction::LeastRecentlyUsed;
        }
        let mut fixed: Opener<1, 4> = Opener::with_config(Keyring::with_primary(key()).unwrap(), &config).unwrap();
        let mut map: FleetOpener<1> =
            OpenerWith::with_table(Keyring::with_primary(key()).unwrap(), SenderMap::with_seed(4, [9, 8, 7, 6]).unwrap());
        map.set_config(&config).unwrap();
        for (sender, counter, hmac, op) in ops {
            if op == 0 {
                prop_assert_eq!(fixed.forget_sender(1, sender), map.forget_sender(1, sender));
                continue;
            }
            let suite = if hmac { Suite::HmacSha256 } else { Suite::ChaCha20Poly1305 };
            let env = envelope(sender, counter, suite);
            let a = fixed.open_in_place_at("fleet/up", &mut env.clone(), Some(NOW)).map(|o| o.header);
            let b = map.open_in_place_at("fleet/up", &mut env.clone(), Some(NOW)).map(|o| o.header);
            prop_assert_eq!(a, b);
            prop_assert_eq!(fixed.tracked_senders(), map.tracked_senders());
        }
        let mut sa: Vec<SenderSnapshot> = fixed.snapshot().collect();
        let mut sb: Vec<SenderSnapshot> = map.snapshot().collect();
        sa.sort_by_key(|s| s.sender_id);
        sb.sort_by_key(|s| s.sender_id);
        prop_assert_eq!(sa, sb);
    }
}

#[test]
fn a_fleet_of_100k_senders_is_tracked_bounded_and_retired() {
    let mut opener: FleetOpener = FleetOpener::new(Keyring::with_primary(key()).unwrap());
    let n = 100_000u32;
    for id in 0..n {
        let env = envelope(id, 5, Suite::HmacSha256);
        opener.open_to_vec("fleet/up", &env).unwrap();
    }
    assert_eq!(opener.tracked_senders(), n as usize);
    // Every one of them is remembered: the same envelope is a duplicate.
    for id in (0..n).step_by(997) {
        assert_eq!(opener.open_to_vec("fleet/up", &envelope(id, 5, Suite::HmacSha256)), Err(Error::Duplicate));
    }
    let per_sender = opener.senders().memory_bytes() / n as usize;
    assert!((90..400).contains(&per_sender), "{per_sender} bytes per sender");

    // A limit is a limit: with `rejectNew` the next sender is refused.
    let mut small: FleetOpener =
        OpenerWith::with_table(Keyring::with_primary(key()).unwrap(), SenderMap::new(3).unwrap());
    for id in 0..3 {
        small.open_to_vec("fleet/up", &envelope(id, 0, Suite::HmacSha256)).unwrap();
    }
    assert_eq!(small.open_to_vec("fleet/up", &envelope(3, 0, Suite::HmacSha256)), Err(Error::TooManySenders));

    // Retiring the key drops every sender under it.
    opener.add_key(Key::from_bytes(2, [8; 32])).unwrap();
    opener.retire_key(1).unwrap();
    assert_eq!(opener.tracked_senders(), 0);
}

#[test]
fn a_replay_state_file_of_a_million_senders_round_trips() {
    let n = 1_000_000u32;
    let ring = || Keyring::with_primary(key()).unwrap();
    let mut opener: FleetOpener = FleetOpener::new(ring());
    opener.senders_mut().reserve(n as usize);
    for id in 0..n {
        let highest = 1000 + u64::from(id);
        let snap = SenderSnapshot {
            key_id: 1,
            sender_id: id,
            width: 128,
            highest,
            bits: [0b1011, 0, 0, 1],
            gaps: [(0, 0); mqseal::MAX_GAPS],
            gap_count: 0,
        };
        opener.restore(&snap).unwrap();
    }
    // And some genuine traffic on top.
    let accepted: Vec<Vec<u8>> = (0..200).map(|id| envelope(id, 5000, Suite::ChaCha20Poly1305)).collect();
    for env in &accepted {
        opener.open_to_vec("fleet/up", env).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replay.state");
    let mut file = mqseal::ReplayStateFile::open(&path).unwrap();
    file.save(&opener).unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    // 52 bytes per sender, 16 more per gap: the 200 senders that jumped to
    // counter 5000 left the counters they skipped as gaps.
    let gaps: usize = opener.snapshot().map(|s| s.gaps().len()).sum();
    assert_eq!(gaps, 200 * 3);
    assert_eq!(len, 17 + 4 + 52 * u64::from(n) + 16 * gaps as u64 + 32);
    drop(file);

    // "Restart": a fresh opener from the file alone.
    let file = mqseal::ReplayStateFile::open(&path).unwrap();
    let mut restarted: FleetOpener = FleetOpener::new(ring());
    restarted.senders_mut().reserve(n as usize);
    let report = file.restore_into(&mut restarted).unwrap();
    assert_eq!(report.restored, n as usize);
    let mut before: Vec<SenderSnapshot> = opener.snapshot().collect();
    let mut after: Vec<SenderSnapshot> = restarted.snapshot().collect();
    before.sort_by_key(|s| s.sender_id);
    after.sort_by_key(|s| s.sender_id);
    assert!(before == after, "the restored windows differ");
    for env in &accepted {
        assert_eq!(restarted.open_to_vec("fleet/up", env), Err(Error::Duplicate));
    }
    // A restored window still accepts what it never saw.
    assert!(restarted.open_to_vec("fleet/up", &envelope(7, 5001, Suite::ChaCha20Poly1305)).is_ok());
}
