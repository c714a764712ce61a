//! MQTT topic names: what a sealer may bind and an opener may accept; and
//! topic filters, what a subscriber may subscribe to.
//!
//! MQTT (3.1.1 §4.7.3, 5.0 §4.7.3) says a topic name is at least one
//! character long, holds no wildcard (`+`, `#`) and no U+0000, and fits a
//! two-byte length. A broker never delivers anything else, so an envelope
//! bound to anything else is a caller's mistake: both sides reject it before
//! any key is used, with the same error in every binding.

use crate::envelope::MAX_TOPIC_LEN;
use crate::Error;

/// Checks that `topic` is a valid MQTT topic name.
///
/// # Errors
/// [`Error::InvalidTopic`] for an empty topic or one holding `+`, `#` or
/// U+0000; [`Error::TopicTooLong`] beyond 65,535 bytes.
pub fn check_topic_name(topic: &str) -> Result<(), Error> {
    if topic.len() > MAX_TOPIC_LEN {
        return Err(Error::TopicTooLong);
    }
    if topic.is_empty() {
        return Err(Error::InvalidTopic);
    }
    check_topic_chars(topic)
}

/// Checks that `filter` is a valid MQTT topic filter (3.1.1 and 5.0
/// §4.7.1): at least one character, no U+0000, `#` only as the whole last
/// level, `+` only as a whole level.
///
/// # Errors
/// [`Error::InvalidFilter`] for anything else; [`Error::TopicTooLong`]
/// beyond 65,535 bytes.
pub fn check_topic_filter(filter: &str) -> Result<(), Error> {
    if filter.len() > MAX_TOPIC_LEN {
        return Err(Error::TopicTooLong);
    }
    if filter.is_empty() || filter.as_bytes().contains(&0) {
        return Err(Error::InvalidFilter);
    }
    // Byte-wise (`/`, `+`, `#` are ASCII, so never inside a UTF-8
    // sequence): smaller code than `str::split` for the WASM build.
    let mut levels = filter.as_bytes().split(|&b| b == b'/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        let ok = match level {
            b"#" => last,
            b"+" => true,
            other => !other.iter().any(|&b| matches!(b, b'+' | b'#')),
        };
        if !ok {
            return Err(Error::InvalidFilter);
        }
    }
    Ok(())
}

/// Whether the topic name `topic` matches the valid topic filter `filter`
/// (MQTT 3.1.1 and 5.0 §4.7): `+` matches exactly one level, `#` the
/// parent level and any number of levels below it, and a topic beginning
/// with `$` (`$SYS/...`) is not matched by a filter whose first level is a
/// wildcard, only by one that names the `$` level (`$SYS/#`).
///
/// `filter` is assumed valid ([`check_topic_filter`]); for an invalid one
/// the answer is unspecified, but this never panics.
#[must_use]
pub fn topic_matches_filter(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut levels = topic.as_bytes().split(|&b| b == b'/');
    for f in filter.as_bytes().split(|&b| b == b'/') {
        if f == b"#" {
            return true;
        }
        match levels.next() {
            Some(t) if f == b"+" || f == t => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

/// The character rule alone, for topics that arrive in pieces (a prefix
/// rewrite binds `sealed prefix ‖ rest`).
pub(crate) fn check_topic_chars(piece: &str) -> Result<(), Error> {
    // Eight bytes at a time (this runs on every seal and open): a word holds one of the three bytes exactly when the word XOR
    // that byte repeated has a zero byte.
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = ONES << 7;
    const fn has_zero_byte(w: u64) -> bool {
        w.wrapping_sub(ONES) & !w & HIGHS != 0
    }
    let mut words = piece.as_bytes().chunks_exact(8);
    for chunk in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        if has_zero_byte(w) | has_zero_byte(w ^ (ONES * u64::from(b'+'))) | has_zero_byte(w ^ (ONES * u64::from(b'#')))
        {
            return Err(Error::InvalidTopic);
        }
    }
    if words.remainder().iter().any(|b| matches!(b, b'+' | b'#' | 0)) {
        return Err(Error::InvalidTopic);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use std::{format, prelude::v1::*, vec};

    /// The word-at-a-time check agrees with the byte rule for every
    /// length up to three words and every position of each forbidden byte
    /// and of its neighbours (`*`, `,`, `"`, `$`, 1 and 0x7f test the bit
    /// tricks' edges; the non-ASCII cases, bytes with the high bit set).
    #[test]
    fn chars_word_at_a_time() {
        let bytes = [b'+', b'#', 0, b'*', b',', b'"', b'$', 1, 0x7f, b'a'];
        for len in 0..=24 {
            for pos in 0..len {
                for &b in &bytes {
                    let mut t = vec![b'x'; len];
                    t[pos] = b;
                    let piece = core::str::from_utf8(&t).unwrap();
                    let expect = if matches!(b, b'+' | b'#' | 0) { Err(Error::InvalidTopic) } else { Ok(()) };
                    assert_eq!(check_topic_chars(piece), expect, "{t:?}");
                }
            }
        }
        assert_eq!(check_topic_chars("caf\u{e9}/\u{ff}\u{100}/x"), Ok(()));
        assert_eq!(check_topic_chars("caf\u{e9}/\u{ff}#"), Err(Error::InvalidTopic));
    }

    #[test]
    fn names() {
        assert_eq!(check_topic_name("a/b"), Ok(()));
        assert_eq!(check_topic_name("/"), Ok(()));
        assert_eq!(check_topic_name("$SYS/x"), Ok(()));
        assert_eq!(check_topic_name(""), Err(Error::InvalidTopic));
        assert_eq!(check_topic_name("a/+/b"), Err(Error::InvalidTopic));
        assert_eq!(check_topic_name("a/#"), Err(Error::InvalidTopic));
        assert_eq!(check_topic_name("a\0b"), Err(Error::InvalidTopic));
        assert_eq!(check_topic_name(&"x".repeat(MAX_TOPIC_LEN)), Ok(()));
        assert_eq!(check_topic_name(&"x".repeat(MAX_TOPIC_LEN + 1)), Err(Error::TopicTooLong));
    }

    #[test]
    fn filters() {
        for ok in ["a/b", "#", "+", "a/#", "a/+/b", "+/+", "/#", "a//b", "$SYS/#", "/", "+/#"] {
            assert_eq!(check_topic_filter(ok), Ok(()), "{ok:?}");
        }
        for bad in ["", "a/#/b", "a#", "a/b#", "#/a", "a+", "a/+b/c", "+a", "a\0b", "##"] {
            assert_eq!(check_topic_filter(bad), Err(Error::InvalidFilter), "{bad:?}");
        }
        assert_eq!(check_topic_filter("a\0b"), Err(Error::InvalidFilter));
        assert_eq!(check_topic_filter(&"x".repeat(MAX_TOPIC_LEN)), Ok(()));
        assert_eq!(check_topic_filter(&"x".repeat(MAX_TOPIC_LEN + 1)), Err(Error::TopicTooLong));
        // Every valid name is a valid filter.
        assert_eq!(check_topic_filter("plant/line1/temp"), Ok(()));
    }

    #[test]
    fn matching() {
        let yes = [
            ("a/b", "a/b"),
            ("a/+", "a/b"),
            ("+/b", "a/b"),
            ("+/+", "a/b"),
            ("a/#", "a"),
            ("a/#", "a/b"),
            ("a/#", "a/b/c"),
            ("#", "a/b/c"),
            ("+", "a"),
            ("+/#", "a"),
            ("a/+/c", "a//c"),
            ("+/+", "/a"),
            ("/#", "/a"),
            ("$SYS/#", "$SYS/broker/uptime"),
            ("$SYS/+/uptime", "$SYS/broker/uptime"),
            ("a//b", "a//b"),
        ];
        for (filter, topic) in yes {
            assert!(topic_matches_filter(filter, topic), "{filter:?} should match {topic:?}");
        }
        let no = [
            ("a/b", "a/c"),
            ("a/b", "a/b/c"),
            ("a/b/c", "a/b"),
            ("a/+", "a"),
            ("a/+", "a/b/c"),
            ("+", "a/b"),
            ("+", "/a"),
            ("a/#", "b/a"),
            ("a/#", "ab"),
            ("#", "$SYS/broker"),
            ("+/broker", "$SYS/broker"),
            ("+/#", "$SYS"),
            ("$SYS/#", "$SYSX/a"),
            ("a", "A"),
        ];
        for (filter, topic) in no {
            assert!(!topic_matches_filter(filter, topic), "{filter:?} should not match {topic:?}");
        }
    }
}
