//! The receiver's configuration: one struct, validated as a whole, mapped
//! field for field by every binding (C `mqseal_opener_config`, the JS
//! options object, Python keyword arguments).

use crate::replay::{DEFAULT_GAPS, DEFAULT_WINDOW, MAX_GAPS, MAX_WINDOW};
use crate::suites::Suite;
use crate::Error;

/// Default tracked (key id, sender id) pairs of a Rust [`crate::Opener`]
/// (its `SENDERS` parameter), and of the WASM package's opener.
pub const DEFAULT_SENDERS: usize = 64;
/// Default limit of a growable sender table ([`crate::SenderMap`],
/// [`crate::FleetOpener`]): the tracked (key id, sender id) pairs of the
/// CLI, the rumqttc adapter's fleet opener and the WASM package.
pub const DEFAULT_MAX_SENDERS: usize = 1_000_000;
/// Default keys of a Rust [`crate::Opener`] (its `KEYS` parameter).
pub const DEFAULT_KEYS: usize = 8;
/// The clock-skew bound a maximum age implies when none is given:
/// `min(max_age, DEFAULT_MAX_SKEW)` seconds.
pub const DEFAULT_MAX_SKEW: u64 = 300;

/// A set of suites (which ones a receiver accepts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SuiteSet(u8);

impl SuiteSet {
    /// Both suites.
    pub const ALL: SuiteSet = SuiteSet((1 << 1) | (1 << 2));

    /// Only `suite`.
    #[must_use]
    pub const fn only(suite: Suite) -> Self {
        SuiteSet(1 << suite.id())
    }

    /// The suites in `suites`.
    #[must_use]
    pub fn from_suites(suites: &[Suite]) -> Self {
        SuiteSet(suites.iter().fold(0, |m, s| m | (1 << s.id())))
    }

    /// The set from a bit mask with bit `suite id` set for each suite (the C
    /// and JS form: `1 << 1` ChaCha20-Poly1305, `1 << 2` HMAC-SHA256).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for bits that name no suite.
    pub const fn from_bits(bits: u32) -> Result<Self, Error> {
        if bits & !(SuiteSet::ALL.0 as u32) != 0 {
            return Err(Error::InvalidConfig);
        }
        Ok(SuiteSet(bits as u8))
    }

    /// The bit mask.
    #[must_use]
    pub const fn bits(self) -> u32 {
        self.0 as u32
    }

    /// Whether `suite` is in the set.
    #[must_use]
    pub const fn contains(self, suite: Suite) -> bool {
        self.0 & (1 << suite.id()) != 0
    }

    /// Whether the set is empty.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl Default for SuiteSet {
    fn default() -> Self {
        SuiteSet::ALL
    }
}

/// What an [`crate::Opener`] does when its sender table is full and a new
/// sender's message verifies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Eviction {
    /// Reject the new sender with [`Error::TooManySenders`] (the default).
    /// Fails closed: no replay window is ever forgotten. Entries are only
    /// created for messages that verified, so only key holders can fill the
    /// table.
    #[default]
    RejectNew,
    /// Forget the sender that was heard from least recently: the one whose
    /// last accepted message (or restore) is the oldest, counted in accepted
    /// messages of this opener, not in wall-clock time. Its replay window is
    /// lost, so its old messages still within reach (retained, or recorded
    /// by an attacker) would open again; the configuration therefore
    /// requires a maximum age, which bounds that exposure in time (both
    /// timestamp bounds are then in force, see
    /// [`OpenerConfig::effective_max_skew`]).
    LeastRecentlyUsed,
}

/// The receiver's policy. Build it from [`OpenerConfig::default`] and set
/// the fields that differ; [`OpenerConfig::validate`] (called by
/// [`crate::Opener::with_config`] and [`crate::Opener::set_config`])
/// checks the whole.
///
/// ```
/// use mqseal::{Eviction, OpenerConfig};
///
/// let mut config = OpenerConfig::default();
/// config.max_age = Some(60);
/// config.eviction = Eviction::LeastRecentlyUsed;
/// config.validate()?;
/// assert_eq!(config.effective_max_skew(), Some(60));
/// # Ok::<(), mqseal::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct OpenerConfig {
    /// Replay window width, in counters, for senders first seen from now on
    /// (1 to [`MAX_WINDOW`]; default [`DEFAULT_WINDOW`]).
    pub window: u32,
    /// Gap budget per sender, for senders first seen from now on: how many
    /// ranges of never-accepted counters below the window are remembered,
    /// so that late genuine messages are still accepted once (0 to
    /// [`MAX_GAPS`]; default [`DEFAULT_GAPS`]; 0 rejects everything below
    /// the window as a replay). See [`crate::ReplayWindow`].
    pub gaps: u32,
    /// Reject messages whose authenticated timestamp is more than this many
    /// seconds old ([`Error::Expired`]). Implies that timestamps are
    /// required and that future timestamps are bounded too (see
    /// [`OpenerConfig::effective_max_skew`]). Default: none.
    pub max_age: Option<u64>,
    /// Reject timestamps more than this many seconds ahead of the receiver's
    /// clock ([`Error::FromFuture`]). Default: none, which with a
    /// `max_age` means `min(max_age, 300)`.
    pub max_skew: Option<u64>,
    /// Reject messages without a timestamp ([`Error::TimestampRequired`]),
    /// also when no age is checked. A `max_age` requires timestamps
    /// whatever this says. Default: false.
    pub require_timestamp: bool,
    /// The suites accepted (default: both). A message under another suite
    /// gets [`Error::SuiteNotAllowed`].
    pub suites: SuiteSet,
    /// What to do when the sender table is full (default
    /// [`Eviction::RejectNew`]).
    pub eviction: Eviction,
}

impl Default for OpenerConfig {
    fn default() -> Self {
        OpenerConfig {
            window: DEFAULT_WINDOW,
            gaps: DEFAULT_GAPS,
            max_age: None,
            max_skew: None,
            require_timestamp: false,
            suites: SuiteSet::ALL,
            eviction: Eviction::RejectNew,
        }
    }
}

/// The field of an [`OpenerConfig`] that [`OpenerConfig::check`] refused.
/// Bindings report it under their own spelling of the field (JS `window`,
/// `suites`, `eviction`; the same words in C and Python), so every binding
/// names the same option for the same mistake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigField {
    /// `window`: outside 1 to [`MAX_WINDOW`].
    Window,
    /// `gaps`: above [`MAX_GAPS`].
    Gaps,
    /// `suites`: the set is empty.
    Suites,
    /// `eviction`: [`Eviction::LeastRecentlyUsed`] without a `max_age`.
    Eviction,
}

impl ConfigField {
    /// The field's name, as in the struct (`window`, `suites`, `eviction`:
    /// one word each, so the same in every binding's naming convention).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            ConfigField::Window => "window",
            ConfigField::Gaps => "gaps",
            ConfigField::Suites => "suites",
            ConfigField::Eviction => "eviction",
        }
    }

    /// The rule the field broke, in words a binding puts after the field's
    /// name in its error message.
    #[must_use]
    pub const fn rule(self) -> &'static str {
        match self {
            ConfigField::Window => "must be an integer from 1 to 256",
            ConfigField::Gaps => "must be an integer from 0 to 4",
            ConfigField::Suites => "must name at least one suite",
            ConfigField::Eviction => {
                "least-recently-used eviction needs a maximum age: an evicted sender's old messages \
                 would be accepted again, and only an age bound limits that"
            }
        }
    }
}

// ConfigField::rule states the window's bound in words.
const _: () = assert!(MAX_WINDOW == 256);
// ... and the gap budget's.
const _: () = assert!(MAX_GAPS == 4);

impl OpenerConfig {
    /// Checks the whole configuration, naming the field at fault.
    ///
    /// # Errors
    /// [`ConfigField::Window`] for a window outside 1 to [`MAX_WINDOW`],
    /// [`ConfigField::Gaps`] for a gap budget above [`MAX_GAPS`],
    /// [`ConfigField::Suites`] for an empty suite set,
    /// [`ConfigField::Eviction`] for [`Eviction::LeastRecentlyUsed`] without
    /// a `max_age`; checked in that order.
    pub const fn check(&self) -> Result<(), ConfigField> {
        if self.window == 0 || self.window > MAX_WINDOW {
            return Err(ConfigField::Window);
        }
        if self.gaps > MAX_GAPS as u32 {
            return Err(ConfigField::Gaps);
        }
        if self.suites.is_empty() {
            return Err(ConfigField::Suites);
        }
        if matches!(self.eviction, Eviction::LeastRecentlyUsed) && self.max_age.is_none() {
            return Err(ConfigField::Eviction);
        }
        Ok(())
    }

    /// Checks the whole configuration ([`OpenerConfig::check`] without the
    /// field).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a window outside 1 to [`MAX_WINDOW`], a
    /// gap budget above [`MAX_GAPS`], an
    /// empty suite set, or [`Eviction::LeastRecentlyUsed`] without a
    /// `max_age`.
    pub const fn validate(&self) -> Result<(), Error> {
        match self.check() {
            Ok(()) => Ok(()),
            Err(_) => Err(Error::InvalidConfig),
        }
    }

    /// The future bound in force: `max_skew`, or `min(max_age, 300)` when
    /// only a `max_age` is set. A message dated far ahead would otherwise
    /// pass every age check forever.
    #[must_use]
    pub const fn effective_max_skew(&self) -> Option<u64> {
        match (self.max_skew, self.max_age) {
            (Some(s), _) => Some(s),
            (None, Some(a)) => Some(if a < DEFAULT_MAX_SKEW { a } else { DEFAULT_MAX_SKEW }),
            (None, None) => None,
        }
    }

    /// Whether a message without a timestamp is rejected.
    #[must_use]
    pub const fn timestamps_required(&self) -> bool {
        self.require_timestamp || self.max_age.is_some()
    }

    /// Checks a message's timestamp against this policy at time `now`.
    ///
    /// # Errors
    /// [`Error::TimestampRequired`], [`Error::ClockRequired`],
    /// [`Error::Expired`], [`Error::FromFuture`].
    pub const fn check_time(&self, timestamp: Option<u64>, now: Option<u64>) -> Result<(), Error> {
        let Some(ts) = timestamp else {
            return if self.timestamps_required() { Err(Error::TimestampRequired) } else { Ok(()) };
        };
        let skew = self.effective_max_skew();
        if self.max_age.is_none() && skew.is_none() {
            return Ok(());
        }
        let Some(now) = now else {
            return Err(Error::ClockRequired);
        };
        if let Some(age) = self.max_age {
            if now.saturating_sub(ts) > age {
                return Err(Error::Expired);
            }
        }
        if let Some(skew) = skew {
            if ts.saturating_sub(now) > skew {
                return Err(Error::FromFuture);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)] // the way a user outside the crate builds one
mod tests {
    use super::*;

    #[test]
    fn max_age_bounds_both_sides() {
        let mut c = OpenerConfig::default();
        c.max_age = Some(60);
        assert_eq!(c.effective_max_skew(), Some(60));
        assert_eq!(c.check_time(Some(1000 + 61), Some(1000)), Err(Error::FromFuture));
        assert_eq!(c.check_time(Some(1000 + 31_536_000), Some(1000)), Err(Error::FromFuture));
        assert_eq!(c.check_time(Some(1000 + 60), Some(1000)), Ok(()));
        assert_eq!(c.check_time(Some(1000 - 61), Some(1000)), Err(Error::Expired));
        assert_eq!(c.check_time(None, Some(1000)), Err(Error::TimestampRequired));
        c.max_age = Some(86_400);
        assert_eq!(c.effective_max_skew(), Some(DEFAULT_MAX_SKEW));
        c.max_skew = Some(5);
        assert_eq!(c.effective_max_skew(), Some(5));
    }

    #[test]
    fn validation() {
        assert_eq!(OpenerConfig::default().validate(), Ok(()));
        let mut c = OpenerConfig::default();
        c.eviction = Eviction::LeastRecentlyUsed;
        assert_eq!(c.validate(), Err(Error::InvalidConfig));
        c.max_skew = Some(10);
        assert_eq!(c.validate(), Err(Error::InvalidConfig));
        c.max_age = Some(10);
        assert_eq!(c.validate(), Ok(()));
        for w in [0, MAX_WINDOW + 1] {
            let mut c = OpenerConfig::default();
            c.window = w;
            assert_eq!(c.validate(), Err(Error::InvalidConfig));
        }
        let mut c = OpenerConfig::default();
        c.suites = SuiteSet::from_suites(&[]);
        assert_eq!(c.validate(), Err(Error::InvalidConfig));
    }

    #[test]
    fn check_names_the_field() {
        assert_eq!(OpenerConfig::default().check(), Ok(()));
        for w in [0, MAX_WINDOW + 1, 1000] {
            let mut c = OpenerConfig::default();
            c.window = w;
            assert_eq!(c.check(), Err(ConfigField::Window));
        }
        let mut c = OpenerConfig::default();
        c.suites = SuiteSet::from_suites(&[]);
        assert_eq!(c.check(), Err(ConfigField::Suites));
        c.window = 0;
        assert_eq!(c.check(), Err(ConfigField::Window), "checked in order");
        let mut c = OpenerConfig::default();
        c.eviction = Eviction::LeastRecentlyUsed;
        assert_eq!(c.check(), Err(ConfigField::Eviction));
        assert_eq!(ConfigField::Eviction.name(), "eviction");
        assert!(ConfigField::Window.rule().contains("1 to 256"));
    }

    #[test]
    fn suite_sets() {
        assert!(SuiteSet::ALL.contains(Suite::HmacSha256));
        assert!(!SuiteSet::only(Suite::ChaCha20Poly1305).contains(Suite::HmacSha256));
        assert_eq!(SuiteSet::from_bits(0b110), Ok(SuiteSet::ALL));
        assert_eq!(SuiteSet::from_bits(0b1), Err(Error::InvalidConfig));
        assert_eq!(SuiteSet::from_suites(&Suite::ALL), SuiteSet::ALL);
    }
}
