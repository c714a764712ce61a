//! Control messages of key distribution (`docs/PROTOCOL.md`, section 14):
//! the full key state an authority sends to one member, the member's
//! acknowledgement, their postcard encoding with its limits, and the
//! authority-side functions that seal a state and open an acknowledgement.
//!
//! Every list and name has a fixed capacity ([`MAX_GROUPS`],
//! [`MAX_KEYS_PER_GROUP`], [`MAX_NAME_LEN`]), so decoding needs no
//! allocator and an attacker-chosen length never drives an allocation. A
//! decoded value is accepted only if it re-encodes to exactly the bytes it
//! came from (canonical varints, no trailing bytes) and passes
//! [`ControlState::check`].

use core::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{
    check_topic_name, CounterStore, Error, Key, Keyring, Opener, OpenerConfig, PublicKey, Sealer, StaticKeyPair, Suite,
    SuiteSet, KEY_LEN,
};

/// The format byte that starts every control message and acknowledgement.
pub const CONTROL_FORMAT: u8 = 1;
/// Most groups one control message can carry.
pub const MAX_GROUPS: usize = 8;
/// Most keys one group can carry (current, next and those still accepted).
pub const MAX_KEYS_PER_GROUP: usize = 4;
/// Longest member id or group name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest control-topic prefix, in bytes.
pub const MAX_PREFIX_LEN: usize = 128;
/// Longest control or ack topic: prefix, `/`, member id.
pub const MAX_CONTROL_TOPIC_LEN: usize = MAX_PREFIX_LEN + 1 + MAX_NAME_LEN;
/// The key id both directions of the pairwise authority/member key use.
pub const CONTROL_KEY_ID: u32 = 0;
/// The sender id of the authority on every control topic.
pub const AUTHORITY_SENDER_ID: u32 = 0;
/// The sender id of a member on its ack topic.
pub const MEMBER_SENDER_ID: u32 = 0;
/// Default prefix of the control topics (authority → member).
pub const DEFAULT_CONTROL_PREFIX: &str = "mqseal/v1/ctl";
/// Default prefix of the ack topics (member → authority).
pub const DEFAULT_ACK_PREFIX: &str = "mqseal/v1/ack";

/// Longest encoded group key: varint u32, suite byte, 32 bytes, varint
/// u32, varint u64, option of varint u64.
const MAX_KEY_LEN: usize = 5 + 1 + KEY_LEN + 5 + 10 + 11;
/// Longest encoded group.
const MAX_GROUP_LEN: usize = 1 + MAX_NAME_LEN + 5 + 6 + 1 + MAX_KEYS_PER_GROUP * MAX_KEY_LEN;
/// Longest encoded control message (the sealed body).
pub const MAX_CONTROL_LEN: usize = 1 + 1 + MAX_NAME_LEN + 10 + 1 + MAX_GROUPS * MAX_GROUP_LEN;
/// Longest control envelope (a buffer this size takes any control message).
pub const MAX_CONTROL_ENVELOPE_LEN: usize = MAX_CONTROL_LEN + crate::MAX_OVERHEAD;
/// Longest encoded acknowledgement.
pub const MAX_ACK_LEN: usize = 1 + 1 + MAX_NAME_LEN + 10 + 1;
/// Longest ack envelope.
pub const MAX_ACK_ENVELOPE_LEN: usize = MAX_ACK_LEN + crate::MAX_OVERHEAD;

/// Why a verified control message or acknowledgement was refused (the
/// reason of [`Error::InvalidControl`]). Checked in the order of
/// `docs/PROTOCOL.md` 14.6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ControlError {
    /// The message arrived on another topic than the member's control topic.
    WrongTopic,
    /// The envelope verified but names another sender id than the one of
    /// its direction (0), or another suite than ChaCha20-Poly1305.
    WrongSender,
    /// The bytes are not a postcard encoding of the message: truncated, a
    /// bad varint or option tag, invalid UTF-8, trailing bytes, or not the
    /// canonical encoding.
    Malformed,
    /// The format byte is not [`CONTROL_FORMAT`].
    UnsupportedFormat,
    /// More than [`MAX_GROUPS`] groups.
    TooManyGroups,
    /// More than [`MAX_KEYS_PER_GROUP`] keys in a group, or a group with none.
    TooManyKeys,
    /// A member id or group name is empty, longer than [`MAX_NAME_LEN`], or
    /// holds a byte outside `A-Z a-z 0-9 . _ -`.
    BadName,
    /// The message is for another member.
    WrongMember,
    /// Epoch 0 (the first epoch is 1).
    ZeroEpoch,
    /// Two groups with one name.
    DuplicateGroup,
    /// Two keys with one id in a group.
    DuplicateKeyId,
    /// A key's suite byte names no suite.
    BadSuite,
    /// A key's end of acceptance is not after its activation.
    EndBeforeActivation,
    /// The seal-now key id is not among the group's keys.
    SealKeyMissing,
    /// The seal-next key id is not among the group's keys, equals the
    /// seal-now key, or does not activate after it.
    BadNextKey,
    /// An acknowledgement's status byte is not a defined status.
    BadStatus,
}

impl ControlError {
    /// A short, stable, camelCase name (the `reason` of an `invalidControl`
    /// error in every binding and in the vectors).
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            ControlError::WrongTopic => "wrongTopic",
            ControlError::WrongSender => "wrongSender",
            ControlError::Malformed => "malformed",
            ControlError::UnsupportedFormat => "unsupportedFormat",
            ControlError::TooManyGroups => "tooManyGroups",
            ControlError::TooManyKeys => "tooManyKeys",
            ControlError::BadName => "badName",
            ControlError::WrongMember => "wrongMember",
            ControlError::ZeroEpoch => "zeroEpoch",
            ControlError::DuplicateGroup => "duplicateGroup",
            ControlError::DuplicateKeyId => "duplicateKeyId",
            ControlError::BadSuite => "badSuite",
            ControlError::EndBeforeActivation => "endBeforeActivation",
            ControlError::SealKeyMissing => "sealKeyMissing",
            ControlError::BadNextKey => "badNextKey",
            ControlError::BadStatus => "badStatus",
        }
    }
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl From<ControlError> for Error {
    fn from(e: ControlError) -> Self {
        Error::InvalidControl(e)
    }
}

fn name_ok(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME_LEN
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A member id or group name: 1 to [`MAX_NAME_LEN`] bytes of
/// `A-Z a-z 0-9 . _ -`, so that it is one topic level.
#[derive(Clone, PartialEq, Eq)]
pub struct Name {
    len: u8,
    bytes: [u8; MAX_NAME_LEN],
    /// Set by decoding when the text broke the rule (checked after
    /// decoding, so that the error names the rule).
    bad: bool,
}

impl Name {
    /// No name (the placeholder of an unused slot; never valid on the wire).
    pub(crate) const EMPTY: Name = Name { len: 0, bytes: [0; MAX_NAME_LEN], bad: false };

    /// The name, checked.
    ///
    /// # Errors
    /// [`ControlError::BadName`].
    pub fn new(s: &str) -> Result<Name, Error> {
        let b = s.as_bytes();
        if !name_ok(b) {
            return Err(ControlError::BadName.into());
        }
        let mut bytes = [0u8; MAX_NAME_LEN];
        bytes[..b.len()].copy_from_slice(b);
        Ok(Name { len: b.len() as u8, bytes, bad: false })
    }

    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked in `new` and on decode).
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Name;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Name, E> {
                Ok(Name::new(s).unwrap_or(Name { bad: true, ..Name::EMPTY }))
            }
        }
        d.deserialize_str(V)
    }
}

/// A list of at most `N` values. Decoding a longer list reads (and drops)
/// every element, so that the whole message is still checked as postcard,
/// then marks the list as over its limit.
#[derive(Clone, PartialEq, Eq)]
pub struct List<T, const N: usize> {
    len: usize,
    items: [T; N],
    over: bool,
}

/// A value that has a constant empty form, so that fixed-capacity
/// storage (a list, a member agent in static memory) is set up without
/// building a copy on the stack.
pub(crate) trait Empty: Sized {
    /// The empty value.
    const EMPTY: Self;
}

impl<T: Empty, const N: usize> Empty for List<T, N> {
    const EMPTY: Self = List { len: 0, items: [const { T::EMPTY }; N], over: false };
}

impl<T: Empty, const N: usize> Default for List<T, N> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<T, const N: usize> List<T, N> {
    /// The values.
    #[must_use]
    pub fn as_slice(&self) -> &[T] {
        self.items.get(..self.len).unwrap_or(&[])
    }

    /// Appends a value; `Err(value)` when full.
    fn push(&mut self, v: T) -> Result<(), T> {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = v;
                self.len += 1;
                Ok(())
            }
            None => Err(v),
        }
    }
}

impl<T: fmt::Debug, const N: usize> fmt::Debug for List<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<T: Serialize, const N: usize> Serialize for List<T, N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len))?;
        for v in self.as_slice() {
            seq.serialize_element(v)?;
        }
        seq.end()
    }
}

impl<T: DecodeInPlace + Empty, const N: usize> DecodeInPlace for List<T, N> {
    fn decode_in_place<'de, D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
        struct V<'a, T, const N: usize>(&'a mut List<T, N>);
        impl<'de, T: DecodeInPlace + Empty, const N: usize> Visitor<'de> for V<'_, T, N> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
                let list = self.0;
                list.len = 0;
                list.over = false;
                // Every element consumes at least one input byte, so a huge
                // declared length ends at the end of the input. Elements
                // over the limit are read (the whole message is still
                // checked as postcard) into a scratch value and dropped.
                loop {
                    match list.items.get_mut(list.len) {
                        Some(slot) => {
                            if seq.next_element_seed(InPlace(slot))?.is_none() {
                                return Ok(());
                            }
                            list.len += 1;
                        }
                        None => {
                            let mut extra = T::EMPTY;
                            if seq.next_element_seed(InPlace(&mut extra))?.is_none() {
                                return Ok(());
                            }
                            list.over = true;
                        }
                    }
                }
            }
        }
        d.deserialize_seq(V(self))
    }
}

/// Decoding into a value already in place, field by field: a control state
/// (up to [`MAX_GROUPS`] groups of [`MAX_KEYS_PER_GROUP`] keys, about
/// 3 KiB) is never built on the stack and moved through `Result`s, which a
/// microcontroller task's stack cannot afford (`docs/PORTING.md`).
pub(crate) trait DecodeInPlace {
    /// Overwrites `self` with the decoded value. On error `self` holds a
    /// partly decoded value: valid to drop or decode into again, not to use.
    fn decode_in_place<'de, D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error>;
}

/// A struct decoded field by field into a place: its name, its fields and
/// how to read them in order (with [`field`] and [`field_in_place`]).
/// The blanket [`DecodeInPlace`] impl supplies the serde visitor around them.
pub(crate) trait StructInPlace {
    /// The struct's name (also what the decoder expected, in errors).
    const NAME: &'static str;
    /// Its field names, in wire order.
    const FIELDS: &'static [&'static str];
    /// Reads every field from `seq` into `self`.
    fn read_fields<'de, A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<(), A::Error>;
}

/// The [`StructInPlace`] of a struct whose fields are all read whole but
/// the last, a list read in place: `struct_in_place!(T { a, b } then list)`
/// (wire order, the struct's name on the wire is its Rust name).
macro_rules! struct_in_place {
    ($ty:ident { $($f:ident),+ } then $list:ident) => {
        impl StructInPlace for $ty {
            const NAME: &'static str = stringify!($ty);
            const FIELDS: &'static [&'static str] = &[$(stringify!($f),)+ stringify!($list)];
            fn read_fields<'de, A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<(), A::Error> {
                let mut index = 0;
                $(
                    self.$f = field(seq, index)?;
                    index += 1;
                )+
                field_in_place(seq, index, &mut self.$list)
            }
        }
    };
}

/// Every [`StructInPlace`] decodes in place through one serde visitor.
impl<T: StructInPlace> DecodeInPlace for T {
    fn decode_in_place<'de, D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
        struct V<'a, T>(&'a mut T);
        impl<'de, T: StructInPlace> Visitor<'de> for V<'_, T> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(T::NAME)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
                self.0.read_fields(&mut seq)
            }
        }
        d.deserialize_struct(T::NAME, T::FIELDS, V(self))
    }
}

/// The seed that decodes into the place it borrows.
pub(crate) struct InPlace<'a, T>(pub(crate) &'a mut T);

impl<'de, T: DecodeInPlace> DeserializeSeed<'de> for InPlace<'_, T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.0.decode_in_place(d)
    }
}

/// The next field of a struct, by value (small fields).
pub(crate) fn field<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(seq: &mut A, i: usize) -> Result<T, A::Error> {
    seq.next_element()?.ok_or_else(|| de::Error::invalid_length(i, &"more fields"))
}

/// The next field of a struct, decoded into `place`.
pub(crate) fn field_in_place<'de, A: SeqAccess<'de>, T: DecodeInPlace>(
    seq: &mut A,
    i: usize,
    place: &mut T,
) -> Result<(), A::Error> {
    seq.next_element_seed(InPlace(place))?.ok_or_else(|| de::Error::invalid_length(i, &"more fields"))
}

/// An option decoded into `place`: whether it was `Some`.
pub(crate) struct OptionInPlace<'a, T>(pub(crate) &'a mut T);

impl<'de, T: DecodeInPlace> DeserializeSeed<'de> for OptionInPlace<'_, T> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        struct V<'a, T>(&'a mut T);
        impl<'de, T: DecodeInPlace> Visitor<'de> for V<'_, T> {
            type Value = bool;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an option")
            }
            fn visit_none<E: de::Error>(self) -> Result<bool, E> {
                Ok(false)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
                self.0.decode_in_place(d).map(|()| true)
            }
        }
        d.deserialize_option(V(self.0))
    }
}

/// One group key as a member holds it. The secret zeroizes on drop and is
/// never printed.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct GroupKey {
    key_id: u32,
    suite: u8,
    secret: [u8; KEY_LEN],
    sender_id: u32,
    activation: u64,
    end_of_acceptance: Option<u64>,
}

impl Empty for GroupKey {
    const EMPTY: Self =
        GroupKey { key_id: 0, suite: 0, secret: [0; KEY_LEN], sender_id: 0, activation: 0, end_of_acceptance: None };
}

impl DecodeInPlace for GroupKey {
    fn decode_in_place<'de, D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
        // Small: by value (the old key zeroizes when dropped).
        *self = GroupKey::deserialize(d)?;
        Ok(())
    }
}

impl GroupKey {
    /// A key: its id, suite, secret, the member's sender id under it, its
    /// activation time and its end of acceptance (Unix seconds; `None`:
    /// until a later state drops it).
    #[must_use]
    pub fn new(key: &Key, suite: Suite, sender_id: u32, activation: u64, end_of_acceptance: Option<u64>) -> GroupKey {
        GroupKey {
            key_id: key.id(),
            suite: suite.id(),
            secret: *key.expose_secret(),
            sender_id,
            activation,
            end_of_acceptance,
        }
    }

    /// The key id.
    #[must_use]
    pub const fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The key (a copy that zeroizes on drop).
    #[must_use]
    pub fn key(&self) -> Key {
        Key::from_bytes(self.key_id, self.secret)
    }

    /// The suite to seal with under this key. (A decoded state has passed
    /// [`ControlState::check`], so the suite byte is valid.)
    #[must_use]
    pub fn suite(&self) -> Suite {
        Suite::from_id(self.suite).unwrap_or(Suite::ChaCha20Poly1305)
    }

    /// The member's sender id under this key.
    #[must_use]
    pub const fn sender_id(&self) -> u32 {
        self.sender_id
    }

    /// When members start sealing with it (Unix seconds).
    #[must_use]
    pub const fn activation(&self) -> u64 {
        self.activation
    }

    /// When receivers stop accepting it (Unix seconds), if set.
    #[must_use]
    pub const fn end_of_acceptance(&self) -> Option<u64> {
        self.end_of_acceptance
    }

    /// Whether receivers accept it at `now` (without a clock: while listed).
    #[must_use]
    pub fn accepted_at(&self, now: Option<u64>) -> bool {
        match (now, self.end_of_acceptance) {
            (Some(t), Some(end)) => t < end,
            _ => true,
        }
    }
}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupKey")
            .field("key_id", &self.key_id)
            .field("suite", &self.suite)
            .field("secret", &"<redacted>")
            .field("sender_id", &self.sender_id)
            .field("activation", &self.activation)
            .field("end_of_acceptance", &self.end_of_acceptance)
            .finish()
    }
}

/// One group in a control state: its name, the key to seal with now, the
/// key to seal with next, and its keys (whose `Debug` shows no secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Group {
    name: Name,
    seal_now: u32,
    seal_next: Option<u32>,
    keys: List<GroupKey, MAX_KEYS_PER_GROUP>,
}

impl Empty for Group {
    const EMPTY: Self = Group { name: Name::EMPTY, seal_now: 0, seal_next: None, keys: List::EMPTY };
}

impl Default for Group {
    fn default() -> Self {
        Group::EMPTY
    }
}

struct_in_place!(Group { name, seal_now, seal_next } then keys);

impl Group {
    /// A group with no keys yet.
    ///
    /// # Errors
    /// [`ControlError::BadName`].
    pub fn new(name: &str, seal_now: u32, seal_next: Option<u32>) -> Result<Group, Error> {
        Ok(Group { name: Name::new(name)?, seal_now, seal_next, keys: List::default() })
    }

    /// Adds a key.
    ///
    /// # Errors
    /// [`ControlError::TooManyKeys`].
    pub fn push_key(&mut self, key: GroupKey) -> Result<(), Error> {
        self.keys.push(key).map_err(|_| ControlError::TooManyKeys.into())
    }

    /// The group's name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The key id to seal with now (as of the state's issue).
    #[must_use]
    pub const fn seal_now(&self) -> u32 {
        self.seal_now
    }

    /// The key id to seal with from its activation on, if one is planned.
    #[must_use]
    pub const fn seal_next(&self) -> Option<u32> {
        self.seal_next
    }

    /// The keys.
    #[must_use]
    pub fn keys(&self) -> &[GroupKey] {
        self.keys.as_slice()
    }

    /// The key with this id.
    #[must_use]
    pub fn key(&self, key_id: u32) -> Option<&GroupKey> {
        self.keys().iter().find(|k| k.key_id == key_id)
    }

    /// The key to seal with at `now` (`docs/PROTOCOL.md` 14.7): the next
    /// key once its activation time has come, or once `next_seen` (a
    /// message under it was verified); the current key before.
    #[must_use]
    pub fn sealing_key(&self, now: Option<u64>, next_seen: bool) -> Option<&GroupKey> {
        if let Some(next) = self.seal_next.and_then(|id| self.key(id)) {
            if next_seen || now.is_some_and(|t| t >= next.activation) {
                return Some(next);
            }
        }
        self.key(self.seal_now)
    }

    /// A keyring of the keys accepted at `now` (without a clock: every
    /// listed key), the sealing key as primary.
    ///
    /// # Errors
    /// [`Error::KeyringFull`] when `N` is below the number of keys.
    pub fn keyring<const N: usize>(&self, now: Option<u64>, next_seen: bool) -> Result<Keyring<N>, Error> {
        let mut ring = Keyring::new();
        for k in self.keys().iter().filter(|k| k.accepted_at(now)) {
            ring.insert(k.key())?;
        }
        if let Some(k) = self.sealing_key(now, next_seen) {
            if ring.get(k.key_id).is_some() {
                ring.set_primary(k.key_id)?;
            }
        }
        Ok(ring)
    }

    /// The next time after `now` at which the sealing key or the accepted
    /// keys of this group change.
    #[must_use]
    pub fn next_change(&self, now: u64) -> Option<u64> {
        let next_activation = self.seal_next.and_then(|id| self.key(id)).map(|k| k.activation);
        self.keys().iter().filter_map(|k| k.end_of_acceptance).chain(next_activation).filter(|&t| t > now).min()
    }

    fn check(&self) -> Result<(), ControlError> {
        if self.name.bad {
            return Err(ControlError::BadName);
        }
        if self.keys.over || self.keys.len == 0 {
            return Err(ControlError::TooManyKeys);
        }
        let keys = self.keys();
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.key_id == k.key_id) {
                return Err(ControlError::DuplicateKeyId);
            }
            if Suite::from_id(k.suite).is_err() {
                return Err(ControlError::BadSuite);
            }
            if k.end_of_acceptance.is_some_and(|end| end <= k.activation) {
                return Err(ControlError::EndBeforeActivation);
            }
        }
        let now = self.key(self.seal_now).ok_or(ControlError::SealKeyMissing)?;
        if let Some(id) = self.seal_next {
            let next = self.key(id).ok_or(ControlError::BadNextKey)?;
            if id == self.seal_now || next.activation <= now.activation {
                return Err(ControlError::BadNextKey);
            }
        }
        Ok(())
    }
}

/// The full key state of one member: every group it belongs to, at one
/// epoch. Secrets zeroize on drop.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct ControlState {
    format: u8,
    member_id: Name,
    epoch: u64,
    groups: List<Group, MAX_GROUPS>,
}

impl fmt::Debug for ControlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlState")
            .field("member_id", &self.member_id)
            .field("epoch", &self.epoch)
            .field("groups", &self.groups)
            .finish()
    }
}

impl Empty for ControlState {
    const EMPTY: Self = ControlState { format: 0, member_id: Name::EMPTY, epoch: 0, groups: List::EMPTY };
}

struct_in_place!(ControlState { format, member_id, epoch } then groups);

impl ControlState {
    /// An empty state (no groups) for a member at an epoch.
    ///
    /// # Errors
    /// [`ControlError::BadName`].
    pub fn new(member_id: &str, epoch: u64) -> Result<ControlState, Error> {
        Ok(ControlState { format: CONTROL_FORMAT, member_id: Name::new(member_id)?, epoch, groups: List::default() })
    }

    /// Adds a group.
    ///
    /// # Errors
    /// [`ControlError::TooManyGroups`].
    pub fn push_group(&mut self, group: Group) -> Result<(), Error> {
        self.groups.push(group).map_err(|_| ControlError::TooManyGroups.into())
    }

    /// The member id.
    #[must_use]
    pub fn member_id(&self) -> &str {
        self.member_id.as_str()
    }

    /// The epoch.
    #[must_use]
    pub const fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The groups.
    #[must_use]
    pub fn groups(&self) -> &[Group] {
        self.groups.as_slice()
    }

    /// The group with this name.
    #[must_use]
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups().iter().find(|g| g.name() == name)
    }

    /// Checks the limits and the consistency rules (`docs/PROTOCOL.md`
    /// 14.6, steps 5 to 7), in that order.
    ///
    /// # Errors
    /// [`Error::InvalidControl`] with the first rule broken.
    pub fn check(&self) -> Result<(), Error> {
        self.check_inner().map_err(Error::InvalidControl)
    }

    fn check_inner(&self) -> Result<(), ControlError> {
        if self.format != CONTROL_FORMAT {
            return Err(ControlError::UnsupportedFormat);
        }
        if self.groups.over {
            return Err(ControlError::TooManyGroups);
        }
        if self.member_id.bad {
            return Err(ControlError::BadName);
        }
        if self.epoch == 0 {
            return Err(ControlError::ZeroEpoch);
        }
        let groups = self.groups();
        for (i, g) in groups.iter().enumerate() {
            g.check()?;
            if groups[..i].iter().any(|o| o.name == g.name) {
                return Err(ControlError::DuplicateGroup);
            }
        }
        Ok(())
    }

    /// Encodes the state (checked first) into `out`.
    ///
    /// # Errors
    /// [`Error::InvalidControl`] for a state that breaks a rule;
    /// [`Error::BufferTooSmall`].
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, Error> {
        self.check()?;
        encode_into(self, out)
    }

    /// Decodes and checks a control message body.
    ///
    /// # Errors
    /// [`Error::InvalidControl`].
    pub fn decode(bytes: &[u8]) -> Result<ControlState, Error> {
        let mut state = ControlState::EMPTY;
        state.decode_into(bytes)?;
        Ok(state)
    }

    /// [`ControlState::decode`] into `self`, in place (no copy of the state
    /// on the stack). On error `self` is cleared.
    ///
    /// # Errors
    /// [`Error::InvalidControl`].
    pub fn decode_into(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let result = self.decode_into_inner(bytes);
        if result.is_err() {
            self.clear();
        }
        result
    }

    fn decode_into_inner(&mut self, bytes: &[u8]) -> Result<(), Error> {
        check_format(bytes)?;
        decode_exact_into(self, bytes, ControlState::flagged)?;
        self.check()
    }

    /// Wipes every key slot (held or not) and leaves no groups.
    pub(crate) fn clear(&mut self) {
        for g in &mut self.groups.items {
            g.keys.items.iter_mut().for_each(Zeroize::zeroize);
            g.keys.len = 0;
        }
        self.groups.len = 0;
        self.epoch = 0;
    }

    /// Whether decoding marked a list over its limit or a bad name (the
    /// value then cannot re-encode to its bytes; `check` names the rule).
    fn flagged(&self) -> bool {
        self.groups.over || self.member_id.bad || self.groups().iter().any(|g| g.keys.over || g.name.bad)
    }
}

/// The format byte comes first and is checked before anything else, so
/// that a later format is told apart from a malformed message.
fn check_format(bytes: &[u8]) -> Result<(), ControlError> {
    match bytes.first() {
        None => Err(ControlError::Malformed),
        Some(&CONTROL_FORMAT) => Ok(()),
        Some(_) => Err(ControlError::UnsupportedFormat),
    }
}

pub(crate) fn encode_into<T: Serialize>(value: &T, out: &mut [u8]) -> Result<usize, Error> {
    let needed = postcard::experimental::serialized_size(value).map_err(|_| Error::Encode)?;
    if out.len() < needed {
        return Err(Error::BufferTooSmall { needed });
    }
    postcard::to_slice(value, out).map(|s| s.len()).map_err(|_| Error::Encode)
}

/// Decodes `bytes` as exactly one canonical `T`: the value must use every
/// byte and re-encode to the same bytes. `flagged` says whether a list went
/// over its limit or a name broke its rule (then re-encoding cannot give
/// the same bytes, and the caller's check names the rule).
pub(crate) fn decode_exact<'de, T: Deserialize<'de> + Serialize>(
    bytes: &'de [u8],
    flagged: impl Fn(&T) -> bool,
) -> Result<T, ControlError> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|_| ControlError::Malformed)?;
    canonical(&value, bytes, rest, flagged)?;
    Ok(value)
}

/// [`decode_exact`] into `place` (large values: no copy on the stack).
pub(crate) fn decode_exact_into<T: DecodeInPlace + Serialize>(
    place: &mut T,
    bytes: &[u8],
    flagged: impl Fn(&T) -> bool,
) -> Result<(), ControlError> {
    let mut de = postcard::Deserializer::from_bytes(bytes);
    place.decode_in_place(&mut de).map_err(|_| ControlError::Malformed)?;
    let rest = de.finalize().map_err(|_| ControlError::Malformed)?;
    canonical(place, bytes, rest, flagged)
}

/// The rules after decoding: every byte used, and (unless flagged) the
/// value re-encodes to the same bytes.
fn canonical<T: Serialize>(
    value: &T,
    bytes: &[u8],
    rest: &[u8],
    flagged: impl Fn(&T) -> bool,
) -> Result<(), ControlError> {
    if !rest.is_empty() {
        return Err(ControlError::Malformed);
    }
    if flagged(value) || reencodes_to(value, bytes) {
        Ok(())
    } else {
        Err(ControlError::Malformed)
    }
}

fn reencodes_to<T: Serialize>(value: &T, bytes: &[u8]) -> bool {
    struct Cmp<'a> {
        expect: &'a [u8],
        pos: usize,
        same: bool,
    }
    impl postcard::ser_flavors::Flavor for Cmp<'_> {
        type Output = bool;
        fn try_push(&mut self, b: u8) -> postcard::Result<()> {
            if self.expect.get(self.pos) != Some(&b) {
                self.same = false;
            }
            self.pos += 1;
            Ok(())
        }
        fn finalize(self) -> postcard::Result<bool> {
            Ok(self.same && self.pos == self.expect.len())
        }
    }
    postcard::serialize_with_flavor(value, Cmp { expect: bytes, pos: 0, same: true }).unwrap_or(false)
}

/// The status of an acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AckStatus {
    /// The member applied and persisted the state of this epoch.
    Applied,
}

impl AckStatus {
    const fn byte(self) -> u8 {
        match self {
            AckStatus::Applied => 0,
        }
    }
}

/// A member's acknowledgement: it holds the state of `epoch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The member id.
    pub member_id: Name,
    /// The epoch the member applied.
    pub epoch: u64,
    /// What it did with it.
    pub status: AckStatus,
}

#[derive(Serialize, Deserialize)]
struct AckWire {
    format: u8,
    member_id: Name,
    epoch: u64,
    status: u8,
}

impl Ack {
    /// Encodes the acknowledgement into `out`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`].
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, Error> {
        let wire = AckWire {
            format: CONTROL_FORMAT,
            member_id: self.member_id.clone(),
            epoch: self.epoch,
            status: self.status.byte(),
        };
        encode_into(&wire, out)
    }

    /// Decodes an acknowledgement body.
    ///
    /// # Errors
    /// [`Error::InvalidControl`].
    pub fn decode(bytes: &[u8]) -> Result<Ack, Error> {
        check_format(bytes)?;
        let w: AckWire = decode_exact(bytes, |w: &AckWire| w.member_id.bad)?;
        if w.member_id.bad {
            return Err(ControlError::BadName.into());
        }
        if w.epoch == 0 {
            return Err(ControlError::ZeroEpoch.into());
        }
        let status = match w.status {
            0 => AckStatus::Applied,
            _ => return Err(ControlError::BadStatus.into()),
        };
        Ok(Ack { member_id: w.member_id, epoch: w.epoch, status })
    }
}

/// The control and ack topic prefixes (`docs/PROTOCOL.md` 14.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlTopics<'a> {
    /// Authority → member: `<control>/<member-id>`.
    pub control: &'a str,
    /// Member → authority: `<ack>/<member-id>`.
    pub ack: &'a str,
}

impl Default for ControlTopics<'_> {
    fn default() -> Self {
        ControlTopics { control: DEFAULT_CONTROL_PREFIX, ack: DEFAULT_ACK_PREFIX }
    }
}

/// A control or ack topic, built from a prefix and a member id.
#[derive(Clone, PartialEq, Eq)]
pub struct ControlTopic {
    len: usize,
    bytes: [u8; MAX_CONTROL_TOPIC_LEN],
}

impl ControlTopic {
    /// No topic (the placeholder of an agent not set up yet).
    pub(crate) const EMPTY: ControlTopic = ControlTopic { len: 0, bytes: [0; MAX_CONTROL_TOPIC_LEN] };

    /// `<prefix>/<member_id>`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a prefix that is empty, longer than
    /// [`MAX_PREFIX_LEN`], or not a valid topic name (wildcards);
    /// [`ControlError::BadName`] for a bad member id.
    pub fn new(prefix: &str, member_id: &str) -> Result<ControlTopic, Error> {
        let id = Name::new(member_id)?;
        if prefix.len() > MAX_PREFIX_LEN || check_topic_name(prefix).is_err() {
            return Err(Error::InvalidConfig);
        }
        let mut bytes = [0u8; MAX_CONTROL_TOPIC_LEN];
        let p = prefix.len();
        let n = id.as_str().len();
        bytes[..p].copy_from_slice(prefix.as_bytes());
        bytes[p] = b'/';
        bytes[p + 1..p + 1 + n].copy_from_slice(id.as_str().as_bytes());
        Ok(ControlTopic { len: p + 1 + n, bytes })
    }

    /// The topic.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Built from two `&str` and `/`.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl fmt::Debug for ControlTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Opens a control-protocol envelope in place under one direction key:
/// the suite must be ChaCha20-Poly1305 (checked before verification), the
/// sender id `sender_id` (after). Returns the counter and the body.
pub(crate) fn open_control<'b>(
    key: &Key,
    sender_id: u32,
    topic: &str,
    envelope: &'b mut [u8],
) -> Result<(u64, &'b [u8]), Error> {
    let config = OpenerConfig { suites: SuiteSet::only(Suite::ChaCha20Poly1305), ..OpenerConfig::default() };
    let mut opener: Opener<1, 1> = Opener::with_config(Keyring::with_primary(key.clone())?, &config)?;
    let opened = opener.open_in_place(topic, envelope).map_err(|e| match e {
        Error::SuiteNotAllowed(_) => Error::InvalidControl(ControlError::WrongSender),
        other => other,
    })?;
    if opened.header.sender_id != sender_id {
        return Err(ControlError::WrongSender.into());
    }
    Ok((opened.header.counter, opened.payload))
}

/// The sealer an authority seals one member's control messages with: the
/// pairwise key authority → member, key id [`CONTROL_KEY_ID`], sender id
/// [`AUTHORITY_SENDER_ID`], ChaCha20-Poly1305. `store` holds the
/// authority's counter for this member (durable, like every counter).
///
/// # Errors
/// Those of [`StaticKeyPair::pairwise`] and [`Sealer::new`].
pub fn control_sealer<S: CounterStore>(
    authority: &StaticKeyPair,
    member: &PublicKey,
    store: S,
) -> Result<Sealer<S>, Error> {
    let keys = authority.pairwise(member, CONTROL_KEY_ID)?;
    Sealer::new(&keys.send, AUTHORITY_SENDER_ID, Suite::ChaCha20Poly1305, store)
}

/// The counter an authority seals a member's next control message with:
/// its stored next counter, raised to the clock floor (PROTOCOL.md 6.4 and
/// 14.5, rule 5) of `now_millis`.
///
/// The floor makes a registry restored from a backup (or rolled back any
/// other way) seal above every control counter it used before, as long as
/// its clock did not go back: a control message carries group secrets, and
/// two of them under one counter would share a keystream.
#[must_use]
pub const fn control_counter(stored_next: u64, now_millis: u64) -> u64 {
    let floor = crate::counter::clock_floor(now_millis);
    if stored_next > floor {
        stored_next
    } else {
        floor
    }
}

/// Checks, encodes and seals `state` for its member on
/// `<topics.control>/<member-id>` into `out` (at least
/// [`MAX_CONTROL_ENVELOPE_LEN`] bytes always suffice). Publish it retained,
/// QoS 1.
///
/// # Errors
/// [`Error::InvalidControl`] for a state that breaks a rule;
/// [`Error::BufferTooSmall`]; the sealer's errors.
pub fn seal_control<S: CounterStore>(
    sealer: &mut Sealer<S>,
    topics: &ControlTopics<'_>,
    state: &ControlState,
    out: &mut [u8],
) -> Result<usize, Error> {
    let topic = ControlTopic::new(topics.control, state.member_id())?;
    let n = state.encode(out)?;
    let needed = sealer.envelope_len(n)?;
    if out.len() < needed {
        return Err(Error::BufferTooSmall { needed });
    }
    sealer.seal_in_place(topic.as_str(), out, n)
}

/// Who sealed an envelope the authority opens.
#[derive(Clone, Copy)]
enum Side {
    /// The authority itself: a control message (its `send` key, sender 0).
    Authority,
    /// The member: an ack (the authority's `recv` key, sender 0).
    Member,
}

/// Opens, at the authority, an envelope on `member_id`'s topic under
/// `prefix`, sealed by `side`.
fn open_at_authority<'b>(
    authority: &StaticKeyPair,
    member: &PublicKey,
    member_id: &str,
    (prefix, side): (&str, Side),
    topic: &str,
    envelope: &'b mut [u8],
) -> Result<(u64, &'b [u8]), Error> {
    if ControlTopic::new(prefix, member_id)?.as_str() != topic {
        return Err(ControlError::WrongTopic.into());
    }
    let keys = authority.pairwise(member, CONTROL_KEY_ID)?;
    match side {
        Side::Authority => open_control(&keys.send, AUTHORITY_SENDER_ID, topic, envelope),
        Side::Member => open_control(&keys.recv, MEMBER_SENDER_ID, topic, envelope),
    }
}

/// A control envelope an authority sealed, opened by that authority (for
/// example the retained message on a member's control topic).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnControl {
    /// Its envelope counter.
    pub counter: u64,
    /// The epoch of the state it carries.
    pub epoch: u64,
}

/// Opens, in place, a control envelope that `authority` sealed for the
/// member `member_id` (public key `member`) on `topic`: the authority's
/// side of the pairwise key opens its own messages. An authority compares
/// the result with its registry before it publishes anything (PROTOCOL.md
/// 14.5, rule 6): a genuine envelope above the counter or the epoch the
/// registry issued proves the registry was rolled back.
///
/// # Errors
/// [`Error::Auth`] (not sealed by this authority for this member, or moved
/// from another topic); [`Error::InvalidControl`] (`wrongTopic`,
/// `wrongMember`, `wrongSender` and the decoding reasons).
pub fn open_own_control(
    authority: &StaticKeyPair,
    member: &PublicKey,
    member_id: &str,
    topics: &ControlTopics<'_>,
    topic: &str,
    envelope: &mut [u8],
) -> Result<OwnControl, Error> {
    let (counter, body) =
        open_at_authority(authority, member, member_id, (topics.control, Side::Authority), topic, envelope)?;
    let state = ControlState::decode(body)?;
    if state.member_id() != member_id {
        return Err(ControlError::WrongMember.into());
    }
    Ok(OwnControl { counter, epoch: state.epoch() })
}

/// An acknowledgement the authority opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedAck {
    /// The acknowledgement.
    pub ack: Ack,
    /// Its envelope counter: keep the highest per member, and pass it as
    /// `last_counter` next time.
    pub counter: u64,
}

/// Opens an acknowledgement that arrived on `topic` from the member
/// `member_id` with public key `member`, in place.
///
/// # Errors
/// [`Error::Auth`] (not from this member, or moved from another topic);
/// [`Error::Duplicate`] / [`Error::Replay`] for a counter at or below
/// `last_counter`; [`Error::InvalidControl`] (`wrongTopic` when `topic` is
/// not this member's ack topic, `wrongMember` for another member id in the
/// body, and the decoding reasons).
pub fn open_ack(
    authority: &StaticKeyPair,
    member: &PublicKey,
    member_id: &str,
    topics: &ControlTopics<'_>,
    topic: &str,
    envelope: &mut [u8],
    last_counter: Option<u64>,
) -> Result<ReceivedAck, Error> {
    let (counter, body) = open_at_authority(authority, member, member_id, (topics.ack, Side::Member), topic, envelope)?;
    check_counter(counter, last_counter)?;
    let ack = Ack::decode(body)?;
    if ack.member_id.as_str() != member_id {
        return Err(ControlError::WrongMember.into());
    }
    Ok(ReceivedAck { ack, counter })
}

/// The counter rule of both directions: strictly above the last accepted.
pub(crate) fn check_counter(counter: u64, last: Option<u64>) -> Result<(), Error> {
    match last {
        Some(l) if counter == l => Err(Error::Duplicate),
        Some(l) if counter < l => Err(Error::Replay),
        _ => Ok(()),
    }
}
