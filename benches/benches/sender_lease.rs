//! Sender-id leases on Redis (issue 11, point 6; BENCHMARKS.md "Sender-id
//! leases"), against a real Debian `redis-server` this bench starts on a
//! free loopback port (AOF off):
//!
//! * `sender_lease/acquire_release`: `SenderLease::acquire` (connect, one
//!   `EVALSHA` of the lease script: lowest free id, token, TTL) and its
//!   release on drop (one more call), a lease's whole life without renewal;
//! * `sender_lease/renew`: one `SenderLease::renew` (connect, compare the
//!   token, reset the TTL);
//! * `sender_lease/seal_block_grant`: one `Sealer::seal_to_vec` that needs
//!   a new block of counters from the `LeasedCounterStore` (token check and
//!   compare-and-swap of the limit in Redis), blocks of 1 counter so every
//!   seal takes one; `sender_lease/seal_in_block` is the same sealer with
//!   the default block (1,024): the grant amortised.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::std_instead_of_core)]

use criterion::{criterion_group, criterion_main, Criterion};
use mqseal::{Key, LeaseConfig, Sealer, Suite};
use mqseal_rumqttc::{LeaseOptions, SenderLease};
use mqseal_test_support::redis::Redis;

fn options(first: u32, last: u32) -> LeaseOptions {
    let mut o = LeaseOptions::new(LeaseConfig::new(5, first, last, 10_000).unwrap());
    o.create_counters = true;
    o
}

fn sender_lease(c: &mut Criterion) {
    let redis = Redis::start_volatile();
    let url = redis.url();
    let mut g = c.benchmark_group("sender_lease");
    let acquire = options(0, 63);
    g.bench_function("acquire_release", |b| {
        b.iter(|| drop(SenderLease::acquire(&url, &acquire).unwrap()));
    });
    let lease = SenderLease::acquire(&url, &options(100, 100)).unwrap();
    g.bench_function("renew", |b| b.iter(|| lease.renew().unwrap()));
    let key = Key::from_bytes(5, [1; 32]);
    let grants = SenderLease::acquire(&url, &options(200, 200)).unwrap();
    let mut sealer = Sealer::new(&key, grants.sender_id(), Suite::HmacSha256, grants.counter_store())
        .unwrap()
        .with_reservation_block(1)
        .unwrap();
    // Past the block granted at construction: from here every seal grants.
    for _ in 0..2 * mqseal::DEFAULT_RESERVATION_BLOCK {
        sealer.seal_to_vec("lease/up", &[0x5a; 16]).unwrap();
    }
    g.bench_function("seal_block_grant", |b| b.iter(|| sealer.seal_to_vec("lease/up", &[0x5a; 16]).unwrap()));
    let blocks = SenderLease::acquire(&url, &options(300, 300)).unwrap();
    let mut sealer = Sealer::new(&key, blocks.sender_id(), Suite::HmacSha256, blocks.counter_store()).unwrap();
    g.bench_function("seal_in_block", |b| b.iter(|| sealer.seal_to_vec("lease/up", &[0x5a; 16]).unwrap()));
    g.finish();
}

criterion_group!(benches, sender_lease);
criterion_main!(benches);
