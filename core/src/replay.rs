//! The receiver's sliding replay window, one per (key id, sender id).
//!
//! The window remembers the highest counter accepted and, as a bitmap, which
//! of the `width - 1` counters just below it were accepted too. A counter
//! above the highest is new; one inside the window is new unless its bit is
//! set (a duplicate); one below the window cannot be judged and is rejected
//! as a replay. Messages reordered by less than the width are accepted
//! exactly once.
//!
//! The window is only ever advanced for messages whose tag verified: the
//! opener checks, verifies, then calls [`ReplayWindow::update`].

use crate::Error;

/// Largest supported window width, in counters.
pub const MAX_WINDOW: u32 = 256;
/// Default window width.
pub const DEFAULT_WINDOW: u32 = 128;

/// 64-bit words of a window's bitmap at [`MAX_WINDOW`].
pub const WINDOW_WORDS: usize = (MAX_WINDOW / 64) as usize;
const WORDS: usize = WINDOW_WORDS;

/// A sliding window over a sender's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Highest counter accepted; meaningless while `bits` is all zero.
    highest: u64,
    /// Bit `i` is set when counter `highest - i` was accepted.
    bits: [u64; WORDS],
    width: u32,
}

impl ReplayWindow {
    /// An empty window of `width` counters (1 to [`MAX_WINDOW`]).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a width outside that range.
    pub const fn new(width: u32) -> Result<Self, Error> {
        if width == 0 || width > MAX_WINDOW {
            return Err(Error::InvalidConfig);
        }
        Ok(ReplayWindow { highest: 0, bits: [0; WORDS], width })
    }

    /// A window restored from its saved state (see [`ReplayWindow::state`]).
    /// Bits beyond the width are cleared.
    ///
    /// # Errors
    /// [`Error::InvalidSnapshot`] for a width outside 1 to [`MAX_WINDOW`],
    /// or when bit 0 (the highest counter itself) is not set: a window that
    /// accepted nothing has nothing to restore, and taking it would make
    /// every counter new again.
    pub fn from_state(width: u32, highest: u64, bits: [u64; WORDS]) -> Result<Self, Error> {
        let Ok(mut w) = ReplayWindow::new(width) else {
            return Err(Error::InvalidSnapshot);
        };
        if bits[0] & 1 == 0 {
            return Err(Error::InvalidSnapshot);
        }
        w.highest = highest;
        w.bits = bits;
        w.mask();
        Ok(w)
    }

    /// Merges what `other` accepted into this window: the larger highest
    /// counter, and every counter either window accepted that still lies
    /// within this window's width. Never forgets a counter this window
    /// would reject, so merging an older snapshot cannot roll it back.
    pub fn merge(&mut self, other: &ReplayWindow) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            let width = self.width;
            *self = other.clone();
            self.width = width;
            self.mask();
            return;
        }
        let mut theirs = other.clone();
        if other.highest > self.highest {
            self.shift(other.highest - self.highest);
            self.highest = other.highest;
        } else {
            theirs.shift(self.highest - other.highest);
        }
        for (mine, t) in self.bits.iter_mut().zip(theirs.bits) {
            *mine |= t;
        }
        self.mask();
    }

    /// The window's width.
    #[must_use]
    pub const fn width(&self) -> u32 {
        self.width
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

    /// `(width, highest, bitmap)`, to persist across receiver restarts.
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

    /// Whether `counter` would be accepted, without changing the window.
    ///
    /// # Errors
    /// [`Error::Duplicate`] when it was accepted before, [`Error::Replay`]
    /// when it is below the window.
    pub fn check(&self, counter: u64) -> Result<(), Error> {
        if self.is_empty() || counter > self.highest {
            return Ok(());
        }
        let age = self.highest - counter;
        if age >= u64::from(self.width) {
            Err(Error::Replay)
        } else if self.bit(age) {
            Err(Error::Duplicate)
        } else {
            Ok(())
        }
    }

    /// Records `counter` as accepted. Call only after [`ReplayWindow::check`]
    /// passed and the message's tag verified.
    pub fn update(&mut self, counter: u64) {
        if self.is_empty() {
            self.highest = counter;
            self.bits = [0; WORDS];
            self.bits[0] = 1;
            return;
        }
        if counter > self.highest {
            self.shift(counter - self.highest);
            self.highest = counter;
            self.bits[0] |= 1;
        } else {
            let age = self.highest - counter;
            if age < u64::from(self.width) {
                let (w, b) = ((age / 64) as usize, age % 64);
                self.bits[w] |= 1 << b;
            }
        }
        self.mask();
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
}

impl SenderSnapshot {
    /// Bytes of [`SenderSnapshot::to_bytes`]: key id, sender id, width (u32
    /// each), highest (u64), then the bitmap words (u64 each), all
    /// little-endian. The record format of `docs/STATE.md`, shared by the
    /// replay-state file and the C, JS and Python snapshot APIs.
    pub const ENCODED_LEN: usize = 4 + 4 + 4 + 8 + 8 * WINDOW_WORDS;

    /// The record's bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[0..4].copy_from_slice(&self.key_id.to_le_bytes());
        out[4..8].copy_from_slice(&self.sender_id.to_le_bytes());
        out[8..12].copy_from_slice(&self.width.to_le_bytes());
        out[12..20].copy_from_slice(&self.highest.to_le_bytes());
        for (i, w) in self.bits.iter().enumerate() {
            out[20 + 8 * i..28 + 8 * i].copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// A record from its bytes, validated as [`ReplayWindow::from_state`]
    /// does (the window bits beyond the width are cleared).
    ///
    /// # Errors
    /// [`Error::InvalidSnapshot`] for a wrong length or an invalid window.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != Self::ENCODED_LEN {
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
        let snap =
            SenderSnapshot { key_id: u32_at(0), sender_id: u32_at(4), width: u32_at(8), highest: u64_at(12), bits };
        let window = snap.window()?;
        Ok(SenderSnapshot { bits: window.bits, ..snap })
    }

    /// The window this snapshot describes.
    ///
    /// # Errors
    /// As [`ReplayWindow::from_state`].
    pub fn window(&self) -> Result<ReplayWindow, Error> {
        ReplayWindow::from_state(self.width, self.highest, self.bits)
    }
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow { highest: 0, bits: [0; WORDS], width: DEFAULT_WINDOW }
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
        let s = SenderSnapshot { key_id: 7, sender_id: 9, width: 128, highest: u64::MAX - 1, bits: [5, 1 << 63, 0, 0] };
        let b = s.to_bytes();
        assert_eq!(b.len(), SenderSnapshot::ENCODED_LEN);
        assert_eq!(SenderSnapshot::from_bytes(&b), Ok(s));
        assert_eq!(SenderSnapshot::from_bytes(&b[1..]), Err(Error::InvalidSnapshot));
        let empty = SenderSnapshot { bits: [0; 4], ..SenderSnapshot::from_bytes(&b).unwrap() };
        assert_eq!(SenderSnapshot::from_bytes(&empty.to_bytes()), Err(Error::InvalidSnapshot));
    }

    proptest! {
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
            let mut w = ReplayWindow::new(width).unwrap();
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
