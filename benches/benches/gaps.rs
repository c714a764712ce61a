//! Replay gaps (issue 11, point 4; BENCHMARKS.md "Late messages: replay
//! gaps"): the cost of one `FleetOpener::open_in_place` of a genuine
//! HMAC-SHA256 envelope (16-byte payload) from one tracked sender, by where
//! its counter lands and the sender's gap budget (`OpenerConfig::gaps`):
//!
//! * `gaps_open/in_order/0` and `gaps_open/in_order/4`: the next counter
//!   (the stream's usual case), budget 0 (the plain bitmap window) and 4
//!   with all 4 gaps in use below the window;
//! * `gaps_open/late_in_window/0` and `.../4`: a counter inside the window
//!   that was skipped (out of order by less than the window);
//! * `gaps_open/late_in_gap/4`: a counter far below the window, in the
//!   lowest of 4 gaps (the late message a broker restart holds back); with
//!   budget 0 the same message is `replay`.
//!
//! Each Criterion iteration opens a batch of envelopes into an opener
//! prepared (and the envelopes sealed) in untimed setup.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::std_instead_of_core)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use mqseal::{FleetOpener, Key, Keyring, MemoryCounterStore, OpenerConfig, Sealer, Suite};

const TOPIC: &str = "gaps/up";
const SENDER: u32 = 3;
/// Envelopes per iteration (fewer than the window: `late_in_window` needs
/// that many skipped counters inside it).
const BATCH: u64 = 100;

fn key() -> Key {
    Key::from_bytes(1, [9; 32])
}

fn envelope(counter: u64) -> Vec<u8> {
    let mut s = Sealer::new(&key(), SENDER, Suite::HmacSha256, MemoryCounterStore::starting_at(counter)).unwrap();
    s.seal_to_vec(TOPIC, &[0x5a; 16]).unwrap()
}

/// An opener with budget `gaps` that accepted `counters`, and the batch.
fn prepared(gaps: u32, accepted: &[u64], batch: impl Iterator<Item = u64>) -> (FleetOpener, Vec<Vec<u8>>) {
    let mut config = OpenerConfig::default();
    config.gaps = gaps;
    let mut opener = FleetOpener::with_config(Keyring::with_primary(key()).unwrap(), &config).unwrap();
    for &c in accepted {
        opener.open_to_vec(TOPIC, &envelope(c)).unwrap();
    }
    (opener, batch.map(envelope).collect())
}

/// Counters that leave 4 gaps below the window (128) of a sender whose
/// highest counter is 100,000: [2, 999], [1001, 1999], [2001, 2999],
/// [3001, 99872].
const FOUR_GAPS: [u64; 5] = [1, 1000, 2000, 3000, 100_000];

fn gaps_open(c: &mut Criterion) {
    let mut g = c.benchmark_group("gaps_open");
    g.throughput(Throughput::Elements(BATCH));
    for gaps in [0, 4] {
        let accepted: &[u64] = if gaps == 0 { &[100_000] } else { &FOUR_GAPS };
        g.bench_with_input(BenchmarkId::new("in_order", gaps), &gaps, |b, &gaps| {
            b.iter_batched(
                || prepared(gaps, accepted, 100_001..100_001 + BATCH),
                |(mut opener, batch)| {
                    for mut env in batch {
                        black_box(opener.open_in_place(TOPIC, &mut env).unwrap());
                    }
                    opener
                },
                BatchSize::SmallInput,
            );
        });
        // The highest is 100,000 + BATCH + 1: the batch's counters are
        // inside the window, skipped, and arrive now.
        let mut late_accepted = accepted.to_vec();
        late_accepted.push(100_000 + BATCH + 1);
        g.bench_with_input(BenchmarkId::new("late_in_window", gaps), &gaps, |b, &gaps| {
            b.iter_batched(
                || prepared(gaps, &late_accepted, 100_001..100_001 + BATCH),
                |(mut opener, batch)| {
                    for mut env in batch {
                        black_box(opener.open_in_place(TOPIC, &mut env).unwrap());
                    }
                    opener
                },
                BatchSize::SmallInput,
            );
        });
    }
    g.bench_with_input(BenchmarkId::new("late_in_gap", 4), &4, |b, &gaps| {
        b.iter_batched(
            || prepared(gaps, &FOUR_GAPS, 2..2 + BATCH),
            |(mut opener, batch)| {
                for mut env in batch {
                    black_box(opener.open_in_place(TOPIC, &mut env).unwrap());
                }
                opener
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

criterion_group!(benches, gaps_open);
criterion_main!(benches);
