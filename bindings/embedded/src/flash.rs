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
//! slot = | limit: u64 LE | check: u32 LE | 0xFF pad to WRITE_SIZE | marker: 0x00.. (WRITE_SIZE-rounded, ≥ 4 bytes) |
//!          └──────────── first program operation ────────────────┘ └──── second program operation ────────────────┘
//!
//! check    = crc32(geometry ‖ slot offset ‖ limit)          (each u32 / u64 little-endian)
//! geometry = crc32("mqsealctr2" ‖ WRITE_SIZE ‖ ERASE_SIZE ‖ sectors ‖ base ‖ slot length ‖ data length)
//! ```
//!
//! A record counts only when its marker reads all zero and its check value
//! matches. The marker is programmed in a second operation, after the data
//! was programmed and read back, so a write torn anywhere leaves a slot
//! without a complete marker: that slot is skipped (never programmed again
//! until its sector is erased) and the previous limit stays in force.
//!
//! # The geometry is part of every record
//!
//! The check value covers the region's geometry (write size, erase size,
//! sector count, base address, and the slot layout derived from them) and
//! the slot's own flash offset. A firmware update that changes any of them
//! therefore reads the old records as invalid, never as records of the new
//! layout. A geometry change alone changes only the 32-bit geometry word,
//! which CRC-32 always detects (it detects every error burst of up to 32
//! bits), so an old record never validates unless two geometries' words
//! collide; data shifted to other slot boundaries validates only by chance
//! (2^-32 per slot).
//!
//! A region that holds written slots but no valid record is
//! [`StoreError::Corrupt`]: the store never reads "written, but not by
//! this layout" as "never written". The single exception is a torn *first*
//! write of a fresh region (the provisioning record, or a clock-floor
//! sealer's first reservation): only slot 0 of sector 0 is written, its
//! padding is untouched, and its marker is either not begun or begun over
//! complete, valid data. That region holds no state ([`CounterStore::load`]
//! gives `Ok(None)`, which the sealer refuses with [`StoreError::Missing`]).
//!
//! # A new sender is provisioned explicitly
//!
//! A region with no state is never "start at 0": the sealer refuses it.
//! [`FlashCounterStore::create`] writes the first record (limit 0) for a new
//! (key, sender id) at the factory or on the first boot; it refuses a region
//! that holds a record ([`StoreError::Conflict`]) or is corrupt.
//! [`FlashCounterStore::format`] erases whatever the region held and writes
//! limit 0, for a new key or sender id only.
//!
//! # Why a torn write or erase never reuses a counter
//!
//! * The sealer only uses counters below a limit once `persist` returned
//!   `Ok`, i.e. after the marker of that limit's record was programmed and
//!   verified.
//! * [`CounterStore::load`] returns the *largest* valid limit in the region.
//!   Limits only grow, so that is the newest record.
//! * Every [`CounterStore::persist`] scans the region first and is a
//!   compare-and-swap ([`mqseal::check_swap`]): it writes only when the
//!   newest record still holds the limit the sealer last loaded or wrote.
//! * A sector is erased only when the ring moves into it; the newest
//!   record is then in the previous sector, never in the one being erased
//!   (hence at least two sectors).
//! * Even a record that a torn operation left half-done and that still
//!   passed both checks could only hold a *larger* value than intended:
//!   programming turns bits from 1 to 0 and starts from an erased (all-ones)
//!   slot, so a partly programmed limit is at least the new limit; erasing
//!   turns bits from 0 to 1, which can only increase an old limit. A larger
//!   limit skips counters, it never hands one out twice.
//! * A flash read that fails is [`StoreError::Read`], never "erased": on
//!   flash with ECC a torn word faults on read, and the store then refuses
//!   to load rather than skip a record it could not read (see
//!   `docs/PORTING.md`, "Flash with ECC").
//!
//! The tests in this module cut the power at every single step (each half
//! of each byte programmed, each half of each byte erased) of a run that
//! provisions the region and wraps the ring, for several write sizes, and
//! check after every reboot that no counter is ever used twice and the
//! loaded limit is never 0 or older than a counter used; and they read the
//! records of many histories under every kind of geometry change.

use embedded_storage::nor_flash::{NorFlash, NorFlashErrorKind};
use mqseal::{check_swap, CounterStore, StoreError};

mod member;
mod ring;
pub use member::FlashMemberStore;
use ring::{crc32, is_erased, Cursor, SectorRing, Slot};

/// Format tag hashed into the geometry word (format 2: geometry-bound
/// records; format 1 records, without the geometry, read as corrupt).
const MAGIC: &[u8; 10] = b"mqsealctr2";
/// Limit (8) + check value (4).
const DATA_LEN: usize = 12;
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

/// A counter store over a region of NOR flash: block reservations are
/// appended as records in a ring of erase sectors (wear spreading), each
/// record checked by a CRC over the limit, the region's geometry and the
/// slot's offset, and committed by a separately written marker (power-loss
/// safety). See the module documentation for the argument.
///
/// Use one store (one region) per (key, sender id), or one per sender id
/// shared by all its keys. Provision it once with
/// [`FlashCounterStore::create`] (a region with no state is refused by the
/// sealer). Pair it with a reservation block
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
/// use mqseal::{Key, Sealer, StoreError, Suite};
/// use mqseal_embedded::FlashCounterStore;
///
/// let flash = Ram([0xFF; 8192]); // your HAL's flash driver
/// let mut store = FlashCounterStore::new(flash, 0, 2).unwrap();
/// let key = Key::from_bytes(1, [7; 32]);
/// // Never provisioned: the sealer refuses the region.
/// assert_eq!(
///     Sealer::new(&key, 42, Suite::ChaCha20Poly1305, &mut store).err(),
///     Some(mqseal::Error::CounterStore(StoreError::Missing))
/// );
/// // Factory / first boot, for this new (key, sender id): limit 0.
/// store.create().map_err(mqseal::Error::CounterStore)?;
/// let mut sealer = Sealer::new(&key, 42, Suite::ChaCha20Poly1305, store)?.with_reservation_block(256)?;
/// let mut out = [0u8; 64];
/// let n = sealer.seal_into("dev/42/up", b"21.5", &mut out)?;
/// # let _ = n;
/// # Ok::<(), mqseal::Error>(())
/// ```
#[derive(Debug)]
pub struct FlashCounterStore<F> {
    ring: SectorRing<F>,
}

impl<F: NorFlash> FlashCounterStore<F> {
    /// A store over `sectors` erase sectors of `flash` starting at byte
    /// offset `base` (aligned to `F::ERASE_SIZE`). Nothing is read or
    /// written until the first [`CounterStore::load`],
    /// [`CounterStore::persist`] or [`FlashCounterStore::create`].
    ///
    /// The region must be dedicated to this store, and its geometry (the
    /// flash driver's `WRITE_SIZE` and `ERASE_SIZE`, `base`, `sectors`) must
    /// not change over the device's life: records written under another
    /// geometry read as [`StoreError::Corrupt`]. Never copy the region
    /// between devices or restore it from a backup.
    ///
    /// # Errors
    /// [`FlashConfigError`] when the region or the flash geometry is not
    /// usable.
    pub fn new(flash: F, base: u32, sectors: u32) -> Result<Self, FlashConfigError> {
        Ok(FlashCounterStore { ring: SectorRing::new(flash, base, sectors, MAGIC, DATA_LEN, None, MAX_SLOT)? })
    }

    /// Records per sector (erases happen once per this many persists).
    #[must_use]
    pub const fn slots_per_sector(&self) -> u32 {
        self.ring.slots_per_sector()
    }

    /// The flash error behind the last [`StoreError`], for diagnostics.
    #[must_use]
    pub const fn last_flash_error(&self) -> Option<NorFlashErrorKind> {
        self.ring.last_flash_error()
    }

    /// Gives back the flash driver.
    pub fn into_inner(self) -> F {
        self.ring.into_inner()
    }

    /// Provisions the region for a new (key, sender id): writes limit 0, so
    /// that a sealer starts at counter 0. For the factory or the first boot
    /// of a device that has just been given its key and sender id, never as
    /// a reaction to [`StoreError::Missing`] in the field (a region that
    /// lost its state must not restart at 0).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the region already holds a record
    /// (nothing is written); [`StoreError::Corrupt`] when it holds data that
    /// is not a record of this geometry (use [`FlashCounterStore::format`]
    /// if the key or sender id is new); [`StoreError::Read`] or
    /// [`StoreError::Write`] when the flash fails.
    pub fn create(&mut self) -> Result<(), StoreError> {
        let st = self.scan()?;
        if st.newest.is_some() {
            return Err(StoreError::Conflict);
        }
        if st.next.slot != 0 {
            // A torn earlier attempt: start again from an erased first slot,
            // so that another torn attempt is again a torn first write.
            self.ring.erase_sector(0)?;
        }
        self.persist(None, 0)
    }

    /// Erases the whole region and writes limit 0, whatever it held: for a
    /// new key *or* a new sender id only (a region whose key and sender id
    /// are still in use would restart at counter 0 and reuse nonces).
    ///
    /// # Errors
    /// [`StoreError::Write`] (or [`StoreError::Read`] on the read-back) when
    /// the flash fails.
    pub fn format(&mut self) -> Result<(), StoreError> {
        self.erase_all()?;
        self.persist(None, 0)
    }

    /// Erases the whole region, which then holds no state: a sealer refuses
    /// it until [`FlashCounterStore::create`] (or a clock floor). For
    /// decommissioning; to provision, use [`FlashCounterStore::format`].
    ///
    /// # Errors
    /// [`StoreError::Write`] when the flash fails.
    pub fn erase_all(&mut self) -> Result<(), StoreError> {
        self.ring.erase_all()
    }

    /// The check value of a record for `limit` at slot offset `off`.
    fn check(ring: &SectorRing<F>, off: u32, limit: &[u8; 8]) -> u32 {
        crc32(&[&ring.geometry().to_le_bytes(), &off.to_le_bytes(), limit])
    }

    /// The limit in the data part of a slot, if its check value matches.
    fn decode_data(ring: &SectorRing<F>, off: u32, data: &[u8]) -> Option<u64> {
        let mut l = [0u8; 8];
        l.copy_from_slice(&data[..8]);
        let mut c = [0u8; 4];
        c.copy_from_slice(&data[8..DATA_LEN]);
        (Self::check(ring, off, &l) == u32::from_le_bytes(c)).then_some(u64::from_le_bytes(l))
    }

    /// The limit in a slot, if the slot holds a complete, valid record.
    fn decode(ring: &SectorRing<F>, off: u32, slot: &[u8]) -> Option<u64> {
        let (data, marker) = slot.split_at(ring.data_len() as usize);
        if marker.iter().any(|&b| b != 0) {
            return None;
        }
        Self::decode_data(ring, off, data)
    }

    /// Whether a written slot that holds no valid record can be what a
    /// write of a record of this geometry torn by a power loss leaves: the
    /// padding was never programmed, and the marker was not begun, or was
    /// begun over complete, valid data (it is programmed only after the data
    /// was read back).
    fn is_torn_record(ring: &SectorRing<F>, off: u32, slot: &[u8]) -> bool {
        let (data, marker) = slot.split_at(ring.data_len() as usize);
        if !is_erased(&data[DATA_LEN..]) {
            return false;
        }
        is_erased(marker) || Self::decode_data(ring, off, data).is_some()
    }

    /// What the slot at `c` holds.
    fn inspect(ring: &mut SectorRing<F>, c: Cursor) -> Result<Slot<()>, StoreError> {
        let mut buf = [0u8; MAX_SLOT];
        let slot = &mut buf[..ring.slot_len() as usize];
        let off = ring.slot_offset(c);
        ring.read(off, slot)?;
        Ok(if let Some(limit) = Self::decode(ring, off, slot) {
            Slot::Valid { key: limit, value: () }
        } else if is_erased(slot) {
            Slot::Erased
        } else {
            Slot::Invalid { torn: Self::is_torn_record(ring, off, slot) }
        })
    }

    /// Scans the whole region ([`SectorRing::scan`]): the newest valid
    /// limit and where the next record goes.
    fn scan(&mut self) -> Result<ring::Scan<()>, StoreError> {
        self.ring.scan(Self::inspect)
    }
}

impl<F: NorFlash> CounterStore for FlashCounterStore<F> {
    /// Scans the region: the largest valid limit, `None` for a region that
    /// was never written (or whose first write was torn).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for written slots without a valid record
    /// (for example records of another geometry); [`StoreError::Read`].
    fn load(&mut self) -> Result<Option<u64>, StoreError> {
        Ok(self.scan()?.newest.map(|(limit, (), _)| limit))
    }

    /// Compare-and-swap: scans the region, checks that its newest record
    /// holds `current` and that `limit` is larger ([`check_swap`]), then
    /// appends a record for `limit`.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] (nothing written) when the region holds
    /// another limit; [`StoreError::Corrupt`], [`StoreError::Read`],
    /// [`StoreError::Write`].
    fn persist(&mut self, current: Option<u64>, limit: u64) -> Result<(), StoreError> {
        let st = self.scan()?;
        check_swap(st.newest.map(|(limit, (), _)| limit), current, limit)?;
        let next = self.ring.claim(st.next)?;
        let off = self.ring.slot_offset(next);
        let mut rec = [0xFFu8; MAX_SLOT];
        let l = limit.to_le_bytes();
        rec[..8].copy_from_slice(&l);
        rec[8..DATA_LEN].copy_from_slice(&Self::check(&self.ring, off, &l).to_le_bytes());
        self.ring.program(off, &rec[..self.ring.data_len() as usize])?;
        self.ring.mark(off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_storage::nor_flash::{ErrorType, NorFlashError, ReadNorFlash};
    use mqseal::{Envelope, Error, Key, Sealer, Suite};
    use std::collections::HashSet;
    use std::format;
    use std::vec;
    use std::vec::Vec;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum FlashErr {
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

    /// NOR flash in RAM with write size `W` and erase size `E`, that loses
    /// power after a budget of steps. A step is half of one byte being
    /// programmed (programming clears bits, high nibble first) or half of
    /// one byte being erased (erasing sets bits). After the power is lost
    /// every operation fails until `reboot`.
    pub(super) struct TearingFlash<const W: usize = 4, const E: usize = 128> {
        pub(super) mem: Vec<u8>,
        budget: Option<u64>,
        pub(super) steps: u64,
        dead: bool,
    }

    impl<const W: usize, const E: usize> TearingFlash<W, E> {
        pub(super) fn new(sectors: usize) -> Self {
            Self::with_mem(vec![0xFF; sectors * E])
        }
        /// The same chip, read through a driver of another geometry.
        fn with_mem(mem: Vec<u8>) -> Self {
            TearingFlash { mem, budget: None, steps: 0, dead: false }
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
        pub(super) fn reboot(&mut self, budget: Option<u64>) {
            self.dead = false;
            self.steps = 0;
            self.budget = budget;
        }
    }

    impl<const W: usize, const E: usize> ErrorType for &mut TearingFlash<W, E> {
        type Error = FlashErr;
    }
    impl<const W: usize, const E: usize> ReadNorFlash for &mut TearingFlash<W, E> {
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
    impl<const W: usize, const E: usize> NorFlash for &mut TearingFlash<W, E> {
        const WRITE_SIZE: usize = W;
        const ERASE_SIZE: usize = E;
        fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashErr> {
            if !(from as usize).is_multiple_of(E) || !(to as usize).is_multiple_of(E) {
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
            if !(offset as usize).is_multiple_of(W) || !bytes.len().is_multiple_of(W) {
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

    fn store<const W: usize, const E: usize>(
        flash: &mut TearingFlash<W, E>,
        base: u32,
        sectors: u32,
    ) -> FlashCounterStore<&mut TearingFlash<W, E>> {
        let Ok(s) = FlashCounterStore::new(flash, base, sectors) else { panic!("config") };
        s
    }

    /// Seals up to `n` messages with a fresh sealer over a 3-sector region
    /// at 0; returns the counters of the envelopes that were sealed (stops
    /// at the first error, i.e. the power loss).
    fn run<const W: usize>(flash: &mut TearingFlash<W>, block: u64, n: usize) -> Vec<u64> {
        let mut used = Vec::new();
        let Ok(sealer) = Sealer::new(&key(), 9, Suite::ChaCha20Poly1305, store(flash, 0, 3)) else { return used };
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
        let mut flash = TearingFlash::<4>::new(3);
        let mut store = store(&mut flash, 0, 3);
        assert_eq!(store.load(), Ok(None));
        assert_eq!(store.slots_per_sector(), 128 / 16);
        store.create().unwrap();
        assert_eq!(store.load(), Ok(Some(0)));
        // 100 records over 3 sectors of 8 slots: the ring wraps 4 times.
        let mut current = 0;
        for limit in 1..=100u64 {
            store.persist(Some(current), limit * 10).unwrap();
            current = limit * 10;
            if limit % 7 == 0 {
                let mut again = FlashCounterStore::new(&mut *store.ring.flash, 0, 3).unwrap();
                assert_eq!(again.load(), Ok(Some(limit * 10)));
            }
        }
        assert_eq!(store.load(), Ok(Some(1000)));
    }

    #[test]
    fn persist_is_a_compare_and_swap() {
        let mut flash = TearingFlash::<4>::new(3);
        let mut store = store(&mut flash, 0, 3);
        store.create().unwrap();
        store.persist(Some(0), 10).unwrap();
        let before = store.ring.flash.mem.clone();
        // A second writer's view (it last saw 0), a limit that does not
        // grow, and a store that believes the region is empty: all refused,
        // nothing written.
        assert_eq!(store.persist(Some(0), 20), Err(StoreError::Conflict));
        assert_eq!(store.persist(Some(10), 10), Err(StoreError::Conflict));
        assert_eq!(store.persist(Some(10), 5), Err(StoreError::Conflict));
        assert_eq!(store.persist(None, 20), Err(StoreError::Conflict));
        assert_eq!(store.ring.flash.mem, before);
        store.persist(Some(10), 20).unwrap();
        assert_eq!(store.load(), Ok(Some(20)));
    }

    #[test]
    fn resumes_after_restart_with_the_core_sealer() {
        let mut flash = TearingFlash::<4>::new(3);
        store(&mut flash, 0, 3).create().unwrap();
        let first = run(&mut flash, 4, 10);
        assert_eq!(first, (0..10).collect::<Vec<_>>());
        // The block 8..12 was reserved; a restart skips to 12.
        let second = run(&mut flash, 4, 3);
        assert_eq!(second, vec![12, 13, 14]);
    }

    #[test]
    fn a_region_with_no_state_is_refused_unless_provisioned_or_floored() {
        let mut flash = TearingFlash::<4>::new(3);
        assert!(run(&mut flash, 4, 1).is_empty());
        assert_eq!(
            Sealer::new(&key(), 9, Suite::HmacSha256, store(&mut flash, 0, 3)).err(),
            Some(Error::CounterStore(StoreError::Missing))
        );
        assert!(flash.mem.iter().all(|&b| b == 0xFF), "a refused sealer wrote");
        // A clock floor starts above the floor, and its first persist is a
        // compare-and-swap from "nothing stored".
        let ms = 1_700_000_000_000;
        let mut sealer = Sealer::new_with_clock_floor(&key(), 9, Suite::HmacSha256, store(&mut flash, 0, 3), ms)
            .unwrap()
            .with_reservation_block(16)
            .unwrap();
        let mut out = [0u8; 64];
        let n = sealer.seal_into("t", b"x", &mut out).unwrap();
        assert_eq!(Envelope::parse(&out[..n]).unwrap().header.counter, mqseal::clock_floor(ms));
        drop(sealer);
        assert_eq!(store(&mut flash, 0, 3).load(), Ok(Some(mqseal::clock_floor(ms) + 16)));
    }

    #[test]
    fn create_refuses_state_and_format_provisions_anew() {
        let mut flash = TearingFlash::<4>::new(3);
        let mut s = store(&mut flash, 0, 3);
        s.create().unwrap();
        s.persist(Some(0), 64).unwrap();
        let before = s.ring.flash.mem.clone();
        assert_eq!(s.create(), Err(StoreError::Conflict));
        assert_eq!(s.ring.flash.mem, before);
        // Foreign data: corrupt, create refuses, format (a new key or sender
        // id) starts over.
        s.ring.flash.mem.fill(0xFF);
        s.ring.flash.mem[200..210].copy_from_slice(b"not mqseal");
        assert_eq!(s.load(), Err(StoreError::Corrupt));
        assert_eq!(s.create(), Err(StoreError::Corrupt));
        s.format().unwrap();
        assert_eq!(s.load(), Ok(Some(0)));
        s.erase_all().unwrap();
        assert_eq!(s.load(), Ok(None));
    }

    #[test]
    fn rejects_unusable_regions() {
        let mut flash = TearingFlash::<4>::new(4);
        assert_eq!(FlashCounterStore::new(&mut flash, 0, 1).err(), Some(FlashConfigError::TooFewSectors));
        assert_eq!(FlashCounterStore::new(&mut flash, 100, 2).err(), Some(FlashConfigError::Misaligned));
        assert_eq!(FlashCounterStore::new(&mut flash, 256, 3).err(), Some(FlashConfigError::OutOfBounds));
        assert_eq!(FlashCounterStore::new(&mut flash, u32::MAX - 255, 2).err(), Some(FlashConfigError::OutOfBounds));
        assert!(FlashCounterStore::new(&mut flash, 256, 2).is_ok());
        let mut wide = TearingFlash::<64, 128>::new(2);
        assert_eq!(FlashCounterStore::new(&mut wide, 0, 2).err(), Some(FlashConfigError::UnsupportedGeometry));
    }

    /// The bytes of a record for `limit` at slot `slot` of sector 0 of a
    /// 2-sector region at 0 with 4-byte writes.
    fn record_bytes(limit: u64, slot: u32) -> [u8; 16] {
        let mut flash = TearingFlash::<4>::new(2);
        let s = store(&mut flash, 0, 2);
        let off = slot * 16;
        let mut r = [0u8; 16];
        r[..8].copy_from_slice(&limit.to_le_bytes());
        r[8..12].copy_from_slice(&FlashCounterStore::check(&s.ring, off, &limit.to_le_bytes()).to_le_bytes());
        r
    }

    fn load_mem(mem: &[u8]) -> Result<Option<u64>, StoreError> {
        let mut flash = TearingFlash::<4>::with_mem(mem.to_vec());
        store(&mut flash, 0, 2).load()
    }

    #[test]
    fn written_slots_without_a_record_are_corrupt_except_a_torn_first_write() {
        let erased = vec![0xFF; 256];
        let rec = record_bytes(1000, 0);
        let torn = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut m = erased.clone();
            f(&mut m);
            load_mem(&m)
        };
        assert_eq!(load_mem(&erased), Ok(None));
        // Torn first writes: data partly or fully programmed, marker not
        // begun; or complete data and a partly programmed marker.
        assert_eq!(torn(&|m| m[0] = 0x0F), Ok(None));
        assert_eq!(torn(&|m| m[..12].copy_from_slice(&rec[..12])), Ok(None));
        assert_eq!(
            torn(&|m| {
                m[..12].copy_from_slice(&rec[..12]);
                m[12] = 0;
                m[13] = 0x0F;
            }),
            Ok(None)
        );
        // Complete, it is a record.
        assert_eq!(torn(&|m| m[..16].copy_from_slice(&rec)), Ok(Some(1000)));
        // Not what a torn first write leaves: corrupt.
        // A complete marker over data that does not check.
        assert_eq!(
            torn(&|m| {
                m[..16].copy_from_slice(&rec);
                m[0] ^= 1;
            }),
            Err(StoreError::Corrupt)
        );
        // A begun marker over data that does not check.
        assert_eq!(
            torn(&|m| {
                m[..8].fill(0);
                m[12] = 0;
            }),
            Err(StoreError::Corrupt)
        );
        // The record of slot 0 in slot 1 (its offset is part of the check).
        assert_eq!(torn(&|m| m[16..32].copy_from_slice(&rec)), Err(StoreError::Corrupt));
        // Written bytes anywhere but slot 0, or a second written slot.
        assert_eq!(torn(&|m| m[16] = 0), Err(StoreError::Corrupt));
        assert_eq!(torn(&|m| m[255] = 0x7F), Err(StoreError::Corrupt));
        assert_eq!(
            torn(&|m| {
                m[0] = 0;
                m[16] = 0;
            }),
            Err(StoreError::Corrupt)
        );
        assert_eq!(torn(&|m| m[16..28].copy_from_slice(b"hello world!")), Err(StoreError::Corrupt));
        // With a valid record, torn and foreign slots are skipped, and the
        // next record goes after the used slots, not over them.
        let mut m = erased.clone();
        m[..12].copy_from_slice(&rec[..12]); // torn
        m[16..32].copy_from_slice(&record_bytes(7, 1));
        m[32..44].copy_from_slice(b"hello world!");
        let mut flash = TearingFlash::<4>::with_mem(m);
        let mut s = store(&mut flash, 0, 2);
        assert_eq!(s.load(), Ok(Some(7)));
        s.persist(Some(7), 9).unwrap();
        assert_eq!(s.load(), Ok(Some(9)));
        assert_eq!(&flash.mem[48..56], &9u64.to_le_bytes());
    }

    #[test]
    fn create_after_a_torn_first_write_starts_clean() {
        let mut flash = TearingFlash::<4>::new(2);
        flash.mem[..6].fill(0x00);
        let mut s = store(&mut flash, 0, 2);
        assert_eq!(s.load(), Ok(None));
        s.create().unwrap();
        assert_eq!(s.load(), Ok(Some(0)));
        assert_eq!(&flash.mem[..16], &record_bytes(0, 0));
    }

    #[test]
    fn crc_is_zlib_crc32() {
        assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
        assert_eq!(crc32(&[b"1234", b"56789"]), 0xCBF4_3926);
    }

    #[test]
    fn failed_flash_fails_sealing() {
        let mut flash = TearingFlash::<4>::new(3);
        store(&mut flash, 0, 3).create().unwrap();
        flash.dead = true;
        let err = Sealer::new(&key(), 1, Suite::HmacSha256, store(&mut flash, 0, 3)).err();
        assert_eq!(err, Some(Error::CounterStore(StoreError::Read)));
        flash.reboot(Some(10)); // reads work, the first record's write does not
        let mut sealer = Sealer::new(&key(), 1, Suite::HmacSha256, store(&mut flash, 0, 3)).unwrap();
        let mut out = [0u8; 64];
        assert_eq!(sealer.seal_into("t", b"x", &mut out), Err(Error::CounterStore(StoreError::Write)));
        assert_eq!(sealer.store().last_flash_error(), Some(NorFlashErrorKind::Other));
    }

    /// Writes a history under one geometry: created, then `records` more
    /// limits. Gives back the flash content and the last limit.
    fn history<const W: usize, const E: usize>(base: u32, sectors: u32, records: u64) -> (Vec<u8>, u64) {
        let mut flash = TearingFlash::<W, E>::with_mem(vec![0xFF; 1024]);
        let mut s = store(&mut flash, base, sectors);
        s.create().unwrap();
        let mut last = 0;
        for i in 1..=records {
            let limit = i * 1000 + 24;
            s.persist(Some(last), limit).unwrap();
            last = limit;
        }
        assert_eq!(s.load(), Ok(Some(last)));
        (flash.mem, last)
    }

    /// Reads a flash written under another geometry, as a firmware update
    /// that changed the geometry would: the store loads `Corrupt` or the
    /// exact last limit (never `None`, never 0 nor an older limit), and a
    /// sealer, with or without a clock floor, refuses to start on anything
    /// but the exact limit.
    fn reread<const W: usize, const E: usize>(mem: &[u8], base: u32, sectors: u32, last: u64, what: &str) {
        let mut flash = TearingFlash::<W, E>::with_mem(mem.to_vec());
        let got = store(&mut flash, base, sectors).load();
        let region = &mem[base as usize..base as usize + sectors as usize * E];
        if is_erased(region) {
            // The new region holds none of the old data: no state, refused.
            assert_eq!(got, Ok(None), "{what}");
            let s = store(&mut flash, base, sectors);
            let r = Sealer::new(&key(), 9, Suite::ChaCha20Poly1305, s);
            assert_eq!(r.err(), Some(Error::CounterStore(StoreError::Missing)), "{what}");
            return;
        }
        assert!(got == Err(StoreError::Corrupt) || got == Ok(Some(last)), "{what}: loaded {got:?}, last limit {last}");
        if got.is_err() {
            for floor in [None, Some(1_700_000_000_000)] {
                let s = store(&mut flash, base, sectors);
                let r = match floor {
                    None => Sealer::new(&key(), 9, Suite::ChaCha20Poly1305, s),
                    Some(ms) => Sealer::new_with_clock_floor(&key(), 9, Suite::ChaCha20Poly1305, s, ms),
                };
                assert_eq!(r.err(), Some(Error::CounterStore(StoreError::Corrupt)), "{what}");
                let mut s = store(&mut flash, base, sectors);
                assert_eq!(s.persist(None, 1), Err(StoreError::Corrupt), "{what}");
                assert_eq!(s.create(), Err(StoreError::Corrupt), "{what}");
            }
        }
        assert_eq!(flash.mem, mem, "{what}: a refused store wrote");
    }

    /// Every kind of geometry change (write size, erase size, sector count,
    /// base address, and combinations), over histories from "just created"
    /// to several wraps of the ring.
    #[test]
    fn geometry_changes_never_give_zero_or_an_older_limit() {
        macro_rules! change {
            (($w1:literal, $e1:literal, $b1:literal, $s1:literal) -> ($w2:literal, $e2:literal, $b2:literal, $s2:literal)) => {
                for records in [0u64, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 23, 24, 25, 40, 61] {
                    let (mem, last) = history::<$w1, $e1>($b1, $s1, records);
                    let what = format!(
                        "W {} E {} base {} sectors {} -> W {} E {} base {} sectors {}, {} records",
                        $w1, $e1, $b1, $s1, $w2, $e2, $b2, $s2, records
                    );
                    reread::<$w2, $e2>(&mem, $b2, $s2, last, &what);
                }
            };
        }
        // WRITE_SIZE
        change!((4, 128, 0, 3) -> (8, 128, 0, 3));
        change!((8, 128, 0, 3) -> (4, 128, 0, 3));
        change!((4, 128, 0, 3) -> (16, 128, 0, 3));
        change!((16, 128, 0, 3) -> (4, 128, 0, 3));
        change!((4, 128, 0, 3) -> (32, 128, 0, 3));
        change!((32, 128, 0, 3) -> (4, 128, 0, 3));
        change!((8, 128, 0, 3) -> (16, 128, 0, 3));
        change!((16, 128, 0, 3) -> (8, 128, 0, 3));
        change!((16, 128, 0, 3) -> (32, 128, 0, 3));
        change!((1, 128, 0, 3) -> (4, 128, 0, 3));
        change!((4, 128, 0, 3) -> (1, 128, 0, 3));
        change!((2, 128, 0, 3) -> (4, 128, 0, 3));
        // sector count (region size)
        change!((4, 128, 0, 3) -> (4, 128, 0, 2));
        change!((4, 128, 0, 3) -> (4, 128, 0, 4));
        change!((4, 128, 0, 2) -> (4, 128, 0, 3));
        change!((4, 128, 0, 4) -> (4, 128, 0, 2));
        change!((4, 128, 0, 2) -> (4, 128, 0, 8));
        // base address (overlapping regions)
        change!((4, 128, 0, 3) -> (4, 128, 128, 3));
        change!((4, 128, 128, 3) -> (4, 128, 0, 3));
        change!((4, 128, 0, 4) -> (4, 128, 256, 3));
        change!((4, 128, 256, 3) -> (4, 128, 128, 3));
        change!((4, 128, 128, 2) -> (4, 128, 0, 4));
        // erase size (the driver's sector size)
        change!((4, 128, 0, 4) -> (4, 256, 0, 2));
        change!((4, 256, 0, 2) -> (4, 128, 0, 4));
        change!((4, 256, 0, 2) -> (4, 128, 0, 3));
        change!((4, 128, 0, 2) -> (4, 256, 0, 2));
        // several at once
        change!((4, 128, 0, 3) -> (8, 128, 0, 4));
        change!((8, 128, 0, 3) -> (4, 256, 0, 2));
        change!((4, 128, 128, 3) -> (16, 256, 0, 3));
    }

    #[test]
    fn a_region_moved_to_erased_flash_holds_no_state_and_is_refused() {
        let (mem, _) = history::<4, 128>(0, 3, 10);
        let mut flash = TearingFlash::<4, 128>::with_mem(mem);
        let s = store(&mut flash, 512, 3);
        assert_eq!(
            Sealer::new(&key(), 9, Suite::ChaCha20Poly1305, s).err(),
            Some(Error::CounterStore(StoreError::Missing))
        );
    }

    /// Provisions the region (factory step) with the power cut after
    /// `budget` steps; whether `create` returned `Ok`.
    fn factory<const W: usize>(flash: &mut TearingFlash<W>, budget: Option<u64>) -> bool {
        flash.reboot(budget);
        store(flash, 0, 3).create().is_ok()
    }

    /// After a reboot: what the region loads must cover every counter used.
    fn check_load<const W: usize>(
        flash: &mut TearingFlash<W>,
        provisioned: bool,
        retried: bool,
        highest: Option<u64>,
        what: &str,
    ) {
        flash.reboot(None);
        let got = store(flash, 0, 3).load();
        if provisioned {
            let Ok(Some(limit)) = got else { panic!("{what}: provisioned region loads {got:?}") };
            assert!(highest.is_none_or(|h| limit > h), "{what}: limit {limit} does not cover counter {highest:?}");
        } else {
            // A torn provisioning holds no state; a second one, torn while
            // it erased the first attempt, may leave a corrupt region.
            assert!(got == Ok(None) || (retried && got == Err(StoreError::Corrupt)), "{what}: {got:?}");
            assert!(run(flash, 1, 1).is_empty(), "{what}: a sealer started on an unprovisioned region");
        }
    }

    /// Cuts the power at every step of a run that provisions the region and
    /// fills the ring twice, then reboots (and cuts the power again during
    /// the retried provisioning and the recovery run), and checks after
    /// every reboot that the loaded limit covers every counter used (never
    /// 0, never older) and that no counter is ever used twice.
    fn power_loss_at_every_step<const W: usize>() {
        const BLOCK: u64 = 1;
        const MESSAGES: usize = 30;
        // Dry run: how many steps do provisioning and the whole run take?
        let mut flash = TearingFlash::<W>::new(3);
        assert!(factory(&mut flash, None));
        let all = run(&mut flash, BLOCK, MESSAGES);
        assert_eq!(all, (0..30).collect::<Vec<_>>());
        let total = flash.steps;
        let s = store(&mut flash, 0, 3);
        let (slot, per_sector) = (u64::from(s.ring.slot_len()), u64::from(s.slots_per_sector()));
        // 31 records (provisioning + 30) of 2 half-steps per byte, and an
        // erase of 2 x 128 half-steps each time the ring moves on.
        let records = 31;
        assert_eq!(total, records * 2 * slot + (records - 1) / per_sector * 256, "run does not cover the ring");
        assert!((records - 1) / per_sector >= 3, "run does not wrap the ring");
        let mut crashes_seen = 0;
        for cut in 0..total {
            let mut flash = TearingFlash::<W>::new(3);
            let mut used: HashSet<u64> = HashSet::new();
            let mut highest: Option<u64> = None;
            let mut record = |counters: Vec<u64>, highest: &mut Option<u64>, what: &str| {
                for c in counters {
                    assert!(used.insert(c), "counter {c} reused ({what}, cut at step {cut})");
                    assert!(highest.is_none_or(|h| c > h), "counter {c} went backwards ({what}, cut {cut})");
                    *highest = Some(c);
                }
            };
            let mut provisioned = factory(&mut flash, Some(cut));
            if provisioned {
                record(run(&mut flash, BLOCK, MESSAGES), &mut highest, "first run");
            }
            assert!(flash.dead, "cut {cut} beyond the run");
            crashes_seen += 1;
            check_load(&mut flash, provisioned, false, highest, &format!("W {W}, cut {cut}"));
            if !provisioned {
                // The factory retries, and the power fails again.
                provisioned = factory(&mut flash, Some((cut * 7919) % (4 * slot)));
                check_load(&mut flash, provisioned, true, highest, &format!("W {W}, cut {cut}, retry"));
                if !provisioned {
                    // Nothing was sealed yet: the factory may format.
                    flash.reboot(None);
                    let mut s = store(&mut flash, 0, 3);
                    provisioned = match s.create() {
                        Err(StoreError::Corrupt) => s.format().is_ok(),
                        r => r.is_ok(),
                    };
                }
                assert!(provisioned, "W {W}, cut {cut}: provisioning cannot be completed");
            }
            // Second power loss somewhere in the recovery run.
            flash.reboot(Some((cut * 7919) % 800));
            record(run(&mut flash, BLOCK, 15), &mut highest, "recovery run");
            check_load(&mut flash, true, false, highest, &format!("W {W}, cut {cut}, after recovery"));
            // Final clean run: must work and still never reuse.
            let last = run(&mut flash, BLOCK, 15);
            assert_eq!(last.len(), 15, "store unusable after cut {cut}");
            record(last, &mut highest, "clean run");
        }
        assert_eq!(crashes_seen, total);
    }

    #[test]
    fn power_loss_at_every_step_never_reuses_a_counter_write_size_4() {
        power_loss_at_every_step::<4>();
    }

    #[test]
    fn power_loss_at_every_step_never_reuses_a_counter_write_size_8() {
        power_loss_at_every_step::<8>();
    }

    #[test]
    fn power_loss_at_every_step_never_reuses_a_counter_write_size_32() {
        power_loss_at_every_step::<32>();
    }
}
