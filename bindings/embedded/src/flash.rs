//! A [`CounterStore`] on NOR flash, safe against power loss at any point.
//!
//! # Layout
//!
//! The store owns a region of `sectors` erase sectors (at least two). Each
//! persisted limit is appended as a fixed-size *record* in the next free
//! slot; records fill one sector after the other and wrap around the ring,
//! so erases (the wearing operation) are spread evenly over the region: one
//! erase per `slots_per_sector` persists, rotating over every sector.
//!
//! ```text
//! slot = | limit: u64 LE | crc32(MAGIC ‖ limit) | 0xFF pad to WRITE_SIZE | marker: 0x00.. (WRITE_SIZE-rounded, ≥ 4 bytes) |
//!          └──────────── first program operation ───────────────────────┘ └──── second program operation ────────────────┘
//! ```
//!
//! A record counts only when its marker reads all zero and its CRC matches.
//! The marker is programmed in a second operation, after the data was
//! programmed and read back, so a write torn anywhere leaves a slot without
//! a complete marker: that slot is skipped (never programmed again until
//! its sector is erased) and the previous limit stays in force.
//!
//! # Why a torn write or erase never reuses a counter
//!
//! * The sealer only uses counters below a limit once `persist` returned
//!   `Ok`, i.e. after the marker of that limit's record was programmed and
//!   verified.
//! * [`CounterStore::load`] returns the *largest* valid limit in the region.
//!   Limits only grow, so that is the newest record.
//! * A sector is erased only when the ring moves into it; the newest
//!   record is then in the previous sector, never in the one being erased
//!   (hence at least two sectors).
//! * Even a record that a torn operation left half-done and that still
//!   passed both checks could only hold a *larger* value than intended:
//!   programming turns bits from 1 to 0 and starts from an erased (all-ones)
//!   slot, so a partly programmed limit is at least the new limit; erasing
//!   turns bits from 0 to 1, which can only increase an old limit. A larger
//!   limit skips counters, it never hands one out twice.
//!
//! The tests in this module cut the power at every single step (each half
//! of each byte programmed, each half of each byte erased) of a long run and
//! check, after reboot, that no counter is ever used twice.

use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};
use mqseal::{CounterStore, StoreError};

/// Bytes hashed before the limit in a record's CRC, so that foreign data in
/// the region is not taken for a record.
const MAGIC: &[u8; 10] = b"mqsealctr1";
/// Limit (8) + CRC-32 (4).
const DATA_LEN: usize = 12;
/// Minimum marker length.
const MARKER_LEN: usize = 4;
/// Largest supported slot: data and marker each rounded up to a write size
/// of at most 32 bytes.
const MAX_SLOT: usize = 64;
/// Largest supported `NorFlash::WRITE_SIZE`.
pub const MAX_WRITE_SIZE: usize = 32;

/// Why a [`FlashCounterStore`] cannot be created over a flash region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FlashConfigError {
    /// Fewer than two sectors: wrapping would erase the newest record.
    TooFewSectors,
    /// The region's start is not aligned to the flash's erase size.
    Misaligned,
    /// The region does not fit the flash (or overflows `u32`).
    OutOfBounds,
    /// The flash's write size is above [`MAX_WRITE_SIZE`], its read size
    /// does not divide the slot size, or a sector holds no slot.
    UnsupportedGeometry,
}

impl core::fmt::Display for FlashConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FlashConfigError::TooFewSectors => "a flash counter store needs at least two erase sectors",
            FlashConfigError::Misaligned => "flash region start is not aligned to the erase size",
            FlashConfigError::OutOfBounds => "flash region does not fit the flash",
            FlashConfigError::UnsupportedGeometry => "unsupported flash write/read/erase size",
        })
    }
}

/// Where the next record goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cursor {
    sector: u32,
    slot: u32,
}

/// What the last scan of the region found.
#[derive(Clone, Copy, Debug)]
struct State {
    latest: Option<u64>,
    next: Cursor,
}

/// A counter store over a region of NOR flash: block reservations are
/// appended as records in a ring of erase sectors (wear spreading), each
/// record checked by a CRC and committed by a separately written marker
/// (power-loss safety). See the module documentation for the argument.
///
/// Use one store (one region) per (key, sender id), or one per sender id
/// shared by all its keys. Pair it with a reservation block
/// ([`mqseal::Sealer::with_reservation_block`]) that matches the flash's
/// endurance: with the default of 1024 counters per write, 4 KiB sectors
/// and 100,000 erase cycles, two sectors last for
/// `2 * 4096 / 16 * 100_000 * 1024` ≈ 5 × 10^10 messages.
///
/// ```
/// # use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash, NorFlashErrorKind};
/// # struct Ram([u8; 8192]);
/// # impl ErrorType for Ram { type Error = NorFlashErrorKind; }
/// # impl ReadNorFlash for Ram { const READ_SIZE: usize = 1;
/// #   fn read(&mut self, o: u32, b: &mut [u8]) -> Result<(), Self::Error> { let o = o as usize; b.copy_from_slice(&self.0[o..o + b.len()]); Ok(()) }
/// #   fn capacity(&self) -> usize { self.0.len() } }
/// # impl NorFlash for Ram { const WRITE_SIZE: usize = 4; const ERASE_SIZE: usize = 4096;
/// #   fn erase(&mut self, f: u32, t: u32) -> Result<(), Self::Error> { self.0[f as usize..t as usize].fill(0xFF); Ok(()) }
/// #   fn write(&mut self, o: u32, b: &[u8]) -> Result<(), Self::Error> { for (d, s) in self.0[o as usize..].iter_mut().zip(b) { *d &= *s; } Ok(()) } }
/// use mqseal::{Key, Sealer, Suite};
/// use mqseal_embedded::FlashCounterStore;
///
/// let flash = Ram([0xFF; 8192]); // your HAL's flash driver
/// let store = FlashCounterStore::new(flash, 0, 2).unwrap();
/// let key = Key::from_bytes(1, [7; 32]);
/// let mut sealer = Sealer::new(&key, 42, Suite::ChaCha20Poly1305, store)?.with_reservation_block(256)?;
/// let mut out = [0u8; 64];
/// let n = sealer.seal_into("dev/42/up", b"21.5", &mut out)?;
/// # let _ = n;
/// # Ok::<(), mqseal::Error>(())
/// ```
#[derive(Debug)]
pub struct FlashCounterStore<F> {
    flash: F,
    base: u32,
    sectors: u32,
    slot_len: u32,
    data_len: u32,
    slots_per_sector: u32,
    erase_len: u32,
    state: Option<State>,
    last_error: Option<NorFlashErrorKind>,
}

const fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

impl<F: NorFlash> FlashCounterStore<F> {
    /// A store over `sectors` erase sectors of `flash` starting at byte
    /// offset `base` (aligned to `F::ERASE_SIZE`). Nothing is read or
    /// written until the first [`CounterStore::load`] or
    /// [`CounterStore::persist`].
    ///
    /// The region must be dedicated to this store. A region that was never
    /// written (all erased) or holds no valid record loads as "never
    /// written", so erase it when provisioning a device
    /// ([`FlashCounterStore::erase_all`]) and never copy it between devices.
    ///
    /// # Errors
    /// [`FlashConfigError`] when the region or the flash geometry is not
    /// usable.
    pub fn new(flash: F, base: u32, sectors: u32) -> Result<Self, FlashConfigError> {
        if sectors < 2 {
            return Err(FlashConfigError::TooFewSectors);
        }
        let (w, r, e) = (F::WRITE_SIZE, F::READ_SIZE, F::ERASE_SIZE);
        if w == 0 || w > MAX_WRITE_SIZE || r == 0 || e == 0 {
            return Err(FlashConfigError::UnsupportedGeometry);
        }
        let data_len = round_up(DATA_LEN, w);
        let slot_len = data_len + round_up(MARKER_LEN, w);
        if slot_len > MAX_SLOT || !slot_len.is_multiple_of(r) || !data_len.is_multiple_of(r) || e < slot_len {
            return Err(FlashConfigError::UnsupportedGeometry);
        }
        let erase = u32::try_from(e).map_err(|_| FlashConfigError::UnsupportedGeometry)?;
        if !base.is_multiple_of(erase) {
            return Err(FlashConfigError::Misaligned);
        }
        let end =
            sectors.checked_mul(erase).and_then(|len| len.checked_add(base)).ok_or(FlashConfigError::OutOfBounds)?;
        if usize::try_from(end).map_or(true, |end| end > flash.capacity()) {
            return Err(FlashConfigError::OutOfBounds);
        }
        // slot_len <= MAX_SLOT and e fits u32, so these conversions hold.
        let slot_len = u32::try_from(slot_len).map_err(|_| FlashConfigError::UnsupportedGeometry)?;
        let data_len = u32::try_from(data_len).map_err(|_| FlashConfigError::UnsupportedGeometry)?;
        Ok(FlashCounterStore {
            flash,
            base,
            sectors,
            slot_len,
            data_len,
            slots_per_sector: erase / slot_len,
            erase_len: erase,
            state: None,
            last_error: None,
        })
    }

    /// Records per sector (erases happen once per this many persists).
    #[must_use]
    pub const fn slots_per_sector(&self) -> u32 {
        self.slots_per_sector
    }

    /// The flash error behind the last [`StoreError`], for diagnostics.
    #[must_use]
    pub const fn last_flash_error(&self) -> Option<NorFlashErrorKind> {
        self.last_error
    }

    /// Gives back the flash driver.
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// Erases the whole region (provisioning a new device, or a new key
    /// *and* sender id). Never call it on a live store: the next counters
    /// would start from 0 again.
    ///
    /// # Errors
    /// [`StoreError::Write`] when the flash fails.
    pub fn erase_all(&mut self) -> Result<(), StoreError> {
        self.state = None;
        let end = self.base + self.sectors * self.sector_len();
        let r = self.flash.erase(self.base, end);
        self.flash_result(r, StoreError::Write)?;
        self.state = Some(State { latest: None, next: Cursor { sector: 0, slot: 0 } });
        Ok(())
    }

    const fn sector_len(&self) -> u32 {
        self.erase_len
    }

    const fn sector_start(&self, sector: u32) -> u32 {
        self.base + sector * self.sector_len()
    }

    const fn slot_offset(&self, c: Cursor) -> u32 {
        self.sector_start(c.sector) + c.slot * self.slot_len
    }

    fn flash_result<T>(&mut self, r: Result<T, F::Error>, e: StoreError) -> Result<T, StoreError> {
        r.map_err(|err| {
            self.last_error = Some(err.kind());
            self.state = None; // rescan before the next write
            e
        })
    }

    /// Reads one slot into `buf[..slot_len]`.
    fn read_slot(&mut self, c: Cursor, buf: &mut [u8; MAX_SLOT]) -> Result<(), StoreError> {
        let off = self.slot_offset(c);
        let len = self.slot_len as usize;
        let r = self.flash.read(off, &mut buf[..len]);
        self.flash_result(r, StoreError::Read)
    }

    /// Scans the whole region: the newest valid limit and where the next
    /// record goes.
    fn scan(&mut self) -> Result<State, StoreError> {
        let slot_len = self.slot_len as usize;
        let data_len = self.data_len as usize;
        let mut buf = [0u8; MAX_SLOT];
        let mut best: Option<(u64, Cursor)> = None;
        for sector in 0..self.sectors {
            for slot in 0..self.slots_per_sector {
                let c = Cursor { sector, slot };
                self.read_slot(c, &mut buf)?;
                if let Some(limit) = decode(&buf[..slot_len], data_len) {
                    if best.is_none_or(|(b, _)| limit > b) {
                        best = Some((limit, c));
                    }
                }
            }
        }
        // The active sector holds the newest record (or is sector 0 when
        // there is none); the next slot is the one after its last used slot.
        let (latest, active) = match best {
            Some((limit, c)) => (Some(limit), c.sector),
            None => (None, 0),
        };
        let mut next_slot = 0;
        for slot in (0..self.slots_per_sector).rev() {
            self.read_slot(Cursor { sector: active, slot }, &mut buf)?;
            if buf[..slot_len].iter().any(|&b| b != 0xFF) {
                next_slot = slot + 1;
                break;
            }
        }
        Ok(State { latest, next: Cursor { sector: active, slot: next_slot } })
    }

    fn state(&mut self) -> Result<State, StoreError> {
        match self.state {
            Some(s) => Ok(s),
            None => {
                let s = self.scan()?;
                self.state = Some(s);
                Ok(s)
            }
        }
    }

    /// Programs `bytes` at `off` and reads them back.
    fn program(&mut self, off: u32, bytes: &[u8]) -> Result<(), StoreError> {
        let r = self.flash.write(off, bytes);
        self.flash_result(r, StoreError::Write)?;
        let mut check = [0u8; MAX_SLOT];
        let check = &mut check[..bytes.len()];
        let r = self.flash.read(off, check);
        self.flash_result(r, StoreError::Write)?;
        if check != bytes {
            self.state = None;
            return Err(StoreError::Write);
        }
        Ok(())
    }
}

/// CRC-32 (IEEE 802.3, reflected, as in zlib), bitwise: 12 bytes per write
/// do not justify a 1 KiB table in flash. An integrity check against torn
/// and foreign data, not a cryptographic one.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for part in parts {
        for &b in *part {
            crc ^= u32::from(b);
            for _ in 0..8 {
                let mask = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
            }
        }
    }
    !crc
}

fn encode_data(limit: u64, data_len: usize, out: &mut [u8; MAX_SLOT]) {
    out.fill(0xFF);
    let l = limit.to_le_bytes();
    out[..8].copy_from_slice(&l);
    out[8..12].copy_from_slice(&crc32(&[MAGIC, &l]).to_le_bytes());
    debug_assert!(data_len >= DATA_LEN);
}

/// The limit in a slot, if the slot holds a complete, valid record.
fn decode(slot: &[u8], data_len: usize) -> Option<u64> {
    let (data, marker) = slot.split_at(data_len);
    if marker.iter().any(|&b| b != 0) {
        return None;
    }
    let mut l = [0u8; 8];
    l.copy_from_slice(&data[..8]);
    let mut c = [0u8; 4];
    c.copy_from_slice(&data[8..12]);
    (crc32(&[MAGIC, &l]) == u32::from_le_bytes(c)).then_some(u64::from_le_bytes(l))
}

impl<F: NorFlash> CounterStore for FlashCounterStore<F> {
    fn load(&mut self) -> Result<Option<u64>, StoreError> {
        self.state = None;
        Ok(self.state()?.latest)
    }

    /// Appends a record for `limit`. A limit not above the stored one is
    /// already covered and writes nothing.
    fn persist(&mut self, limit: u64) -> Result<(), StoreError> {
        let st = self.state()?;
        if st.latest.is_some_and(|l| l >= limit) {
            return Ok(());
        }
        let mut next = st.next;
        if next.slot >= self.slots_per_sector {
            // Move into the next sector of the ring. The newest record stays
            // in the current one while this one is erased.
            next = Cursor { sector: (next.sector + 1) % self.sectors, slot: 0 };
            let from = self.sector_start(next.sector);
            let to = from + self.sector_len();
            // From here on, the next scan must find out where we are.
            self.state = None;
            let r = self.flash.erase(from, to);
            self.flash_result(r, StoreError::Write)?;
        }
        // Whatever happens from here, this slot is used: never program it
        // again before its sector is erased.
        self.state = Some(State { latest: st.latest, next: Cursor { sector: next.sector, slot: next.slot + 1 } });
        let off = self.slot_offset(next);
        let data_len = self.data_len as usize;
        let slot_len = self.slot_len as usize;
        let mut rec = [0u8; MAX_SLOT];
        encode_data(limit, data_len, &mut rec);
        self.program(off, &rec[..data_len])?;
        let marker = [0u8; MAX_SLOT];
        self.program(off + self.data_len, &marker[..slot_len - data_len])?;
        self.state = Some(State { latest: Some(limit), next: Cursor { sector: next.sector, slot: next.slot + 1 } });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_storage::nor_flash::{ErrorType, ReadNorFlash};
    use mqseal::{Envelope, Key, Sealer, Suite};
    use std::collections::HashSet;
    use std::vec;
    use std::vec::Vec;

    const SECTOR: usize = 128;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum FlashErr {
        PowerLost,
        Align,
    }
    impl NorFlashError for FlashErr {
        fn kind(&self) -> NorFlashErrorKind {
            match self {
                FlashErr::PowerLost => NorFlashErrorKind::Other,
                FlashErr::Align => NorFlashErrorKind::NotAligned,
            }
        }
    }

    /// NOR flash in RAM that loses power after a budget of steps. A step is
    /// half of one byte being programmed (programming clears bits, high
    /// nibble first) or half of one byte being erased (erasing sets bits).
    /// After the power is lost every operation fails until `reboot`.
    struct TearingFlash {
        mem: Vec<u8>,
        budget: Option<u64>,
        steps: u64,
        dead: bool,
    }

    impl TearingFlash {
        fn new(sectors: usize) -> Self {
            TearingFlash { mem: vec![0xFF; sectors * SECTOR], budget: None, steps: 0, dead: false }
        }
        fn step(&mut self) -> Result<(), FlashErr> {
            if self.dead {
                return Err(FlashErr::PowerLost);
            }
            if self.budget == Some(self.steps) {
                self.dead = true;
                return Err(FlashErr::PowerLost);
            }
            self.steps += 1;
            Ok(())
        }
        fn reboot(&mut self, budget: Option<u64>) {
            self.dead = false;
            self.steps = 0;
            self.budget = budget;
        }
    }

    impl ErrorType for &mut TearingFlash {
        type Error = FlashErr;
    }
    impl ReadNorFlash for &mut TearingFlash {
        const READ_SIZE: usize = 1;
        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashErr> {
            if self.dead {
                return Err(FlashErr::PowerLost);
            }
            let o = offset as usize;
            bytes.copy_from_slice(&self.mem[o..o + bytes.len()]);
            Ok(())
        }
        fn capacity(&self) -> usize {
            self.mem.len()
        }
    }
    impl NorFlash for &mut TearingFlash {
        const WRITE_SIZE: usize = 4;
        const ERASE_SIZE: usize = SECTOR;
        fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashErr> {
            if !(from as usize).is_multiple_of(SECTOR) || !(to as usize).is_multiple_of(SECTOR) {
                return Err(FlashErr::Align);
            }
            for i in from as usize..to as usize {
                self.step()?;
                self.mem[i] |= 0xF0;
                self.step()?;
                self.mem[i] = 0xFF;
            }
            Ok(())
        }
        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashErr> {
            if !(offset as usize).is_multiple_of(4) || !bytes.len().is_multiple_of(4) {
                return Err(FlashErr::Align);
            }
            for (i, &b) in bytes.iter().enumerate() {
                let at = offset as usize + i;
                // NOR can only clear bits: the store must never ask for more.
                assert_eq!(self.mem[at] & b, b, "programming over non-erased bits at {at}");
                self.step()?;
                self.mem[at] &= b | 0x0F;
                self.step()?;
                self.mem[at] &= b;
            }
            Ok(())
        }
    }

    fn key() -> Key {
        Key::from_bytes(1, [5; 32])
    }

    /// Seals up to `n` messages with a fresh sealer over the flash; returns
    /// the counters of the envelopes that were sealed (stops at the first
    /// error, i.e. the power loss).
    fn run(flash: &mut TearingFlash, block: u64, n: usize) -> Vec<u64> {
        let mut used = Vec::new();
        let Ok(store) = FlashCounterStore::new(flash, 0, 3) else { panic!("config") };
        let Ok(sealer) = Sealer::new(&key(), 9, Suite::ChaCha20Poly1305, store) else { return used };
        let mut sealer = sealer.with_reservation_block(block).unwrap();
        let mut out = [0u8; 64];
        for _ in 0..n {
            match sealer.seal_into("t", b"x", &mut out) {
                Ok(len) => used.push(Envelope::parse(&out[..len]).unwrap().header.counter),
                Err(_) => break,
            }
        }
        used
    }

    #[test]
    fn round_trip_across_many_ring_wraps() {
        let mut flash = TearingFlash::new(3);
        let mut store = FlashCounterStore::new(&mut flash, 0, 3).unwrap();
        assert_eq!(store.load(), Ok(None));
        assert_eq!(store.slots_per_sector(), 128 / 16);
        // 100 records over 3 sectors of 8 slots: the ring wraps 4 times.
        for limit in 1..=100u64 {
            store.persist(limit * 10).unwrap();
            if limit % 7 == 0 {
                let mut again = FlashCounterStore::new(&mut *store.flash, 0, 3).unwrap();
                assert_eq!(again.load(), Ok(Some(limit * 10)));
            }
        }
        // A limit not above the stored one is covered already.
        store.persist(5).unwrap();
        assert_eq!(store.load(), Ok(Some(1000)));
    }

    #[test]
    fn resumes_after_restart_with_the_core_sealer() {
        let mut flash = TearingFlash::new(3);
        let first = run(&mut flash, 4, 10);
        assert_eq!(first, (0..10).collect::<Vec<_>>());
        // The block 8..12 was reserved; a restart skips to 12.
        let second = run(&mut flash, 4, 3);
        assert_eq!(second, vec![12, 13, 14]);
    }

    #[test]
    fn rejects_unusable_regions() {
        let mut flash = TearingFlash::new(4);
        assert_eq!(FlashCounterStore::new(&mut flash, 0, 1).err(), Some(FlashConfigError::TooFewSectors));
        assert_eq!(FlashCounterStore::new(&mut flash, 100, 2).err(), Some(FlashConfigError::Misaligned));
        assert_eq!(FlashCounterStore::new(&mut flash, 256, 3).err(), Some(FlashConfigError::OutOfBounds));
        assert_eq!(FlashCounterStore::new(&mut flash, u32::MAX - 255, 2).err(), Some(FlashConfigError::OutOfBounds));
        assert!(FlashCounterStore::new(&mut flash, 256, 2).is_ok());
    }

    #[test]
    fn data_without_marker_and_foreign_bytes_are_not_records() {
        let mut flash = TearingFlash::new(2);
        // Data of a record for 1000, no marker.
        let mut rec = [0u8; MAX_SLOT];
        encode_data(1000, 12, &mut rec);
        flash.mem[..12].copy_from_slice(&rec[..12]);
        // Foreign bytes with a zero "marker" in the next slot.
        flash.mem[16..28].copy_from_slice(b"hello world!");
        flash.mem[28..32].fill(0);
        let mut store = FlashCounterStore::new(&mut flash, 0, 2).unwrap();
        assert_eq!(store.load(), Ok(None));
        // The next record goes after the used slots, not over them.
        store.persist(7).unwrap();
        assert_eq!(store.load(), Ok(Some(7)));
        assert_eq!(&flash.mem[32..40], &7u64.to_le_bytes());
    }

    #[test]
    fn crc_is_zlib_crc32() {
        assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
        assert_eq!(crc32(&[b"1234", b"56789"]), 0xCBF4_3926);
    }

    #[test]
    fn failed_flash_fails_sealing() {
        let mut flash = TearingFlash::new(3);
        flash.dead = true;
        let store = FlashCounterStore::new(&mut flash, 0, 3).unwrap();
        let err = Sealer::new(&key(), 1, Suite::HmacSha256, store).err();
        assert_eq!(err, Some(mqseal::Error::CounterStore(StoreError::Read)));
        flash.reboot(Some(10)); // reads work, the first record's write does not
        let store = FlashCounterStore::new(&mut flash, 0, 3).unwrap();
        let mut sealer = Sealer::new(&key(), 1, Suite::HmacSha256, store).unwrap();
        let mut out = [0u8; 64];
        assert_eq!(sealer.seal_into("t", b"x", &mut out), Err(mqseal::Error::CounterStore(StoreError::Write)));
        assert_eq!(sealer.store().last_flash_error(), Some(NorFlashErrorKind::Other));
    }

    /// Cuts the power at every step of a run that fills the ring twice,
    /// then reboots (and, for a second crash, cuts the power again during
    /// the recovery run), and checks that no counter is ever used twice.
    #[test]
    fn power_loss_at_every_step_never_reuses_a_counter() {
        const BLOCK: u64 = 1;
        const MESSAGES: usize = 30; // 30 records: wraps a 3x8-slot ring
                                    // Dry run: how many steps does the whole run take?
        let mut flash = TearingFlash::new(3);
        let all = run(&mut flash, BLOCK, MESSAGES);
        assert_eq!(all.len(), MESSAGES);
        let total = flash.steps;
        // 30 records of 2 x 16 half-steps, and 3 erases of 2 x 128 (the
        // ring moves into sectors 1, 2, then 0 again).
        assert_eq!(total, 30 * 32 + 3 * 256, "run does not cover the ring wrap");
        let mut crashes_seen = 0;
        for cut in 0..total {
            let mut flash = TearingFlash::new(3);
            flash.reboot(Some(cut));
            let mut used: HashSet<u64> = HashSet::new();
            let mut highest: Option<u64> = None;
            let mut record = |counters: Vec<u64>, what: &str| {
                for c in counters {
                    assert!(used.insert(c), "counter {c} reused ({what}, cut at step {cut})");
                    assert!(highest.is_none_or(|h| c > h), "counter {c} went backwards ({what}, cut {cut})");
                    highest = Some(c);
                }
            };
            record(run(&mut flash, BLOCK, MESSAGES), "first run");
            if !flash.dead {
                continue;
            }
            crashes_seen += 1;
            // Second power loss somewhere in the recovery run.
            flash.reboot(Some((cut * 7919) % 800));
            record(run(&mut flash, BLOCK, 15), "recovery run");
            // Final clean run: must work and still never reuse.
            flash.reboot(None);
            let last = run(&mut flash, BLOCK, 15);
            assert_eq!(last.len(), 15, "store unusable after cut {cut}");
            record(last, "clean run");
        }
        assert_eq!(crashes_seen, total);
    }
}
