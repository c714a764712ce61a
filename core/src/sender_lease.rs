//! Sender-id leases for scaled-out senders: several instances of one
//! service publish under one key, each with its own sender id, taken from
//! a shared store (Redis) and fenced so that a (key id, sender id,
//! counter) — the nonce — never repeats.
//!
//! The rule (also in `docs/STATE.md`, "Scaled-out senders"):
//!
//! 1. An instance **acquires** the lowest free sender id of a configured
//!    range ([`LeaseConfig`]): a lease key per (key id, sender id), set only
//!    if absent, holding a random owner token ([`LeaseToken`]) and a TTL.
//!    Two live holders never share an id.
//! 2. The holder **renews** its lease (compare token, reset TTL) every
//!    [`LeaseConfig::renew_interval_ms`]; a renewal that finds another
//!    token, or none, means the lease is lost for good.
//! 3. The id's **counter limit lives in the same store**, next to the lease,
//!    and follows the counter rule of [`crate::CounterStore`]: every grant
//!    of a block is a compare-and-swap of the limit **and** checks the
//!    caller's token ([`GrantVerdict`]). The acquire returns the limit
//!    atomically with the lease, so a new holder starts at or above every
//!    counter any earlier holder was ever granted.
//! 4. A holder paused past its TTL (GC pause, SIGSTOP, a VM migration) may
//!    still seal from the block it was already granted: those counters are
//!    below the limit the next holder started from, so no nonce repeats.
//!    Its next grant fails with [`crate::StoreError::LeaseLost`] and
//!    sealing stops.
//! 5. A counter the store holds no limit for is [`crate::StoreError::Missing`]
//!    (a store that lost its data must not mean "start at 0"), unless the
//!    ids are provisioned explicitly (`create`) or the sender starts from a
//!    clock floor.
//!
//! This module is sans-IO: the policy, the key names and the Lua script
//! ([`LEASE_SCRIPT`]). The Redis I/O is in `mqseal-rumqttc`'s `redis`
//! feature (`SenderLease`).

use crate::error::StoreError;
use crate::Error;

/// The lease rule as one Redis Lua script (operations `acquire`, `renew`,
/// `release`, `grant`; see the comments at the top of
/// `core/src/sender_lease.lua`).
pub const LEASE_SCRIPT: &str = include_str!("sender_lease.lua");

/// Default lease TTL in milliseconds: the same in every binding. A holder
/// that cannot renew for this long loses its id; a crashed holder's id is
/// free again after it.
pub const DEFAULT_LEASE_TTL_MS: u64 = 10_000;

/// Shortest lease TTL accepted, in milliseconds.
pub const MIN_LEASE_TTL_MS: u64 = 100;

/// Longest lease TTL accepted, in milliseconds (one day).
pub const MAX_LEASE_TTL_MS: u64 = 86_400_000;

/// Most sender ids one lease range may span (the acquire script scans the
/// range for the lowest free id).
pub const MAX_LEASE_IDS: u32 = 65_536;

/// Which sender ids an instance may lease, under which key, for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeaseConfig {
    key_id: u32,
    first: u32,
    last: u32,
    ttl_ms: u64,
}

impl LeaseConfig {
    /// Ids `first..=last` under `key_id`, leased for `ttl_ms`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `first > last`, the range spans more
    /// than [`MAX_LEASE_IDS`] ids, or the TTL is outside
    /// [`MIN_LEASE_TTL_MS`]..=[`MAX_LEASE_TTL_MS`].
    pub const fn new(key_id: u32, first: u32, last: u32, ttl_ms: u64) -> Result<Self, Error> {
        if first > last || last - first >= MAX_LEASE_IDS || ttl_ms < MIN_LEASE_TTL_MS || ttl_ms > MAX_LEASE_TTL_MS {
            return Err(Error::InvalidConfig);
        }
        Ok(LeaseConfig { key_id, first, last, ttl_ms })
    }

    /// The key id.
    #[must_use]
    pub const fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The first id of the range.
    #[must_use]
    pub const fn first(&self) -> u32 {
        self.first
    }

    /// The last id of the range (inclusive).
    #[must_use]
    pub const fn last(&self) -> u32 {
        self.last
    }

    /// The lease TTL in milliseconds.
    #[must_use]
    pub const fn ttl_ms(&self) -> u64 {
        self.ttl_ms
    }

    /// How often a holder renews: a third of the TTL, so two renewals may
    /// fail (a slow store, a short pause) before the lease expires.
    #[must_use]
    pub const fn renew_interval_ms(&self) -> u64 {
        self.ttl_ms / 3
    }

    /// Whether `sender_id` is in the range.
    #[must_use]
    pub const fn contains(&self, sender_id: u32) -> bool {
        sender_id >= self.first && sender_id <= self.last
    }
}

/// The store key of a (key id, sender id) lease:
/// `<prefix>lease:<key id>:<sender id>` (decimal ids; the script builds the
/// same names).
#[must_use]
pub fn lease_key(prefix: &str, key_id: u32, sender_id: u32) -> alloc::string::String {
    alloc::format!("{prefix}lease:{key_id}:{sender_id}")
}

/// The store key of a leased id's counter limit:
/// `<prefix>ctr:<key id>:<sender id>`. It never expires: deleting it loses
/// the limit, and the id is then refused ([`StoreError::Missing`]).
#[must_use]
pub fn lease_counter_key(prefix: &str, key_id: u32, sender_id: u32) -> alloc::string::String {
    alloc::format!("{prefix}ctr:{key_id}:{sender_id}")
}

/// A lease owner's random token: 128 bits, as 32 lowercase hex digits in
/// the store.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken([u8; 16]);

/// Never shows the token (it is what fences other holders).
impl core::fmt::Debug for LeaseToken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("LeaseToken(..)")
    }
}

impl LeaseToken {
    /// A token from 16 bytes (from a CSPRNG).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        LeaseToken(bytes)
    }

    /// A fresh random token from the OS.
    ///
    /// # Errors
    /// [`Error::Rng`] when the OS has no randomness to give.
    #[cfg(feature = "std")]
    pub fn generate() -> Result<Self, Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|_| Error::Rng)?;
        Ok(LeaseToken(bytes))
    }

    /// The token as the store holds it: 32 lowercase hex digits.
    #[must_use]
    pub fn to_hex(&self) -> alloc::string::String {
        use core::fmt::Write;
        let mut s = alloc::string::String::with_capacity(32);
        for b in self.0 {
            let _ = write!(s, "{b:02x}");
        }
        s
    }
}

/// A counter limit as the store holds it: canonical decimal.
#[must_use]
pub fn format_limit(limit: u64) -> alloc::string::String {
    alloc::format!("{limit}")
}

/// A stored counter limit: `""` (nothing stored) is `None`; anything but a
/// canonical decimal u64 is [`StoreError::Corrupt`].
///
/// # Errors
/// As described.
pub fn parse_limit(text: &str) -> Result<Option<u64>, StoreError> {
    if text.is_empty() {
        return Ok(None);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) || (text.len() > 1 && text.starts_with('0')) {
        return Err(StoreError::Corrupt);
    }
    text.parse::<u64>().map(Some).map_err(|_| StoreError::Corrupt)
}

/// What an `acquire` answered: the id and its stored limit, or no free id.
///
/// # Errors
/// [`StoreError::Corrupt`] for an id outside `config`'s range or a limit
/// that is not a canonical decimal (a store answering something else has
/// not leased anything usable: the caller fails closed).
pub fn parse_acquired(config: &LeaseConfig, id: i64, limit: &str) -> Result<Option<(u32, Option<u64>)>, StoreError> {
    if id == -1 {
        return Ok(None);
    }
    let sender_id = u32::try_from(id).map_err(|_| StoreError::Corrupt)?;
    if !config.contains(sender_id) {
        return Err(StoreError::Corrupt);
    }
    Ok(Some((sender_id, parse_limit(limit)?)))
}

/// The verdict of a `grant` (the persist of a leased counter), with stable
/// wire codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GrantVerdict {
    /// Limit replaced, lease TTL reset (code 0).
    Granted,
    /// The caller's token no longer holds the lease (code 1):
    /// [`StoreError::LeaseLost`]; nothing written.
    LeaseLost,
    /// The stored limit is not the caller's `current`, or would not rise
    /// (code 2): [`StoreError::Conflict`]; nothing written.
    Conflict,
}

impl GrantVerdict {
    /// The verdict's code.
    #[must_use]
    pub const fn code(self) -> i64 {
        match self {
            GrantVerdict::Granted => 0,
            GrantVerdict::LeaseLost => 1,
            GrantVerdict::Conflict => 2,
        }
    }

    /// The verdict for a code returned by the script.
    ///
    /// # Errors
    /// [`StoreError::Write`] for any other code: nothing is granted.
    pub const fn from_code(code: i64) -> Result<Self, StoreError> {
        match code {
            0 => Ok(GrantVerdict::Granted),
            1 => Ok(GrantVerdict::LeaseLost),
            2 => Ok(GrantVerdict::Conflict),
            _ => Err(StoreError::Write),
        }
    }

    /// `Ok(())` when granted, else the store error for
    /// [`crate::CounterStore::persist`].
    ///
    /// # Errors
    /// As described.
    pub const fn into_result(self) -> Result<(), StoreError> {
        match self {
            GrantVerdict::Granted => Ok(()),
            GrantVerdict::LeaseLost => Err(StoreError::LeaseLost),
            GrantVerdict::Conflict => Err(StoreError::Conflict),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn config_bounds() {
        assert!(LeaseConfig::new(1, 5, 4, 1000).is_err());
        assert!(LeaseConfig::new(1, 0, MAX_LEASE_IDS, 1000).is_err());
        assert!(LeaseConfig::new(1, 0, MAX_LEASE_IDS - 1, 1000).is_ok());
        assert!(LeaseConfig::new(1, 0, 0, MIN_LEASE_TTL_MS - 1).is_err());
        assert!(LeaseConfig::new(1, 0, 0, MAX_LEASE_TTL_MS + 1).is_err());
        let c = LeaseConfig::new(1, u32::MAX, u32::MAX, DEFAULT_LEASE_TTL_MS).unwrap();
        assert!(c.contains(u32::MAX) && !c.contains(0));
        assert_eq!(c.renew_interval_ms(), DEFAULT_LEASE_TTL_MS / 3);
    }

    #[test]
    fn limits_are_canonical_decimals() {
        assert_eq!(parse_limit(""), Ok(None));
        assert_eq!(parse_limit("0"), Ok(Some(0)));
        assert_eq!(parse_limit(&format_limit(u64::MAX)), Ok(Some(u64::MAX)));
        for bad in ["007", "-1", "1.0", "18446744073709551616", " 1", "x"] {
            assert_eq!(parse_limit(bad), Err(StoreError::Corrupt), "{bad:?}");
        }
    }

    #[test]
    fn acquired_ids_must_be_in_range() {
        let c = LeaseConfig::new(3, 10, 12, 1000).unwrap();
        assert_eq!(parse_acquired(&c, -1, ""), Ok(None));
        assert_eq!(parse_acquired(&c, 11, "2048"), Ok(Some((11, Some(2048)))));
        assert_eq!(parse_acquired(&c, 12, ""), Ok(Some((12, None))));
        assert_eq!(parse_acquired(&c, 13, "0"), Err(StoreError::Corrupt));
        assert_eq!(parse_acquired(&c, -2, "0"), Err(StoreError::Corrupt));
    }

    #[test]
    fn grant_codes_and_keys() {
        for v in [GrantVerdict::Granted, GrantVerdict::LeaseLost, GrantVerdict::Conflict] {
            assert_eq!(GrantVerdict::from_code(v.code()), Ok(v));
        }
        assert_eq!(GrantVerdict::from_code(3), Err(StoreError::Write));
        assert_eq!(GrantVerdict::LeaseLost.into_result(), Err(StoreError::LeaseLost));
        assert_eq!(lease_key("p:", 1, 2), "p:lease:1:2");
        assert_eq!(lease_counter_key("p:", 1, 2), "p:ctr:1:2");
        assert_eq!(LeaseToken::from_bytes([0xab; 16]).to_hex(), "ab".repeat(16));
        assert_eq!(format!("{:?}", LeaseToken::from_bytes([1; 16])), "LeaseToken(..)");
    }
}
