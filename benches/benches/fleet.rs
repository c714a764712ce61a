//! Fleet-scale receivers (BENCHMARKS.md, "Issue 11: fleet-scale receivers"):
//!
//! * `fleet_open/<n>`: one `FleetOpener::open_in_place` of a fresh,
//!   genuine HMAC-SHA256 envelope (16-byte payload) while `n` senders are
//!   tracked, one message per sender in a scattered round-robin order (so
//!   the table is walked in random order, the cache-unfriendly case).
//!   Sealing happens in Criterion's untimed setup.
//! * `fleet_open_fixed/64`: the same with the fixed table (`Opener<8, 64>`),
//!   the baseline of the old default.
//! * `fleet_lookup/hashmap/<n>`: the floor under `fleet_open/<n>`, with no
//!   mqseal code at all: one lookup in std's `HashMap` (the same SwissTable
//!   as the core's `hashbrown`, keyed SipHash) of a (key id, sender id) whose
//!   whole 112-byte state is inline in the table (one table access, the
//!   fewest possible), read and updated. Each entry names the next sender
//!   of the scattered order, so each lookup waits for the one before, as in
//!   `fleet_open` (where an open's thousands of instructions of MAC and
//!   parsing keep two lookups from overlapping).
//!   `fleet_lookup/direct/<n>`: the same chain in a plain array indexed by
//!   sender id, no table at all: one memory access per message, the floor
//!   of any layout that keeps a sender's state in memory.
//! * `fleet_snapshot/save/1000000` and `fleet_snapshot/load/1000000`: the
//!   replay-state file (`ReplayStateFile::save`, atomic replace with fsync
//!   of file and directory) and its load into a fresh opener
//!   (`restore_into`), at 10^6 senders.
//!
//! The memory per tracked sender (`SenderTable::memory_bytes` / n) is
//! printed and, with `MQSEAL_FLEET_JSON=path`, written as JSON for
//! `benches/report.py`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::std_instead_of_core)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use mqseal::{
    FleetOpener, Key, Keyring, MemoryCounterStore, Opener, OpenerWith, ReplayStateFile, Sealer, SenderMap, SenderTable,
    Suite,
};

const SIZES: [u32; 4] = [100, 10_000, 100_000, 1_000_000];
const TOPIC: &str = "fleet/up";

fn key() -> Key {
    Key::from_bytes(1, [7; 32])
}

fn envelope(sender: u32, counter: u64) -> Vec<u8> {
    let mut s = Sealer::new(&key(), sender, Suite::HmacSha256, MemoryCounterStore::starting_at(counter)).unwrap();
    s.seal_to_vec(TOPIC, &[0x5a; 16]).unwrap()
}

/// Scattered round-robin: message `pos` goes to sender `pos * STRIDE mod n`
/// (a permutation of the senders per round: STRIDE is odd and prime to the
/// sizes used), at counter `round + 1`.
const STRIDE: u64 = 2_654_435_761;

struct Feed {
    n: u64,
    pos: u64,
}

impl Feed {
    fn batch(&mut self, len: usize) -> Vec<Vec<u8>> {
        (0..len)
            .map(|_| {
                let sender = (self.pos % self.n * STRIDE % self.n) as u32;
                let counter = self.pos / self.n + 1;
                self.pos += 1;
                envelope(sender, counter)
            })
            .collect()
    }
}

fn filled<S: SenderTable>(mut opener: OpenerWith<8, S>, n: u32) -> OpenerWith<8, S> {
    for id in 0..n {
        opener.open_to_vec(TOPIC, &envelope(id, 0)).unwrap();
    }
    opener
}

fn open_batch<S: SenderTable>(opener: &mut OpenerWith<8, S>, batch: Vec<Vec<u8>>) {
    for mut env in batch {
        black_box(opener.open_in_place(TOPIC, &mut env).unwrap());
    }
}

const BATCH: usize = 256;

fn fleet_open(c: &mut Criterion) {
    let mut memory = Vec::new();
    let mut g = c.benchmark_group("fleet_open");
    g.throughput(criterion::Throughput::Elements(BATCH as u64));
    for n in SIZES {
        let mut opener = filled(FleetOpener::new(Keyring::with_primary(key()).unwrap()), n);
        let bytes = opener.senders().memory_bytes();
        let per = bytes as f64 / f64::from(n);
        eprintln!("fleet_open/{n}: {bytes} bytes in the sender table, {per:.1} bytes per sender");
        memory.push(format!("{{\"senders\": {n}, \"bytes\": {bytes}}}"));
        let mut feed = Feed { n: u64::from(n), pos: 0 };
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_batched(|| feed.batch(BATCH), |batch| open_batch(&mut opener, batch), BatchSize::LargeInput);
        });
    }
    g.finish();
    let mut g = c.benchmark_group("fleet_open_fixed");
    g.throughput(criterion::Throughput::Elements(BATCH as u64));
    let fixed: Opener<8, 64> = Opener::new(Keyring::with_primary(key()).unwrap());
    let mut opener = filled(fixed, 64);
    let mut feed = Feed { n: 64, pos: 0 };
    g.bench_function("64", |b| {
        b.iter_batched(|| feed.batch(BATCH), |batch| open_batch(&mut opener, batch), BatchSize::LargeInput);
    });
    g.finish();
    if let Ok(path) = std::env::var("MQSEAL_FLEET_JSON") {
        std::fs::write(path, format!("{{\"memory\": [{}]}}\n", memory.join(", "))).unwrap();
    }
}

fn fleet_snapshot(c: &mut Criterion) {
    let n = 1_000_000u32;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replay.state");
    let opener = filled(FleetOpener::new(Keyring::with_primary(key()).unwrap()), n);
    let mut file = ReplayStateFile::open(&path).unwrap();
    let mut g = c.benchmark_group("fleet_snapshot");
    g.sample_size(10);
    g.bench_function(BenchmarkId::new("save", n), |b| b.iter(|| file.save(&opener).unwrap()));
    g.bench_function(BenchmarkId::new("load", n), |b| {
        b.iter_batched(
            || {
                let mut o: FleetOpener = OpenerWith::with_table(
                    Keyring::with_primary(key()).unwrap(),
                    SenderMap::new(mqseal::DEFAULT_MAX_SENDERS).unwrap(),
                );
                o.senders_mut().reserve(n as usize);
                o
            },
            |mut o| {
                let report = file.restore_into(&mut o).unwrap();
                assert_eq!(report.restored, n as usize);
                o
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
    eprintln!("fleet_snapshot: {} bytes on disk for {n} senders", std::fs::metadata(&path).unwrap().len());
}

/// One sender's state in the lookup floor: the next sender id of the
/// chain, then room for a window and a subkey (112 bytes in all).
type Entry = [u64; 14];

fn fleet_lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("fleet_lookup");
    const STEPS: u64 = 4096;
    g.throughput(criterion::Throughput::Elements(STEPS));
    for n in SIZES {
        let n64 = u64::from(n);
        let mut map: std::collections::HashMap<(u32, u32), Entry> =
            std::collections::HashMap::with_capacity(n as usize);
        // The scattered order of `Feed`: position p holds sender p * STRIDE mod n.
        for p in 0..n64 {
            let sender = (p * STRIDE % n64) as u32;
            let next = ((p + 1) % n64 * STRIDE % n64) as u32;
            let mut entry = [0u64; 14];
            entry[0] = u64::from(next);
            map.insert((1, sender), entry);
        }
        let mut at = 0u32;
        g.bench_with_input(BenchmarkId::new("hashmap", n), &n, |b, _| {
            b.iter(|| {
                for _ in 0..STEPS {
                    let entry = map.get_mut(&(1, black_box(at))).unwrap();
                    entry[1] += 1;
                    at = entry[0] as u32;
                }
            });
        });
        drop(map);
        // No table at all: the entry of sender i at index i, one memory
        // access per message (what no hash table can beat).
        let mut direct: Vec<Entry> = vec![[0; 14]; n as usize];
        for p in 0..n64 {
            direct[(p * STRIDE % n64) as usize][0] = (p + 1) % n64 * STRIDE % n64;
        }
        let mut at = 0usize;
        g.bench_with_input(BenchmarkId::new("direct", n), &n, |b, _| {
            b.iter(|| {
                for _ in 0..STEPS {
                    let entry = &mut direct[black_box(at)];
                    entry[1] += 1;
                    at = entry[0] as usize;
                }
            });
        });
    }
    g.finish();
}

criterion_group!(benches, fleet_open, fleet_lookup, fleet_snapshot);
criterion_main!(benches);
