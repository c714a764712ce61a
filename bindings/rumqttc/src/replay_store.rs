//! Replay stores: where a subscriber's replay windows live when it uses
//! [`Protection::shared_replay_windows`](crate::Protection::shared_replay_windows).
//!
//! The core verifies each envelope and yields a pending message
//! ([`crate::PendingMessage`]) with its [`WindowQuery`]; a [`ReplayStore`]
//! decides a batch of queries and answers one [`WindowVerdict`] per query,
//! in order. [`LocalReplayStore`] keeps the windows in this process;
//! [`RedisReplayStore`] (feature `redis`) keeps them in Redis or Valkey,
//! shared by every instance of a shared-subscription group.

use core::future::Future;
use std::collections::HashMap;
use std::sync::Mutex;

use mqseal::{check_and_update_local, ReplayWindow, WindowQuery, WindowVerdict};

/// The store could not decide (unreachable, timed out, refused): nothing
/// of the batch may be delivered; hold the messages back and ask again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("replay store unavailable: {0}")]
pub struct StoreUnavailable(pub String);

/// Default bound of a queue of verified messages waiting for the replay
/// store's verdict (what `mqseal sub --max-held-back` defaults to): while
/// the store is unreachable, messages beyond it are dropped undelivered
/// with [`crate::Pending::drop_held_back`] and counted in
/// [`crate::Stats::held_back_dropped`]. With QoS 1/2 and manual acks the
/// broker's in-flight window bounds the queue long before this; under
/// QoS 0 nothing else does.
pub const DEFAULT_MAX_HELD_BACK: usize = 10_000;

/// A store of replay windows that decides, atomically per query, whether
/// a verified (key id, sender id, counter) is new, and records it if so,
/// with exactly the rule of the core's [`ReplayWindow`].
pub trait ReplayStore: Send + Sync {
    /// One verdict per query, in order. Queries of one batch are decided in
    /// order too, so a batch may hold the same sender (or the same counter)
    /// more than once.
    ///
    /// # Errors
    /// [`StoreUnavailable`]: no verdict; deliver nothing of the batch.
    fn check_and_update(
        &self,
        queries: &[WindowQuery],
    ) -> impl Future<Output = Result<Vec<WindowVerdict>, StoreUnavailable>> + Send;
}

/// Replay windows in this process (what a single subscriber needs; several
/// instances behind a shared subscription need [`RedisReplayStore`]).
#[derive(Debug, Default)]
pub struct LocalReplayStore {
    windows: Mutex<HashMap<(u32, u32), ReplayWindow>>,
}

impl LocalReplayStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides one batch (the synchronous form of
    /// [`ReplayStore::check_and_update`]).
    ///
    /// # Errors
    /// [`StoreUnavailable`] for a width outside 1 to [`mqseal::MAX_WINDOW`]
    /// or a gap budget above [`mqseal::MAX_GAPS`].
    pub fn decide(&self, queries: &[WindowQuery]) -> Result<Vec<WindowVerdict>, StoreUnavailable> {
        let mut windows = self.windows.lock().map_err(|_| StoreUnavailable("poisoned lock".into()))?;
        let mut out = Vec::with_capacity(queries.len());
        for q in queries {
            let window = match windows.entry((q.key_id, q.sender_id)) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(
                    ReplayWindow::with_gaps(q.width, q.gaps)
                        .map_err(|e| StoreUnavailable(format!("window width or gaps: {e}")))?,
                ),
            };
            out.push(check_and_update_local(window, q.counter));
        }
        Ok(out)
    }

    /// Drops every window under `key_id` (its key was retired).
    pub fn retire_key(&self, key_id: u32) {
        if let Ok(mut w) = self.windows.lock() {
            w.retain(|(k, _), _| *k != key_id);
        }
    }
}

impl ReplayStore for LocalReplayStore {
    fn check_and_update(
        &self,
        queries: &[WindowQuery],
    ) -> impl Future<Output = Result<Vec<WindowVerdict>, StoreUnavailable>> + Send {
        let r = self.decide(queries);
        async move { r }
    }
}

/// Asks `store` about a batch of pending messages: one verdict per
/// message, in order, to give to each message's `resolve`. When the store
/// cannot decide, every message of the batch is counted in
/// [`crate::Stats::held_back`] (once per message) and stays pending: keep
/// it, do not acknowledge it, and ask again later.
///
/// # Errors
/// [`StoreUnavailable`] as described.
pub async fn ask_store<S: ReplayStore, P>(
    store: &S,
    batch: &mut [crate::protection::Pending<P>],
) -> Result<Vec<WindowVerdict>, StoreUnavailable> {
    let queries: Vec<WindowQuery> = batch.iter().map(crate::protection::Pending::query).collect();
    let verdicts = store.check_and_update(&queries).await;
    held_back_unless_decided(batch, verdicts)
}

/// Counts every message of `batch` as held back when the store did not decide.
fn held_back_unless_decided<P>(
    batch: &mut [crate::protection::Pending<P>],
    verdicts: Result<Vec<WindowVerdict>, StoreUnavailable>,
) -> Result<Vec<WindowVerdict>, StoreUnavailable> {
    if verdicts.is_err() {
        for p in batch.iter_mut() {
            p.hold();
        }
    }
    verdicts
}

/// [`ask_store`] for an exactly-once sink: batch `n` of `owner` decided
/// and its accepted entries staged in one atomic call
/// ([`RedisReplayStore::check_and_stage`]); `records[i]` is message `i`'s
/// [`mqseal::PendingRecord::encode`]d bytes. Held back as [`ask_store`]
/// when the store cannot decide.
///
/// # Errors
/// [`StoreUnavailable`] as described.
#[cfg(feature = "redis")]
pub async fn ask_store_staged<P>(
    store: &RedisReplayStore,
    owner: &str,
    n: u64,
    batch: &mut [crate::protection::Pending<P>],
    records: Vec<Vec<u8>>,
) -> Result<Vec<WindowVerdict>, StoreUnavailable> {
    let entries: Vec<(WindowQuery, Vec<u8>)> =
        batch.iter().map(crate::protection::Pending::query).zip(records).collect();
    let verdicts = store.check_and_stage(owner, n, &entries).await;
    held_back_unless_decided(batch, verdicts)
}

#[cfg(feature = "redis")]
pub use self::redis_store::{RedisReplayStore, DEFAULT_PREFIX};

#[cfg(feature = "redis")]
mod redis_store {
    use super::{ReplayStore, StoreUnavailable};
    use core::future::Future;
    use core::time::Duration;
    use mqseal::{WindowQuery, WindowVerdict, BATCH_SCRIPT, WINDOW_SCRIPT};
    use redis::aio::{ConnectionManager, ConnectionManagerConfig};

    /// Replay windows in Redis (or Valkey), shared by every subscriber
    /// instance that uses the same server and key prefix.
    ///
    /// Each query runs [`mqseal::WINDOW_SCRIPT`] (the core's window rule as
    /// a Lua script, loaded once with `SCRIPT LOAD` and called by its SHA1
    /// with `EVALSHA`, reloaded after `NOSCRIPT`), atomically server-side,
    /// on the key `<prefix>w:<key id>:<sender id>`. A batch is sent as one
    /// pipeline over a multiplexed connection that reconnects by itself
    /// ([`redis::aio::ConnectionManager`]).
    ///
    /// Entries live until their key is retired ([`RedisReplayStore::retire_key`])
    /// unless a TTL is set ([`RedisReplayStore::with_ttl`]); see the crate
    /// docs for what a TTL costs.
    #[derive(Clone)]
    pub struct RedisReplayStore {
        conn: ConnectionManager,
        prefix: String,
        ttl_ms: u64,
        script: redis::Script,
        batch: redis::Script,
    }

    impl core::fmt::Debug for RedisReplayStore {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("RedisReplayStore")
                .field("prefix", &self.prefix)
                .field("ttl_ms", &self.ttl_ms)
                .finish_non_exhaustive()
        }
    }

    /// The default key prefix (the core's [`WindowQuery::DEFAULT_PREFIX`]).
    pub const DEFAULT_PREFIX: &str = WindowQuery::DEFAULT_PREFIX;

    fn unavailable(e: &redis::RedisError) -> StoreUnavailable {
        StoreUnavailable(e.to_string())
    }

    impl RedisReplayStore {
        /// Connects to `url` (`redis://host:port/db`, `rediss://...`,
        /// `unix:///path`) and loads the script. Keys are prefixed with
        /// [`DEFAULT_PREFIX`]; no TTL.
        ///
        /// # Errors
        /// [`StoreUnavailable`] when the URL is invalid or the server cannot
        /// be reached.
        pub async fn connect(url: &str) -> Result<Self, StoreUnavailable> {
            let client = redis::Client::open(url).map_err(|e| unavailable(&e))?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Duration::from_secs(2))
                .set_response_timeout(Duration::from_secs(2))
                .set_number_of_retries(2)
                .set_max_delay(1000);
            let conn = ConnectionManager::new_with_config(client, config).await.map_err(|e| unavailable(&e))?;
            let store = RedisReplayStore {
                conn,
                prefix: DEFAULT_PREFIX.into(),
                ttl_ms: 0,
                script: redis::Script::new(WINDOW_SCRIPT),
                batch: redis::Script::new(BATCH_SCRIPT),
            };
            store.load_script().await?;
            Ok(store)
        }

        /// Uses `prefix` for every key (one prefix per subscriber group or
        /// deployment sharing a server).
        #[must_use]
        pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
            self.prefix = prefix.into();
            self
        }

        /// Lets a window expire `ttl` after its sender's last accepted
        /// message (`None`: never; the default). Set it no shorter than
        /// the key's lifetime, or the receivers' maximum age: an expired
        /// window makes every old envelope of that sender new again.
        #[must_use]
        pub fn with_ttl(mut self, ttl: Option<Duration>) -> Self {
            self.ttl_ms = ttl.map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1));
            self
        }

        /// The script's SHA1 (what `EVALSHA` calls).
        #[must_use]
        pub fn script_hash(&self) -> &str {
            self.script.get_hash()
        }

        async fn load_script(&self) -> Result<(), StoreUnavailable> {
            let mut conn = self.conn.clone();
            for text in [WINDOW_SCRIPT, BATCH_SCRIPT] {
                let _: String = redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(text)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| unavailable(&e))?;
            }
            Ok(())
        }

        /// Exactly-once sinks (docs/EXACTLY_ONCE.md): decides batch `n` of
        /// `owner` in ONE atomic call of [`mqseal::BATCH_SCRIPT`], which
        /// also stages the accepted entries' records (each entry: its query
        /// and its [`mqseal::PendingRecord::encode`]d bytes) under
        /// [`mqseal::pending_key`] field `n` (with the window TTL, if any).
        /// Either all of it happened or none.
        ///
        /// # Errors
        /// [`StoreUnavailable`]: nothing decided or staged that the caller
        /// may rely on; hold the batch back and ask again (a retry of a
        /// call that did run answers `duplicate`: its records are staged,
        /// and [`mqseal::recovery_plan`] delivers them after a restart).
        pub async fn check_and_stage(
            &self,
            owner: &str,
            n: u64,
            entries: &[(WindowQuery, Vec<u8>)],
        ) -> Result<Vec<WindowVerdict>, StoreUnavailable> {
            if entries.is_empty() {
                return Ok(Vec::new());
            }
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(self.batch.get_hash()).arg(entries.len() + 1);
            for (q, _) in entries {
                cmd.arg(q.redis_key(&self.prefix));
            }
            cmd.arg(mqseal::pending_key(&self.prefix, owner));
            for a in mqseal::batch_script_args(n, self.ttl_ms, self.ttl_ms, entries) {
                cmd.arg(a);
            }
            let mut conn = self.conn.clone();
            let codes: Vec<i64> = match cmd.query_async(&mut conn).await {
                Ok(c) => c,
                Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                    self.load_script().await?;
                    cmd.query_async(&mut conn).await.map_err(|e| unavailable(&e))?
                }
                Err(e) => return Err(unavailable(&e)),
            };
            Self::verdicts(codes, entries.len())
        }

        /// Every batch of `owner` staged and not yet unstaged: (batch
        /// number, records).
        ///
        /// # Errors
        /// [`StoreUnavailable`] when the server cannot be reached or a field
        /// is not a batch number.
        pub async fn staged(&self, owner: &str) -> Result<Vec<(u64, Vec<u8>)>, StoreUnavailable> {
            let mut conn = self.conn.clone();
            let all: Vec<(String, Vec<u8>)> = redis::cmd("HGETALL")
                .arg(mqseal::pending_key(&self.prefix, owner))
                .query_async(&mut conn)
                .await
                .map_err(|e| unavailable(&e))?;
            all.into_iter()
                .map(|(f, v)| f.parse().map(|n| (n, v)).map_err(|_| StoreUnavailable(format!("staged batch {f:?}"))))
                .collect()
        }

        /// Deletes staged batches of `owner` (once they are durable in the sink).
        ///
        /// # Errors
        /// [`StoreUnavailable`] when the server cannot be reached.
        pub async fn unstage(&self, owner: &str, batches: &[u64]) -> Result<(), StoreUnavailable> {
            if batches.is_empty() {
                return Ok(());
            }
            let mut conn = self.conn.clone();
            let _: u64 = redis::cmd("HDEL")
                .arg(mqseal::pending_key(&self.prefix, owner))
                .arg(batches)
                .query_async(&mut conn)
                .await
                .map_err(|e| unavailable(&e))?;
            Ok(())
        }

        fn verdicts(codes: Vec<i64>, n: usize) -> Result<Vec<WindowVerdict>, StoreUnavailable> {
            if codes.len() != n {
                return Err(StoreUnavailable(format!("{} answers for {n} queries", codes.len())));
            }
            codes
                .into_iter()
                .map(|c| WindowVerdict::from_code(c).map_err(|_| StoreUnavailable(format!("script answered {c}"))))
                .collect()
        }

        fn pipeline(&self, queries: &[WindowQuery]) -> redis::Pipeline {
            let mut pipe = redis::pipe();
            for q in queries {
                pipe.cmd("EVALSHA")
                    .arg(self.script.get_hash())
                    .arg(1)
                    .arg(q.redis_key(&self.prefix))
                    .arg(&q.script_args(self.ttl_ms)[..]);
            }
            pipe
        }

        async fn run(&self, queries: &[WindowQuery]) -> Result<Vec<WindowVerdict>, StoreUnavailable> {
            if queries.is_empty() {
                return Ok(Vec::new());
            }
            let mut conn = self.conn.clone();
            let pipe = self.pipeline(queries);
            let codes: Vec<i64> = match pipe.query_async(&mut conn).await {
                Ok(c) => c,
                Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                    // The server lost its script cache (restart, SCRIPT
                    // FLUSH): no call of the pipeline ran. Load and retry.
                    self.load_script().await?;
                    pipe.query_async(&mut conn).await.map_err(|e| unavailable(&e))?
                }
                Err(e) => return Err(unavailable(&e)),
            };
            Self::verdicts(codes, queries.len())
        }

        /// Deletes every window under `key_id` (once the key is retired on
        /// every receiver). Returns how many were deleted.
        ///
        /// # Errors
        /// [`StoreUnavailable`] when the server cannot be reached.
        pub async fn retire_key(&self, key_id: u32) -> Result<u64, StoreUnavailable> {
            let mut conn = self.conn.clone();
            let pattern = format!("{}w:{key_id}:*", self.prefix);
            let mut cursor = 0u64;
            let mut deleted = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| unavailable(&e))?;
                if !keys.is_empty() {
                    let n: u64 =
                        redis::cmd("UNLINK").arg(&keys).query_async(&mut conn).await.map_err(|e| unavailable(&e))?;
                    deleted += n;
                }
                if next == 0 {
                    return Ok(deleted);
                }
                cursor = next;
            }
        }
    }

    impl ReplayStore for RedisReplayStore {
        fn check_and_update(
            &self,
            queries: &[WindowQuery],
        ) -> impl Future<Output = Result<Vec<WindowVerdict>, StoreUnavailable>> + Send {
            self.run(queries)
        }
    }
}
