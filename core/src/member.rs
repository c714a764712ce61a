//! The member agent of key distribution (`docs/PROTOCOL.md`, section 14):
//! takes control envelopes and the current time, gives back the keyring
//! and sealer to use, the state to persist, the acknowledgement to publish
//! and the next time it needs to be woken. Sans-IO: the caller subscribes,
//! publishes, persists and keeps the clock.
//!
//! ```text
//!  control envelope ─▶ MemberAgent::handle ─▶ state bytes ──▶ persist (durably, first)
//!  (retained, QoS 1)        │   verify, counter,           └▶ ack envelope ──▶ publish (after)
//!                           │   decode, check, epoch       └▶ wake_at ──▶ MemberAgent::tick
//!                           ▼
//!       MemberAgent::sealing / keyring (per group, at a time)
//! ```

use serde::de::SeqAccess;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::control::{
    check_counter, decode_exact_into, encode_into, field, open_control, Ack, AckStatus, ControlError, ControlState,
    ControlTopic, ControlTopics, Empty, Group, Name, OptionInPlace, StructInPlace, AUTHORITY_SENDER_ID, CONTROL_KEY_ID,
    MAX_CONTROL_LEN, MAX_GROUPS, MAX_NAME_LEN, MEMBER_SENDER_ID,
};
use crate::{Error, Key, Keyring, MemoryCounterStore, PairwiseKeys, PublicKey, Sealer, StaticKeyPair, Suite};

/// Magic and version at the start of a member-state record.
pub const MEMBER_STATE_MAGIC: &[u8] = b"mqseal-member v1\n";
const DIGEST_LEN: usize = 32;
/// Longest member-state record (a buffer this size always suffices).
pub const MAX_MEMBER_STATE_LEN: usize =
    MEMBER_STATE_MAGIC.len() + (1 + MAX_NAME_LEN) + 10 + 11 + 10 + 1 + 1 + MAX_CONTROL_LEN + DIGEST_LEN;

/// What a member persists (`docs/PROTOCOL.md` 14.9) besides the key
/// state, which is decoded in place into the agent ([`RecordSlot`]).
struct RecordHead {
    member_id: Name,
    epoch: u64,
    last_control_counter: Option<u64>,
    next_ack_counter: u64,
    next_seen: u8,
    has_state: bool,
}

/// What to use for sealing in one group now.
#[derive(Debug)]
#[non_exhaustive]
pub struct Sealing {
    /// The key (zeroizes on drop).
    pub key: Key,
    /// The sender id the authority assigned to this member under it.
    pub sender_id: u32,
    /// The suite to seal with.
    pub suite: Suite,
}

/// The result of a control message the agent applied and persisted
/// ([`MemberAgent::handle`]): publish `ack` (on [`MemberAgent::ack_topic`],
/// QoS 1, not retained) and start using the new keys. The ack's counter is
/// part of the persisted `state`, so it is never used twice.
#[non_exhaustive]
pub struct Applied<'s, 'a> {
    /// The epoch now held.
    pub epoch: u64,
    /// The member-state record to persist (holds secrets: wipe copies).
    pub state: &'s [u8],
    /// The ack envelope to publish.
    pub ack: &'a [u8],
    /// When to call [`MemberAgent::tick`] next (`None`: no scheduled change,
    /// or no clock).
    pub wake_at: Option<u64>,
}

/// What a [`Staged`] holds besides the agent.
#[cfg(feature = "alloc")]
struct StagedParts {
    epoch: u64,
    /// The member-state record to persist (zeroized on drop).
    state: zeroize::Zeroizing<alloc::vec::Vec<u8>>,
    ack: alloc::vec::Vec<u8>,
    wake_at: Option<u64>,
}

/// `Debug` never prints the state record (it holds secrets).
fn debug_applied(
    f: &mut core::fmt::Formatter<'_>,
    epoch: u64,
    state: usize,
    ack: &[u8],
    wake_at: Option<u64>,
) -> core::fmt::Result {
    f.debug_struct("Applied")
        .field("epoch", &epoch)
        .field("state", &format_args!("<{state} bytes, redacted>"))
        .field("ack", &ack)
        .field("wake_at", &wake_at)
        .finish()
}

impl core::fmt::Debug for Applied<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        debug_applied(f, self.epoch, self.state.len(), self.ack, self.wake_at)
    }
}

#[cfg(feature = "alloc")]
impl core::fmt::Debug for StagedParts {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        debug_applied(f, self.epoch, self.state.len(), &self.ack, self.wake_at)
    }
}

/// The result of [`MemberAgent::tick`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tick {
    /// The sealing key or the accepted keys of some group differ from the
    /// last time the agent reported them: rebuild sealers and keyrings.
    pub changed: bool,
    /// When to call `tick` next.
    pub wake_at: Option<u64>,
}

/// Per group: the sealing key id and which keys (by index) are accepted.
type View = [Option<(u32, u8)>; MAX_GROUPS];

/// A member of a key-distribution fleet: holds the latest verified key
/// state, and the counters of its control channel.
///
/// It keeps two key-state slots: a control message is decoded and checked
/// in place in the spare one, which becomes the held one once persisted, so
/// that no state is ever copied on the stack (a microcontroller can run
/// [`MemberAgent::handle`] with a few KiB of stack, `docs/PORTING.md`).
#[derive(Clone)]
pub struct MemberAgent {
    member_id: Name,
    control_topic: ControlTopic,
    ack_topic: ControlTopic,
    recv: Key,
    send: Key,
    epoch: u64,
    last_control_counter: Option<u64>,
    next_ack_counter: u64,
    next_seen: u8,
    /// The held state is `states[held]`, if any; the other slot is spare
    /// (wiped).
    states: [ControlState; 2],
    held: usize,
    has_state: bool,
    view: View,
}

impl core::fmt::Debug for MemberAgent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemberAgent")
            .field("member_id", &self.member_id)
            .field("control_topic", &self.control_topic)
            .field("epoch", &self.epoch)
            .field("last_control_counter", &self.last_control_counter)
            .field("next_ack_counter", &self.next_ack_counter)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl MemberAgent {
    /// An agent for the member `member_id` with key pair `own`, trusting the
    /// authority's public key `authority`, resuming from a persisted
    /// member-state record (`None`: a member just enrolled, epoch 0).
    ///
    /// # Errors
    /// [`Error::InvalidControl`] (`badName`) for a bad member id;
    /// [`Error::InvalidConfig`] for a bad topic prefix; those of
    /// [`StaticKeyPair::pairwise`]; [`Error::InvalidSnapshot`] for a record
    /// that is not valid, or is another member's.
    pub fn new(
        own: &StaticKeyPair,
        member_id: &str,
        authority: &PublicKey,
        topics: &ControlTopics<'_>,
        persisted: Option<&[u8]>,
    ) -> Result<MemberAgent, Error> {
        let keys = own.pairwise(authority, CONTROL_KEY_ID)?;
        MemberAgent::with_pairwise(keys, member_id, topics, persisted)
    }

    /// [`MemberAgent::new`] from the pairwise keys already derived
    /// (`own.pairwise(authority, CONTROL_KEY_ID)`: for a key pair kept in a
    /// secure element, or to derive once).
    ///
    /// # Errors
    /// Those of [`MemberAgent::new`]; [`Error::InvalidConfig`] when the keys
    /// do not have the id [`CONTROL_KEY_ID`].
    pub fn with_pairwise(
        keys: PairwiseKeys,
        member_id: &str,
        topics: &ControlTopics<'_>,
        persisted: Option<&[u8]>,
    ) -> Result<MemberAgent, Error> {
        let mut agent = MemberAgent::UNSET;
        agent.init(keys, member_id, topics, persisted)?;
        Ok(agent)
    }

    /// An agent of no member, holding no keys: it refuses every control
    /// message (its topics are empty). The starting point of
    /// [`MemberAgent::init`] for an agent kept in static memory (the C
    /// API's handle): writing this constant and initializing in place
    /// builds no agent on the stack.
    pub const UNSET: MemberAgent = MemberAgent {
        member_id: Name::EMPTY,
        control_topic: ControlTopic::EMPTY,
        ack_topic: ControlTopic::EMPTY,
        recv: Key::from_bytes(CONTROL_KEY_ID, [0; crate::KEY_LEN]),
        send: Key::from_bytes(CONTROL_KEY_ID, [0; crate::KEY_LEN]),
        epoch: 0,
        last_control_counter: None,
        next_ack_counter: 0,
        next_seen: 0,
        states: [ControlState::EMPTY, ControlState::EMPTY],
        held: 0,
        has_state: false,
        view: [None; MAX_GROUPS],
    };

    /// [`MemberAgent::with_pairwise`] in place: makes `self` (whatever it
    /// held, wiped first) the agent of `member_id`. On error `self` is
    /// [`MemberAgent::UNSET`] (wiped).
    ///
    /// # Errors
    /// Those of [`MemberAgent::with_pairwise`].
    pub fn init(
        &mut self,
        keys: PairwiseKeys,
        member_id: &str,
        topics: &ControlTopics<'_>,
        persisted: Option<&[u8]>,
    ) -> Result<(), Error> {
        self.wipe();
        // Filled field by field; the first error wipes what was filled.
        let fill = || -> Result<(), Error> {
            if keys.send.id() != CONTROL_KEY_ID || keys.recv.id() != CONTROL_KEY_ID {
                return Err(Error::InvalidConfig);
            }
            self.member_id = Name::new(member_id)?;
            self.control_topic = ControlTopic::new(topics.control, member_id)?;
            self.ack_topic = ControlTopic::new(topics.ack, member_id)?;
            self.recv = keys.recv;
            self.send = keys.send;
            if let Some(bytes) = persisted {
                let r = decode_record(bytes, &mut self.states[0])?;
                if r.member_id != self.member_id {
                    return Err(Error::InvalidSnapshot);
                }
                self.epoch = r.epoch;
                self.last_control_counter = r.last_control_counter;
                self.next_ack_counter = r.next_ack_counter;
                self.next_seen = r.next_seen;
                self.has_state = r.has_state;
            }
            Ok(())
        };
        let result = fill();
        if result.is_err() {
            self.wipe();
        }
        result
    }

    /// Back to [`MemberAgent::UNSET`], field by field (keys zeroized).
    fn wipe(&mut self) {
        self.member_id = Name::EMPTY;
        self.control_topic = ControlTopic::EMPTY;
        self.ack_topic = ControlTopic::EMPTY;
        self.recv.zeroize();
        self.send.zeroize();
        self.epoch = 0;
        self.last_control_counter = None;
        self.next_ack_counter = 0;
        self.next_seen = 0;
        self.states.iter_mut().for_each(ControlState::clear);
        self.held = 0;
        self.has_state = false;
        self.view = [None; MAX_GROUPS];
    }

    /// The topic to subscribe to (QoS 1): `<control prefix>/<member id>`.
    #[must_use]
    pub fn control_topic(&self) -> &str {
        self.control_topic.as_str()
    }

    /// The topic acks are published on: `<ack prefix>/<member id>`.
    #[must_use]
    pub fn ack_topic(&self) -> &str {
        self.ack_topic.as_str()
    }

    /// The member id.
    #[must_use]
    pub fn member_id(&self) -> &str {
        self.member_id.as_str()
    }

    /// The epoch held (0 before the first state).
    #[must_use]
    pub const fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The key state held, if any.
    #[must_use]
    pub fn state(&self) -> Option<&ControlState> {
        self.states.get(self.held).filter(|_| self.has_state)
    }

    fn group_index(&self, name: &str) -> Option<(usize, &Group)> {
        self.state()?.groups().iter().enumerate().find(|(_, g)| g.name() == name)
    }

    fn seen(&self, i: usize) -> bool {
        self.next_seen & (1 << i) != 0
    }

    /// The key, sender id and suite to seal with in `group` at `now`
    /// (`None`: not a member of the group).
    #[must_use]
    pub fn sealing(&self, group: &str, now: Option<u64>) -> Option<Sealing> {
        let (i, g) = self.group_index(group)?;
        let k = g.sealing_key(now, self.seen(i))?;
        Some(Sealing { key: k.key(), sender_id: k.sender_id(), suite: k.suite() })
    }

    /// A keyring of the keys of `group` accepted at `now`, the sealing key
    /// as primary (`Ok(None)`: not a member of the group).
    ///
    /// # Errors
    /// [`Error::KeyringFull`] when `N` is below [`crate::MAX_KEYS_PER_GROUP`]
    /// and the group holds more keys.
    pub fn keyring<const N: usize>(&self, group: &str, now: Option<u64>) -> Result<Option<Keyring<N>>, Error> {
        match self.group_index(group) {
            Some((i, g)) => g.keyring(now, self.seen(i)).map(Some),
            None => Ok(None),
        }
    }

    /// Tells the agent that a message of `group` under `key_id` verified.
    /// A member without a clock switches to the next key when it first
    /// sees it in use. Returns true when that switched the sealing key:
    /// then persist [`MemberAgent::encode_state`] and rebuild the sealer.
    pub fn key_seen(&mut self, group: &str, key_id: u32, now: Option<u64>) -> bool {
        let Some((i, g)) = self.group_index(group) else { return false };
        if g.seal_next() != Some(key_id) || self.seen(i) {
            return false;
        }
        self.next_seen |= 1 << i;
        let before = self.view;
        self.view = self.view_at(now);
        before != self.view
    }

    fn view_at(&self, now: Option<u64>) -> View {
        let mut view = [None; MAX_GROUPS];
        if let Some(s) = self.state() {
            for (i, g) in s.groups().iter().enumerate() {
                let seal = g.sealing_key(now, self.seen(i)).map_or(u32::MAX, |k| k.key_id());
                let mask =
                    g.keys().iter().enumerate().filter(|(_, k)| k.accepted_at(now)).fold(0u8, |m, (j, _)| m | (1 << j));
                if let Some(slot) = view.get_mut(i) {
                    *slot = Some((seal, mask));
                }
            }
        }
        view
    }

    /// The next time after `now` at which a sealing key activates or a key
    /// stops being accepted (`None` without a clock or without changes).
    #[must_use]
    pub fn wake_at(&self, now: Option<u64>) -> Option<u64> {
        let t = now?;
        self.state()?.groups().iter().filter_map(|g| g.next_change(t)).min()
    }

    /// Scheduled switches: call at [`Tick::wake_at`] (or whenever). Says
    /// whether the sealing key or the accepted keys changed since they were
    /// last reported, so the caller rebuilds its sealers and keyrings.
    pub fn tick(&mut self, now: Option<u64>) -> Tick {
        let view = self.view_at(now);
        let changed = view != self.view;
        self.view = view;
        Tick { changed, wake_at: self.wake_at(now) }
    }

    /// The member-state record of what the agent holds now.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] ([`MAX_MEMBER_STATE_LEN`] always suffices).
    pub fn encode_state(&self, out: &mut [u8]) -> Result<usize, Error> {
        encode_record(
            &MemberRecordRef {
                member_id: &self.member_id,
                epoch: self.epoch,
                last_control_counter: self.last_control_counter,
                next_ack_counter: self.next_ack_counter,
                next_seen: self.next_seen,
                state: self.state(),
            },
            out,
        )
    }

    /// Handles one control envelope that arrived on `topic` (verified and
    /// decrypted in place; the buffer is wiped afterwards, success or not),
    /// persisting the new member-state record through `persist` before
    /// anything else happens (14.8): the agent changes, and the ack is
    /// handed out, only once `persist` returned `Ok`, so no caller can
    /// publish an ack or use a key of a state it did not store. `persist`
    /// must write durably (the counter-file discipline of `docs/STATE.md`,
    /// or the flash store's) before it returns. When it fails, the agent is
    /// unchanged, `state_out` and `ack_out` are wiped and its error is
    /// returned. On any other error nothing changed either. For stores that
    /// are asynchronous or the caller's, see [`MemberAgent::stage`].
    ///
    /// Checks, in this order (`docs/PROTOCOL.md` 14.6): the topic is the
    /// control topic; the envelope verifies under the pairwise key; its
    /// sender id; its counter is above the last accepted one; the body
    /// decodes and passes every limit and rule; it names this member; its
    /// epoch is above the one held.
    ///
    /// # Errors
    /// [`Error::InvalidControl`] (with the reason), [`Error::Auth`], the
    /// envelope format errors, [`Error::UnknownKey`], [`Error::Duplicate`] /
    /// [`Error::Replay`] (counter at or below the last accepted: a retained
    /// message seen again), [`Error::StaleEpoch`], [`Error::BufferTooSmall`]
    /// for `state_out` / `ack_out` ([`MAX_MEMBER_STATE_LEN`] and
    /// [`crate::MAX_ACK_ENVELOPE_LEN`] always suffice),
    /// [`Error::CounterExhausted`]; the error of `persist`.
    pub fn handle<'s, 'a>(
        &mut self,
        topic: &str,
        envelope: &mut [u8],
        now: Option<u64>,
        state_out: &'s mut [u8],
        ack_out: &'a mut [u8],
        persist: impl FnOnce(&[u8]) -> Result<(), Error>,
    ) -> Result<Applied<'s, 'a>, Error> {
        let spare = self.held ^ 1;
        let result = self.verify(topic, envelope, spare).and_then(|counter| {
            let len = self.persist_spare(counter, spare, state_out, ack_out, persist)?;
            Ok((counter, len))
        });
        envelope.zeroize();
        let (counter, (state_len, ack_len)) = match result {
            Ok(r) => r,
            Err(e) => {
                if let Some(s) = self.states.get_mut(spare) {
                    s.clear();
                }
                return Err(e);
            }
        };

        self.epoch = self.states.get(spare).map_or(0, ControlState::epoch);
        self.last_control_counter = Some(counter);
        self.next_ack_counter += 1;
        self.next_seen = self.carried_next_seen(spare);
        if let Some(old) = self.states.get_mut(self.held) {
            old.clear();
        }
        self.held = spare;
        self.has_state = true;
        self.view = self.view_at(now);
        Ok(Applied {
            epoch: self.epoch,
            state: &state_out[..state_len],
            ack: &ack_out[..ack_len],
            wake_at: self.wake_at(now),
        })
    }

    /// Encodes the record of the state decoded into slot `spare` and the
    /// ack, and persists the record: the lengths of both. On error (the
    /// persist's included) the buffers are wiped and nothing changed.
    fn persist_spare(
        &self,
        counter: u64,
        spare: usize,
        state_out: &mut [u8],
        ack_out: &mut [u8],
        persist: impl FnOnce(&[u8]) -> Result<(), Error>,
    ) -> Result<(usize, usize), Error> {
        let new = self.states.get(spare).ok_or(Error::InvalidConfig)?;
        let ack_counter = self.next_ack_counter;
        let next_ack_counter = ack_counter.checked_add(1).ok_or(Error::CounterExhausted)?;
        let next_seen = self.carried_next_seen(spare);

        let record = MemberRecordRef {
            member_id: &self.member_id,
            epoch: new.epoch(),
            last_control_counter: Some(counter),
            next_ack_counter,
            next_seen,
            state: Some(new),
        };
        let state_len = encode_record(&record, state_out)?;
        let ack = Ack { member_id: self.member_id.clone(), epoch: new.epoch(), status: AckStatus::Applied };
        let n = ack.encode(ack_out)?;
        let mut sealer = Sealer::new(
            &self.send,
            MEMBER_SENDER_ID,
            Suite::ChaCha20Poly1305,
            MemoryCounterStore::starting_at(ack_counter),
        )?;
        let ack_len = sealer.seal_in_place(self.ack_topic.as_str(), ack_out, n)?;
        if let Err(e) = persist(&state_out[..state_len]) {
            state_out.zeroize();
            ack_out.zeroize();
            return Err(e);
        }
        Ok((state_len, ack_len))
    }

    /// Steps 1 to 7 of 14.6, decoding into the spare slot (nothing else
    /// changes): the envelope's counter.
    fn verify(&mut self, topic: &str, envelope: &mut [u8], spare: usize) -> Result<u64, Error> {
        if topic != self.control_topic.as_str() {
            return Err(ControlError::WrongTopic.into());
        }
        let (counter, body) = open_control(&self.recv, AUTHORITY_SENDER_ID, topic, envelope)?;
        check_counter(counter, self.last_control_counter)?;
        let new = self.states.get_mut(spare).ok_or(Error::InvalidConfig)?;
        new.decode_into(body)?;
        if new.member_id() != self.member_id.as_str() {
            return Err(ControlError::WrongMember.into());
        }
        if new.epoch() <= self.epoch {
            return Err(Error::StaleEpoch { held: self.epoch, received: new.epoch() });
        }
        Ok(counter)
    }

    /// A group of the state in slot `new` keeps its "next key seen" mark
    /// when that state plans the same next key as the held one.
    fn carried_next_seen(&self, new: usize) -> u8 {
        let Some(new) = self.states.get(new) else { return 0 };
        let mut bits = 0u8;
        for (i, g) in new.groups().iter().enumerate() {
            if let Some((j, old)) = self.group_index(g.name()) {
                if self.seen(j) && g.seal_next().is_some() && old.seal_next() == g.seal_next() {
                    bits |= 1 << i;
                }
            }
        }
        bits
    }
}

#[derive(Serialize)]
struct MemberRecordRef<'a> {
    member_id: &'a Name,
    epoch: u64,
    last_control_counter: Option<u64>,
    next_ack_counter: u64,
    next_seen: u8,
    state: Option<&'a ControlState>,
}

fn encode_record(r: &MemberRecordRef<'_>, out: &mut [u8]) -> Result<usize, Error> {
    let m = MEMBER_STATE_MAGIC.len();
    let body = postcard::experimental::serialized_size(r).map_err(|_| Error::Encode)?;
    let needed = m + body + DIGEST_LEN;
    if out.len() < needed {
        return Err(Error::BufferTooSmall { needed });
    }
    out[..m].copy_from_slice(MEMBER_STATE_MAGIC);
    let n = encode_into(r, &mut out[m..m + body])?;
    let digest = Sha256::digest(&out[..m + n]);
    out[m + n..m + n + DIGEST_LEN].copy_from_slice(&digest);
    Ok(m + n + DIGEST_LEN)
}

/// A record being decoded: its head, and the agent's slot its key state
/// goes to (in place).
struct RecordSlot<'a> {
    head: RecordHead,
    state: &'a mut ControlState,
}

impl Serialize for RecordSlot<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let h = &self.head;
        MemberRecordRef {
            member_id: &h.member_id,
            epoch: h.epoch,
            last_control_counter: h.last_control_counter,
            next_ack_counter: h.next_ack_counter,
            next_seen: h.next_seen,
            state: h.has_state.then_some(&*self.state),
        }
        .serialize(s)
    }
}

impl StructInPlace for RecordSlot<'_> {
    const NAME: &'static str = "MemberRecord";
    const FIELDS: &'static [&'static str] =
        &["member_id", "epoch", "last_control_counter", "next_ack_counter", "next_seen", "state"];
    fn read_fields<'de, A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<(), A::Error> {
        self.head.member_id = field(seq, 0)?;
        self.head.epoch = field(seq, 1)?;
        self.head.last_control_counter = field(seq, 2)?;
        self.head.next_ack_counter = field(seq, 3)?;
        self.head.next_seen = field(seq, 4)?;
        self.head.has_state = seq
            .next_element_seed(OptionInPlace(&mut *self.state))?
            .ok_or_else(|| serde::de::Error::invalid_length(5, &"more fields"))?;
        Ok(())
    }
}

/// Checks a record and decodes its key state into `state` (in place).
fn decode_record(bytes: &[u8], state: &mut ControlState) -> Result<RecordHead, Error> {
    let m = MEMBER_STATE_MAGIC.len();
    if bytes.len() < m + DIGEST_LEN || !bytes.starts_with(MEMBER_STATE_MAGIC) {
        return Err(Error::InvalidSnapshot);
    }
    let (signed, digest) = bytes.split_at(bytes.len() - DIGEST_LEN);
    if Sha256::digest(signed).as_slice() != digest {
        return Err(Error::InvalidSnapshot);
    }
    let head = RecordHead {
        member_id: Name::EMPTY,
        epoch: 0,
        last_control_counter: None,
        next_ack_counter: 0,
        next_seen: 0,
        has_state: false,
    };
    let mut r = RecordSlot { head, state };
    decode_exact_into(&mut r, &signed[m..], |_: &RecordSlot<'_>| false).map_err(|_| Error::InvalidSnapshot)?;
    let RecordSlot { head: r, state } = r;
    if r.has_state {
        if state.check().is_err() || state.epoch() != r.epoch || state.member_id() != r.member_id.as_str() {
            return Err(Error::InvalidSnapshot);
        }
    } else if r.epoch != 0 || r.last_control_counter.is_some() {
        return Err(Error::InvalidSnapshot);
    }
    if Name::new(r.member_id.as_str()).is_err() {
        return Err(Error::InvalidSnapshot);
    }
    let groups = if r.has_state { state.groups().len() } else { 0 };
    if u32::from(r.next_seen) >> groups != 0 && groups < 8 {
        return Err(Error::InvalidSnapshot);
    }
    Ok(r)
}

/// A control message checked and applied to a copy of the agent
/// ([`MemberAgent::stage`]), not in use yet: persist [`Staged::state`]
/// durably, then [`Staged::persisted`] gives the agent to use from now on
/// and the ack to publish. Dropping it instead (the write failed) leaves
/// the agent as it was: no ack, no new key, no ack counter spent. For
/// bindings whose store is asynchronous (IndexedDB) or the caller's
/// (Python), so that the ack and the keys cannot be had before the write.
#[cfg(feature = "alloc")]
#[derive(Debug)]
pub struct Staged {
    agent: MemberAgent,
    applied: StagedParts,
}

#[cfg(feature = "alloc")]
impl Staged {
    /// The member-state record to persist (holds secrets).
    #[must_use]
    pub fn state(&self) -> &[u8] {
        &self.applied.state
    }

    /// The epoch of the staged state.
    #[must_use]
    pub const fn epoch(&self) -> u64 {
        self.applied.epoch
    }

    /// When to call [`MemberAgent::tick`] next.
    #[must_use]
    pub const fn wake_at(&self) -> Option<u64> {
        self.applied.wake_at
    }

    /// Every (group name, key id, sender id) assignment of the staged state,
    /// without secrets: for a store that prepares per-assignment state
    /// (a counter file) before it persists the record.
    pub fn assignments(&self) -> impl Iterator<Item = (&str, u32, u32)> {
        self.agent
            .state()
            .into_iter()
            .flat_map(|s| s.groups())
            .flat_map(|g| g.keys().iter().map(move |k| (g.name(), k.key_id(), k.sender_id())))
    }

    /// Call once [`Staged::state`] is durably persisted: the agent holding
    /// the new state, and the ack envelope to publish.
    #[must_use]
    pub fn persisted(self) -> (MemberAgent, alloc::vec::Vec<u8>) {
        (self.agent, self.applied.ack)
    }
}

#[cfg(feature = "alloc")]
impl MemberAgent {
    /// [`MemberAgent::handle`] on a copy of the agent: `self` does not
    /// change; see [`Staged`].
    ///
    /// # Errors
    /// Those of [`MemberAgent::handle`].
    pub fn stage(&self, topic: &str, envelope: &[u8], now: Option<u64>) -> Result<Staged, Error> {
        let mut agent = self.clone();
        let mut buf = zeroize::Zeroizing::new(envelope.to_vec());
        let mut state = zeroize::Zeroizing::new(alloc::vec![0u8; MAX_MEMBER_STATE_LEN]);
        let mut ack = alloc::vec![0u8; crate::MAX_ACK_ENVELOPE_LEN];
        // Nothing to persist here: the copy and its ack stay inside the
        // `Staged` until the caller says the record is durable.
        let applied = agent.handle(topic, &mut buf, now, &mut state, &mut ack, |_| Ok(()))?;
        let (epoch, state_len, ack_len, wake_at) =
            (applied.epoch, applied.state.len(), applied.ack.len(), applied.wake_at);
        state.truncate(state_len);
        ack.truncate(ack_len);
        Ok(Staged { agent, applied: StagedParts { epoch, state, ack, wake_at } })
    }
}
