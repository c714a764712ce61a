//! Replay windows kept in a store shared by several receivers (scaled-out
//! subscribers behind an MQTT shared subscription).
//!
//! The core still verifies every envelope itself: [`crate::OpenerWith::open_pending`]
//! parses, checks the policy and verifies the tag, and returns a
//! [`PendingOpen`] that holds the verified payload back. Its
//! [`PendingOpen::query`] names what the shared store must decide — the
//! (key id, sender id, counter) and the window width — and only the
//! store's verdict, given to [`PendingOpen::resolve`], releases the payload.
//!
//! The decision rule is the core's [`ReplayWindow`]: [`WINDOW_SCRIPT`] is the
//! same rule as a Redis Lua script, run atomically server-side, and
//! [`WindowVerdict`] the codes both return. [`check_and_update_local`]
//! applies the rule to a local window and returns the same codes (what an
//! in-process store does, and what the differential test compares).

use crate::envelope::Header;
use crate::replay::ReplayWindow;
use crate::{Error, Opened};

/// The shared-window rule as a Redis Lua script (loaded once, called by
/// its SHA1 with `EVALSHA`). Arguments: `KEYS[1]` the window's key (see
/// [`WindowQuery::redis_key`]); `ARGV` the counter's high and low 32 bits,
/// the width for a new sender, a TTL in milliseconds (0: none), and the gap
/// budget for a new sender.
/// Returns a [`WindowVerdict`] code.
pub const WINDOW_SCRIPT: &str = include_str!("shared_window.lua");

/// What a shared replay store decides for one verified envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WindowQuery {
    /// Key id.
    pub key_id: u32,
    /// Sender id.
    pub sender_id: u32,
    /// The envelope's counter.
    pub counter: u64,
    /// Window width for a sender the store has not seen (the opener's
    /// configured width); a known sender keeps the width it was created with.
    pub width: u32,
    /// Gap budget for a sender the store has not seen (the opener's
    /// configured `gaps`, 0 to [`crate::MAX_GAPS`]); a known sender keeps
    /// the budget it was created with.
    pub gaps: u32,
}

impl WindowQuery {
    /// The key prefix a shared store uses unless told otherwise (every
    /// binding's default, so receivers in different languages share windows).
    pub const DEFAULT_PREFIX: &'static str = "mqseal:";

    /// The query for a verified envelope with this header, for a window of
    /// `width` with a budget of `gaps` if the store has not seen the sender.
    #[must_use]
    pub const fn of(header: &Header, width: u32, gaps: u32) -> Self {
        WindowQuery { key_id: header.key_id, sender_id: header.sender_id, counter: header.counter, width, gaps }
    }

    /// The store key of this sender's window: `<prefix>w:<key id>:<sender id>`
    /// (decimal ids), so every window of a key shares the prefix
    /// `<prefix>w:<key id>:` (what retiring a key deletes).
    #[must_use]
    pub fn redis_key(&self, prefix: &str) -> alloc::string::String {
        alloc::format!("{prefix}w:{}:{}", self.key_id, self.sender_id)
    }

    /// The counter's (high, low) 32-bit halves, as [`WINDOW_SCRIPT`] takes it.
    #[must_use]
    pub const fn counter_halves(&self) -> (u32, u32) {
        ((self.counter >> 32) as u32, self.counter as u32)
    }

    /// [`WINDOW_SCRIPT`]'s `ARGV`, in order, for this query with a TTL of
    /// `ttl_ms` milliseconds (0: none): counter high and low halves, width,
    /// TTL, gap budget. Every adapter passes exactly these, so no binding
    /// knows the script's argument layout.
    #[must_use]
    pub const fn script_args(&self, ttl_ms: u64) -> [u64; 5] {
        let (hi, lo) = self.counter_halves();
        [hi as u64, lo as u64, self.width as u64, ttl_ms, self.gaps as u64]
    }
}

/// The verdict of a shared replay store, with stable wire codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WindowVerdict {
    /// Accepted and recorded (code 0).
    Accepted,
    /// Accepted before (code 1): [`Error::Duplicate`].
    Duplicate,
    /// Below the window (code 2): [`Error::Replay`].
    Replay,
}

impl WindowVerdict {
    /// The verdict's code.
    #[must_use]
    pub const fn code(self) -> i64 {
        match self {
            WindowVerdict::Accepted => 0,
            WindowVerdict::Duplicate => 1,
            WindowVerdict::Replay => 2,
        }
    }

    /// The verdict for a code returned by a store.
    ///
    /// # Errors
    /// [`Error::InvalidSnapshot`] for any other code (a store answering
    /// something else has not accepted anything: the caller fails closed).
    pub const fn from_code(code: i64) -> Result<Self, Error> {
        match code {
            0 => Ok(WindowVerdict::Accepted),
            1 => Ok(WindowVerdict::Duplicate),
            2 => Ok(WindowVerdict::Replay),
            _ => Err(Error::InvalidSnapshot),
        }
    }

    /// `Ok(())` when accepted, else the core error ([`Error::Duplicate`],
    /// [`Error::Replay`]).
    ///
    /// # Errors
    /// As described.
    pub const fn into_result(self) -> Result<(), Error> {
        match self {
            WindowVerdict::Accepted => Ok(()),
            WindowVerdict::Duplicate => Err(Error::Duplicate),
            WindowVerdict::Replay => Err(Error::Replay),
        }
    }
}

/// The rule of [`WINDOW_SCRIPT`] on a local window: check, and record when
/// accepted.
pub fn check_and_update_local(window: &mut ReplayWindow, counter: u64) -> WindowVerdict {
    match window.check_and_update(counter) {
        Ok(()) => WindowVerdict::Accepted,
        Err(Error::Duplicate) => WindowVerdict::Duplicate,
        Err(_) => WindowVerdict::Replay,
    }
}

/// A new sender's window in the shared store: (width, gap budget).
pub(crate) type Shape = (u32, u32);

/// A verified envelope whose replay decision is pending in a shared store.
/// The payload stays held back in the caller's buffer; it is released only
/// by [`PendingOpen::resolve`] with [`WindowVerdict::Accepted`]. Dropping the
/// token, or resolving it any other way, zeroes the body.
pub struct PendingOpen<'b> {
    header: Header,
    shape: Shape,
    buf: Option<&'b mut [u8]>,
    range: core::ops::Range<usize>,
}

/// Never shows the body: it is not released until the store's verdict.
impl core::fmt::Debug for PendingOpen<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PendingOpen").field("header", &self.header).finish_non_exhaustive()
    }
}

impl<'b> PendingOpen<'b> {
    pub(crate) fn new(header: Header, shape: Shape, buf: &'b mut [u8], range: core::ops::Range<usize>) -> Self {
        PendingOpen { header, shape, buf: Some(buf), range }
    }

    /// The authenticated header.
    #[must_use]
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// What the shared store must decide.
    #[must_use]
    pub const fn query(&self) -> WindowQuery {
        WindowQuery::of(&self.header, self.shape.0, self.shape.1)
    }

    /// Releases the payload when the store accepted it.
    ///
    /// # Errors
    /// [`Error::Duplicate`] or [`Error::Replay`] for the store's other
    /// verdicts; the body is then zeroed.
    pub fn resolve(mut self, verdict: WindowVerdict) -> Result<Opened<'b>, Error> {
        let range = self.range.clone();
        let header = self.header;
        let Some(buf) = self.buf.take() else {
            return Err(Error::InvalidSnapshot);
        };
        match verdict.into_result() {
            Ok(()) => Ok(Opened { header, payload: &buf[range] }),
            Err(e) => {
                buf[range].fill(0);
                Err(e)
            }
        }
    }
}

impl PendingOpen<'_> {
    /// Header, window shape and body range, disarming the zeroing on drop
    /// (the caller takes the buffer over).
    pub(crate) fn into_parts(mut self) -> (Header, Shape, core::ops::Range<usize>) {
        self.buf = None;
        (self.header, self.shape, self.range.clone())
    }
}

/// [`PendingOpen`] with an owned buffer (from
/// [`crate::OpenerWith::open_pending_to_vec`]), to hold while the shared
/// store is asked asynchronously. The payload is not reachable before
/// [`PendingOpenVec::resolve`] with [`WindowVerdict::Accepted`]; dropping it
/// zeroes the buffer.
pub struct PendingOpenVec {
    header: Header,
    shape: Shape,
    buf: alloc::vec::Vec<u8>,
    range: core::ops::Range<usize>,
}

impl core::fmt::Debug for PendingOpenVec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PendingOpenVec").field("header", &self.header).finish_non_exhaustive()
    }
}

impl PendingOpenVec {
    pub(crate) fn new(parts: (Header, Shape, core::ops::Range<usize>), buf: alloc::vec::Vec<u8>) -> Self {
        let (header, shape, range) = parts;
        PendingOpenVec { header, shape, buf, range }
    }

    /// The authenticated header.
    #[must_use]
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// What the shared store must decide.
    #[must_use]
    pub const fn query(&self) -> WindowQuery {
        WindowQuery::of(&self.header, self.shape.0, self.shape.1)
    }

    /// The payload, when the store accepted it.
    ///
    /// # Errors
    /// [`Error::Duplicate`] or [`Error::Replay`] for the store's other
    /// verdicts; the buffer is zeroed.
    pub fn resolve(self, verdict: WindowVerdict) -> Result<crate::OpenedVec, Error> {
        verdict.into_result()?;
        let payload = self.buf[self.range.clone()].to_vec();
        Ok(crate::OpenedVec { header: self.header, payload })
    }
}

impl Drop for PendingOpenVec {
    fn drop(&mut self) {
        self.buf.fill(0);
    }
}

impl Drop for PendingOpen<'_> {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            buf[self.range.clone()].fill(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_fail_closed() {
        for v in [WindowVerdict::Accepted, WindowVerdict::Duplicate, WindowVerdict::Replay] {
            assert_eq!(WindowVerdict::from_code(v.code()), Ok(v));
        }
        assert!(WindowVerdict::from_code(-1).is_err());
        assert!(WindowVerdict::from_code(3).is_err());
        assert_eq!(WindowVerdict::Duplicate.into_result(), Err(Error::Duplicate));
        assert_eq!(WindowVerdict::Replay.into_result(), Err(Error::Replay));
    }

    #[test]
    fn keys_and_halves() {
        let q = WindowQuery { key_id: 7, sender_id: 42, counter: (5 << 32) | 9, width: 128, gaps: 4 };
        assert_eq!(q.redis_key("mqseal:"), "mqseal:w:7:42");
        assert_eq!(q.counter_halves(), (5, 9));
    }
}
