//! The v1 envelope: header layout, parsing, and the associated data.
//!
//! ```text
//! byte 0      version (high nibble, 1) | suite (low nibble)
//! varint      flags      (bit 0: timestamp present; other bits: reject)
//! varint      key_id     (u32)
//! varint      sender_id  (u32)
//! varint      counter    (u64)
//! [varint]    timestamp  (u64, seconds since the Unix epoch, when flagged)
//! ...         body       (ciphertext for suite 1, plaintext for suite 2)
//! 16 bytes    tag
//! ```
//!
//! `docs/PROTOCOL.md` is the normative description; this file is the one
//! place in the code that knows the layout.

use sha2::{Digest, Sha256};

use crate::suites::Suite;
use crate::{varint, Error};

/// The envelope version this crate writes and reads.
pub const VERSION: u8 = 1;
/// Length of the authentication tag of both suites.
pub const TAG_LEN: usize = 16;
/// Longest possible header: byte 0, flags, key id, sender id, counter, timestamp.
pub const MAX_HEADER_LEN: usize =
    1 + 1 + varint::MAX_LEN_U32 + varint::MAX_LEN_U32 + varint::MAX_LEN_U64 + varint::MAX_LEN_U64;
/// Largest number of bytes sealing adds to a payload (header plus tag).
/// [`Header::envelope_len`] gives the exact figure for one message.
pub const MAX_OVERHEAD: usize = MAX_HEADER_LEN + TAG_LEN;
/// Longest MQTT topic name (the protocol's two-byte length prefix).
pub const MAX_TOPIC_LEN: usize = 65_535;
/// Topics up to this many bytes enter the associated data as they are;
/// longer ones enter as their SHA-256 digest, so the associated data always
/// fits a small fixed buffer (no allocator, bounded stack).
pub const TOPIC_INLINE_MAX: usize = 128;
/// Domain separation string that starts the associated data.
pub const AAD_DOMAIN: &[u8] = b"mqseal/v1";

const FLAG_TIMESTAMP: u32 = 0b1;
const KNOWN_FLAGS: u32 = FLAG_TIMESTAMP;
const TOPIC_LEN_MAX_VARINT: usize = 3; // varint(65535) is three bytes
const AAD_MAX: usize = AAD_DOMAIN.len() + MAX_HEADER_LEN + TOPIC_LEN_MAX_VARINT + TOPIC_INLINE_MAX;

/// The authenticated header of an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// How the body is protected.
    pub suite: Suite,
    /// Which key sealed the message.
    pub key_id: u32,
    /// Which sender sealed the message.
    pub sender_id: u32,
    /// The sender's message counter (the nonce).
    pub counter: u64,
    /// Seconds since the Unix epoch, when the sender included one.
    pub timestamp: Option<u64>,
}

impl Header {
    /// Bytes the encoded header takes.
    #[must_use]
    pub const fn encoded_len(&self) -> usize {
        let ts = match self.timestamp {
            Some(t) => varint::encoded_len(t),
            None => 0,
        };
        1 + 1
            + varint::encoded_len(self.key_id as u64)
            + varint::encoded_len(self.sender_id as u64)
            + varint::encoded_len(self.counter)
            + ts
    }

    /// Bytes of a whole envelope with this header and a body of `body_len`.
    #[must_use]
    pub const fn envelope_len(&self, body_len: usize) -> usize {
        self.encoded_len() + body_len + TAG_LEN
    }

    /// Writes the header to the front of `out`; returns its length.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `out` is shorter than [`Header::encoded_len`].
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, Error> {
        let needed = self.encoded_len();
        if out.len() < needed {
            return Err(Error::BufferTooSmall { needed });
        }
        out[0] = (VERSION << 4) | self.suite.id();
        let mut n = 1;
        let flags = if self.timestamp.is_some() { FLAG_TIMESTAMP } else { 0 };
        n += varint::encode(u64::from(flags), &mut out[n..]);
        n += varint::encode(u64::from(self.key_id), &mut out[n..]);
        n += varint::encode(u64::from(self.sender_id), &mut out[n..]);
        n += varint::encode(self.counter, &mut out[n..]);
        if let Some(t) = self.timestamp {
            n += varint::encode(t, &mut out[n..]);
        }
        Ok(n)
    }

    /// Parses the header at the front of an envelope. Returns the header and
    /// its length. Checks only the header; see [`Envelope::parse`] for the
    /// whole envelope.
    ///
    /// This reads unauthenticated bytes: nothing in the result may be acted
    /// on before the tag has been verified.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::UnsupportedVersion`],
    /// [`Error::UnknownSuite`], [`Error::BadVarint`], [`Error::UnknownFlags`].
    pub fn parse(input: &[u8]) -> Result<(Header, usize), Error> {
        let Some(&b0) = input.first() else {
            return Err(Error::Truncated);
        };
        let version = b0 >> 4;
        if version != VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        let suite = Suite::from_id(b0 & 0x0f)?;
        let mut n = 1;
        let (flags, used) = varint::decode_u32(&input[n..])?;
        n += used;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(Error::UnknownFlags);
        }
        let (key_id, used) = varint::decode_u32(&input[n..])?;
        n += used;
        let (sender_id, used) = varint::decode_u32(&input[n..])?;
        n += used;
        let (counter, used) = varint::decode_u64(&input[n..])?;
        n += used;
        let timestamp = if flags & FLAG_TIMESTAMP != 0 {
            let (t, used) = varint::decode_u64(&input[n..])?;
            n += used;
            Some(t)
        } else {
            None
        };
        Ok((Header { suite, key_id, sender_id, counter, timestamp }, n))
    }
}

/// A parsed (not yet verified) envelope: where its parts are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The header fields.
    pub header: Header,
    /// Length of the header bytes at the start of the envelope.
    pub header_len: usize,
    /// Length of the body between header and tag.
    pub body_len: usize,
}

impl Envelope {
    /// Parses an envelope's structure: header, then a body, then a 16-byte
    /// tag. Total over all inputs: any byte string gives a value or a typed
    /// error, without panicking or allocating.
    ///
    /// # Errors
    /// The header errors of [`Header::parse`], and [`Error::Truncated`] when
    /// fewer than 16 bytes follow the header.
    pub fn parse(input: &[u8]) -> Result<Envelope, Error> {
        let (header, header_len) = Header::parse(input)?;
        let body_len = input.len().checked_sub(header_len + TAG_LEN).ok_or(Error::Truncated)?;
        Ok(Envelope { header, header_len, body_len })
    }

    /// Range of the body within the envelope.
    #[must_use]
    pub const fn body_range(&self) -> core::ops::Range<usize> {
        self.header_len..self.header_len + self.body_len
    }
}

/// The MQTT topic a message is bound to, possibly assembled from a rewritten
/// prefix and the rest of a received topic (see [`PrefixRewrite`]).
///
/// A plain `&str` converts into an exact binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundTopic<'a> {
    prefix: &'a str,
    rest: &'a str,
}

impl<'a> BoundTopic<'a> {
    /// Binds exactly this topic.
    #[must_use]
    pub const fn exact(topic: &'a str) -> Self {
        BoundTopic { prefix: "", rest: topic }
    }

    /// Length of the bound topic in bytes.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.prefix.len() + self.rest.len()
    }

    /// Whether the bound topic is empty.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The two pieces whose concatenation is the bound topic.
    #[must_use]
    pub const fn parts(&self) -> (&'a str, &'a str) {
        (self.prefix, self.rest)
    }

    /// Checks that the bound topic is a valid MQTT topic name
    /// ([`crate::check_topic_name`]).
    ///
    /// # Errors
    /// [`Error::InvalidTopic`], [`Error::TopicTooLong`].
    pub fn check(&self) -> Result<(), Error> {
        if self.len() > MAX_TOPIC_LEN {
            return Err(Error::TopicTooLong);
        }
        if self.is_empty() {
            return Err(Error::InvalidTopic);
        }
        crate::topic::check_topic_chars(self.prefix)?;
        crate::topic::check_topic_chars(self.rest)
    }

    /// The topic once [`BoundTopic::check`] passed: what the associated data
    /// is built from, so that a seal checks its topic once.
    pub(crate) fn checked(self) -> Result<CheckedTopic<'a>, Error> {
        self.check()?;
        Ok(CheckedTopic(self))
    }
}

/// A [`BoundTopic`] that is a valid MQTT topic name (made only by
/// [`BoundTopic::checked`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct CheckedTopic<'a>(BoundTopic<'a>);

impl<'a> From<&'a str> for BoundTopic<'a> {
    fn from(topic: &'a str) -> Self {
        BoundTopic::exact(topic)
    }
}

/// A topic-prefix rewrite for messages that crossed a bridge.
///
/// MQTT bridges often remap topics: a message sealed for `site-a/temp` is
/// delivered as `cloud/site-a/temp`. The receiver states the mapping
/// explicitly: `PrefixRewrite { received: "cloud/site-a/", sealed: "site-a/" }`
/// binds the received topic `cloud/site-a/temp` to `site-a/temp`. Nothing
/// else is ever rewritten: exact binding is the default everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixRewrite<'a> {
    /// The prefix as the message arrives at the receiver.
    pub received: &'a str,
    /// The prefix the sender sealed the message under.
    pub sealed: &'a str,
}

impl<'a> PrefixRewrite<'a> {
    /// The topic the sender bound, for a topic as received.
    ///
    /// # Errors
    /// [`Error::TopicNotRewritable`] if `received_topic` does not start with
    /// the rule's `received` prefix.
    pub fn bound_topic<'t>(&'t self, received_topic: &'t str) -> Result<BoundTopic<'t>, Error> {
        match received_topic.strip_prefix(self.received) {
            Some(rest) => Ok(BoundTopic { prefix: self.sealed, rest }),
            None => Err(Error::TopicNotRewritable),
        }
    }
}

/// The associated data of one message, in a fixed buffer.
pub(crate) struct Aad {
    buf: [u8; AAD_MAX],
    len: usize,
}

impl Aad {
    pub(crate) const fn new() -> Aad {
        Aad { buf: [0u8; AAD_MAX], len: 0 }
    }

    /// Writes `"mqseal/v1" ‖ header ‖ varint(topic length) ‖ topic-or-digest`
    /// and returns it. Built where it is used, not returned by value: a
    /// seal or an open would otherwise move the whole buffer (about 180
    /// bytes) for a typical 40 bytes of associated data.
    pub(crate) fn build(&mut self, header: &[u8], topic: CheckedTopic<'_>) -> &[u8] {
        let topic = topic.0;
        let topic_len = topic.len();
        let aad = self;
        aad.len = 0;
        aad.push(AAD_DOMAIN);
        aad.push(header);
        let mut lenbuf = [0u8; varint::MAX_LEN_U64];
        let n = varint::encode(topic_len as u64, &mut lenbuf);
        aad.push(&lenbuf[..n]);
        let (prefix, rest) = topic.parts();
        if topic_len <= TOPIC_INLINE_MAX {
            aad.push(prefix.as_bytes());
            aad.push(rest.as_bytes());
        } else {
            let mut h = Sha256::new();
            h.update(prefix.as_bytes());
            h.update(rest.as_bytes());
            aad.push(&h.finalize());
        }
        aad.as_bytes()
    }

    // Callers stay within AAD_MAX by construction (header <= MAX_HEADER_LEN).
    fn push(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        self.buf[self.len..end].copy_from_slice(bytes);
        self.len = end;
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use std::{format, prelude::v1::*, vec};

    #[test]
    fn typical_overhead_is_23_bytes() {
        let h =
            Header { suite: Suite::ChaCha20Poly1305, key_id: 1, sender_id: 42, counter: 1_000_000, timestamp: None };
        assert_eq!(h.envelope_len(0), 23);
    }

    #[test]
    fn max_header_fits() {
        let h = Header {
            suite: Suite::HmacSha256,
            key_id: u32::MAX,
            sender_id: u32::MAX,
            counter: u64::MAX,
            timestamp: Some(u64::MAX),
        };
        assert_eq!(h.encoded_len(), MAX_HEADER_LEN);
        let mut buf = [0u8; MAX_HEADER_LEN];
        assert_eq!(h.encode(&mut buf), Ok(MAX_HEADER_LEN));
        assert_eq!(Header::parse(&buf), Ok((h, MAX_HEADER_LEN)));
    }

    #[test]
    fn aad_forms() {
        let header = [0x11, 0, 1, 2, 3];
        let mut aad = Aad::new();
        let short = aad.build(&header, BoundTopic::exact("a/b").checked().unwrap());
        assert_eq!(short, b"mqseal/v1\x11\x00\x01\x02\x03\x03a/b");
        let long_topic = "x".repeat(200);
        let long = aad.build(&header, BoundTopic::exact(&long_topic).checked().unwrap());
        assert_eq!(long.len(), 9 + 5 + 2 + 32);
        let too_long = "y".repeat(MAX_TOPIC_LEN + 1);
        assert!(matches!(BoundTopic::exact(&too_long).checked(), Err(Error::TopicTooLong)));
    }

    #[test]
    fn rewrite_assembles_the_same_aad() {
        let header = [0x11, 0, 1, 2, 3];
        let rule = PrefixRewrite { received: "cloud/site-a/", sealed: "site-a/" };
        let bound = rule.bound_topic("cloud/site-a/temp").unwrap();
        let (mut a, mut b) = (Aad::new(), Aad::new());
        assert_eq!(
            a.build(&header, bound.checked().unwrap()),
            b.build(&header, BoundTopic::exact("site-a/temp").checked().unwrap())
        );
        assert_eq!(rule.bound_topic("other/temp"), Err(Error::TopicNotRewritable));
    }
}
