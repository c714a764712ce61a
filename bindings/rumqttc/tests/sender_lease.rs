//! Sender-id leases against a real redis-server: concurrent holders never
//! share an id; a holder past its TTL is fenced (it never repeats a
//! (sender id, counter) with the next holder, and its next grant fails);
//! a Redis restart (AOF) keeps leases and counters; a store that lost its
//! data refuses to restart counters.
//!
//! Tests that need redis-server start it with `redis_or_skip!`
//! (mqseal-test-support): skipped when it is not installed, a failure under CI.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::std_instead_of_core)]

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use mqseal::{Error, Key, LeaseConfig, Sealer, StoreError, Suite};
use mqseal_rumqttc::{LeaseError, LeaseOptions, LeasedCounterStore, SenderLease};

fn key() -> Key {
    Key::from_bytes(4, [0x42; 32])
}

fn options(first: u32, last: u32, ttl_ms: u64, create: bool) -> LeaseOptions {
    LeaseOptions { create_counters: create, ..LeaseOptions::new(LeaseConfig::new(4, first, last, ttl_ms).unwrap()) }
}

fn sealer(lease: &SenderLease, block: u64) -> Sealer<LeasedCounterStore> {
    Sealer::new(&key(), lease.sender_id(), Suite::ChaCha20Poly1305, lease.counter_store())
        .unwrap()
        .with_reservation_block(block)
        .unwrap()
}

/// Seals one message and returns its (sender id, counter).
fn seal(s: &mut Sealer<LeasedCounterStore>) -> Result<(u32, u64), Error> {
    let env = s.seal_to_vec("svc/out", b"x")?;
    let h = mqseal::Envelope::parse(&env).unwrap().header;
    Ok((h.sender_id, h.counter))
}

fn exists(url: &str, key: &str) -> bool {
    let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
    redis::cmd("EXISTS").arg(key).query::<i64>(&mut c).unwrap() == 1
}

#[test]
fn concurrent_holders_never_share_an_id() {
    let redis = mqseal_test_support::redis_or_skip!();
    let url = redis.url();
    const N: usize = 12;
    let barrier = Arc::new(Barrier::new(N));
    let threads: Vec<_> = (0..N)
        .map(|_| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut lease = SenderLease::acquire(&url, &options(100, 109, 5000, true)).map_err(|e| e.to_string());
                if let Ok(l) = lease.as_mut() {
                    l.keep_renewed();
                }
                lease
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut leases = Vec::new();
    let mut refused = Vec::new();
    for r in results {
        match r {
            Ok(l) => leases.push(l),
            Err(e) => refused.push(e),
        }
    }
    assert_eq!(leases.len(), 10, "refused: {refused:?}");
    assert!(refused.iter().all(|e| e.contains("no free sender id")), "{refused:?}");
    let ids: HashSet<u32> = leases.iter().map(SenderLease::sender_id).collect();
    assert_eq!(ids, (100..=109).collect(), "ids shared or outside the range");
    // The range is full: the next holder is refused, with the range named.
    let err = SenderLease::acquire(&url, &options(100, 109, 5000, true)).unwrap_err();
    assert_eq!(err, LeaseError::NoFreeId { key_id: 4, first: 100, last: 109 });
    // Every holder seals; no (sender id, counter) twice.
    let mut seen = HashSet::new();
    for l in &leases {
        let mut s = sealer(l, 3);
        for _ in 0..7 {
            assert!(seen.insert(seal(&mut s).unwrap()));
        }
    }
    // A released id is free again at once, and is the lowest free one.
    let mut leases = leases;
    leases.sort_by_key(SenderLease::sender_id);
    let third = leases.remove(3);
    assert_eq!(third.sender_id(), 103);
    third.release().unwrap();
    let again = SenderLease::acquire(&url, &options(100, 109, 5000, false)).unwrap();
    assert_eq!(again.sender_id(), 103);
    // It resumes above every counter the earlier holder was granted.
    assert_eq!(again.acquired_limit(), Some(9));
    let mut s = sealer(&again, 3);
    assert_eq!(seal(&mut s).unwrap(), (103, 9));
}

#[test]
fn a_holder_past_its_ttl_is_fenced() {
    let redis = mqseal_test_support::redis_or_skip!();
    let url = redis.url();
    // One id, a short TTL, no renewal: A stands for an instance paused
    // past its lease.
    let a_lease = SenderLease::acquire(&url, &options(5, 5, 300, true)).unwrap();
    let mut a = sealer(&a_lease, 4);
    let mut used = HashSet::new();
    for _ in 0..2 {
        assert!(used.insert(seal(&mut a).unwrap()));
    }
    // Held: nobody else gets the id.
    assert!(matches!(SenderLease::acquire(&url, &options(5, 5, 300, true)), Err(LeaseError::NoFreeId { .. })));
    // Wait for the lease to expire (a condition, not a duration).
    let lease_key = mqseal::lease_key(mqseal_rumqttc::DEFAULT_PREFIX, 4, 5);
    let deadline = Instant::now() + Duration::from_secs(10);
    while exists(&url, &lease_key) {
        assert!(Instant::now() < deadline, "the lease never expired");
        std::thread::sleep(Duration::from_millis(20));
    }
    // B takes the id; it starts at the limit A was granted (4).
    let b_lease = SenderLease::acquire(&url, &options(5, 5, 5000, true)).unwrap();
    assert_eq!((b_lease.sender_id(), b_lease.acquired_limit()), (5, Some(4)));
    let mut b = sealer(&b_lease, 4);
    // A, resumed, still seals from its granted block: counters 2 and 3,
    // below where B starts.
    for _ in 0..2 {
        assert!(used.insert(seal(&mut a).unwrap()));
    }
    // Its next grant is fenced by the token check, before B ever wrote the
    // counter (so the compare-and-swap alone would have let A through).
    assert_eq!(seal(&mut a), Err(Error::CounterStore(StoreError::LeaseLost)));
    assert!(a_lease.is_lost());
    // B seals across several grants; nothing repeats.
    for _ in 0..10 {
        let sc = seal(&mut b).unwrap();
        assert!(used.insert(sc), "{sc:?} used twice");
    }
    // A stays stopped; B is unaffected.
    assert_eq!(seal(&mut a), Err(Error::CounterStore(StoreError::LeaseLost)));
    assert_eq!(a_lease.renew(), Err(LeaseError::Lost));
    b_lease.renew().unwrap();
    assert!(used.insert(seal(&mut b).unwrap()));
    let counters: Vec<u64> = used.iter().map(|(_, c)| *c).collect();
    assert_eq!(counters.len(), 15);
}

#[test]
fn leases_and_counters_survive_a_redis_restart_and_lost_data_is_refused() {
    let mut redis = mqseal_test_support::redis_or_skip!();
    let url = redis.url();
    let mut lease = SenderLease::acquire(&url, &options(0, 1, 3000, true)).unwrap();
    lease.keep_renewed();
    assert_eq!(lease.sender_id(), 0);
    let mut s = sealer(&lease, 4);
    let mut used = HashSet::new();
    for _ in 0..6 {
        assert!(used.insert(seal(&mut s).unwrap()));
    }
    redis.kill();
    redis.restart();
    // The grants reconnect; counters go on.
    for _ in 0..10 {
        let sc = seal(&mut s).unwrap();
        assert!(used.insert(sc), "{sc:?} used twice");
    }
    assert_eq!(used.iter().map(|(_, c)| *c).max(), Some(15));
    // The lease itself survived (AOF): a second instance gets id 1.
    let other = SenderLease::acquire(&url, &options(0, 1, 3000, false)).unwrap();
    assert_eq!(other.sender_id(), 1);
    assert!(!lease.is_lost());
    drop(other);
    // A Redis that lost its data (here FLUSHALL) must not restart the
    // counters at 0: without create_counters the id is refused.
    drop(s);
    drop(lease);
    let mut c = redis::Client::open(url.as_str()).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
    let fresh = SenderLease::acquire(&url, &options(0, 1, 3000, false)).unwrap();
    assert_eq!(fresh.acquired_limit(), None);
    let r = Sealer::new(&key(), fresh.sender_id(), Suite::ChaCha20Poly1305, fresh.counter_store());
    assert_eq!(r.err(), Some(Error::CounterStore(StoreError::Missing)));
}
