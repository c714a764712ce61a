//! The Redis replay store against a real redis-server: the Lua script and
//! the core window agree on random operation sequences; NOSCRIPT reload;
//! key retirement; fail-closed when Redis is down; state kept across a
//! restart with AOF.
//!
//! Tests that need redis-server start it with `redis_or_skip!`
//! (mqseal-test-support): skipped when it is not installed, a failure under CI.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::std_instead_of_core)]

use mqseal::{WindowQuery, WindowVerdict};
use mqseal_rumqttc::{LocalReplayStore, RedisReplayStore, ReplayStore};

/// xorshift64*: deterministic, seeded, good enough to pick operations.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WIDTHS: [u32; 13] = [1, 2, 31, 32, 33, 63, 64, 65, 127, 128, 200, 255, 256];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_script_and_the_core_window_agree_on_random_sequences() {
    let redis = mqseal_test_support::redis_or_skip!();
    let store = RedisReplayStore::connect(&redis.url()).await.unwrap().with_prefix("diff:");
    let local = LocalReplayStore::new();
    // The exactly-once batch script (the window script's text inside it)
    // on its own windows: the same verdicts, and it stages exactly the
    // accepted entries.
    let batch_store = RedisReplayStore::connect(&redis.url()).await.unwrap().with_prefix("batch:");
    let mut batch_no = 0u64;
    let seed = std::env::var("MQSEAL_DIFF_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x6d71_7365_616c_u64);
    let mut rng = Rng(seed);
    // Senders with their own width and base counter: near 0, near the
    // 32-bit boundary (the script splits counters in halves), near u64::MAX.
    let bases = [0u64, 1000, (1 << 32) - 300, (1 << 32) + 5, u64::MAX - 2000, 1 << 52];
    // Gap budgets 0 to MAX_GAPS, spread over the widths.
    let senders: Vec<(u32, u32, u32, u64, u32)> = (0..30u32)
        .map(|i| {
            let budget = (i / 3) % (mqseal::MAX_GAPS as u32 + 1);
            (1 + i % 2, i, WIDTHS[i as usize % WIDTHS.len()], bases[i as usize % bases.len()], budget)
        })
        .collect();
    let mut highest: Vec<u64> = senders.iter().map(|s| s.3).collect();
    let mut ops = 0usize;
    let mut seen = [0usize; 3];
    let mut below_window = 0usize;
    let mut accepted_highest: Vec<Option<u64>> = vec![None; senders.len()];
    while ops < 40_000 {
        let batch_len = 1 + rng.below(64) as usize;
        let mut batch = Vec::with_capacity(batch_len);
        for _ in 0..batch_len {
            let i = rng.below(senders.len() as u64) as usize;
            let (key_id, sender_id, width, base, gaps) = senders[i];
            let w = u64::from(width);
            let h = highest[i];
            // Mostly around the window's edges: just ahead, at h, inside,
            // at the width, just beyond, far ahead, far behind (below the
            // window: in a gap or not), and anywhere in the skipped blocks.
            let counter = match rng.below(13) {
                0 => h.saturating_add(1 + rng.below(3)),
                1 => h.saturating_add(rng.below(w + 2)),
                2 => h.saturating_add(w - 1 + rng.below(3)),
                3 => h.saturating_add(300 + rng.below(1 << 20)),
                4 => h,
                5 | 6 => h.saturating_sub(rng.below(w + 2)),
                7 => h.saturating_sub(w.saturating_sub(1) + rng.below(3)),
                8 => h.saturating_sub(rng.below(3 * w + 3)),
                9 => h.saturating_sub(w + rng.below(2000)),
                10 => base.saturating_add(rng.below(1 << 22)),
                11 => h.saturating_sub(rng.below(1 << 21)),
                _ => base.saturating_add(rng.below(4)),
            };
            highest[i] = highest[i].max(counter);
            batch.push(WindowQuery { key_id, sender_id, counter, width, gaps });
        }
        let expect = local.check_and_update(&batch).await.unwrap();
        let got = store.check_and_update(&batch).await.unwrap();
        batch_no += 1;
        let entries: Vec<(WindowQuery, Vec<u8>)> = batch
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let topic = format!("t/{ops}/{i}");
                (
                    *q,
                    mqseal::PendingRecord { topic: topic.as_bytes(), envelope: &[1, 2], qos: 1, retain: false }
                        .encode()
                        .unwrap(),
                )
            })
            .collect();
        let staged_verdicts = batch_store.check_and_stage("diff", batch_no, &entries).await.unwrap();
        assert_eq!(staged_verdicts, expect, "batch script, seed {seed:#x}, op {ops}");
        let staged = batch_store.staged("diff").await.unwrap();
        let want: Vec<&Vec<u8>> =
            entries.iter().zip(&expect).filter(|(_, v)| **v == WindowVerdict::Accepted).map(|(e, _)| &e.1).collect();
        match staged.as_slice() {
            [] => assert!(want.is_empty()),
            [(n, bytes)] => {
                assert_eq!(*n, batch_no);
                assert_eq!(bytes, &want.into_iter().flatten().copied().collect::<Vec<u8>>());
            }
            more => panic!("{} staged batches", more.len()),
        }
        batch_store.unstage("diff", &[batch_no]).await.unwrap();
        for ((q, e), g) in batch.iter().zip(&expect).zip(&got) {
            assert_eq!(g, e, "seed {seed:#x}, op {ops}: {q:?}");
            // The highest accepted counter at the time of this query.
            let i = senders.iter().position(|s| (s.0, s.1) == (q.key_id, q.sender_id)).unwrap_or(0);
            if *e == WindowVerdict::Accepted {
                if accepted_highest[i].is_some_and(|h| q.counter.saturating_add(u64::from(q.width)) <= h) {
                    below_window += 1;
                }
                accepted_highest[i] = Some(accepted_highest[i].map_or(q.counter, |h| h.max(q.counter)));
            }
            ops += 1;
            seen[e.code() as usize] += 1;
        }
    }
    // The sequence exercised every outcome, many times, and accepted many
    // counters from gaps below the window.
    assert!(seen.iter().all(|n| *n > 1000), "outcomes {seen:?}");
    assert!(below_window > 500, "accepted below the window: {below_window}");
}

fn q(sender_id: u32, counter: u64) -> WindowQuery {
    WindowQuery { key_id: 7, sender_id, counter, width: 128, gaps: mqseal::DEFAULT_GAPS }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_script_cache_is_reloaded_and_a_retired_key_is_deleted() {
    let redis = mqseal_test_support::redis_or_skip!();
    let store = RedisReplayStore::connect(&redis.url()).await.unwrap();
    assert_eq!(
        store.check_and_update(&[q(1, 5), q(1, 5)]).await.unwrap(),
        [WindowVerdict::Accepted, WindowVerdict::Duplicate]
    );
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut conn).await.unwrap();
    assert_eq!(
        store.check_and_update(&[q(1, 5), q(1, 6)]).await.unwrap(),
        [WindowVerdict::Duplicate, WindowVerdict::Accepted]
    );
    let keys: Vec<String> = redis::cmd("KEYS").arg("mqseal:*").query_async(&mut conn).await.unwrap();
    assert_eq!(keys, ["mqseal:w:7:1"]);
    store.check_and_update(&[WindowQuery { key_id: 8, ..q(2, 1) }]).await.unwrap();
    assert_eq!(store.retire_key(7).await.unwrap(), 1);
    let keys: Vec<String> = redis::cmd("KEYS").arg("mqseal:*").query_async(&mut conn).await.unwrap();
    assert_eq!(keys, ["mqseal:w:8:2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_expire_with_their_ttl() {
    let redis = mqseal_test_support::redis_or_skip!();
    let store =
        RedisReplayStore::connect(&redis.url()).await.unwrap().with_ttl(Some(std::time::Duration::from_millis(300)));
    assert_eq!(store.check_and_update(&[q(1, 5)]).await.unwrap(), [WindowVerdict::Accepted]);
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg("mqseal:w:7:1").query_async(&mut conn).await.unwrap();
    assert!(ttl > 0 && ttl <= 300, "{ttl}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let exists: i64 = redis::cmd("EXISTS").arg("mqseal:w:7:1").query_async(&mut conn).await.unwrap();
    assert_eq!(exists, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_means_no_verdict_and_aof_keeps_the_windows_across_a_restart() {
    let mut redis = mqseal_test_support::redis_or_skip!();
    let store = RedisReplayStore::connect(&redis.url()).await.unwrap();
    let accepted: Vec<WindowQuery> = (0..50).map(|c| q(3, c)).collect();
    assert!(store.check_and_update(&accepted).await.unwrap().iter().all(|v| *v == WindowVerdict::Accepted));
    redis.kill();
    assert!(store.check_and_update(&[q(3, 50)]).await.is_err(), "no verdict while Redis is down");
    redis.restart();
    // The connection manager reconnects by itself; the script cache is
    // empty after the restart (NOSCRIPT, reloaded).
    let mut verdicts = None;
    for _ in 0..100 {
        if let Ok(v) = store.check_and_update(&accepted).await {
            verdicts = Some(v);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let verdicts = verdicts.expect("store did not come back");
    assert!(verdicts.iter().all(|v| *v == WindowVerdict::Duplicate), "{verdicts:?}");
    assert_eq!(store.check_and_update(&[q(3, 50)]).await.unwrap(), [WindowVerdict::Accepted]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_single_requests_in_a_row() {
    let redis = mqseal_test_support::redis_or_skip!();
    let store = RedisReplayStore::connect(&redis.url()).await.unwrap();
    for c in 0..5000u64 {
        let v = tokio::time::timeout(std::time::Duration::from_secs(10), store.check_and_update(&[q(9, c)]))
            .await
            .unwrap_or_else(|_| panic!("request {c} hung"))
            .unwrap();
        assert_eq!(v, [WindowVerdict::Accepted]);
    }
}
