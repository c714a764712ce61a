//! Keys: group keys with ids, static X25519 key pairs and pairwise keys,
//! their text and serde forms, and key files. The keyring that holds
//! several keys is in `keyring.rs`.
//!
//! # Text forms
//!
//! Keys travel through config files and environment variables in a text
//! form that says what it is before the key material (base64url, no
//! padding, 32 bytes):
//!
//! ```text
//! mqseal:key:v1:<key id>:<base64url>          group key (or one direction of a pairwise key)
//! mqseal:x25519-secret:v1:<base64url>         static X25519 secret key
//! mqseal:x25519-public:v1:<base64url>         X25519 public key
//! ```
//!
//! Secret types zeroize their bytes on drop and print `<redacted>` in
//! `Debug`. Their text form is produced only on explicit request
//! ([`Key::to_text`], [`StaticKeyPair::secret_text`]).

use core::fmt;
use core::str::FromStr;

use base64ct::{Base64UrlUnpadded, Encoding};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::schedule;
use crate::Error;

/// Length of every key in bytes.
pub const KEY_LEN: usize = 32;

const GROUP_PREFIX: &str = "mqseal:key:v1:";
const SECRET_PREFIX: &str = "mqseal:x25519-secret:v1:";
const PUBLIC_PREFIX: &str = "mqseal:x25519-public:v1:";
const B64_LEN: usize = 43; // 32 bytes, base64 without padding
const TEXT_CAP: usize = 80;

/// A text form held in a fixed buffer (no allocator needed). Zeroized on
/// drop, since it may hold a secret; `Debug` redacts it, `Display` and
/// [`KeyText::as_str`] give the text.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeyText {
    buf: [u8; TEXT_CAP],
    len: usize,
}

impl KeyText {
    fn new(prefix: &str, id: Option<u32>, bytes: &[u8; KEY_LEN]) -> KeyText {
        let mut t = KeyText { buf: [0u8; TEXT_CAP], len: 0 };
        t.push(prefix.as_bytes());
        if let Some(id) = id {
            let mut digits = [0u8; 10];
            let mut n = id;
            let mut i = digits.len();
            loop {
                i -= 1;
                // n % 10 < 10 always fits in a u8.
                #[allow(clippy::cast_possible_truncation)]
                let d = (n % 10) as u8;
                digits[i] = b'0' + d;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            t.push(&digits[i..]);
            t.push(b":");
        }
        let mut b64 = [0u8; B64_LEN];
        if let Ok(s) = Base64UrlUnpadded::encode(bytes, &mut b64) {
            let s = s.len();
            t.push(&b64[..s]);
        }
        b64.zeroize();
        t
    }

    fn push(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        self.buf[self.len..end].copy_from_slice(bytes);
        self.len = end;
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever pushed (prefixes, digits, base64url).
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl fmt::Display for KeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for KeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyText(<redacted>)")
    }
}

fn decode_b64(text: &str) -> Result<[u8; KEY_LEN], Error> {
    if text.len() != B64_LEN {
        return Err(Error::InvalidKey);
    }
    let mut out = [0u8; KEY_LEN];
    match Base64UrlUnpadded::decode(text, &mut out) {
        Ok(b) if b.len() == KEY_LEN => Ok(out),
        _ => {
            out.zeroize();
            Err(Error::InvalidKey)
        }
    }
}

/// A symmetric key with its key id: a group key shared by a set of
/// devices, or one direction of a pairwise key (see [`PairwiseKeys`]).
///
/// Anyone holding a group key can seal messages that every other holder
/// accepts, under any sender id: group members can forge for each other.
/// Use pairwise keys where that matters.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key {
    #[zeroize(skip)]
    id: u32,
    bytes: [u8; KEY_LEN],
}

impl Key {
    /// A key from 32 bytes of key material (which must come from a
    /// cryptographically secure random generator or a key agreement).
    #[must_use]
    pub const fn from_bytes(id: u32, bytes: [u8; KEY_LEN]) -> Key {
        Key { id, bytes }
    }

    /// A fresh random key from the operating system's generator.
    ///
    /// # Errors
    /// [`Error::Rng`] if the generator fails.
    #[cfg(feature = "std")]
    pub fn generate(id: u32) -> Result<Key, Error> {
        let mut bytes = [0u8; KEY_LEN];
        getrandom::fill(&mut bytes).map_err(|_| Error::Rng)?;
        Ok(Key { id, bytes })
    }

    /// The key id carried in every envelope sealed with this key.
    #[must_use]
    pub const fn id(&self) -> u32 {
        self.id
    }

    /// The raw key bytes. Handle with care: this is the secret.
    #[must_use]
    pub const fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    /// The text form `mqseal:key:v1:<id>:<base64url>`.
    #[must_use]
    pub fn to_text(&self) -> KeyText {
        KeyText::new(GROUP_PREFIX, Some(self.id), &self.bytes)
    }

    /// Parses the text form. Surrounding ASCII whitespace (space, tab, CR, LF,
    /// form feed) is ignored; any other character, U+00A0 included, is not.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for anything but a well-formed group key text.
    pub fn from_text(text: &str) -> Result<Key, Error> {
        let rest = text.trim_ascii().strip_prefix(GROUP_PREFIX).ok_or(Error::InvalidKey)?;
        let (id, b64) = rest.split_once(':').ok_or(Error::InvalidKey)?;
        if id.is_empty()
            || id.len() > 10
            || !id.bytes().all(|b| b.is_ascii_digit())
            || (id.len() > 1 && id.starts_with('0'))
        {
            return Err(Error::InvalidKey);
        }
        let id: u32 = id.parse().map_err(|_| Error::InvalidKey)?;
        Ok(Key { id, bytes: decode_b64(b64)? })
    }
}

impl FromStr for Key {
    type Err = Error;
    fn from_str(s: &str) -> Result<Key, Error> {
        Key::from_text(s)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").field("id", &self.id).field("bytes", &"<redacted>").finish()
    }
}

/// An X25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    /// A public key from its 32 bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> PublicKey {
        PublicKey(bytes)
    }

    /// The 32 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The text form `mqseal:x25519-public:v1:<base64url>`.
    #[must_use]
    pub fn to_text(&self) -> KeyText {
        KeyText::new(PUBLIC_PREFIX, None, &self.0)
    }

    /// Parses the text form. Surrounding ASCII whitespace (space, tab, CR, LF,
    /// form feed) is ignored; any other character, U+00A0 included, is not.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for anything but a well-formed public key text.
    pub fn from_text(text: &str) -> Result<PublicKey, Error> {
        let b64 = text.trim_ascii().strip_prefix(PUBLIC_PREFIX).ok_or(Error::InvalidKey)?;
        Ok(PublicKey(decode_b64(b64)?))
    }
}

impl FromStr for PublicKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<PublicKey, Error> {
        PublicKey::from_text(s)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_text().as_str())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_text().as_str())
    }
}

/// A device's static X25519 key pair, for pairwise keys.
#[derive(Clone)]
pub struct StaticKeyPair {
    secret: x25519_dalek::StaticSecret,
    public: PublicKey,
}

impl StaticKeyPair {
    /// A key pair from 32 secret bytes (from a secure random generator).
    #[must_use]
    pub fn from_secret_bytes(bytes: [u8; KEY_LEN]) -> StaticKeyPair {
        let secret = x25519_dalek::StaticSecret::from(bytes);
        let public = PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes());
        StaticKeyPair { secret, public }
    }

    /// A fresh key pair from the operating system's generator.
    ///
    /// # Errors
    /// [`Error::Rng`] if the generator fails.
    #[cfg(feature = "std")]
    pub fn generate() -> Result<StaticKeyPair, Error> {
        let mut bytes = zeroize::Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(&mut *bytes).map_err(|_| Error::Rng)?;
        Ok(StaticKeyPair::from_secret_bytes(*bytes))
    }

    /// The public half, to give to peers.
    #[must_use]
    pub const fn public(&self) -> PublicKey {
        self.public
    }

    /// The text form of the secret, `mqseal:x25519-secret:v1:<base64url>`.
    #[must_use]
    pub fn secret_text(&self) -> KeyText {
        KeyText::new(SECRET_PREFIX, None, self.secret.as_bytes())
    }

    /// Parses the secret's text form. Surrounding ASCII whitespace (space,
    /// tab, CR, LF, form feed) is ignored; any other character is not.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for anything but a well-formed secret key text.
    pub fn from_secret_text(text: &str) -> Result<StaticKeyPair, Error> {
        let b64 = text.trim_ascii().strip_prefix(SECRET_PREFIX).ok_or(Error::InvalidKey)?;
        let mut bytes = decode_b64(b64)?;
        let pair = StaticKeyPair::from_secret_bytes(bytes);
        bytes.zeroize();
        Ok(pair)
    }

    /// The pairwise keys between this key pair and a peer, under `key_id`.
    ///
    /// Both sides compute the same two keys: X25519 gives a shared secret,
    /// and HKDF-SHA256 with both public keys in its info gives one key per
    /// direction. [`PairwiseKeys::send`] seals messages to the peer,
    /// [`PairwiseKeys::recv`] opens messages from it. Because the directions
    /// differ, a message cannot be reflected back to its sender.
    ///
    /// # Errors
    /// [`Error::WeakSharedSecret`] if the peer's public key is a low-order
    /// point (the shared secret is all zeros); [`Error::SelfPairing`] if the
    /// peer's public key is this pair's own.
    pub fn pairwise(&self, peer: &PublicKey, key_id: u32) -> Result<PairwiseKeys, Error> {
        if *peer == self.public {
            return Err(Error::SelfPairing);
        }
        let shared = self.secret.diffie_hellman(&x25519_dalek::PublicKey::from(peer.0));
        if !shared.was_contributory() {
            return Err(Error::WeakSharedSecret);
        }
        let send = schedule::pairwise_direction_key(shared.as_bytes(), &self.public, peer);
        let recv = schedule::pairwise_direction_key(shared.as_bytes(), peer, &self.public);
        Ok(PairwiseKeys { send: Key::from_bytes(key_id, send), recv: Key::from_bytes(key_id, recv) })
    }
}

impl FromStr for StaticKeyPair {
    type Err = Error;
    fn from_str(s: &str) -> Result<StaticKeyPair, Error> {
        StaticKeyPair::from_secret_text(s)
    }
}

impl fmt::Debug for StaticKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeyPair").field("public", &self.public).field("secret", &"<redacted>").finish()
    }
}

/// The two directional keys between two X25519 key pairs.
#[derive(Clone, Debug)]
pub struct PairwiseKeys {
    /// Seals messages to the peer: give it to a [`crate::Sealer`].
    pub send: Key,
    /// Opens messages from the peer: add it to the [`crate::Opener`]'s keyring.
    pub recv: Key,
}

mod serde_impls {
    //! Keys serialize as their text forms, so key files in JSON, TOML or
    //! YAML are readable and the same strings work in environment variables.
    use super::{Key, PublicKey, StaticKeyPair};
    use core::fmt;
    use serde::de::{self, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    struct TextVisitor<T>(core::marker::PhantomData<T>);

    impl<T: core::str::FromStr> Visitor<'_> for TextVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an mqseal key in text form")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            v.parse().map_err(|_| E::custom("malformed mqseal key text"))
        }
    }

    macro_rules! text_serde {
        ($ty:ty, $to_text:ident) => {
            impl Serialize for $ty {
                fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    s.serialize_str(self.$to_text().as_str())
                }
            }
            impl<'de> Deserialize<'de> for $ty {
                fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    d.deserialize_str(TextVisitor(core::marker::PhantomData))
                }
            }
        };
    }

    text_serde!(Key, to_text);
    text_serde!(PublicKey, to_text);
    text_serde!(StaticKeyPair, secret_text);
}

/// A structured key file: group keys with one primary, and optionally this
/// device's X25519 key pair and its peers' public keys.
///
/// ```
/// # use mqseal::{Key, KeyFile};
/// let json = r#"{
///   "primary": 7,
///   "keys": ["mqseal:key:v1:7:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"]
/// }"#;
/// let file: KeyFile = serde_json::from_str(json)?;
/// let ring: mqseal::Keyring = file.keyring()?;
/// assert_eq!(ring.primary().map(Key::id), Some(7));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// Id of the key that seals; defaults to the only key when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<u32>,
    /// Group keys, in text form.
    #[serde(default)]
    pub keys: alloc::vec::Vec<Key>,
    /// This device's static X25519 key pair (its secret, in text form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x25519: Option<StaticKeyPair>,
    /// Peers' public keys with the key id used with each.
    #[serde(default, skip_serializing_if = "alloc::vec::Vec::is_empty")]
    pub peers: alloc::vec::Vec<Peer>,
}

/// A peer in a [`KeyFile`]: its public key and the key id of the pair.
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// The peer's X25519 public key.
    pub public: PublicKey,
    /// Key id both sides use for this pair.
    pub key_id: u32,
}

#[cfg(feature = "alloc")]
use crate::keyring::Keyring;

#[cfg(feature = "alloc")]
impl KeyFile {
    /// Builds a keyring from the group keys (primary as stated, or the only
    /// key) and the receive halves of the pairwise keys with every peer.
    ///
    /// # Errors
    /// [`Error::DuplicateKeyId`], [`Error::KeyringFull`],
    /// [`Error::KeyNotFound`] for a primary that is not listed, and the
    /// errors of [`StaticKeyPair::pairwise`].
    pub fn keyring<const N: usize>(&self) -> Result<Keyring<N>, Error> {
        let mut ring = Keyring::new();
        for k in &self.keys {
            ring.insert(k.clone())?;
        }
        if let Some(pair) = &self.x25519 {
            for p in &self.peers {
                ring.insert(pair.pairwise(&p.public, p.key_id)?.recv)?;
            }
        }
        match (self.primary, self.keys.as_slice()) {
            (Some(id), _) => ring.set_primary(id)?,
            (None, [only]) => ring.set_primary(only.id())?,
            _ => {}
        }
        Ok(ring)
    }

    /// The key that seals with this file, if the file names one:
    ///
    /// * `primary` names a group key: that key;
    /// * `primary` names a peer's `key_id`: the sending half of the
    ///   pairwise key with that peer (the keyring holds the receiving half,
    ///   which only opens);
    /// * no `primary` and exactly one group key: that key;
    /// * no `primary`, no group keys, one peer: the pairwise key with it;
    /// * otherwise (several group keys or several peers and no `primary`)
    ///   none: the file opens but does not seal, since any choice would be
    ///   a guess.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`] for a `primary` that names no key of the file,
    /// and the errors of [`StaticKeyPair::pairwise`].
    pub fn sealing_key(&self) -> Result<Option<Key>, Error> {
        let group = |id: u32| self.keys.iter().find(|k| k.id() == id).cloned();
        let pairwise = |peer: &Peer| -> Result<Option<Key>, Error> {
            match &self.x25519 {
                Some(pair) => Ok(Some(pair.pairwise(&peer.public, peer.key_id)?.send)),
                None => Ok(None),
            }
        };
        match (self.primary, self.keys.as_slice(), self.peers.as_slice()) {
            (Some(id), _, _) => {
                if let Some(key) = group(id) {
                    return Ok(Some(key));
                }
                match self.peers.iter().find(|p| p.key_id == id) {
                    Some(peer) if self.x25519.is_some() => pairwise(peer),
                    _ => Err(Error::KeyNotFound(id)),
                }
            }
            (None, [only], _) => Ok(Some(only.clone())),
            (None, [], [peer]) => pairwise(peer),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use std::{format, prelude::v1::*, vec};

    #[test]
    fn the_sealing_key_of_a_key_file() {
        let g7 = Key::from_bytes(7, [7; 32]);
        let g8 = Key::from_bytes(8, [8; 32]);
        let me = StaticKeyPair::from_secret_bytes([1; 32]);
        let peer_a = StaticKeyPair::from_secret_bytes([2; 32]);
        let peer_b = StaticKeyPair::from_secret_bytes([3; 32]);
        let peer = |pair: &StaticKeyPair, key_id| Peer { public: pair.public(), key_id };
        let to_a = me.pairwise(&peer_a.public(), 40).unwrap();
        let id_of = |f: &KeyFile| f.sealing_key().map(|k| k.map(|k| (k.id(), *k.expose_secret())));

        let only = KeyFile { keys: vec![g7.clone()], ..KeyFile::default() };
        assert_eq!(id_of(&only), Ok(Some((7, [7; 32]))));
        let two = KeyFile { keys: vec![g7.clone(), g8.clone()], ..KeyFile::default() };
        assert_eq!(id_of(&two), Ok(None), "several group keys, no primary: no guess");
        let stated = KeyFile { primary: Some(8), ..two.clone() };
        assert_eq!(id_of(&stated), Ok(Some((8, [8; 32]))));
        let unknown = KeyFile { primary: Some(9), ..two.clone() };
        assert_eq!(id_of(&unknown), Err(Error::KeyNotFound(9)));

        let one_peer = KeyFile { x25519: Some(me.clone()), peers: vec![peer(&peer_a, 40)], ..KeyFile::default() };
        assert_eq!(id_of(&one_peer), Ok(Some((40, *to_a.send.expose_secret()))));
        assert_ne!(to_a.send.expose_secret(), to_a.recv.expose_secret());
        let two_peers = KeyFile { peers: vec![peer(&peer_a, 40), peer(&peer_b, 41)], ..one_peer.clone() };
        assert_eq!(id_of(&two_peers), Ok(None), "several peers, no primary: no guess");
        // A primary naming a peer seals with the sending half, never with
        // the receiving half that the keyring holds.
        let primary_peer = KeyFile { primary: Some(40), keys: vec![g7.clone()], ..two_peers.clone() };
        assert_eq!(id_of(&primary_peer), Ok(Some((40, *to_a.send.expose_secret()))));
        let ring: Keyring = primary_peer.keyring().unwrap();
        assert_eq!(ring.get(40).map(|k| *k.expose_secret()), Some(*to_a.recv.expose_secret()));
        // Group keys next to peers: the only group key seals.
        let mixed = KeyFile { keys: vec![g7], ..two_peers.clone() };
        assert_eq!(id_of(&mixed), Ok(Some((7, [7; 32]))));
        // Peers without a key pair of our own hold no key.
        let no_pair = KeyFile { primary: Some(40), peers: vec![peer(&peer_a, 40)], ..KeyFile::default() };
        assert_eq!(id_of(&no_pair), Err(Error::KeyNotFound(40)));
    }

    #[test]
    fn group_key_text_round_trip() {
        let k = Key::from_bytes(4_000_000_000, [7u8; 32]);
        let t = k.to_text();
        assert!(t.as_str().starts_with("mqseal:key:v1:4000000000:"));
        let back = Key::from_text(t.as_str()).unwrap();
        assert_eq!(back.id(), k.id());
        assert_eq!(back.expose_secret(), k.expose_secret());
        assert_eq!(Key::from_text(&format!("  {t}\n")).unwrap().id(), k.id());
    }

    #[test]
    fn bad_key_texts() {
        let good = Key::from_bytes(1, [9u8; 32]).to_text();
        let g = good.as_str();
        for bad in [
            "",
            "mqseal:key:v1:",
            &g.replace("v1", "v2"),
            &g.replace(":1:", "::"),
            &g.replace(":1:", ":01:"),
            &g.replace(":1:", ":4294967296:"),
            &g[..g.len() - 1],
            &format!("{g}A"),
            &g.replace("mqseal:key", "mqseal:x25519-secret"),
        ] {
            assert_eq!(Key::from_text(bad).map(|k| k.id()), Err(Error::InvalidKey), "{bad}");
        }
    }

    #[test]
    fn debug_redacts() {
        let k = Key::from_bytes(3, [0xAB; 32]);
        let dbg = format!("{k:?} {:?} {:?}", k.to_text(), StaticKeyPair::from_secret_bytes([0xAB; 32]));
        assert!(dbg.contains("redacted"));
        assert!(!dbg.contains("qw"), "{dbg}"); // base64 of 0xAB bytes starts "q6"
        assert!(!dbg.contains("171"));
        assert!(!dbg.to_lowercase().contains("abab"));
    }

    #[test]
    fn pairwise_agrees_and_differs_by_direction() {
        let a = StaticKeyPair::from_secret_bytes([1u8; 32]);
        let b = StaticKeyPair::from_secret_bytes([2u8; 32]);
        let ab = a.pairwise(&b.public(), 9).unwrap();
        let ba = b.pairwise(&a.public(), 9).unwrap();
        assert_eq!(ab.send.expose_secret(), ba.recv.expose_secret());
        assert_eq!(ab.recv.expose_secret(), ba.send.expose_secret());
        assert_ne!(ab.send.expose_secret(), ab.recv.expose_secret());
        assert_eq!(a.pairwise(&a.public(), 9).map(|_| ()), Err(Error::SelfPairing));
    }

    fn h32(s: &str) -> [u8; 32] {
        let v: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect();
        v.try_into().unwrap()
    }

    /// RFC 7748 section 5.2, first vector, through `x25519-dalek`.
    #[test]
    fn rfc7748_scalar_mult_vector_1() {
        let out = x25519_dalek::x25519(
            h32("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
            h32("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"),
        );
        assert_eq!(out, h32("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"));
    }

    /// RFC 7748 section 6.1: Alice and Bob, through `StaticKeyPair`.
    #[test]
    fn rfc7748_diffie_hellman() {
        let alice =
            StaticKeyPair::from_secret_bytes(h32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
        let bob =
            StaticKeyPair::from_secret_bytes(h32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"));
        assert_eq!(alice.public().as_bytes(), &h32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"));
        assert_eq!(bob.public().as_bytes(), &h32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"));
        let shared = alice.secret.diffie_hellman(&x25519_dalek::PublicKey::from(*bob.public().as_bytes()));
        assert_eq!(shared.as_bytes(), &h32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"));
    }

    #[test]
    fn low_order_points_rejected() {
        let a = StaticKeyPair::from_secret_bytes([1u8; 32]);
        // u = 0 and u = 1 are low-order points; both give an all-zero secret.
        let zero = PublicKey::from_bytes([0u8; 32]);
        let one = {
            let mut b = [0u8; 32];
            b[0] = 1;
            PublicKey::from_bytes(b)
        };
        assert_eq!(a.pairwise(&zero, 1).map(|_| ()), Err(Error::WeakSharedSecret));
        assert_eq!(a.pairwise(&one, 1).map(|_| ()), Err(Error::WeakSharedSecret));
    }

    #[test]
    fn key_file_json() {
        let a = StaticKeyPair::from_secret_bytes([1u8; 32]);
        let b = StaticKeyPair::from_secret_bytes([2u8; 32]);
        let file = KeyFile {
            primary: None,
            keys: vec![Key::from_bytes(5, [5; 32])],
            x25519: Some(a.clone()),
            peers: vec![Peer { public: b.public(), key_id: 100 }],
        };
        let json = serde_json::to_string(&file).unwrap();
        let back: KeyFile = serde_json::from_str(&json).unwrap();
        let ring: Keyring<4> = back.keyring().unwrap();
        assert_eq!(ring.primary().map(Key::id), Some(5));
        let expect = b.pairwise(&a.public(), 100).unwrap().send;
        assert_eq!(ring.get(100).unwrap().expose_secret(), expect.expose_secret());
        assert!(serde_json::from_str::<KeyFile>(r#"{"keys":["nope"]}"#).is_err());
    }
}
