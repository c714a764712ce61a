//! The ring of erase sectors that both flash stores write to: fixed-size
//! slots appended in order, and a sector erased only when the ring moves
//! into it, so the newest record is never in the sector being erased. A
//! slot is a data part, then a marker of zeros programmed only after the
//! data was read back. The region's geometry (format tag, write and erase
//! sizes, sectors, base, slot and data lengths) is hashed into one word
//! that each store binds into its records' check values.
//!
//! What a slot's data means is the store's: the counter store keeps a
//! limit ([`super::FlashCounterStore`]), the member store a record with a
//! sequence number ([`super::FlashMemberStore`]). Both tell [`SectorRing::scan`]
//! what they find in a slot, as a [`Slot`].

use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};
use mqseal::StoreError;

use super::{FlashConfigError, MAX_WRITE_SIZE};

/// Minimum marker length.
pub(super) const MARKER_LEN: usize = 4;
/// Bytes one [`SectorRing::program`] call moves at most.
const MAX_PROGRAM: usize = 64;

/// A slot's place in the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Cursor {
    pub(super) sector: u32,
    pub(super) slot: u32,
}

/// What a store finds in one slot.
pub(super) enum Slot<T> {
    /// A complete, valid record: the newest is the one with the largest
    /// `key` (the counter store's limit, the member store's sequence
    /// number).
    Valid { key: u64, value: T },
    /// Written, but not a valid record; `torn` when it is what a write of
    /// a record of this geometry torn by a power loss leaves.
    Invalid { torn: bool },
    /// Never written since its sector was erased.
    Erased,
}

/// The newest valid record a scan found, and where the next record goes.
pub(super) struct Scan<T> {
    pub(super) newest: Option<(u64, T, Cursor)>,
    pub(super) next: Cursor,
}

pub(super) const fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

pub(super) fn is_erased(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0xFF)
}

/// A ring of `sectors` erase sectors from byte offset `base` of `flash`.
#[derive(Debug)]
pub(super) struct SectorRing<F> {
    /// The driver (the stores' tests look at the flash through it).
    pub(super) flash: F,
    base: u32,
    sectors: u32,
    slot_len: u32,
    data_len: u32,
    slots_per_sector: u32,
    erase_len: u32,
    /// crc32 of the format tag and the geometry, bound into every record.
    geometry: u32,
    last_error: Option<NorFlashErrorKind>,
}

impl<F: NorFlash> SectorRing<F> {
    /// A ring whose slots hold `data` bytes of data (rounded up to `chunk`
    /// when given, which the write and read sizes must divide; to the write
    /// size otherwise), then the marker; a slot is at most `max_slot`
    /// bytes. Nothing is read or written here.
    pub(super) fn new(
        flash: F,
        base: u32,
        sectors: u32,
        magic: &[u8],
        data: usize,
        chunk: Option<usize>,
        max_slot: usize,
    ) -> Result<Self, FlashConfigError> {
        if sectors < 2 {
            return Err(FlashConfigError::TooFewSectors);
        }
        let (w, r, e) = (F::WRITE_SIZE, F::READ_SIZE, F::ERASE_SIZE);
        if w == 0 || w > MAX_WRITE_SIZE || r == 0 || e == 0 {
            return Err(FlashConfigError::UnsupportedGeometry);
        }
        if chunk.is_some_and(|c| !c.is_multiple_of(w) || !c.is_multiple_of(r)) {
            return Err(FlashConfigError::UnsupportedGeometry);
        }
        let data_len = round_up(data, chunk.unwrap_or(w));
        let slot_len = data_len + round_up(MARKER_LEN, w);
        if slot_len > max_slot || !slot_len.is_multiple_of(r) || !data_len.is_multiple_of(r) || e < slot_len {
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
        let slot_len = u32::try_from(slot_len).map_err(|_| FlashConfigError::UnsupportedGeometry)?;
        let data_len = u32::try_from(data_len).map_err(|_| FlashConfigError::UnsupportedGeometry)?;
        let write = u32::try_from(w).map_err(|_| FlashConfigError::UnsupportedGeometry)?;
        let geometry = crc32(&[
            magic,
            &write.to_le_bytes(),
            &erase.to_le_bytes(),
            &sectors.to_le_bytes(),
            &base.to_le_bytes(),
            &slot_len.to_le_bytes(),
            &data_len.to_le_bytes(),
        ]);
        Ok(SectorRing {
            flash,
            base,
            sectors,
            slot_len,
            data_len,
            slots_per_sector: erase / slot_len,
            erase_len: erase,
            geometry,
            last_error: None,
        })
    }

    pub(super) const fn slots_per_sector(&self) -> u32 {
        self.slots_per_sector
    }

    pub(super) const fn slot_len(&self) -> u32 {
        self.slot_len
    }

    /// The data part of a slot (the marker follows it).
    pub(super) const fn data_len(&self) -> u32 {
        self.data_len
    }

    pub(super) const fn geometry(&self) -> u32 {
        self.geometry
    }

    pub(super) const fn last_flash_error(&self) -> Option<NorFlashErrorKind> {
        self.last_error
    }

    pub(super) fn into_inner(self) -> F {
        self.flash
    }

    const fn sector_start(&self, sector: u32) -> u32 {
        self.base + sector * self.erase_len
    }

    pub(super) const fn slot_offset(&self, c: Cursor) -> u32 {
        self.sector_start(c.sector) + c.slot * self.slot_len
    }

    fn flash_result<T>(&mut self, r: Result<T, F::Error>, e: StoreError) -> Result<T, StoreError> {
        r.map_err(|err| {
            self.last_error = Some(err.kind());
            e
        })
    }

    /// Reads at `off`. A failed read is an error, never erased bytes.
    pub(super) fn read(&mut self, off: u32, buf: &mut [u8]) -> Result<(), StoreError> {
        let r = self.flash.read(off, buf);
        self.flash_result(r, StoreError::Read)
    }

    /// Erases `sector`.
    pub(super) fn erase_sector(&mut self, sector: u32) -> Result<(), StoreError> {
        let from = self.sector_start(sector);
        let r = self.flash.erase(from, from + self.erase_len);
        self.flash_result(r, StoreError::Write)
    }

    /// Erases the whole region.
    pub(super) fn erase_all(&mut self) -> Result<(), StoreError> {
        let r = self.flash.erase(self.base, self.sector_start(self.sectors));
        self.flash_result(r, StoreError::Write)
    }

    /// Programs `bytes` (at most 64) at `off` and reads them back.
    pub(super) fn program(&mut self, off: u32, bytes: &[u8]) -> Result<(), StoreError> {
        let mut check = [0u8; MAX_PROGRAM];
        let check = check.get_mut(..bytes.len()).ok_or(StoreError::Write)?;
        let r = self.flash.write(off, bytes);
        self.flash_result(r, StoreError::Write)?;
        let r = self.flash.read(off, check);
        self.flash_result(r, StoreError::Write)?;
        if check != bytes {
            return Err(StoreError::Write);
        }
        Ok(())
    }

    /// Commits the record whose data part is programmed at `off`.
    pub(super) fn mark(&mut self, off: u32) -> Result<(), StoreError> {
        let marker = [0u8; MAX_WRITE_SIZE + MARKER_LEN];
        let len = (self.slot_len - self.data_len) as usize;
        self.program(off + self.data_len, marker.get(..len).ok_or(StoreError::Write)?)
    }

    /// Scans the whole region with `inspect`: the newest valid record and
    /// where the next record goes (after the last written slot of the
    /// sector that holds the newest record, or sector 0 when there is
    /// none).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when slots are written but none holds a
    /// valid record, except a torn first write of a fresh region (only slot
    /// 0 of sector 0 written, and torn); what `inspect` returns.
    pub(super) fn scan<T>(
        &mut self,
        mut inspect: impl FnMut(&mut Self, Cursor) -> Result<Slot<T>, StoreError>,
    ) -> Result<Scan<T>, StoreError> {
        let mut newest: Option<(u64, T, Cursor)> = None;
        let mut invalid = 0u32;
        let mut first_torn = false;
        for sector in 0..self.sectors {
            for slot in 0..self.slots_per_sector {
                let c = Cursor { sector, slot };
                match inspect(self, c)? {
                    Slot::Valid { key, value } => {
                        if newest.as_ref().is_none_or(|(k, _, _)| key > *k) {
                            newest = Some((key, value, c));
                        }
                    }
                    Slot::Invalid { torn } => {
                        invalid = invalid.saturating_add(1);
                        first_torn = sector == 0 && slot == 0 && torn;
                    }
                    Slot::Erased => {}
                }
            }
        }
        let active = match &newest {
            Some((_, _, c)) => c.sector,
            None if invalid == 0 || (invalid == 1 && first_torn) => 0,
            None => return Err(StoreError::Corrupt),
        };
        let mut next = 0;
        for slot in (0..self.slots_per_sector).rev() {
            if !matches!(inspect(self, Cursor { sector: active, slot })?, Slot::Erased) {
                next = slot + 1;
                break;
            }
        }
        Ok(Scan { newest, next: Cursor { sector: active, slot: next } })
    }

    /// The slot the next record goes to: `next`, or, when its sector is
    /// full, the first slot of the following sector, erased first. Whatever
    /// happens after this, the slot is used: the next scan sees it written
    /// and never programs it again before its sector is erased.
    pub(super) fn claim(&mut self, next: Cursor) -> Result<Cursor, StoreError> {
        if next.slot < self.slots_per_sector {
            return Ok(next);
        }
        let next = Cursor { sector: (next.sector + 1) % self.sectors, slot: 0 };
        self.erase_sector(next.sector)?;
        Ok(next)
    }
}

/// CRC-32 (IEEE 802.3, reflected, as in zlib), bitwise: a few bytes per
/// write do not justify a 1 KiB table in flash. An integrity check against
/// torn and foreign data, not a cryptographic one.
pub(super) fn crc32(parts: &[&[u8]]) -> u32 {
    !parts.iter().fold(CRC_INIT, |crc, part| crc32_update(crc, part))
}

/// The CRC-32 register before any byte (finish with `!`).
pub(super) const CRC_INIT: u32 = 0xFFFF_FFFF;

/// [`crc32`] over bytes given in pieces: feed each to this, starting from
/// [`CRC_INIT`], and invert the result.
pub(super) fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    crc
}
