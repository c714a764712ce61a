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

const WORDS: usize = (MAX_WINDOW / 64) as usize;

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
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a width outside 1 to [`MAX_WINDOW`].
    pub const fn from_state(width: u32, highest: u64, bits: [u64; WORDS]) -> Result<Self, Error> {
        match ReplayWindow::new(width) {
            Ok(mut w) => {
                w.highest = highest;
                w.bits = bits;
                Ok(w)
            }
            Err(e) => Err(e),
        }
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

    proptest! {
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
