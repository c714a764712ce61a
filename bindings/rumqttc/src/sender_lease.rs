//! Sender-id leases on Redis (feature `redis`): the I/O half of the core's
//! lease rule ([`mqseal::LeaseConfig`], [`mqseal::LEASE_SCRIPT`]).
//!
//! A service that publishes from several instances under one key acquires
//! a [`SenderLease`] per instance: the lowest free sender id of a range,
//! kept alive by a renewal thread, and a [`LeasedCounterStore`] for the
//! [`mqseal::Sealer`] whose every block grant checks the lease token and
//! compare-and-swaps the id's counter limit in Redis. A holder that lost
//! its lease (paused past the TTL, partitioned) may finish the block it was
//! granted — counters below where the next holder started — and then
//! sealing fails with [`mqseal::StoreError::LeaseLost`].
//!
//! The calls are synchronous (a [`mqseal::CounterStore`] is): a grant costs
//! one round trip per block of counters (1024 by default), made inside
//! the publish that needs it.

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use mqseal::{
    format_limit, lease_counter_key, lease_key, parse_acquired, parse_limit, CounterStore, GrantVerdict, LeaseConfig,
    LeaseToken, StoreError, LEASE_SCRIPT,
};

/// Why a lease could not be acquired or kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// Redis could not be reached or answered an error.
    #[error("sender-id lease: redis unavailable: {0}")]
    Unavailable(String),
    /// Every id of the range is held by a live instance.
    #[error("sender-id lease: no free sender id in {first}-{last} under key {key_id} (every id is leased)")]
    NoFreeId {
        /// The key id.
        key_id: u32,
        /// The range's first id.
        first: u32,
        /// The range's last id.
        last: u32,
    },
    /// The store answered something that is not a lease of this range.
    #[error("sender-id lease: the store answered a malformed lease ({0})")]
    Corrupt(StoreError),
    /// This holder's token no longer holds the lease.
    #[error("sender-id lease lost: it expired (another instance may hold the id now)")]
    Lost,
    /// No randomness for the token.
    #[error("sender-id lease: {0}")]
    Rng(mqseal::Error),
}

fn unavailable(e: &redis::RedisError) -> LeaseError {
    LeaseError::Unavailable(e.to_string())
}

/// Where and how to lease.
#[derive(Clone, Debug)]
pub struct LeaseOptions {
    /// The range, key id and TTL (checked by the core).
    pub config: LeaseConfig,
    /// Key prefix in Redis (default [`crate::DEFAULT_PREFIX`], shared with
    /// the replay windows: the names do not overlap).
    pub prefix: String,
    /// Give an id whose counter Redis does not hold a counter of 0: **only
    /// for the first deployment of the range**. Without it such an id is
    /// refused ([`StoreError::Missing`]) unless the sealer starts from a
    /// clock floor: a Redis that lost its data must not restart counters.
    pub create_counters: bool,
}

impl LeaseOptions {
    /// Options for `config`, default prefix, no counter creation.
    #[must_use]
    pub fn new(config: LeaseConfig) -> Self {
        LeaseOptions { config, prefix: crate::DEFAULT_PREFIX.into(), create_counters: false }
    }
}

struct Inner {
    client: redis::Client,
    lease_key: String,
    counter_key: String,
    token: String,
    ttl_ms: u64,
    renew_every: Duration,
    script: redis::Script,
    lost: AtomicBool,
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Inner {
    fn connect(&self) -> Result<redis::Connection, redis::RedisError> {
        let timeout = Duration::from_millis(self.ttl_ms.clamp(200, 2000));
        let conn = self.client.get_connection_with_timeout(timeout)?;
        conn.set_read_timeout(Some(timeout))?;
        conn.set_write_timeout(Some(timeout))?;
        Ok(conn)
    }

    fn renew_on(&self, conn: &mut redis::Connection) -> Result<(), LeaseError> {
        let held: i64 = self
            .script
            .key(&self.lease_key)
            .arg("renew")
            .arg(&self.token)
            .arg(self.ttl_ms)
            .invoke(conn)
            .map_err(|e| unavailable(&e))?;
        if held == 1 {
            Ok(())
        } else {
            self.lost.store(true, Ordering::SeqCst);
            Err(LeaseError::Lost)
        }
    }
}

/// A sender id leased from Redis for one instance.
///
/// Dropping it stops the renewal and releases the lease (compare token,
/// delete), so the id is free at once for the next instance; the counter
/// limit stays in Redis.
pub struct SenderLease {
    inner: Arc<Inner>,
    sender_id: u32,
    key_id: u32,
    limit: Option<u64>,
    renewer: Option<JoinHandle<()>>,
}

impl core::fmt::Debug for SenderLease {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SenderLease")
            .field("key_id", &self.key_id)
            .field("sender_id", &self.sender_id)
            .field("ttl_ms", &self.inner.ttl_ms)
            .field("lost", &self.is_lost())
            .finish_non_exhaustive()
    }
}

impl SenderLease {
    /// Connects to `url` and acquires the lowest free id of the range, in
    /// one atomic script call. The lease is not renewed until
    /// [`SenderLease::keep_renewed`] (or [`SenderLease::renew`]).
    ///
    /// # Errors
    /// [`LeaseError::NoFreeId`], [`LeaseError::Unavailable`],
    /// [`LeaseError::Corrupt`], [`LeaseError::Rng`].
    pub fn acquire(url: &str, options: &LeaseOptions) -> Result<Self, LeaseError> {
        let c = options.config;
        let client = redis::Client::open(url).map_err(|e| unavailable(&e))?;
        let token = LeaseToken::generate().map_err(LeaseError::Rng)?.to_hex();
        let script = redis::Script::new(LEASE_SCRIPT);
        let probe = Inner {
            client,
            lease_key: String::new(),
            counter_key: String::new(),
            token,
            ttl_ms: c.ttl_ms(),
            renew_every: Duration::from_millis(c.renew_interval_ms()),
            script,
            lost: AtomicBool::new(false),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        };
        let mut conn = probe.connect().map_err(|e| unavailable(&e))?;
        let (id, limit): (i64, String) = probe
            .script
            .arg("acquire")
            .arg(&options.prefix)
            .arg(c.key_id())
            .arg(c.first())
            .arg(c.last())
            .arg(&probe.token)
            .arg(c.ttl_ms())
            .arg(if options.create_counters { "1" } else { "0" })
            .invoke(&mut conn)
            .map_err(|e| unavailable(&e))?;
        let Some((sender_id, limit)) = parse_acquired(&c, id, &limit).map_err(LeaseError::Corrupt)? else {
            return Err(LeaseError::NoFreeId { key_id: c.key_id(), first: c.first(), last: c.last() });
        };
        let inner = Inner {
            lease_key: lease_key(&options.prefix, c.key_id(), sender_id),
            counter_key: lease_counter_key(&options.prefix, c.key_id(), sender_id),
            ..probe
        };
        Ok(SenderLease { inner: Arc::new(inner), sender_id, key_id: c.key_id(), limit, renewer: None })
    }

    /// The leased sender id.
    #[must_use]
    pub const fn sender_id(&self) -> u32 {
        self.sender_id
    }

    /// The key id the lease is under.
    #[must_use]
    pub const fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The counter limit Redis held when the lease was acquired (`None`:
    /// none).
    #[must_use]
    pub const fn acquired_limit(&self) -> Option<u64> {
        self.limit
    }

    /// Whether a renewal or a grant found the lease lost.
    #[must_use]
    pub fn is_lost(&self) -> bool {
        self.inner.lost.load(Ordering::SeqCst)
    }

    /// Renews once: compare token, reset the TTL.
    ///
    /// # Errors
    /// [`LeaseError::Lost`] (for good: the lease is not re-acquired) or
    /// [`LeaseError::Unavailable`] (try again; the lease may still hold).
    pub fn renew(&self) -> Result<(), LeaseError> {
        if self.is_lost() {
            return Err(LeaseError::Lost);
        }
        let mut conn = self.inner.connect().map_err(|e| unavailable(&e))?;
        self.inner.renew_on(&mut conn)
    }

    /// Starts a thread that renews every third of the TTL until the lease
    /// is dropped or found lost. Unreachable Redis is retried; a lost lease
    /// stops the thread and shows in [`SenderLease::is_lost`] (and the next
    /// grant fails).
    pub fn keep_renewed(&mut self) {
        if self.renewer.is_some() {
            return;
        }
        let inner = self.inner.clone();
        self.renewer = Some(std::thread::spawn(move || {
            let mut conn: Option<redis::Connection> = None;
            let mut next = Instant::now() + inner.renew_every;
            loop {
                {
                    let Ok(mut stop) = inner.stop.lock() else { return };
                    loop {
                        if *stop {
                            return;
                        }
                        let now = Instant::now();
                        if now >= next {
                            break;
                        }
                        stop = match inner.wake.wait_timeout(stop, next - now) {
                            Ok((s, _)) => s,
                            Err(_) => return,
                        };
                    }
                }
                next = Instant::now() + inner.renew_every;
                if conn.is_none() {
                    conn = inner.connect().ok();
                }
                let Some(c) = conn.as_mut() else { continue };
                match inner.renew_on(c) {
                    Ok(()) => {}
                    Err(LeaseError::Lost) => return,
                    Err(_) => conn = None,
                }
            }
        }));
    }

    /// A counter store for this lease's (key id, sender id): hand it to
    /// the [`mqseal::Sealer`].
    #[must_use]
    pub fn counter_store(&self) -> LeasedCounterStore {
        LeasedCounterStore { inner: self.inner.clone(), conn: None }
    }

    fn stop(&mut self) {
        if let Ok(mut stop) = self.inner.stop.lock() {
            *stop = true;
        }
        self.inner.wake.notify_all();
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
    }

    /// Stops renewing and releases the lease now.
    ///
    /// # Errors
    /// [`LeaseError::Unavailable`] (the lease then expires by its TTL).
    pub fn release(mut self) -> Result<(), LeaseError> {
        self.stop();
        self.release_now()
    }

    fn release_now(&self) -> Result<(), LeaseError> {
        self.inner.lost.store(true, Ordering::SeqCst);
        let mut conn = self.inner.connect().map_err(|e| unavailable(&e))?;
        let _: i64 = self
            .inner
            .script
            .key(&self.inner.lease_key)
            .arg("release")
            .arg(&self.inner.token)
            .invoke(&mut conn)
            .map_err(|e| unavailable(&e))?;
        Ok(())
    }
}

impl Drop for SenderLease {
    fn drop(&mut self) {
        if self.renewer.is_some() || !self.inner.lost.load(Ordering::SeqCst) {
            self.stop();
            let _ = self.release_now();
        }
    }
}

/// The counter limit of a leased sender id, in Redis: a
/// [`mqseal::CounterStore`] whose persist is the lease script's `grant`
/// (token check, then compare-and-swap of the limit, then TTL reset).
///
/// Redis I/O errors are retried for up to the lease TTL (a reconnect after
/// a Redis restart), then reported as [`StoreError::Write`]. After
/// [`StoreError::LeaseLost`] nothing is granted again.
pub struct LeasedCounterStore {
    inner: Arc<Inner>,
    conn: Option<redis::Connection>,
}

impl core::fmt::Debug for LeasedCounterStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LeasedCounterStore").field("counter_key", &self.inner.counter_key).finish_non_exhaustive()
    }
}

impl LeasedCounterStore {
    /// Runs `f` on a connection, reconnecting on I/O errors for up to the
    /// lease TTL.
    fn with_conn<T>(
        &mut self,
        mut f: impl FnMut(&Inner, &mut redis::Connection) -> redis::RedisResult<T>,
        fail: StoreError,
    ) -> Result<T, StoreError> {
        let give_up = Instant::now() + Duration::from_millis(self.inner.ttl_ms);
        loop {
            if self.conn.is_none() {
                self.conn = self.inner.connect().ok();
            }
            if let Some(c) = self.conn.as_mut() {
                match f(&self.inner, c) {
                    Ok(v) => return Ok(v),
                    Err(e)
                        if e.kind() == redis::ErrorKind::ResponseError || e.kind() == redis::ErrorKind::TypeError =>
                    {
                        return Err(fail)
                    }
                    Err(_) => self.conn = None,
                }
            }
            if Instant::now() >= give_up {
                return Err(fail);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl CounterStore for LeasedCounterStore {
    fn load(&mut self) -> Result<Option<u64>, StoreError> {
        let text: Option<String> =
            self.with_conn(|i, c| redis::cmd("GET").arg(&i.counter_key).query(c), StoreError::Read)?;
        parse_limit(text.as_deref().unwrap_or(""))
    }

    fn persist(&mut self, current: Option<u64>, limit: u64) -> Result<(), StoreError> {
        if self.inner.lost.load(Ordering::SeqCst) {
            return Err(StoreError::LeaseLost);
        }
        let current = current.map(format_limit).unwrap_or_default();
        let limit = format_limit(limit);
        let code: i64 = self.with_conn(
            |i, c| {
                i.script
                    .key(&i.lease_key)
                    .key(&i.counter_key)
                    .arg("grant")
                    .arg(&i.token)
                    .arg(&current)
                    .arg(&limit)
                    .arg(i.ttl_ms)
                    .invoke(c)
            },
            StoreError::Write,
        )?;
        let verdict = GrantVerdict::from_code(code)?;
        if verdict == GrantVerdict::LeaseLost {
            self.inner.lost.store(true, Ordering::SeqCst);
        }
        verdict.into_result()
    }
}
