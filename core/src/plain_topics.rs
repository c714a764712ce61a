//! The plain-topic rule of every adapter: every topic is sealed unless it
//! matches a filter that the application allowlisted as plain.
//!
//! On an allowlisted topic a payload is handed out as it is, unverified
//! (broker status, `$SYS/...`, a legacy device that cannot seal); on every
//! other topic a payload must open, and a plain one is rejected (it reads
//! as [`Error::UnsupportedVersion`]: "not an mqseal envelope"). The rule
//! fails closed: an empty allowlist means "everything is sealed", and a
//! mistyped filter is refused when it is added, never silently ignored.
//!
//! The list is any slice of strings, so the same type serves a firmware
//! (`PlainTopics<[&str; 2]>` in flash, no allocator), a C caller
//! ([`plain_topic_allowed`] over its own array) and a service
//! (`PlainTopics<Vec<String>>`, grown with [`PlainTopics::allow`]).

use crate::topic::{check_topic_filter, topic_matches_filter};
use crate::Error;

/// A validated allowlist of MQTT topic filters on which plain (unsealed)
/// payloads are allowed; every other topic is sealed.
///
/// ```
/// use mqseal::PlainTopics;
///
/// let plain = PlainTopics::new(["$SYS/#", "status/+"])?;
/// assert!(plain.allows("$SYS/broker/uptime"));
/// assert!(plain.allows("status/dev42"));
/// assert!(!plain.allows("status/dev42/cmd")); // sealed
/// assert!(!plain.allows("plant/cmd")); // sealed
/// assert_eq!(PlainTopics::new(["a/#/b"]).unwrap_err().code(), "invalidFilter");
/// # Ok::<(), mqseal::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlainTopics<L> {
    filters: L,
}

impl<L> PlainTopics<L> {
    /// An allowlist of `filters`, each checked with [`check_topic_filter`].
    ///
    /// # Errors
    /// [`Error::InvalidFilter`] (or [`Error::TopicTooLong`]) for the first
    /// filter that is not a valid MQTT topic filter.
    pub fn new<F: AsRef<str>>(filters: L) -> Result<Self, Error>
    where
        L: AsRef<[F]>,
    {
        for filter in filters.as_ref() {
            check_topic_filter(filter.as_ref())?;
        }
        Ok(PlainTopics { filters })
    }

    /// Whether a plain payload is allowed on the topic name `topic`: true
    /// when one of the filters matches it ([`topic_matches_filter`]).
    #[must_use]
    pub fn allows<F: AsRef<str>>(&self, topic: &str) -> bool
    where
        L: AsRef<[F]>,
    {
        self.filters.as_ref().iter().any(|f| topic_matches_filter(f.as_ref(), topic))
    }

    /// The filters, in the order they were given.
    #[must_use]
    pub fn filters<F: AsRef<str>>(&self) -> &[F]
    where
        L: AsRef<[F]>,
    {
        self.filters.as_ref()
    }
}

impl PlainTopics<&'static [&'static str]> {
    /// No plain topics: everything is sealed.
    #[must_use]
    pub const fn none() -> Self {
        PlainTopics { filters: &[] }
    }
}

#[cfg(feature = "alloc")]
impl PlainTopics<alloc::vec::Vec<alloc::string::String>> {
    /// Adds `filter` to the allowlist.
    ///
    /// # Errors
    /// [`Error::InvalidFilter`] (or [`Error::TopicTooLong`]) when `filter`
    /// is not a valid MQTT topic filter; the list is unchanged.
    pub fn allow(&mut self, filter: impl Into<alloc::string::String>) -> Result<(), Error> {
        let filter = filter.into();
        check_topic_filter(&filter)?;
        self.filters.push(filter);
        Ok(())
    }
}

/// The allowlist rule over filters kept by the caller (a C array, a list
/// that is not worth copying): whether a plain payload is allowed on
/// `topic`. Every filter is checked, whether or not an earlier one
/// matched, so a bad filter is reported on the first call.
///
/// # Errors
/// [`Error::InvalidFilter`] (or [`Error::TopicTooLong`]) for the first
/// invalid filter.
pub fn plain_topic_allowed<'a>(filters: impl IntoIterator<Item = &'a str>, topic: &str) -> Result<bool, Error> {
    let mut allowed = false;
    for filter in filters {
        check_topic_filter(filter)?;
        allowed |= topic_matches_filter(filter, topic);
    }
    Ok(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use std::{prelude::v1::*, vec};

    #[test]
    fn sealed_unless_allowlisted() {
        let none = PlainTopics::none();
        assert!(!none.allows("a/b"), "an empty allowlist seals everything");
        let plain = PlainTopics::new(["$SYS/#", "status/+", "legacy/meter"]).unwrap();
        for topic in ["$SYS/broker/uptime", "$SYS", "status/a", "legacy/meter"] {
            assert!(plain.allows(topic), "{topic:?}");
        }
        for topic in ["status/a/b", "status", "legacy/meter/x", "plant/cmd", "$share/x"] {
            assert!(!plain.allows(topic), "{topic:?}");
        }
        let everything_but_dollar = PlainTopics::new(["#"]).unwrap();
        assert!(everything_but_dollar.allows("a/b"));
        assert!(!everything_but_dollar.allows("$SYS/x"), "a leading wildcard never matches a $ topic");
    }

    #[test]
    fn a_bad_filter_is_refused_when_added() {
        for bad in ["", "a/#/b", "a+", "a\0b"] {
            assert_eq!(PlainTopics::new([bad]).unwrap_err(), Error::InvalidFilter, "{bad:?}");
            assert_eq!(plain_topic_allowed(["#", bad], "x"), Err(Error::InvalidFilter), "{bad:?}");
        }
        let mut list = PlainTopics::new(Vec::<String>::new()).unwrap();
        list.allow("a/+").unwrap();
        assert_eq!(list.allow("a/#/b"), Err(Error::InvalidFilter));
        assert_eq!(list.filters(), ["a/+"], "unchanged by the refused filter");
        assert!(list.allows("a/b"));
    }

    #[test]
    fn the_free_function_agrees_with_the_type() {
        let filters = ["$SYS/#", "status/+", "x/#"];
        let plain = PlainTopics::new(filters).unwrap();
        for topic in ["$SYS/a", "status/a", "status/a/b", "x", "x/y/z", "y", "$x"] {
            assert_eq!(plain_topic_allowed(filters, topic), Ok(plain.allows(topic)), "{topic:?}");
        }
        assert_eq!(plain_topic_allowed([], "a"), Ok(false));
    }
}
