//! Shared-store subscriber throughput against the local window, in the same
//! run: 100,000 envelopes from 1,000 senders, verified by the core; then
//! either the local window (`FleetOpener::open_to_vec`) or the Redis store
//! (`open_pending_to_vec`, pipelined batches of 512 through
//! `RedisReplayStore`, one batch in flight, as `mqseal sub --replay-redis`).
//! Then as `mqseal sub --out` (one atomic decide-and-stage call per batch,
//! the batch appended to a batch log and fsynced, then unstaged).
//! Starts its own redis-server (Debian's) on a free loopback port, AOF off.
//!
//! `cargo bench -p mqseal-benches --bench shared_store`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::std_instead_of_core, missing_docs)]

use std::time::Instant;

use mqseal::{FleetOpener, Key, Keyring, MemoryCounterStore, Sealer, Suite, WindowVerdict};
use mqseal_rumqttc::{RedisReplayStore, ReplayStore};
use mqseal_test_support::redis::Redis;

const SENDERS: u32 = 1_000;
const PER_SENDER: u32 = 100;
const BATCH: usize = 512;

fn main() {
    let key = Key::from_bytes(1, [3; 32]);
    let mut envs = Vec::new();
    let mut sealers: Vec<_> = (0..SENDERS)
        .map(|s| Sealer::new(&key, s, Suite::ChaCha20Poly1305, MemoryCounterStore::new()).unwrap())
        .collect();
    for _ in 0..PER_SENDER {
        for (s, sealer) in sealers.iter_mut().enumerate() {
            let topic = format!("fleet/d{s}");
            let env = sealer.seal_to_vec(&topic, &[0x42; 64]).unwrap();
            envs.push((topic, env));
        }
    }
    let n = envs.len();

    let mut local: FleetOpener = FleetOpener::new(Keyring::with_primary(key.clone()).unwrap());
    let t = Instant::now();
    for (topic, env) in &envs {
        local.open_to_vec(topic.as_str(), env).unwrap();
    }
    let local_rate = n as f64 / t.elapsed().as_secs_f64();

    let mut redis = Redis::start_volatile();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let key2 = key.clone();
    let shared_rate = rt.block_on(async {
        let store = RedisReplayStore::connect(&redis.url()).await.unwrap();
        let mut opener: FleetOpener = FleetOpener::new(Keyring::with_primary(key).unwrap());
        let t = Instant::now();
        let mut delivered = 0usize;
        for chunk in envs.chunks(BATCH) {
            let pending: Vec<_> = chunk
                .iter()
                .map(|(topic, env)| opener.open_pending_to_vec(topic.as_str(), env, None).unwrap())
                .collect();
            let queries: Vec<_> = pending.iter().map(mqseal::PendingOpenVec::query).collect();
            let verdicts = store.check_and_update(&queries).await.unwrap();
            for (p, v) in pending.into_iter().zip(verdicts) {
                assert_eq!(v, WindowVerdict::Accepted);
                delivered += p.resolve(v).unwrap().payload.len() / 64;
            }
        }
        assert_eq!(delivered, n);
        n as f64 / t.elapsed().as_secs_f64()
    });
    // As `mqseal sub --out`: each batch decided and staged in one atomic
    // call (BATCH_SCRIPT), appended to the batch log and fsynced, unstaged.
    let path = std::env::temp_dir().join(format!("mqseal-bench-out-{}", std::process::id()));
    let out_rate = rt.block_on(async {
        let store = RedisReplayStore::connect(&redis.url()).await.unwrap().with_prefix("out:");
        let mut log = mqseal::BatchLog::open(&path).unwrap();
        let mut opener: FleetOpener = FleetOpener::new(Keyring::with_primary(key2).unwrap());
        let t = Instant::now();
        let mut delivered = 0usize;
        for (b, chunk) in envs.chunks(BATCH).enumerate() {
            let batch_no = b as u64 + 1;
            let pending: Vec<_> = chunk
                .iter()
                .map(|(topic, env)| opener.open_pending_to_vec(topic.as_str(), env, None).unwrap())
                .collect();
            let entries: Vec<_> = pending
                .iter()
                .zip(chunk)
                .map(|(p, (topic, env))| {
                    let record =
                        mqseal::PendingRecord { topic: topic.as_bytes(), envelope: env, qos: 1, retain: false };
                    (p.query(), record.encode().unwrap())
                })
                .collect();
            let verdicts = store.check_and_stage("bench", batch_no, &entries).await.unwrap();
            let mut body = Vec::new();
            for (p, v) in pending.into_iter().zip(verdicts) {
                body.extend_from_slice(&p.resolve(v).unwrap().payload);
                body.push(b'\n');
                delivered += 1;
            }
            log.append(batch_no, &body).unwrap();
            store.unstage("bench", &[batch_no]).await.unwrap();
        }
        assert_eq!(delivered, n);
        n as f64 / t.elapsed().as_secs_f64()
    });
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("lock"));
    redis.kill();
    println!("shared_store: {n} messages, {SENDERS} senders, batches of {BATCH}");
    println!("  local window (FleetOpener::open_to_vec): {local_rate:>10.0} msg/s");
    println!("  Redis store (open_pending + EVALSHA pipeline): {shared_rate:>10.0} msg/s");
    println!("  Redis store + --out file (BATCH_SCRIPT, append + fsync per batch): {out_rate:>10.0} msg/s");
    println!("  ratio shared/local: {:.2}", shared_rate / local_rate);
}
