//! The receiver's replay state, one per (key id, sender id): a sliding
//! window and, below it, a small set of gaps.
//!
//! The window remembers the highest counter accepted and, as a bitmap, which
//! of the `width - 1` counters just below it were accepted too. A counter
//! above the highest is new; one inside the window is new unless its bit is
//! set (a duplicate).
//!
//! Below the window, the state keeps *gaps*: disjoint ranges `[lo, hi]` of
//! counters that were never accepted, at most [`ReplayWindow::gap_budget`]
//! of them (default [`DEFAULT_GAPS`], at most [`MAX_GAPS`]). When the window
//! slides, the counters leaving it that were never accepted join a gap
//! (coalesced with the one just below when adjacent), and so does a block of
//! counters the window jumps over (a sender that skipped a block after a
//! crash costs one gap). A counter below the window is new if and only if it
//! lies in a gap; accepting it shrinks or splits the gap. When the budget is
//! exceeded, the lowest gap is dropped: its counters become replays. So the
//! rule stays conservative — no counter is ever accepted twice — while
//! genuine messages held back by more than the window (a broker restart, a
//! publisher that retransmits its queue after newer messages) are accepted
//! once. Counters below the window that are in no gap are rejected as
//! `replay`, as before; a budget of 0 is the plain bitmap window.
//!
//! With a maximum age (timestamps required), gaps are also bounded by age:
//! each gap is dated with the timestamp of the accepted message whose
//! counter opened it. A sender's counters and timestamps both increase, so
//! every message in the gap was sealed before that one and carries at most
//! that date; once the date is older than `now - max_age - max_skew`, every
//! message that could fill the gap would be rejected as expired, and the
//! opener drops the gap ([`ReplayWindow::expire_gaps`]), freeing its place
//! in the budget and, with the last one, its memory. The age bound never
//! changes a verdict of a receiver that checks the age: it only forgets
//! what could no longer be accepted.
//!
//! Memory: a gap is 20 bytes (its range, 16, and its date, 4, seconds in 32
//! bits). With `alloc`, a window holds them on the heap (one allocation of
//! [`MAX_GAPS`] × 20 = 80 bytes) only while it has any, and frees it when
//! the last one closes or expires: a sender without gaps costs 8 bytes more
//! than the bitmap window. Without `alloc` (the fixed table of
//! microcontrollers and the C binding), they are inline: 80 bytes per
//! window. Dates are not saved in snapshots: a restored gap is dated when
//! the age bound first looks at it (see [`ReplayWindow::expire_gaps`]).
//!
//! The state is only ever changed for messages whose tag verified: the
//! opener checks, verifies, then calls [`ReplayWindow::update`].

use crate::Error;

/// Largest supported window width, in counters.
pub const MAX_WINDOW: u32 = 256;
/// Default window width.
pub const DEFAULT_WINDOW: u32 = 128;
/// Most gaps a window can keep below itself ([`ReplayWindow::gap_budget`]
/// is 0 to this). The one place the limit is stated.
pub const MAX_GAPS: usize = 4;
/// Default gap budget of a window: [`MAX_GAPS`].
pub const DEFAULT_GAPS: u32 = MAX_GAPS as u32;

/// 64-bit words of a window's bitmap at [`MAX_WINDOW`].
pub const WINDOW_WORDS: usize = (MAX_WINDOW / 64) as usize;
const WORDS: usize = WINDOW_WORDS;

/// A range `(lo, hi)` of never-accepted counters below a window, both ends
/// included, `lo <= hi`.
pub type Gap = (u64, u64);

/// The date of a gap not dated yet ([`ReplayWindow::expire_gaps`] dates
/// it at the time it first runs). Dates are seconds since the Unix epoch
/// in 32 bits (4 bytes a gap, up to the year 2106); a later one counts as
/// not dated yet, which only keeps a gap longer.
const UNDATED: u32 = u32::MAX;

/// A timestamp as a gap date.
const fn date_of(timestamp: Option<u64>) -> u32 {
    match timestamp {
        Some(t) if t < UNDATED as u64 => t as u32,
        _ => UNDATED,
    }
}

/// The gaps' storage: the ranges and, for each, its date: the newest
/// timestamp any message in it can carry (see [`ReplayWindow::expire_gaps`]).
#[derive(Clone, Debug)]
struct GapSlots {
    ranges: [Gap; MAX_GAPS],
    dates: [u32; MAX_GAPS],
}

const EMPTY_SLOTS: GapSlots = GapSlots { ranges: [(0, 0); MAX_GAPS], dates: [UNDATED; MAX_GAPS] };

#[cfg(feature = "alloc")]
type GapBuf = Option<alloc::boxed::Box<GapSlots>>;
#[cfg(not(feature = "alloc"))]
type GapBuf = GapSlots;

#[cfg(feature = "alloc")]
const NO_GAPS: GapBuf = None;
#[cfg(not(feature = "alloc"))]
const NO_GAPS: GapBuf = EMPTY_SLOTS;

/// The later of two gap dates (an undated one stays undated).
const fn later(a: u32, b: u32) -> u32 {
    if a > b {
        a
    } else {
        b
    }
}

/// A sliding window over a sender's counters, with its gaps.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    /// Highest counter accepted; meaningless while `bits` is all zero.
    highest: u64,
    /// Bit `i` is set when counter `highest - i` was accepted.
    bits: [u64; WORDS],
    width: u32,
    /// Gaps in use (the first `gap_len` of `gaps`), at most `budget`, with
    /// their dates.
    gap_len: u8,
    budget: u8,
    /// Ascending, disjoint, not adjacent, all below the window's bottom.
    gaps: GapBuf,
}

impl PartialEq for ReplayWindow {
    fn eq(&self, other: &Self) -> bool {
        self.highest == other.highest
            && self.bits == other.bits
            && self.width == other.width
            && self.budget == other.budget
            && self.gaps() == other.gaps()
    }
}

impl Eq for ReplayWindow {}

impl ReplayWindow {
    /// An empty window of `width` counters (1 to [`MAX_WINDOW`]) with the
    /// default gap budget ([`DEFAULT_GAPS`]).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a width outside that range.
    pub const fn new(width: u32) -> Result<Self, Error> {
        ReplayWindow::with_gaps(width, DEFAULT_GAPS)
    }

    /// An empty window of `width` counters (1 to [`MAX_WINDOW`]) keeping at
    /// most `gaps` gaps below it (0 to [`MAX_GAPS`]; 0 is the plain bitmap:
    /// everything below the window is a replay).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a width or budget outside those ranges.
    pub const fn with_gaps(width: u32, gaps: u32) -> Result<Self, Error> {
        if width == 0 || width > MAX_WINDOW || gaps > MAX_GAPS as u32 {
            return Err(Error::InvalidConfig);
        }
        Ok(ReplayWindow { highest: 0, bits: [0; WORDS], width, gap_len: 0, budget: gaps as u8, gaps: NO_GAPS })
    }

    /// A window restored from its saved state (see [`ReplayWindow::state`]),
    /// without gaps.
    ///
    /// # Errors
    /// As [`ReplayWindow::from_parts`].
    pub fn from_state(width: u32, highest: u64, bits: [u64; WORDS]) -> Result<Self, Error> {
        ReplayWindow::from_parts(width, highest, bits, &[])
    }

    /// A window restored from its saved state and gaps (see
    /// [`ReplayWindow::state`], [`ReplayWindow::gaps`]), with a budget of
    /// [`MAX_GAPS`] (merging into a configured window applies that one's).
    /// Bits beyond the width are cleared.
    ///
    /// # Errors
    /// [`Error::InvalidSnapshot`] for a width outside 1 to [`MAX_WINDOW`];
    /// when bit 0 (the highest counter itself) is not set (a window that
    /// accepted nothing has nothing to restore, and taking it would make
    /// every counter new again); for more than [`MAX_GAPS`] gaps, or gaps
    /// that are not ascending, disjoint and non-adjacent, or that reach
    /// into the window.
    pub fn from_parts(width: u32, highest: u64, bits: [u64; WORDS], gaps: &[Gap]) -> Result<Self, Error> {
        let Ok(mut w) = ReplayWindow::with_gaps(width, DEFAULT_GAPS) else {
            return Err(Error::InvalidSnapshot);
        };
        if bits[0] & 1 == 0 || gaps.len() > MAX_GAPS {
            return Err(Error::InvalidSnapshot);
        }
        w.highest = highest;
        w.bits = bits;
        w.mask();
        let bottom = w.bottom();
        let mut above: Option<u64> = None;
        for &(lo, hi) in gaps {
            let after_previous = match above {
                None => true,
                Some(prev_hi) => prev_hi.checked_add(1).is_some_and(|n| lo > n),
            };
            if lo > hi || hi >= bottom || !after_previous {
                return Err(Error::InvalidSnapshot);
            }
            above = Some(hi);
            w.push_gap(lo, hi, UNDATED);
        }
        Ok(w)
    }

    /// The window's width.
    #[must_use]
    pub const fn width(&self) -> u32 {
        self.width
    }

    /// The most gaps this window keeps (0 to [`MAX_GAPS`]).
    #[must_use]
    pub const fn gap_budget(&self) -> u32 {
        self.budget as u32
    }

    /// The gaps below the window, ascending: ranges of counters never
    /// accepted that would still be accepted once each.
    #[must_use]
    pub fn gaps(&self) -> &[Gap] {
        let n = usize::from(self.gap_len);
        #[cfg(feature = "alloc")]
        {
            match &self.gaps {
                Some(b) => &b.ranges[..n],
                None => &[],
            }
        }
        #[cfg(not(feature = "alloc"))]
        {
            &self.gaps.ranges[..n]
        }
    }

    /// The date of each gap, in the order of [`ReplayWindow::gaps`]: the
    /// newest timestamp a message in it can carry, `None` while not known
    /// (see [`ReplayWindow::expire_gaps`]).
    pub fn gap_dates(&self) -> impl Iterator<Item = Option<u64>> + '_ {
        let n = usize::from(self.gap_len);
        #[cfg(feature = "alloc")]
        let dates: &[u32] = match &self.gaps {
            Some(b) => &b.dates[..n],
            None => &[],
        };
        #[cfg(not(feature = "alloc"))]
        let dates: &[u32] = &self.gaps.dates[..n];
        dates.iter().map(|&d| if d == UNDATED { None } else { Some(u64::from(d)) })
    }

    fn gap_slots(&mut self) -> &mut GapSlots {
        #[cfg(feature = "alloc")]
        {
            self.gaps.get_or_insert_with(|| alloc::boxed::Box::new(EMPTY_SLOTS))
        }
        #[cfg(not(feature = "alloc"))]
        {
            &mut self.gaps
        }
    }

    /// Appends a gap dated `date` above every other one, coalescing with
    /// the top gap when adjacent (the later date of the two), then drops
    /// the lowest gaps beyond the budget.
    fn push_gap(&mut self, lo: u64, hi: u64, date: u32) {
        if self.budget == 0 {
            return;
        }
        let n = usize::from(self.gap_len);
        if n > 0 {
            let slots = self.gap_slots();
            if slots.ranges[n - 1].1.checked_add(1) == Some(lo) {
                slots.ranges[n - 1].1 = hi;
                slots.dates[n - 1] = later(slots.dates[n - 1], date);
                return;
            }
        }
        if n == usize::from(self.budget) {
            self.remove_gap(0);
        }
        let n = usize::from(self.gap_len);
        let slots = self.gap_slots();
        slots.ranges[n] = (lo, hi);
        slots.dates[n] = date;
        self.gap_len += 1;
    }

    /// Removes gap `i`, freeing the storage (with `alloc`) when none is left.
    fn remove_gap(&mut self, i: usize) {
        let n = usize::from(self.gap_len);
        let slots = self.gap_slots();
        slots.ranges.copy_within(i + 1..n, i);
        slots.dates.copy_within(i + 1..n, i);
        slots.ranges[n - 1] = (0, 0);
        slots.dates[n - 1] = UNDATED;
        self.gap_len -= 1;
        if self.gap_len == 0 {
            self.gaps = NO_GAPS;
        }
    }

    /// Drops the lowest gaps until at most `budget` remain.
    fn trim_gaps(&mut self) {
        while self.gap_len > self.budget {
            self.remove_gap(0);
        }
    }

    /// Accepts `counter` from gap `i`: shrinks or splits it (both pieces
    /// keep its date).
    fn take_from_gap(&mut self, i: usize, counter: u64) {
        let n = usize::from(self.gap_len);
        let (lo, hi) = self.gap_slots().ranges[i];
        if lo == hi {
            self.remove_gap(i);
        } else if counter == lo {
            self.gap_slots().ranges[i].0 = lo + 1;
        } else if counter == hi {
            self.gap_slots().ranges[i].1 = hi - 1;
        } else {
            // Split: [lo, c-1] and [c+1, hi]. The lower piece is dropped
            // first if the budget is then exceeded.
            if n == MAX_GAPS {
                // No room for both pieces: keep the upper one only (the
                // lowest gap in total would be dropped anyway when i == 0;
                // otherwise drop the lowest gap to make room).
                if i == 0 {
                    self.gap_slots().ranges[0] = (counter + 1, hi);
                    return;
                }
                self.remove_gap(0);
                return self.take_from_gap(i - 1, counter);
            }
            let slots = self.gap_slots();
            slots.ranges.copy_within(i..n, i + 1);
            slots.dates.copy_within(i..n, i + 1);
            slots.ranges[i] = (lo, counter - 1);
            slots.ranges[i + 1] = (counter + 1, hi);
            self.gap_len += 1;
            self.trim_gaps();
        }
    }

    /// The gap holding `counter`, if any.
    fn gap_of(&self, counter: u64) -> Option<usize> {
        self.gaps().iter().position(|&(lo, hi)| lo <= counter && counter <= hi)
    }

    /// The lowest counter inside the window.
    fn bottom(&self) -> u64 {
        self.highest.saturating_sub(u64::from(self.width) - 1)
    }

    /// Merges what `other` knows into this window, so that the result
    /// rejects every counter that either rejects: the larger highest
    /// counter; in the window, every counter either accepted or places
    /// below its own window outside its gaps; below the window, only the
    /// counters that lie in a gap of both (the intersection), at most this
    /// window's budget of them (the highest). Never makes a counter
    /// acceptable that either side had accepted or declared a replay, so
    /// merging an older snapshot cannot roll a window back. Keeps this
    /// window's width and budget.
    pub fn merge(&mut self, other: &ReplayWindow) {
        if other.is_empty() {
            return;
        }
        let mut theirs = other.clone();
        theirs.budget = MAX_GAPS as u8;
        theirs.resize(self.width);
        if self.is_empty() {
            theirs.budget = self.budget;
            theirs.trim_gaps();
            *self = theirs;
            return;
        }
        let h = self.highest.max(theirs.highest);
        if self.highest < h {
            self.slide(h, UNDATED);
        }
        if theirs.highest < h {
            theirs.slide(h, UNDATED);
        }
        for (mine, t) in self.bits.iter_mut().zip(theirs.bits) {
            *mine |= t;
        }
        self.mask();
        // Intersection of two ascending lists of disjoint ranges; a piece
        // is dated the earlier of its two gaps' dates (both bound it).
        let mut both = [(0u64, 0u64, UNDATED); 2 * MAX_GAPS];
        let mut n = 0;
        let (a, b) = (self.gaps(), theirs.gaps());
        let mut da = [UNDATED; MAX_GAPS];
        let mut db = [UNDATED; MAX_GAPS];
        for (d, got) in da.iter_mut().zip(self.gap_dates()) {
            *d = date_of(got);
        }
        for (d, got) in db.iter_mut().zip(theirs.gap_dates()) {
            *d = date_of(got);
        }
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            let lo = a[i].0.max(b[j].0);
            let hi = a[i].1.min(b[j].1);
            if lo <= hi {
                both[n] = (lo, hi, da[i].min(db[j]));
                n += 1;
            }
            if a[i].1 < b[j].1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        self.gap_len = 0;
        self.gaps = NO_GAPS;
        let keep = n.min(usize::from(self.budget));
        for &(lo, hi, date) in &both[n - keep..n] {
            self.push_gap(lo, hi, date);
        }
    }

    /// Changes the width of a window that accepted something: counters that
    /// leave it join the gaps as on a slide; counters that enter it from
    /// below are new only if they were in a gap (else their bit is set, so
    /// they stay rejected).
    fn resize(&mut self, width: u32) {
        if self.is_empty() || width == self.width {
            self.width = width;
            self.mask();
            return;
        }
        let old_bottom = self.bottom();
        if width < self.width {
            let new_bottom = self.highest.saturating_sub(u64::from(width) - 1);
            self.record_leaving(old_bottom, new_bottom, UNDATED);
            self.width = width;
            self.mask();
        } else {
            self.width = width;
            let new_bottom = self.bottom();
            for c in (new_bottom..old_bottom).rev() {
                match self.gap_of(c) {
                    Some(i) => self.take_from_gap(i, c),
                    None => self.set_bit(self.highest - c),
                }
            }
        }
    }

    /// Records as gaps dated `date` the never-accepted counters of
    /// `[from, to)` leaving the window (those up to the highest by their
    /// bits, those above it all: a block the window jumps over).
    fn record_leaving(&mut self, from: u64, to: u64, date: u32) {
        if self.budget == 0 || to <= from {
            return;
        }
        let last = to - 1;
        let mut run: Option<Gap> = None;
        let in_window_end = last.min(self.highest);
        let mut c = from;
        while c <= in_window_end {
            if self.bit(self.highest - c) {
                if let Some((lo, hi)) = run.take() {
                    self.push_gap(lo, hi, date);
                }
            } else {
                run = Some(run.map_or((c, c), |(lo, _)| (lo, c)));
            }
            if c == u64::MAX {
                break;
            }
            c += 1;
        }
        if last > self.highest {
            let start = self.highest + 1;
            run = Some(run.map_or((start, last), |(lo, _)| (lo, last)));
        }
        if let Some((lo, hi)) = run {
            self.push_gap(lo, hi, date);
        }
    }

    /// Moves the window up to `to` (above the highest), recording the
    /// counters that leave it as gaps dated `date`; does not mark `to`.
    fn slide(&mut self, to: u64, date: u32) {
        let from = self.bottom();
        let new_bottom = to.saturating_sub(u64::from(self.width) - 1);
        self.record_leaving(from, new_bottom, date);
        self.shift(to - self.highest);
        self.highest = to;
    }

    /// The highest counter accepted, if any.
    #[must_use]
    pub fn highest(&self) -> Option<u64> {
        if self.is_empty() {
            None
        } else {
            Some(self.highest)
        }
    }

    /// `(width, highest, bitmap)`, to persist across receiver restarts,
    /// together with [`ReplayWindow::gaps`].
    #[must_use]
    pub const fn state(&self) -> (u32, u64, [u64; WORDS]) {
        (self.width, self.highest, self.bits)
    }

    fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }

    fn bit(&self, i: u64) -> bool {
        // Callers pass i < width <= MAX_WINDOW.
        let (w, b) = ((i / 64) as usize, i % 64);
        self.bits[w] >> b & 1 == 1
    }

    fn set_bit(&mut self, i: u64) {
        let (w, b) = ((i / 64) as usize, i % 64);
        self.bits[w] |= 1 << b;
    }

    /// Whether `counter` would be accepted, without changing the window.
    ///
    /// # Errors
    /// [`Error::Duplicate`] when it was accepted before and is inside the
    /// window, [`Error::Replay`] when it is below the window and in no gap.
    pub fn check(&self, counter: u64) -> Result<(), Error> {
        if self.is_empty() || counter > self.highest {
            return Ok(());
        }
        let age = self.highest - counter;
        if age < u64::from(self.width) {
            if self.bit(age) {
                Err(Error::Duplicate)
            } else {
                Ok(())
            }
        } else if self.gap_len > 0 && self.gap_of(counter).is_some() {
            Ok(())
        } else {
            Err(Error::Replay)
        }
    }

    /// Records `counter` as accepted. Call only after [`ReplayWindow::check`]
    /// passed and the message's tag verified. Gaps it opens are undated
    /// (see [`ReplayWindow::update_dated`]).
    pub fn update(&mut self, counter: u64) {
        self.update_dated(counter, None);
    }

    /// [`ReplayWindow::update`] for a message that carried the
    /// authenticated `timestamp`: the gaps its counter opens below the
    /// window are dated with it. A sender's counters and timestamps both
    /// increase, so every message in such a gap was sealed before this one
    /// and carries at most this timestamp; [`ReplayWindow::expire_gaps`]
    /// uses that to drop gaps whose messages would all be too old.
    pub fn update_dated(&mut self, counter: u64, timestamp: Option<u64>) {
        if self.is_empty() {
            self.highest = counter;
            self.bits = [0; WORDS];
            self.bits[0] = 1;
            self.gap_len = 0;
            self.gaps = NO_GAPS;
            return;
        }
        if counter > self.highest {
            self.slide(counter, date_of(timestamp));
            self.bits[0] |= 1;
        } else {
            let age = self.highest - counter;
            if age < u64::from(self.width) {
                self.set_bit(age);
            } else if let Some(i) = self.gap_of(counter) {
                self.take_from_gap(i, counter);
            }
        }
        self.mask();
    }

    /// The age bound of the gaps, for a receiver with a maximum age: drops
    /// every gap dated before `now - max_age - max_skew`. A message in such
    /// a gap carries at most that date, so it would be rejected as
    /// `expired` anyway (the skew is a margin for a sender clock that steps
    /// back a little); dropping the gap frees its place in the budget and,
    /// with the last one, its memory. Gaps not dated yet (restored from a
    /// snapshot, left by a merge or a width change, or opened by a message
    /// without a timestamp) are dated `now`: they exist now, so they lie
    /// below a message accepted by now, which the future bound kept within
    /// `max_skew` of the receiver's clock. Never makes a counter acceptable.
    pub fn expire_gaps(&mut self, now: u64, max_age: u64, max_skew: u64) {
        if self.gap_len == 0 {
            return;
        }
        let horizon = now.saturating_sub(max_age).saturating_sub(max_skew);
        let mut i = 0;
        while i < usize::from(self.gap_len) {
            let slots = self.gap_slots();
            if slots.dates[i] == UNDATED {
                slots.dates[i] = date_of(Some(now));
            }
            if u64::from(slots.dates[i]) < horizon {
                self.remove_gap(i);
            } else {
                i += 1;
            }
        }
    }

    /// [`ReplayWindow::check`], then [`ReplayWindow::update`] if it passed.
    ///
    /// # Errors
    /// As [`ReplayWindow::check`].
    pub fn check_and_update(&mut self, counter: u64) -> Result<(), Error> {
        self.check(counter)?;
        self.update(counter);
        Ok(())
    }

    /// Moves every bit `n` places towards "older".
    fn shift(&mut self, n: u64) {
        if n >= u64::from(MAX_WINDOW) {
            self.bits = [0; WORDS];
            return;
        }
        // n < 256 here.
        let words = (n / 64) as usize;
        let bits = (n % 64) as u32;
        for i in (0..WORDS).rev() {
            let hi = if i >= words { self.bits[i - words] } else { 0 };
            let lo = if bits != 0 && i > words { self.bits[i - words - 1] >> (64 - bits) } else { 0 };
            self.bits[i] = if bits == 0 { hi } else { (hi << bits) | lo };
        }
    }

    /// Clears bits beyond the width, so state comparisons are exact.
    fn mask(&mut self) {
        for (i, w) in self.bits.iter_mut().enumerate() {
            let start = i as u32 * 64;
            if start >= self.width {
                *w = 0;
            } else if self.width - start < 64 {
                *w &= (1u64 << (self.width - start)) - 1;
            }
        }
    }
}

/// The replay state of one (key id, sender id), to save across receiver
/// restarts (see `SECURITY.md`, "Receiver restarts").
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SenderSnapshot {
    /// Key id.
    pub key_id: u32,
    /// Sender id.
    pub sender_id: u32,
    /// Window width.
    pub width: u32,
    /// Highest counter accepted.
    pub highest: u64,
    /// Bitmap of accepted counters: bit `i` is counter `highest - i`.
    pub bits: [u64; WINDOW_WORDS],
    /// Gaps below the window: the first `gap_count` entries, ascending (the
    /// rest zero). Absent in snapshots saved before gaps existed.
    #[serde(default)]
    pub gaps: [Gap; MAX_GAPS],
    /// Entries of `gaps` in use (0 to [`MAX_GAPS`]).
    #[serde(default)]
    pub gap_count: u8,
}

/// A record's bytes ([`SenderSnapshot::to_bytes`]): a slice of 52 to
/// [`SenderSnapshot::MAX_ENCODED_LEN`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordBytes {
    buf: [u8; SenderSnapshot::MAX_ENCODED_LEN],
    len: usize,
}

impl core::ops::Deref for RecordBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl AsRef<[u8]> for RecordBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl SenderSnapshot {
    /// Bytes of a record without gaps: key id, sender id, width (u32
    /// each), highest (u64), then the bitmap words (u64 each), all
    /// little-endian; the format of `docs/STATE.md`, shared by the
    /// replay-state file and the C, JS and Python snapshot APIs. Version 2
    /// of the record puts the number of gaps `n` in the width field's top
    /// byte and appends `n` gaps of 16 bytes (lo, hi as u64 LE): a record
    /// without gaps is byte for byte a version 1 record, and a version 1
    /// reader refuses one with gaps (its width field is out of range).
    pub const ENCODED_LEN: usize = 4 + 4 + 4 + 8 + 8 * WINDOW_WORDS;
    /// Bytes of one gap in a record.
    pub const GAP_LEN: usize = 16;
    /// Bytes of the longest record (with [`MAX_GAPS`] gaps).
    pub const MAX_ENCODED_LEN: usize = Self::ENCODED_LEN + Self::GAP_LEN * MAX_GAPS;

    /// The snapshot of one sender's window.
    #[must_use]
    pub fn of(key_id: u32, sender_id: u32, window: &ReplayWindow) -> Self {
        let (width, highest, bits) = window.state();
        let mut gaps = [(0, 0); MAX_GAPS];
        let g = window.gaps();
        gaps[..g.len()].copy_from_slice(g);
        SenderSnapshot { key_id, sender_id, width, highest, bits, gaps, gap_count: g.len() as u8 }
    }

    /// The gaps in use.
    #[must_use]
    pub fn gaps(&self) -> &[Gap] {
        &self.gaps[..usize::from(self.gap_count).min(MAX_GAPS)]
    }

    /// Bytes of this record: [`SenderSnapshot::ENCODED_LEN`] plus 16 per gap.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        Self::ENCODED_LEN + Self::GAP_LEN * self.gaps().len()
    }

    /// The record's bytes.
    #[must_use]
    pub fn to_bytes(&self) -> RecordBytes {
        let mut out = [0u8; Self::MAX_ENCODED_LEN];
        let gaps = self.gaps();
        let width_field = (self.width & 0x00ff_ffff) | ((gaps.len() as u32) << 24);
        out[0..4].copy_from_slice(&self.key_id.to_le_bytes());
        out[4..8].copy_from_slice(&self.sender_id.to_le_bytes());
        out[8..12].copy_from_slice(&width_field.to_le_bytes());
        out[12..20].copy_from_slice(&self.highest.to_le_bytes());
        for (i, w) in self.bits.iter().enumerate() {
            out[20 + 8 * i..28 + 8 * i].copy_from_slice(&w.to_le_bytes());
        }
        for (i, (lo, hi)) in gaps.iter().enumerate() {
            let at = Self::ENCODED_LEN + Self::GAP_LEN * i;
            out[at..at + 8].copy_from_slice(&lo.to_le_bytes());
            out[at + 8..at + 16].copy_from_slice(&hi.to_le_bytes());
        }
        RecordBytes { buf: out, len: self.encoded_len() }
    }

    /// The length of the record that starts `bytes`, read from its width
    /// field, or `None` when fewer than 12 bytes are given or the gap count
    /// is above [`MAX_GAPS`].
    #[must_use]
    pub fn record_len(bytes: &[u8]) -> Option<usize> {
        let n = usize::from(*bytes.get(11)?);
        if n > MAX_GAPS {
            return None;
        }
        Some(Self::ENCODED_LEN + Self::GAP_LEN * n)
    }

    /// A record from its bytes, validated as [`ReplayWindow::from_parts`]
    /// does (the window bits beyond the width are cleared).
    ///
    /// # Errors
    /// [`Error::InvalidSnapshot`] for a wrong length or an invalid window.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if Self::record_len(bytes) != Some(bytes.len()) {
            return Err(Error::InvalidSnapshot);
        }
        let u32_at = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&bytes[i..i + 4]);
            u32::from_le_bytes(b)
        };
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let mut bits = [0u64; WINDOW_WORDS];
        for (i, w) in bits.iter_mut().enumerate() {
            *w = u64_at(20 + 8 * i);
        }
        let width_field = u32_at(8);
        let gap_count = (width_field >> 24) as u8;
        let mut gaps = [(0, 0); MAX_GAPS];
        for (i, g) in gaps.iter_mut().enumerate().take(usize::from(gap_count)) {
            let at = Self::ENCODED_LEN + Self::GAP_LEN * i;
            *g = (u64_at(at), u64_at(at + 8));
        }
        let snap = SenderSnapshot {
            key_id: u32_at(0),
            sender_id: u32_at(4),
            width: width_field & 0x00ff_ffff,
            highest: u64_at(12),
            bits,
            gaps,
            gap_count,
        };
        let window = snap.window()?;
        Ok(SenderSnapshot::of(snap.key_id, snap.sender_id, &window))
    }

    /// A record as the C binding stores it: either exactly the record, or a
    /// slot of [`SenderSnapshot::MAX_ENCODED_LEN`] bytes holding the record
    /// (its length read from its width field) followed only by zeros.
    ///
    /// # Errors
    /// As [`SenderSnapshot::from_bytes`], and [`Error::InvalidSnapshot`]
    /// for any other length or padding that is not all zero.
    pub fn from_slot(bytes: &[u8]) -> Result<Self, Error> {
        let n = Self::record_len(bytes).ok_or(Error::InvalidSnapshot)?;
        if n != bytes.len() && bytes.len() != Self::MAX_ENCODED_LEN {
            return Err(Error::InvalidSnapshot);
        }
        let (record, padding) = bytes.split_at(n.min(bytes.len()));
        if padding.iter().any(|b| *b != 0) {
            return Err(Error::InvalidSnapshot);
        }
        Self::from_bytes(record)
    }

    /// The records of `bytes`, one after the other (as the snapshot APIs
    /// concatenate them); stops after the first invalid one.
    #[must_use]
    pub const fn records(bytes: &[u8]) -> Records<'_> {
        Records { rest: bytes }
    }

    /// The window this snapshot describes.
    ///
    /// # Errors
    /// As [`ReplayWindow::from_parts`].
    pub fn window(&self) -> Result<ReplayWindow, Error> {
        if usize::from(self.gap_count) > MAX_GAPS {
            return Err(Error::InvalidSnapshot);
        }
        ReplayWindow::from_parts(self.width, self.highest, self.bits, self.gaps())
    }
}

/// Iterator over concatenated records ([`SenderSnapshot::records`]).
#[derive(Clone, Debug)]
pub struct Records<'a> {
    rest: &'a [u8],
}

impl Iterator for Records<'_> {
    type Item = Result<SenderSnapshot, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = match SenderSnapshot::record_len(self.rest) {
            Some(n) if n <= self.rest.len() => {
                let (record, rest) = self.rest.split_at(n);
                self.rest = rest;
                SenderSnapshot::from_bytes(record)
            }
            _ => Err(Error::InvalidSnapshot),
        };
        if parsed.is_err() {
            self.rest = &[];
        }
        Some(parsed)
    }
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow {
            highest: 0,
            bits: [0; WORDS],
            width: DEFAULT_WINDOW,
            gap_len: 0,
            budget: DEFAULT_GAPS as u8,
            gaps: NO_GAPS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;
    #[allow(unused_imports)]
    use std::{format, prelude::v1::*, vec};

    /// The obvious model: every counter ever accepted, and the highest.
    fn model_check(seen: &BTreeSet<u64>, width: u32, c: u64) -> Result<(), Error> {
        match seen.iter().next_back() {
            None => Ok(()),
            Some(&h) if c > h => Ok(()),
            Some(&h) if h - c >= u64::from(width) => Err(Error::Replay),
            Some(_) if seen.contains(&c) => Err(Error::Duplicate),
            Some(_) => Ok(()),
        }
    }

    #[test]
    fn basic() {
        let mut w = ReplayWindow::new(64).unwrap();
        assert_eq!(w.check_and_update(100), Ok(()));
        assert_eq!(w.check_and_update(100), Err(Error::Duplicate));
        assert_eq!(w.check_and_update(98), Ok(()));
        assert_eq!(w.check_and_update(98), Err(Error::Duplicate));
        assert_eq!(w.check_and_update(36), Err(Error::Replay));
        assert_eq!(w.check_and_update(37), Ok(()));
        assert_eq!(w.check_and_update(1000), Ok(()));
        assert_eq!(w.check_and_update(100), Err(Error::Replay));
        assert_eq!(w.check_and_update(u64::MAX), Ok(()));
        assert_eq!(w.check_and_update(0), Err(Error::Replay));
    }

    #[test]
    fn counter_zero_is_accepted_once() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.check_and_update(0), Ok(()));
        assert_eq!(w.check_and_update(0), Err(Error::Duplicate));
        assert_eq!(w.highest(), Some(0));
    }

    #[test]
    fn reordering_inside_window_accepted_exactly_once() {
        let mut w = ReplayWindow::new(256).unwrap();
        let mut order: Vec<u64> = (0..256).rev().collect();
        order.extend(0..256);
        let accepted = order.iter().filter(|c| w.check_and_update(**c).is_ok()).count();
        assert_eq!(accepted, 256);
    }

    #[test]
    fn widths_out_of_range() {
        assert_eq!(ReplayWindow::new(0), Err(Error::InvalidConfig));
        assert_eq!(ReplayWindow::new(MAX_WINDOW + 1), Err(Error::InvalidConfig));
    }

    #[test]
    fn from_state_validates_and_masks() {
        assert_eq!(ReplayWindow::from_state(64, 10, [0; WORDS]), Err(Error::InvalidSnapshot));
        assert_eq!(ReplayWindow::from_state(0, 10, [1, 0, 0, 0]), Err(Error::InvalidSnapshot));
        assert_eq!(ReplayWindow::from_state(300, 10, [1, 0, 0, 0]), Err(Error::InvalidSnapshot));
        let w = ReplayWindow::from_state(4, 10, [u64::MAX; WORDS]).unwrap();
        assert_eq!(w.state(), (4, 10, [0b1111, 0, 0, 0]));
    }

    #[test]
    fn merging_an_older_state_never_rolls_back() {
        let mut live = ReplayWindow::new(64).unwrap();
        for c in [1, 2, 3, 100, 101] {
            live.check_and_update(c).unwrap();
        }
        let mut old = ReplayWindow::new(64).unwrap();
        for c in [1, 2, 50] {
            old.check_and_update(c).unwrap();
        }
        let mut merged = live.clone();
        merged.merge(&old);
        assert_eq!(merged.highest(), Some(101));
        assert_eq!(merged.check(100), Err(Error::Duplicate));
        assert_eq!(merged.check(50), Err(Error::Duplicate));
        assert_eq!(merged.check(3), Err(Error::Replay));
        // And the other way round.
        let mut merged2 = old.clone();
        merged2.merge(&live);
        assert_eq!(merged2.state().1, 101);
        assert_eq!(merged2.check(101), Err(Error::Duplicate));
        assert_eq!(merged2.check(50), Err(Error::Duplicate));
        assert_eq!(merged2.check(99), Ok(()));
    }

    #[test]
    fn snapshot_bytes_round_trip() {
        let s = SenderSnapshot {
            key_id: 7,
            sender_id: 9,
            width: 128,
            highest: u64::MAX - 1,
            bits: [5, 1 << 63, 0, 0],
            gaps: [(0, 0); MAX_GAPS],
            gap_count: 0,
        };
        let b = s.to_bytes();
        assert_eq!(b.len(), SenderSnapshot::ENCODED_LEN);
        assert_eq!(SenderSnapshot::from_bytes(&b), Ok(s));
        assert_eq!(SenderSnapshot::from_bytes(&b[1..]), Err(Error::InvalidSnapshot));
        let empty = SenderSnapshot { bits: [0; 4], ..SenderSnapshot::from_bytes(&b).unwrap() };
        assert_eq!(SenderSnapshot::from_bytes(&empty.to_bytes()), Err(Error::InvalidSnapshot));
    }

    #[test]
    fn snapshot_with_gaps_round_trips_and_is_validated() {
        let mut w = ReplayWindow::new(8).unwrap();
        for c in [10, 12, 30, 40, 1000] {
            w.check_and_update(c).unwrap();
        }
        // Five gaps (3..=9 below the first) over a budget of 4: the lowest is gone.
        assert_eq!(w.gaps(), &[(11, 11), (13, 29), (31, 39), (41, 992)][..]);
        let s = SenderSnapshot::of(1, 2, &w);
        let b = s.to_bytes();
        assert_eq!(b.len(), SenderSnapshot::ENCODED_LEN + 4 * SenderSnapshot::GAP_LEN);
        assert_eq!(b[11], 4);
        let back = SenderSnapshot::from_bytes(&b).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.window().unwrap(), w);
        // Two records back to back, as the snapshot APIs write them.
        let plain = SenderSnapshot::of(1, 3, &ReplayWindow::from_state(8, 5, [1, 0, 0, 0]).unwrap());
        let mut both = b.to_vec();
        both.extend_from_slice(&plain.to_bytes());
        let got: Result<Vec<_>, _> = SenderSnapshot::records(&both).collect();
        assert_eq!(got, Ok(vec![s.clone(), plain.clone()]));
        let cut: Vec<_> = SenderSnapshot::records(&both[..both.len() - 1]).collect();
        assert_eq!(cut.last(), Some(&Err(Error::InvalidSnapshot)));
        // Invalid gap lists: overlapping, adjacent, descending, inside the
        // window, reversed, too many.
        for bad in [&[(11, 11), (11, 12)][..], &[(3, 10), (11, 11)], &[(13, 29), (3, 9)], &[(3, 993)], &[(9, 3)]] {
            let mut gaps = [(0, 0); MAX_GAPS];
            gaps[..bad.len()].copy_from_slice(bad);
            let t = SenderSnapshot { gaps, gap_count: bad.len() as u8, ..s.clone() };
            assert_eq!(SenderSnapshot::from_bytes(&t.to_bytes()), Err(Error::InvalidSnapshot), "{bad:?}");
        }
        // In a zero-padded slot (the C binding's form).
        let mut slot = [0u8; SenderSnapshot::MAX_ENCODED_LEN];
        slot[..plain.encoded_len()].copy_from_slice(&plain.to_bytes());
        assert_eq!(SenderSnapshot::from_slot(&slot).as_ref(), Ok(&plain));
        assert_eq!(SenderSnapshot::from_slot(&slot[..52]).as_ref(), Ok(&plain));
        assert_eq!(SenderSnapshot::from_slot(&slot[..53]), Err(Error::InvalidSnapshot));
        assert_eq!(SenderSnapshot::from_slot(&b), Ok(s.clone()));
        slot[SenderSnapshot::MAX_ENCODED_LEN - 1] = 1;
        assert_eq!(SenderSnapshot::from_slot(&slot), Err(Error::InvalidSnapshot));
        assert_eq!(SenderSnapshot::from_slot(&b[..60]), Err(Error::InvalidSnapshot));
        let mut long = b.to_vec();
        long[11] = MAX_GAPS as u8 + 1;
        long.extend_from_slice(&[0; 16]);
        assert_eq!(SenderSnapshot::from_bytes(&long), Err(Error::InvalidSnapshot));
    }

    #[test]
    fn far_behind_counters_are_accepted_once() {
        // A broker restart: 200..=399 held back, newer ones sent first.
        let mut w = ReplayWindow::new(64).unwrap();
        let mut order: Vec<u64> = (0..200).collect();
        order.extend(400..1000);
        order.extend(200..400);
        let accepted = order.iter().filter(|c| w.check_and_update(**c).is_ok()).count();
        assert_eq!(accepted, 1000);
        assert!(w.gaps().is_empty());
        // Everything again: all rejected.
        assert!(order.iter().all(|c| w.check_and_update(*c).is_err()));
        // The same with no gaps: the held-back block is lost.
        let mut plain = ReplayWindow::with_gaps(64, 0).unwrap();
        let accepted = order.iter().filter(|c| plain.check_and_update(**c).is_ok()).count();
        assert_eq!(accepted, 800);
    }

    #[test]
    fn a_skipped_block_costs_one_gap_and_overflow_drops_the_lowest() {
        let mut w = ReplayWindow::with_gaps(4, 2).unwrap();
        w.check_and_update(10).unwrap(); // window 7..=10
        w.check_and_update(1_000_000).unwrap(); // skips 11..=999_996
        assert_eq!(w.gaps(), &[(7, 9), (11, 999_996)][..]);
        assert_eq!(w.check_and_update(500_000), Ok(()));
        // Splitting made three gaps: the lowest, (7, 9), is dropped.
        assert_eq!(w.gaps(), &[(11, 499_999), (500_001, 999_996)][..]);
        assert_eq!(w.check(8), Err(Error::Replay));
        assert_eq!(w.check_and_update(500_000), Err(Error::Replay));
        assert_eq!(w.check_and_update(11), Ok(()));
        assert_eq!(w.gaps(), &[(12, 499_999), (500_001, 999_996)][..]);
        assert_eq!(w.check(1_000_000), Err(Error::Duplicate));
    }

    #[test]
    fn gap_storage_is_freed_when_the_last_gap_closes() {
        let mut w = ReplayWindow::new(4).unwrap();
        w.check_and_update(0).unwrap();
        w.check_and_update(6).unwrap();
        assert_eq!(w.gaps(), &[(1, 2)][..]);
        w.check_and_update(1).unwrap();
        w.check_and_update(2).unwrap();
        assert!(w.gaps().is_empty());
        #[cfg(feature = "alloc")]
        assert!(w.gaps.is_none());
        assert_eq!(w, {
            let mut v = ReplayWindow::new(4).unwrap();
            for c in [0, 1, 2, 6] {
                v.check_and_update(c).unwrap();
            }
            v
        });
    }

    #[test]
    fn merge_of_different_widths_keeps_what_the_narrow_one_rejected() {
        // The narrow window accepted 90 and has no gap for it; the wide one
        // never saw the sender. After the merge 90 must stay rejected.
        let mut narrow = ReplayWindow::with_gaps(4, 0).unwrap();
        for c in [90, 100] {
            narrow.check_and_update(c).unwrap();
        }
        let mut wide = ReplayWindow::new(128).unwrap();
        wide.merge(&narrow);
        assert_eq!(wide.width(), 128);
        assert!(wide.check(90).is_err());
        assert!(wide.check(96).is_err());
        assert_eq!(wide.check(97), Ok(()));
        assert_eq!(wide.check(101), Ok(()));
        // With gaps, what was in a gap of the narrow one stays acceptable.
        let mut narrow = ReplayWindow::new(4).unwrap();
        for c in [90, 100] {
            narrow.check_and_update(c).unwrap();
        }
        assert_eq!(narrow.gaps(), &[(87, 89), (91, 96)][..]);
        let mut wide = ReplayWindow::new(128).unwrap();
        wide.merge(&narrow);
        assert_eq!(wide.check(90), Err(Error::Duplicate));
        assert_eq!(wide.check(91), Ok(()));
        assert_eq!(wide.check(96), Ok(()));
        assert_eq!(wide.check(87), Ok(()));
        assert!(wide.check(86).is_err());
        assert!(wide.gaps().is_empty());
    }

    #[test]
    fn gap_storage_is_80_bytes() {
        assert_eq!(core::mem::size_of::<GapSlots>(), MAX_GAPS * 20);
    }

    #[test]
    fn gaps_older_than_the_age_limit_are_dropped() {
        // Max age 60 s, skew 5 s; the sender stamps counter c at 1000 + c.
        let mut w = ReplayWindow::new(1).unwrap();
        w.update_dated(10, Some(1010));
        w.update_dated(20, Some(1020)); // gap 11..=19: sealed before 20
        w.update_dated(100, Some(1100)); // gap 21..=99
        assert_eq!(w.gaps(), &[(11, 19), (21, 99)][..]);
        assert_eq!(w.gap_dates().collect::<Vec<_>>(), [Some(1020), Some(1100)]);
        // Horizon 1085 - 60 - 5 = 1020: the first gap is not before it.
        w.expire_gaps(1085, 60, 5);
        assert_eq!(w.gaps().len(), 2);
        w.expire_gaps(1086, 60, 5);
        assert_eq!(w.gaps(), &[(21, 99)][..]);
        assert_eq!(w.check(12), Err(Error::Replay));
        assert_eq!(w.check(22), Ok(()));
        w.expire_gaps(1165, 60, 5); // horizon 1100: 1100 is not before it
        assert_eq!(w.gaps(), &[(21, 99)][..]);
        w.expire_gaps(1166, 60, 5);
        assert!(w.gaps().is_empty());
        #[cfg(feature = "alloc")]
        assert!(w.gaps.is_none(), "memory freed with the last gap");
        // Undated gaps (a restore) are dated at the first expiry run.
        let mut r = ReplayWindow::new(4).unwrap();
        r.merge(&ReplayWindow::from_parts(4, 100, [1, 0, 0, 0], &[(5, 50)]).unwrap());
        assert_eq!(r.gap_dates().collect::<Vec<_>>(), [None]);
        r.expire_gaps(5000, 60, 5);
        assert_eq!(r.gap_dates().collect::<Vec<_>>(), [Some(5000)]);
        r.expire_gaps(5065, 60, 5);
        assert_eq!(r.gaps().len(), 1);
        r.expire_gaps(5066, 60, 5);
        assert!(r.gaps().is_empty());
        // Coalescing keeps the later date; a merge piece the earlier one.
        let mut c = ReplayWindow::new(2).unwrap();
        c.update_dated(0, Some(1));
        c.update_dated(5, Some(7)); // gap 1..=3 dated 7
        c.update_dated(6, Some(9)); // 4 leaves: joins, dated 9
        assert_eq!(c.gaps(), &[(1, 4)][..]);
        assert_eq!(c.gap_dates().collect::<Vec<_>>(), [Some(9)]);
    }

    /// Counters in random order with timestamps rising with the counter.
    fn timed_counters() -> impl Strategy<Value = Vec<(u64, u64)>> {
        // (counter, receiver clock advance in seconds)
        proptest::collection::vec((prop_oneof![6 => 0u64..700, 1 => 700u64..5000], 0u64..30), 0..300)
    }

    proptest! {
        /// Dropping gaps by age never changes a verdict of a receiver that
        /// checks the age (as the opener does, before the window), for a
        /// sender whose timestamps rise with its counters, and never keeps
        /// more gaps than the window without the age bound.
        #[test]
        fn the_age_bound_changes_no_verdict(
            width in widths(),
            budget in 0u32..=MAX_GAPS as u32,
            ops in timed_counters(),
            max_age in 1u64..200,
            skew in 0u64..20,
            stamp_div in 1u64..20,
        ) {
            let mut aged = ReplayWindow::with_gaps(width, budget).unwrap();
            let mut plain = ReplayWindow::with_gaps(width, budget).unwrap();
            let mut now = 10_000u64;
            let mut accepted = BTreeSet::new();
            for (c, dt) in ops {
                now += dt;
                // Sealed at 10_000 + c / stamp_div: at most `now + skew`
                // once the receiver's clock passed it (the future bound).
                let ts = 10_000 + c / stamp_div;
                if ts > now + skew {
                    continue;
                }
                let expired = now - ts.min(now) > max_age;
                let a = if expired { Err(Error::Expired) } else { aged.check(c) };
                let p = if expired { Err(Error::Expired) } else { plain.check(c) };
                prop_assert_eq!(a, p, "counter {} at {}", c, now);
                if a.is_ok() {
                    prop_assert!(accepted.insert(c), "counter {} accepted twice", c);
                    aged.update_dated(c, Some(ts));
                    aged.expire_gaps(now, max_age, skew);
                    plain.update_dated(c, Some(ts));
                }
                prop_assert!(aged.gaps().len() <= plain.gaps().len());
            }
        }
    }

    /// The model with gaps: every counter accepted, and a floor. A counter
    /// is new when above the highest, or never accepted and not below the
    /// floor; the floor starts at the first window's bottom and rises past
    /// the lowest run of never-accepted counters below the window whenever
    /// there are more runs than the budget.
    struct GapModel {
        seen: BTreeSet<u64>,
        floor: u64,
        width: u32,
        budget: usize,
    }

    impl GapModel {
        fn new(width: u32, budget: usize) -> Self {
            GapModel { seen: BTreeSet::new(), floor: 0, width, budget }
        }

        fn check(&self, c: u64) -> Result<(), Error> {
            let Some(&h) = self.seen.iter().next_back() else { return Ok(()) };
            let inside = h - c.min(h) < u64::from(self.width);
            if c > h {
                Ok(())
            } else if self.seen.contains(&c) {
                Err(if inside { Error::Duplicate } else { Error::Replay })
            } else if inside || c >= self.floor {
                Ok(())
            } else {
                Err(Error::Replay)
            }
        }

        fn runs(&self) -> Vec<Gap> {
            let Some(&h) = self.seen.iter().next_back() else { return vec![] };
            let bottom = h.saturating_sub(u64::from(self.width) - 1);
            let mut runs = vec![];
            let mut start = self.floor;
            for &s in self.seen.range(self.floor..bottom) {
                if s > start {
                    runs.push((start, s - 1));
                }
                start = s + 1;
            }
            if start < bottom {
                runs.push((start, bottom - 1));
            }
            runs
        }

        fn accept(&mut self, c: u64) {
            if self.seen.is_empty() {
                self.floor = c.saturating_sub(u64::from(self.width) - 1);
            }
            self.seen.insert(c);
            loop {
                let runs = self.runs();
                if runs.len() <= self.budget {
                    break;
                }
                self.floor = runs[0].1 + 1;
            }
        }
    }

    /// Counters that exercise the gaps: mostly near each other, sometimes
    /// far ahead (a skipped block) or far behind (held back).
    fn counters() -> impl Strategy<Value = Vec<u64>> {
        proptest::collection::vec(prop_oneof![6 => 0u64..700, 1 => 700u64..5000], 0..300)
    }

    /// Narrow windows half the time, so that many counters fall below them.
    fn widths() -> impl Strategy<Value = u32> {
        prop_oneof![1u32..=16, 1u32..=MAX_WINDOW]
    }

    proptest! {
        #[test]
        fn matches_gap_model(width in widths(), budget in 0usize..=MAX_GAPS, ops in counters()) {
            let mut w = ReplayWindow::with_gaps(width, budget as u32).unwrap();
            let mut m = GapModel::new(width, budget);
            for c in ops {
                let expect = m.check(c);
                prop_assert_eq!(w.check_and_update(c), expect, "counter {}", c);
                if expect.is_ok() {
                    m.accept(c);
                }
                prop_assert_eq!(w.gaps(), &m.runs()[..]);
            }
        }

        #[test]
        fn never_accepts_a_counter_twice(
            width in widths(),
            budget in 0u32..=MAX_GAPS as u32,
            ops in counters(),
            restore_at in 0usize..300,
        ) {
            let mut w = ReplayWindow::with_gaps(width, budget).unwrap();
            let mut accepted = BTreeSet::new();
            for (i, c) in ops.into_iter().enumerate() {
                if i == restore_at {
                    // A save and restore in the middle changes nothing.
                    if let Ok(back) = SenderSnapshot::from_bytes(&SenderSnapshot::of(0, 0, &w).to_bytes()) {
                        let mut fresh = ReplayWindow::with_gaps(width, budget).unwrap();
                        fresh.merge(&back.window().unwrap());
                        prop_assert_eq!(&fresh, &w);
                    }
                }
                if w.check_and_update(c).is_ok() {
                    prop_assert!(accepted.insert(c), "counter {} accepted twice", c);
                }
                // Every counter accepted so far is rejected now.
                for &a in &accepted {
                    prop_assert!(w.check(a).is_err(), "counter {} would be accepted twice", a);
                }
            }
        }

        #[test]
        fn merge_rejects_whatever_either_side_rejects(
            wa in widths(),
            wb in widths(),
            ga in 0u32..=MAX_GAPS as u32,
            gb in 0u32..=MAX_GAPS as u32,
            a in counters(),
            b in counters(),
        ) {
            let mut x = ReplayWindow::with_gaps(wa, ga).unwrap();
            let mut y = ReplayWindow::with_gaps(wb, gb).unwrap();
            for c in &a { let _ = x.check_and_update(*c); }
            for c in &b { let _ = y.check_and_update(*c); }
            let mut m = x.clone();
            m.merge(&y);
            prop_assert_eq!(m.width(), wa);
            prop_assert!(m.gaps().len() <= ga as usize);
            for probe in 0..5200u64 {
                if x.check(probe).is_err() || y.check(probe).is_err() {
                    prop_assert!(m.check(probe).is_err(), "probe {}", probe);
                }
            }
            // Merging one side with a copy of itself loses nothing.
            let mut same = x.clone();
            same.merge(&x);
            prop_assert_eq!(&same, &x);
        }

        #[test]
        fn merge_accepts_only_what_neither_accepted(
            width in 1u32..=MAX_WINDOW,
            a in proptest::collection::vec(0u64..600, 1..100),
            b in proptest::collection::vec(0u64..600, 1..100),
            probe in 0u64..700,
        ) {
            let mut wa = ReplayWindow::new(width).unwrap();
            let mut wb = ReplayWindow::new(width).unwrap();
            for c in &a { let _ = wa.check_and_update(*c); }
            for c in &b { let _ = wb.check_and_update(*c); }
            let mut m = wa.clone();
            m.merge(&wb);
            // Whatever either window rejects, the merge rejects too.
            if wa.check(probe).is_err() || wb.check(probe).is_err() {
                prop_assert!(m.check(probe).is_err());
            }
        }

        #[test]
        fn matches_model(width in 1u32..=MAX_WINDOW, ops in proptest::collection::vec(0u64..600, 0..300)) {
            // Without gaps: the plain bitmap window.
            let mut w = ReplayWindow::with_gaps(width, 0).unwrap();
            let mut seen = BTreeSet::new();
            for c in ops {
                let expect = model_check(&seen, width, c);
                prop_assert_eq!(w.check_and_update(c), expect, "counter {}", c);
                if expect.is_ok() {
                    seen.insert(c);
                }
            }
        }
    }
}
