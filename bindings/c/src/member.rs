//! The member agent of key distribution (`docs/PROTOCOL.md` section 14) in
//! C: the core's `MemberAgent` in a caller-owned handle. The agent decides
//! everything (verification, counters, epochs, which key when); this layer
//! checks pointers, runs the caller's `save` callback at the point the core
//! asks for it (before the ack is handed out and before any key changes),
//! and builds the existing C sealer and opener from the agent's keys.

use core::ffi::{c_char, c_void};
use core::mem::{align_of, size_of};
use core::ptr;

use mqseal::{ControlError, ControlTopics, MemberAgent, PublicKey, StaticKeyPair, StoreError, MAX_MEMBER_STATE_LEN};
use zeroize::Zeroize;

use crate::{
    bytes, bytes_mut, cell, deinit, disjoint, head_for, non_null, opener_init_with, optional, put, sealer_init_with,
    storage, text, topic, wipe, write_text, CellHead, Handle, MqsealCounterStore, MqsealOpener, MqsealOpenerConfig,
    MqsealSealer, Span, Start, Status, MQSEAL_OPENER_KEYS,
};
use crate::{status, MqsealStatus};

/// Bytes that always hold a member-state record (the core's
/// `MAX_MEMBER_STATE_LEN`): the largest `len` a `save` callback is given,
/// and the buffer `mqseal_member_init` reads a saved record from.
pub const MQSEAL_MEMBER_STATE_MAX_LEN: usize = 2888;
/// Bytes that always hold an ack envelope (the core's
/// `MAX_ACK_ENVELOPE_LEN`): the `ack_out` buffer of `mqseal_member_handle`.
pub const MQSEAL_MEMBER_ACK_MAX_LEN: usize = 125;
/// The longest control envelope (the core's `MAX_CONTROL_ENVELOPE_LEN`): a
/// longer message on the control topic cannot be valid, drop it.
pub const MQSEAL_CONTROL_ENVELOPE_MAX_LEN: usize = 2789;
/// Room for a control or ack topic with its NUL (prefix of at most 128
/// bytes, `/`, member id of at most 64).
pub const MQSEAL_CONTROL_TOPIC_MAX: usize = 194;
/// Size of `MqsealMember` in 8-byte words (9.8 KiB: two key-state slots,
/// the held one and the one a control message is decoded into in place, and
/// the buffer the state record is encoded in before `save`).
pub const MQSEAL_MEMBER_WORDS: usize = 1248;

const _: () = assert!(MQSEAL_MEMBER_STATE_MAX_LEN == MAX_MEMBER_STATE_LEN);
const _: () = assert!(MQSEAL_MEMBER_ACK_MAX_LEN == mqseal::MAX_ACK_ENVELOPE_LEN);
const _: () = assert!(MQSEAL_CONTROL_ENVELOPE_MAX_LEN == mqseal::MAX_CONTROL_ENVELOPE_LEN);
const _: () = assert!(MQSEAL_CONTROL_TOPIC_MAX == mqseal::MAX_CONTROL_TOPIC_LEN + 1);

/// Storage for a member agent. Declare one (static, or in a struct of
/// yours: it is large for a stack), then call `mqseal_member_init`. Its
/// contents are private; like a sealer, it works only at the address it was
/// initialized at.
#[repr(C)]
pub struct MqsealMember {
    _opaque: [u64; MQSEAL_MEMBER_WORDS],
}

/// The member's `save` callback: stores the `len` bytes at `record` (the
/// member-state record, `docs/PROTOCOL.md` 14.9; it holds secrets) durably
/// and atomically, replacing the previous record (after a power loss the
/// old or the new record is read back whole: e.g. write `<file>.tmp`,
/// fsync, rename, fsync the directory; or a flash record with a checksum
/// in two slots). Returns `MQSEAL_STORE_OK` (0) once it is stored; any
/// other value is a write failure. Wipe any copy of the bytes you made.
pub type MqsealMemberSaveFn = Option<unsafe extern "C" fn(ctx: *mut c_void, record: *const u8, len: usize) -> i32>;

const MEMBER_TAG: u64 = 0x6d71_7365_616c_4d45; // "mqsealME"

/// What `mqseal_member_init` writes into an [`MqsealMember`].
#[repr(C)]
pub(crate) struct MemberCell {
    head: CellHead,
    agent: MemberAgent,
    /// Where the state record is encoded for `save` (wiped after).
    record: [u8; MAX_MEMBER_STATE_LEN],
}

impl Drop for MemberCell {
    fn drop(&mut self) {
        self.record.zeroize();
    }
}

// SAFETY: MemberCell is repr(C), head first; it fits (asserted below).
unsafe impl Handle for MqsealMember {
    type Cell = MemberCell;
    const TAG: u64 = MEMBER_TAG;
}

const _: () = assert!(size_of::<MemberCell>() <= size_of::<MqsealMember>());
const _: () = assert!(align_of::<MemberCell>() <= align_of::<MqsealMember>());
const _: () = assert!(MEMBER_TAG != crate::SEALER_TAG && MEMBER_TAG != crate::OPENER_TAG);

/// The `invalidControl` reason of an error, as a static C string ("" for
/// other errors): the core's `ControlError::code()`.
fn reason_c(e: &mqseal::Error) -> &'static core::ffi::CStr {
    let mqseal::Error::InvalidControl(r) = e else { return c"" };
    match r {
        ControlError::WrongTopic => c"wrongTopic",
        ControlError::WrongSender => c"wrongSender",
        ControlError::Malformed => c"malformed",
        ControlError::UnsupportedFormat => c"unsupportedFormat",
        ControlError::TooManyGroups => c"tooManyGroups",
        ControlError::TooManyKeys => c"tooManyKeys",
        ControlError::BadName => c"badName",
        ControlError::WrongMember => c"wrongMember",
        ControlError::ZeroEpoch => c"zeroEpoch",
        ControlError::DuplicateGroup => c"duplicateGroup",
        ControlError::DuplicateKeyId => c"duplicateKeyId",
        ControlError::BadSuite => c"badSuite",
        ControlError::EndBeforeActivation => c"endBeforeActivation",
        ControlError::SealKeyMissing => c"sealKeyMissing",
        ControlError::BadNextKey => c"badNextKey",
        ControlError::BadStatus => c"badStatus",
        _ => c"other",
    }
}

/// Writes `reason` through an optional `const char **` output.
///
/// # Safety
/// As [`put`].
unsafe fn put_reason(p: *mut *const c_char, reason: &'static core::ffi::CStr) {
    // SAFETY: the caller's contract is the one of `put`.
    unsafe { put(p, reason.as_ptr()) };
}

/// An optional prefix argument: NULL for the default.
///
/// # Safety
/// As [`text`].
unsafe fn prefix<'a>(p: *const c_char, default: &'static str) -> Result<&'a str, Status> {
    if p.is_null() {
        return Ok(default);
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    unsafe { text(p) }
}

/// The cell of an initialized `member` and the time `now` (NULL without a
/// clock): the arguments that the member calls start with.
///
/// # Safety
/// `member` is NULL or `MqsealMember` storage valid for reads and writes,
/// and not accessed by anyone else, for `'a`; `now` is NULL or readable.
unsafe fn cell_at<'a>(member: *mut MqsealMember, now: *const u64) -> Result<(&'a mut MemberCell, Option<u64>), Status> {
    // SAFETY: NULL or valid, exclusive storage by the caller's contract.
    let cell = unsafe { cell(member) }?;
    // SAFETY: NULL or readable by the caller's contract; plain integers.
    let now = unsafe { optional(now) };
    Ok((cell, now))
}

/// As [`cell_at`], with the NUL-terminated name of a group.
///
/// # Safety
/// As [`cell_at`]; `group` is NULL or NUL-terminated, valid and unchanged
/// for `'a`.
unsafe fn group_at<'a>(
    member: *mut MqsealMember,
    group: *const c_char,
    now: *const u64,
) -> Result<(&'a mut MemberCell, &'a str, Option<u64>), Status> {
    // SAFETY: `member` and `now` as `cell_at` needs by the caller's contract.
    let (cell, now) = unsafe { cell_at(member, now) }?;
    // SAFETY: NULL or NUL-terminated by the caller's contract.
    let group = unsafe { text(group) }?;
    Ok((cell, group, now))
}

/// Initializes `member` as the agent of member `member_id` with the X25519
/// secret key `secret_text` (its public key is enrolled at the authority),
/// trusting the authority's public key `authority_public_text`.
/// `control_prefix` and `ack_prefix` are the topic prefixes (NULL for the
/// defaults `mqseal/v1/ctl` and `mqseal/v1/ack`).
///
/// `saved` (`saved_len` bytes) is the member-state record a `save`
/// callback stored last, or NULL (and 0) for a member just enrolled (epoch
/// 0). A record that does not validate (changed bytes, another member's,
/// truncated) is refused with `MQSEAL_STATUS_INVALID_SNAPSHOT`: never start
/// afresh silently when a record was expected (the authority would see the
/// control counters and epochs start over). `MQSEAL_STATUS_INVALID_CONTROL`
/// (reason `badName`, see `mqseal_member_handle`) for a bad member id,
/// `MQSEAL_STATUS_INVALID_CONFIG` for a bad prefix, the key-text statuses
/// for bad keys. On any error the handle is left wiped.
///
/// # Safety
/// `member` points to writable `MqsealMember` storage (not an initialized
/// agent: deinit it first); the texts are NULL or NUL-terminated; `saved`
/// is NULL or `saved_len` readable bytes outside `member`.
#[no_mangle]
pub unsafe extern "C" fn mqseal_member_init(
    member: *mut MqsealMember,
    secret_text: *const c_char,
    authority_public_text: *const c_char,
    member_id: *const c_char,
    control_prefix: *const c_char,
    ack_prefix: *const c_char,
    saved: *const u8,
    saved_len: usize,
) -> MqsealStatus {
    try_c!(disjoint(&[Span::of(saved, saved_len), Span::handle(member)]));
    let cell_ptr = try_c!(storage(member));
    // SAFETY: non-NULL, aligned (checked) and writable storage by the
    // contract, no reference into it is live. A failed init leaves no agent.
    unsafe { wipe(member) };
    // SAFETY: NULL or NUL-terminated by the contract.
    let secret = try_c!(unsafe { text(secret_text) });
    // SAFETY: NULL or NUL-terminated by the contract.
    let authority = try_c!(unsafe { text(authority_public_text) });
    // SAFETY: NULL or NUL-terminated by the contract.
    let id = try_c!(unsafe { text(member_id) });
    // SAFETY: NULL or NUL-terminated by the contract.
    let control = try_c!(unsafe { prefix(control_prefix, mqseal::DEFAULT_CONTROL_PREFIX) });
    // SAFETY: NULL or NUL-terminated by the contract.
    let ack = try_c!(unsafe { prefix(ack_prefix, mqseal::DEFAULT_ACK_PREFIX) });
    let persisted = if saved.is_null() {
        None
    } else {
        // SAFETY: non-NULL, `saved_len` readable bytes by the contract, not
        // in the handle (checked).
        Some(try_c!(unsafe { bytes(saved, saved_len) }))
    };
    let own = try_c!(StaticKeyPair::from_secret_text(secret));
    let authority = try_c!(PublicKey::from_text(authority));
    let keys = try_c!(own.pairwise(&authority, mqseal::CONTROL_KEY_ID));
    // SAFETY: aligned, writable storage of MqsealMember size, which holds a
    // MemberCell (asserted); no live cell there (wiped above), and no
    // reference into it is live.
    let agent = unsafe { emplace_agent(cell_ptr) };
    // The agent is initialized in place (the core decodes a saved record
    // straight into it), so no agent is built on the stack.
    if let Err(e) = agent.init(keys, id, &ControlTopics { control, ack }, persisted) {
        // SAFETY: as above; the agent holds no secret after a failed init,
        // and its storage is plain bytes again for the caller.
        unsafe { wipe(member) };
        return Status::from(e);
    }
    // SAFETY: as above (a place inside the storage, no reference made).
    let head = unsafe { ptr::addr_of_mut!((*cell_ptr).head) };
    // SAFETY: aligned and writable; the head written last makes the cell
    // valid.
    unsafe { head.write(head_for(member)) };
    Status::Ok
}

/// Writes an unset agent and a zeroed record buffer into the cell at `p`
/// (not its head: the cell is not valid yet) and returns the agent.
///
/// # Safety
/// `p` is aligned and writable, holds no live cell (whatever it held is
/// overwritten, not dropped), and no other reference into it is live
/// while the returned one is.
unsafe fn emplace_agent<'a>(p: *mut MemberCell) -> &'a mut MemberAgent {
    // SAFETY: a place inside the cell at `p` (aligned and writable by the
    // caller's contract); no reference is made.
    let record = unsafe { ptr::addr_of_mut!((*p).record) };
    // SAFETY: as above.
    let agent = unsafe { ptr::addr_of_mut!((*p).agent) };
    // SAFETY: aligned, writable; a byte array.
    unsafe { record.write_bytes(0, 1) };
    // SAFETY: aligned and writable. A constant written through a pointer is
    // copied (or set) in place, not built on the stack first.
    unsafe { agent.write(MemberAgent::UNSET) };
    // SAFETY: initialized just above; exclusive by the caller's contract.
    unsafe { &mut *agent }
}

/// Drops the agent and wipes its storage (keys zeroized). Deinitializing a
/// copy wipes the copy and returns `MQSEAL_STATUS_HANDLE_MOVED`.
///
/// # Safety
/// `member` is NULL or `MqsealMember` storage not used by another thread
/// during the call.
#[no_mangle]
pub unsafe extern "C" fn mqseal_member_deinit(member: *mut MqsealMember) -> MqsealStatus {
    // SAFETY: NULL or valid, exclusive storage by the contract.
    unsafe { deinit(member) }
}

/// Runs `save` over the cell's record buffer: `MQSEAL_STORE_OK` or a write
/// failure (the status `MQSEAL_STATUS_COUNTER_STORE`, reason "write").
fn call_save(
    save: unsafe extern "C" fn(*mut c_void, *const u8, usize) -> i32,
    ctx: *mut c_void,
    record: &[u8],
) -> Result<(), mqseal::Error> {
    // SAFETY: `save` is a valid function by the caller's contract; `record`
    // is readable for the call and not written during it.
    let rc = unsafe { save(ctx, record.as_ptr(), record.len()) };
    if rc == crate::MQSEAL_STORE_OK {
        Ok(())
    } else {
        Err(mqseal::Error::CounterStore(StoreError::Write))
    }
}

/// Handles one message that arrived on the `topic_len` bytes at `topic`
/// (subscribe to `mqseal_member_control_topic`, QoS 1; the authority
/// publishes retained): `envelope` (`len` bytes) is verified and decrypted
/// in place and wiped afterwards, success or not. `now` is the time in
/// seconds since the Unix epoch (NULL without a clock).
///
/// On success the agent built the new member-state record and called
/// `save(ctx, record, len)` with it **before** anything else: only when
/// `save` returned `MQSEAL_STORE_OK` does the agent hold the new keys and
/// is the ack written to `ack_out` (`ack_cap` bytes,
/// `MQSEAL_MEMBER_ACK_MAX_LEN` suffice; `*ack_len` its length). Then
/// publish the ack on `mqseal_member_ack_topic` (QoS 1, not retained) and
/// rebuild your sealers and openers (`mqseal_member_sealer_init`,
/// `mqseal_member_opener_init`). When `save` fails the result is
/// `MQSEAL_STATUS_COUNTER_STORE` (reason "write"): no ack, no key change;
/// the retained message comes again on the next subscribe.
///
/// Refusals, in the order of `docs/PROTOCOL.md` 14.6 (nothing changes, no
/// ack): `MQSEAL_STATUS_INVALID_CONTROL` with `*reason` (if not NULL) set to
/// the reason (the core's `ControlError` codes: "wrongTopic",
/// "wrongSender", "malformed", "wrongMember", ...; "" for other statuses),
/// `MQSEAL_STATUS_AUTH`, the envelope format statuses,
/// `MQSEAL_STATUS_UNKNOWN_KEY`, `MQSEAL_STATUS_DUPLICATE` /
/// `MQSEAL_STATUS_REPLAY` (a counter at or below the last accepted one: the
/// retained message seen again, drop it quietly),
/// `MQSEAL_STATUS_STALE_EPOCH`, `MQSEAL_STATUS_BUFFER_TOO_SMALL` for a
/// short `ack_out` (checked before `save` runs).
///
/// # Safety
/// `member` is NULL or an `MqsealMember` not used by another thread during
/// the call; `topic` NULL or `topic_len` readable bytes; `envelope` NULL or
/// `len` writable bytes; `now` NULL or readable; `save` NULL or a valid
/// function (NULL gives `MQSEAL_STATUS_NULL_POINTER`); `ack_out` NULL or
/// `ack_cap` writable bytes; `ack_len` and `reason` NULL or writable. The
/// buffers overlap neither each other nor the handle.
#[no_mangle]
pub unsafe extern "C" fn mqseal_member_handle(
    member: *mut MqsealMember,
    topic_ptr: *const c_char,
    topic_len: usize,
    envelope: *mut u8,
    len: usize,
    now: *const u64,
    save: MqsealMemberSaveFn,
    ctx: *mut c_void,
    ack_out: *mut u8,
    ack_cap: usize,
    ack_len: *mut usize,
    reason: *mut *const c_char,
) -> MqsealStatus {
    // SAFETY: NULL or writable by the contract.
    unsafe { put_reason(reason, c"") };
    try_c!(non_null(ack_len));
    // SAFETY: non-NULL and writable by the contract.
    unsafe { put(ack_len, 0) };
    let Some(save) = save else { return Status::NullPointer };
    try_c!(disjoint(&[
        Span::of(topic_ptr, topic_len),
        Span::of(envelope, len),
        Span::of(ack_out, ack_cap),
        Span::handle(member)
    ]));
    // SAFETY: NULL or valid, exclusive storage by the contract, overlapping
    // none of the buffers (checked).
    let cell = try_c!(unsafe { cell(member) });
    // SAFETY: NULL or `topic_len` readable bytes, not overlapping the
    // mutable buffers (checked).
    let topic = try_c!(unsafe { topic(topic_ptr.cast(), topic_len) });
    // SAFETY: NULL or readable; plain integers.
    let now = unsafe { optional(now) };
    // SAFETY: `len` writable bytes, exclusive for the call (checked).
    let envelope = try_c!(unsafe { bytes_mut(envelope, len) });
    // SAFETY: `ack_cap` writable bytes, exclusive for the call (checked).
    let ack = try_c!(unsafe { bytes_mut(ack_out, ack_cap) });
    let MemberCell { agent, record, .. } = cell;
    let result = agent.handle(topic, envelope, now, record, ack, |r| call_save(save, ctx, r));
    let n = result.map(|a| a.ack.len());
    record.zeroize();
    match n {
        Ok(n) => {
            // SAFETY: non-NULL (checked) and writable; no reference into the
            // buffers is used any more.
            unsafe { put(ack_len, n) };
            Status::Ok
        }
        Err(e) => {
            // SAFETY: NULL or writable by the contract.
            unsafe { put_reason(reason, reason_c(&e)) };
            Status::from(e)
        }
    }
}

/// Which topic a getter writes.
#[derive(Clone, Copy)]
enum Which {
    Control,
    Ack,
}

/// The shared body of the topic getters.
///
/// # Safety
/// As `mqseal_member_control_topic`.
unsafe fn topic_of(member: *mut MqsealMember, which: Which, out: *mut c_char, cap: usize) -> MqsealStatus {
    try_c!(disjoint(&[Span::of(out, cap), Span::handle(member)]));
    // SAFETY: NULL or valid, exclusive storage by the contract.
    let cell = try_c!(unsafe { cell(member) });
    let t = match which {
        Which::Control => cell.agent.control_topic(),
        Which::Ack => cell.agent.ack_topic(),
    };
    // SAFETY: NULL or `cap` writable bytes outside the handle (checked).
    status(unsafe { write_text(t, out, cap) })
}

/// Writes the control topic (`<control prefix>/<member id>`: subscribe to
/// it, QoS 1) and a NUL into `out` (`cap` bytes, `MQSEAL_CONTROL_TOPIC_MAX`
/// suffice).
///
/// # Safety
/// `member` as for `mqseal_member_handle`; `out` NULL or `cap` writable
/// bytes outside the handle.
#[no_mangle]
pub unsafe extern "C" fn mqseal_member_control_topic(
    member: *mut MqsealMember,
    out: *mut c_char,
    cap: usize,
) -> MqsealStatus {
    // SAFETY: same contract.
    unsafe { topic_of(member, Which::Control, out, cap) }
}

/// Writes the ack topic (`<ack prefix>/<member id>`) and a NUL into `out`.
///
/// # Safety
/// As `mqseal_member_control_topic`.
#[no_mangle]
pub unsafe extern "C" fn mqseal_member_ack_topic(
    member: *mut MqsealMember,
    out: *mut c_char,
    cap: usize,
) -> MqsealStatus {
    // SAFETY: same contract.
    unsafe { topic_of(member, Which::Ack, out, cap) }
}

/// The epoch held (0 before the first control message), into `*epoch`.
///
/// # Safety
/// `member` as for `mqseal_member_handle`; `epoch` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mqseal_member_epoch(member: *mut MqsealMember, epoch: *mut u64) -> MqsealStatus {
    try_c!(non_null(epoch));
    // SAFETY: NULL or valid, exclusive storage by the contract.
    let e = try_c!(unsafe { cell(member) }).agent.epoch();
    // SAFETY: non-NULL and writable by the contract.
    unsafe { put(epoch, e) };
    Status::Ok
}

/// The key to seal with in `group` at `now` (NULL without a clock): its
/// key id, the sender id the authority assigned to this member under it,
/// and its suite (`MQSEAL_SUITE_*`). `MQSEAL_STATUS_KEY_NOT_FOUND` when
/// the member holds no key of that group (not a member of it, or no state
/// yet).
///
/// # Safety
/// `member` as for `mqseal_member_handle`; `group` NULL or NUL-terminated;
/// the outputs NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mqseal_member_sealing(
    member: *mut MqsealMember,
    group: *const c_char,
    now: *const u64,
    key_id: *mut u32,
    sender_id: *mut u32,
    suite: *mut u8,
) -> MqsealStatus {
    // SAFETY: by the contract, `member` is NULL or valid, exclusive
    // storage, `group` NULL or NUL-terminated and `now` NULL or readable.
    let (cell, group, now) = try_c!(unsafe { group_at(member, group, now) });
    let Some(s) = cell.agent.sealing(group, now) else { return Status::KeyNotFound };
    // SAFETY: NULL or writable by the contract (each output).
    unsafe { put(key_id, s.key.id()) };
    // SAFETY: as above.
    unsafe { put(sender_id, s.sender_id) };
    // SAFETY: as above.
    unsafe { put(suite, s.suite.id()) };
    Status::Ok
}

/// Initializes `sealer` (as `mqseal_sealer_init`) with the agent's sealing
/// key of `group` at `now`, the sender id assigned under it and its suite,
/// with the counter store `store` of that (key id, sender id): every key
/// the authority assigns is a new sender, so give `new_sender` true the
/// first time (as `mqseal_sealer_init_new_sender`: the store must be
/// empty) and false when resuming after a restart. Rebuild the sealer
/// after `mqseal_member_handle` succeeded and when `mqseal_member_tick` or
/// `mqseal_member_key_seen` report a change. `MQSEAL_STATUS_KEY_NOT_FOUND`
/// when the member holds no key of `group`. On any error `sealer` is wiped.
///
/// # Safety
/// As `mqseal_sealer_init` for `sealer` and `store`; `member` as for
/// `mqseal_member_handle` (a different handle); `group` NULL or
/// NUL-terminated; `now` NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn mqseal_member_sealer_init(
    member: *mut MqsealMember,
    group: *const c_char,
    now: *const u64,
    sealer: *mut MqsealSealer,
    store: *const MqsealCounterStore,
    reservation_block: u64,
    new_sender: bool,
) -> MqsealStatus {
    try_c!(disjoint(&[Span::handle(member), Span::handle(sealer)]));
    let start = if new_sender { Start::NewSender } else { Start::Resume };
    let key = || {
        // SAFETY: by the contract, `member` is NULL or valid, exclusive
        // storage (not the sealer's: checked), `group` NULL or
        // NUL-terminated and `now` NULL or readable.
        let (cell, group, now) = unsafe { group_at(member, group, now) }?;
        let s = cell.agent.sealing(group, now).ok_or(Status::KeyNotFound)?;
        Ok((s.key, s.sender_id, s.suite))
    };
    // SAFETY: the contract of mqseal_sealer_init.
    unsafe { sealer_init_with(sealer, store, reservation_block, start, key) }
}

/// Initializes `opener` (as `mqseal_opener_init`, `config` NULL for the
/// default) with the keys of `group` accepted at `now` (NULL without a
/// clock), the sealing key as primary: what the other members of the group
/// seal with. Rebuild it when the keys change (as for
/// `mqseal_member_sealer_init`); save and restore its replay state across
/// the rebuild with `mqseal_opener_snapshot` / `mqseal_opener_restore`.
/// `MQSEAL_STATUS_KEY_NOT_FOUND` when the member holds no key of `group`,
/// `MQSEAL_STATUS_KEYRING_FULL` for a group of more than
/// `MQSEAL_OPENER_KEYS` accepted keys. On any error `opener` is wiped.
///
/// # Safety
/// As `mqseal_opener_init` for `opener` and `config`; `member`, `group`
/// and `now` as for `mqseal_member_sealer_init`.
#[no_mangle]
pub unsafe extern "C" fn mqseal_member_opener_init(
    member: *mut MqsealMember,
    group: *const c_char,
    now: *const u64,
    opener: *mut MqsealOpener,
    config: *const MqsealOpenerConfig,
) -> MqsealStatus {
    try_c!(disjoint(&[Span::handle(member), Span::handle(opener)]));
    let ring = || {
        // SAFETY: by the contract, `member` is NULL or valid, exclusive
        // storage (not the opener's: checked), `group` NULL or
        // NUL-terminated and `now` NULL or readable.
        let (cell, group, now) = unsafe { group_at(member, group, now) }?;
        cell.agent.keyring::<MQSEAL_OPENER_KEYS>(group, now)?.ok_or(Status::KeyNotFound)
    };
    // SAFETY: the contract of mqseal_opener_init.
    unsafe { opener_init_with(opener, config, ring) }
}

/// Writes an optional time: `*has` 1 and `*at` the time, or `*has` 0.
///
/// # Safety
/// Both NULL or writable.
unsafe fn put_time(at: *mut u64, has: *mut bool, t: Option<u64>) {
    // SAFETY: NULL or writable by the caller's contract.
    unsafe { put(has, t.is_some()) };
    // SAFETY: as above.
    unsafe { put(at, t.unwrap_or(0)) };
}

/// Scheduled switches (a sealing key that activates, a key whose
/// acceptance ends): call at the time `mqseal_member_wake_at` gave, or
/// whenever. `*changed` says whether the sealing key or the accepted keys
/// of some group changed since they were last reported (rebuild sealers
/// and openers then); `*has_wake_at` and `*wake_at` when to call it next.
///
/// # Safety
/// `member` as for `mqseal_member_handle`; `now` NULL or readable; the
/// outputs NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mqseal_member_tick(
    member: *mut MqsealMember,
    now: *const u64,
    changed: *mut bool,
    wake_at: *mut u64,
    has_wake_at: *mut bool,
) -> MqsealStatus {
    // SAFETY: by the contract, `member` is NULL or valid, exclusive
    // storage and `now` NULL or readable.
    let (cell, now) = try_c!(unsafe { cell_at(member, now) });
    let t = cell.agent.tick(now);
    // SAFETY: NULL or writable by the contract.
    unsafe { put(changed, t.changed) };
    // SAFETY: NULL or writable by the contract.
    unsafe { put_time(wake_at, has_wake_at, t.wake_at) };
    Status::Ok
}

/// The next time after `now` at which a sealing key activates or a key
/// stops being accepted: `*has_wake_at` 0 without a clock (`now` NULL) or
/// without scheduled changes.
///
/// # Safety
/// As `mqseal_member_tick`.
#[no_mangle]
pub unsafe extern "C" fn mqseal_member_wake_at(
    member: *mut MqsealMember,
    now: *const u64,
    wake_at: *mut u64,
    has_wake_at: *mut bool,
) -> MqsealStatus {
    // SAFETY: by the contract, `member` is NULL or valid, exclusive
    // storage and `now` NULL or readable.
    let (cell, now) = try_c!(unsafe { cell_at(member, now) });
    // SAFETY: NULL or writable by the contract; the agent is only read
    // before the write.
    unsafe { put_time(wake_at, has_wake_at, cell.agent.wake_at(now)) };
    Status::Ok
}

/// Tells the agent that a message of `group` under `key_id` verified (a
/// member without a clock switches to the next key when it first sees it
/// in use). When that switched the sealing key, `*switched` is true and the
/// new state record was given to `save` before this returns: rebuild the
/// sealer. When `save` fails the result is `MQSEAL_STATUS_COUNTER_STORE`
/// (reason "write") and the switch holds in memory only: call it again
/// later, or the member goes back to the old key after a restart.
///
/// # Safety
/// `member` as for `mqseal_member_handle`; `group` NULL or NUL-terminated;
/// `now` NULL or readable; `save` as for `mqseal_member_handle`;
/// `switched` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mqseal_member_key_seen(
    member: *mut MqsealMember,
    group: *const c_char,
    key_id: u32,
    now: *const u64,
    save: MqsealMemberSaveFn,
    ctx: *mut c_void,
    switched: *mut bool,
) -> MqsealStatus {
    // SAFETY: NULL or writable by the contract.
    unsafe { put(switched, false) };
    let Some(save) = save else { return Status::NullPointer };
    // SAFETY: by the contract, `member` is NULL or valid, exclusive
    // storage, `group` NULL or NUL-terminated and `now` NULL or readable.
    let (cell, group, now) = try_c!(unsafe { group_at(member, group, now) });
    let MemberCell { agent, record, .. } = cell;
    if !agent.key_seen(group, key_id, now) {
        return Status::Ok;
    }
    // SAFETY: NULL or writable by the contract.
    unsafe { put(switched, true) };
    let r = agent.encode_state(record).and_then(|n| call_save(save, ctx, &record[..n]));
    record.zeroize();
    status(r.map_err(Status::from))
}

/// Writes the member-state record of what the agent holds now into `out`
/// (`cap` bytes, `MQSEAL_MEMBER_STATE_MAX_LEN` suffice; `*len` its length):
/// for a first record at enrollment, or to copy it. It holds secrets: wipe
/// `out` when done.
///
/// # Safety
/// `member` as for `mqseal_member_handle`; `out` NULL or `cap` writable
/// bytes outside the handle; `len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mqseal_member_encode_state(
    member: *mut MqsealMember,
    out: *mut u8,
    cap: usize,
    len: *mut usize,
) -> MqsealStatus {
    try_c!(non_null(len));
    try_c!(disjoint(&[Span::of(out, cap), Span::handle(member)]));
    // SAFETY: NULL or valid, exclusive storage by the contract.
    let cell = try_c!(unsafe { cell(member) });
    // SAFETY: NULL or `cap` writable bytes outside the handle (checked).
    let out = try_c!(unsafe { bytes_mut(out, cap) });
    let n = try_c!(cell.agent.encode_state(out));
    // SAFETY: non-NULL and writable by the contract.
    unsafe { put(len, n) };
    Status::Ok
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reasons_are_the_core_codes() {
        for r in [
            ControlError::WrongTopic,
            ControlError::WrongSender,
            ControlError::Malformed,
            ControlError::UnsupportedFormat,
            ControlError::TooManyGroups,
            ControlError::TooManyKeys,
            ControlError::BadName,
            ControlError::WrongMember,
            ControlError::ZeroEpoch,
            ControlError::DuplicateGroup,
            ControlError::DuplicateKeyId,
            ControlError::BadSuite,
            ControlError::EndBeforeActivation,
            ControlError::SealKeyMissing,
            ControlError::BadNextKey,
            ControlError::BadStatus,
        ] {
            assert_eq!(reason_c(&mqseal::Error::InvalidControl(r)).to_str().unwrap(), r.code());
        }
        assert_eq!(reason_c(&mqseal::Error::Auth).to_bytes(), b"");
    }

    #[test]
    fn status_of_a_save_failure() {
        assert_eq!(MqsealStatus::from(mqseal::Error::CounterStore(StoreError::Write)), MqsealStatus::CounterStore);
    }
}
