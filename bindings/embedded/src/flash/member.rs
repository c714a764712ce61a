//! The member-state record of key distribution (`docs/PROTOCOL.md` 14.9)
//! on NOR flash, in a region of its own next to the counter store's, with
//! the counter store's rules: records appended to a ring of erase sectors
//! (a sector is erased only when the ring moves into it, so the newest
//! record is never in the sector being erased), each bound to the region's
//! geometry and its own offset by a CRC-32, and marked valid by a second
//! program operation after the data was read back. A torn write or erase
//! leaves the previous record in force.
//!
//! ```text
//! slot = | seq: u64 LE | len: u32 LE | check: u32 LE | record (len bytes) | 0xFF .. | marker: 0x00.. (≥ 4 bytes) |
//!          └──────────────── first program operations (read back) ───────────────┘ └─ second operation ────┘
//! check    = crc32(geometry ‖ slot offset ‖ seq ‖ len ‖ record)
//! geometry = crc32("mqsealmem1" ‖ WRITE_SIZE ‖ ERASE_SIZE ‖ sectors ‖ base ‖ slot length ‖ data length)
//! ```
//!
//! The newest record is the valid one with the largest `seq`; each save
//! writes `seq + 1`. As for counters, a region with written slots but no
//! valid record is [`StoreError::Corrupt`] (never "no state"), except a
//! torn first save of a fresh region (only slot 0 of sector 0 written, its
//! marker not begun).
//!
//! With the core's [`mqseal::MemberAgent`]: resume from
//! [`FlashMemberStore::load`], and give [`FlashMemberStore::save`] to
//! [`mqseal::MemberAgent::handle`], which runs it before the
//! agent changes or hands out the ack.

use embedded_storage::nor_flash::{NorFlash, NorFlashErrorKind};
use mqseal::{StoreError, MAX_MEMBER_STATE_LEN};

use super::ring::{crc32_update, is_erased, Cursor, SectorRing, Slot, CRC_INIT, MARKER_LEN};
use super::{FlashConfigError, MAX_WRITE_SIZE};

/// Format tag hashed into the geometry word.
const MAGIC: &[u8; 10] = b"mqsealmem1";
/// Sequence number (8), record length (4), check value (4).
const HEADER_LEN: usize = 16;
/// Bytes moved per flash operation (a multiple of every supported write
/// and read size that divides it).
const CHUNK: usize = 64;

/// A power-loss-safe store of one member-state record on NOR flash.
#[derive(Debug)]
pub struct FlashMemberStore<F> {
    ring: SectorRing<F>,
}

/// A valid record found by a scan.
#[derive(Clone, Copy, Debug)]
struct Found {
    seq: u64,
    len: usize,
    at: Cursor,
}

impl<F: NorFlash> FlashMemberStore<F> {
    /// A store over `sectors` erase sectors of `flash` from byte offset
    /// `base` (aligned to `F::ERASE_SIZE`; a region of its own, not the
    /// counter store's). A sector must hold at least one slot
    /// (`MAX_MEMBER_STATE_LEN` plus 16 bytes of header and the marker,
    /// about 2.9 KiB: 4 KiB sectors hold one). Nothing is read or written
    /// here.
    ///
    /// # Errors
    /// [`FlashConfigError`] when the region or the geometry is not usable.
    pub fn new(flash: F, base: u32, sectors: u32) -> Result<Self, FlashConfigError> {
        let data = HEADER_LEN + MAX_MEMBER_STATE_LEN;
        Ok(FlashMemberStore { ring: SectorRing::new(flash, base, sectors, MAGIC, data, Some(CHUNK), usize::MAX)? })
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

    /// Erases the whole region (a member enrolled anew: its authority
    /// starts it at epoch 0 again).
    ///
    /// # Errors
    /// [`StoreError::Write`] when the flash fails.
    pub fn erase_all(&mut self) -> Result<(), StoreError> {
        self.ring.erase_all()
    }

    /// The CRC register of a record's check value after everything but the
    /// record bytes (feed them with `crc32_update`, then invert).
    fn check_prefix(ring: &SectorRing<F>, off: u32, seq: u64, len: u32) -> u32 {
        let crc = crc32_update(CRC_INIT, &ring.geometry().to_le_bytes());
        let crc = crc32_update(crc, &off.to_le_bytes());
        let crc = crc32_update(crc, &seq.to_le_bytes());
        crc32_update(crc, &len.to_le_bytes())
    }

    /// What the slot at `c` holds: `Ok(Some)` a valid record, `Ok(None)`
    /// none; and whether it is written at all, and its marker begun.
    /// `out`, when given, receives the record bytes.
    fn inspect(
        ring: &mut SectorRing<F>,
        c: Cursor,
        mut out: Option<&mut [u8]>,
    ) -> Result<(Option<Found>, bool, bool), StoreError> {
        let off = ring.slot_offset(c);
        let (slot_len, data_len) = (ring.slot_len(), ring.data_len());
        let mut chunk = [0u8; CHUNK];
        let mut written = false;
        let mut marker = [0u8; MAX_WRITE_SIZE + MARKER_LEN];
        let marker = &mut marker[..(slot_len - data_len) as usize];
        ring.read(off + data_len, marker)?;
        let marked = marker.iter().all(|&b| b == 0);
        let marker_begun = !is_erased(marker);
        written |= marker_begun;
        let mut header = [0u8; HEADER_LEN];
        ring.read(off, &mut header)?;
        written |= !is_erased(&header);
        let mut w = [0u8; 8];
        w.copy_from_slice(&header[..8]);
        let seq = u64::from_le_bytes(w);
        let mut l = [0u8; 4];
        l.copy_from_slice(&header[8..12]);
        let len32 = u32::from_le_bytes(l);
        l.copy_from_slice(&header[12..16]);
        let stored = u32::from_le_bytes(l);
        let len = len32 as usize;
        if !marked || len > MAX_MEMBER_STATE_LEN {
            // Not a valid record: is anything beyond the header written?
            if !written {
                let mut pos = HEADER_LEN as u32;
                while pos < data_len && !written {
                    let n = CHUNK.min((data_len - pos) as usize);
                    ring.read(off + pos, &mut chunk[..n])?;
                    written = !is_erased(&chunk[..n]);
                    pos += n as u32;
                }
            }
            return Ok((None, written, marker_begun));
        }
        let mut crc = Self::check_prefix(ring, off, seq, len32);
        let mut pos = 0usize;
        while pos < len {
            let n = CHUNK.min(len - pos);
            ring.read(off + (HEADER_LEN + pos) as u32, &mut chunk[..n])?;
            crc = crc32_update(crc, &chunk[..n]);
            if let Some(o) = out.as_deref_mut() {
                if let Some(dst) = o.get_mut(pos..pos + n) {
                    dst.copy_from_slice(&chunk[..n]);
                }
            }
            pos += n;
        }
        let found = (!crc == stored).then_some(Found { seq, len, at: c });
        Ok((found, true, marker_begun))
    }

    /// What the slot at `c` holds, for [`SectorRing::scan`].
    fn slot(ring: &mut SectorRing<F>, c: Cursor) -> Result<Slot<usize>, StoreError> {
        Ok(match Self::inspect(ring, c, None)? {
            (Some(f), _, _) => Slot::Valid { key: f.seq, value: f.len },
            (None, true, marker_begun) => Slot::Invalid { torn: !marker_begun },
            (None, false, _) => Slot::Erased,
        })
    }

    /// The newest valid record and the slot where the next one goes.
    fn scan(&mut self) -> Result<(Option<Found>, Cursor), StoreError> {
        let scan = self.ring.scan(Self::slot)?;
        Ok((scan.newest.map(|(seq, len, at)| Found { seq, len, at }), scan.next))
    }

    /// Copies the newest record into `out` (`MAX_MEMBER_STATE_LEN` bytes
    /// suffice) and gives its length; `None` for a region never written
    /// (a member just enrolled). Give `&out[..n]` to
    /// [`mqseal::MemberAgent::new`], which validates it.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for written slots without a valid record;
    /// [`StoreError::Read`]; [`StoreError::Write`] never.
    /// `out` shorter than the record: [`StoreError::Corrupt`] is not given;
    /// the record is cut, and the agent refuses it.
    pub fn load(&mut self, out: &mut [u8]) -> Result<Option<usize>, StoreError> {
        let (best, _) = self.scan()?;
        let Some(f) = best else { return Ok(None) };
        // Read again, into `out`, and check again.
        match Self::inspect(&mut self.ring, f.at, Some(out))? {
            (Some(g), _, _) if g.seq == f.seq => Ok(Some(g.len.min(out.len()))),
            _ => Err(StoreError::Read),
        }
    }

    /// Appends `record` as the newest record: durable once this returns
    /// `Ok` (data programmed and read back, then the marker).
    ///
    /// # Errors
    /// [`StoreError::Write`] when the flash fails or the record is longer
    /// than `MAX_MEMBER_STATE_LEN`; [`StoreError::Corrupt`],
    /// [`StoreError::Read`] from the scan.
    pub fn save(&mut self, record: &[u8]) -> Result<(), StoreError> {
        if record.len() > MAX_MEMBER_STATE_LEN {
            return Err(StoreError::Write);
        }
        let (best, next) = self.scan()?;
        let seq = best.map_or(Some(0), |b| b.seq.checked_add(1)).ok_or(StoreError::Write)?;
        let next = self.ring.claim(next)?;
        let off = self.ring.slot_offset(next);
        let len32 = u32::try_from(record.len()).map_err(|_| StoreError::Write)?;
        let check = !crc32_update(Self::check_prefix(&self.ring, off, seq, len32), record);
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(&seq.to_le_bytes());
        header[8..12].copy_from_slice(&len32.to_le_bytes());
        header[12..].copy_from_slice(&check.to_le_bytes());
        // The data part, chunk by chunk (chunks left erased are skipped).
        let total = HEADER_LEN + record.len();
        let mut pos = 0usize;
        while pos < total {
            let mut chunk = [0xFFu8; CHUNK];
            for (i, b) in chunk.iter_mut().enumerate() {
                let at = pos + i;
                if at < HEADER_LEN {
                    *b = header[at];
                } else if let Some(&r) = record.get(at - HEADER_LEN) {
                    *b = r;
                }
            }
            self.ring.program(off + pos as u32, &chunk)?;
            pos += CHUNK;
        }
        self.ring.mark(off)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::TearingFlash;
    use super::*;
    use mqseal::{ControlTopics, Error, MemberAgent, StaticKeyPair, MAX_ACK_ENVELOPE_LEN};
    use std::vec;
    use std::vec::Vec;

    type Flash = TearingFlash<4, 4096>;

    fn store(flash: &mut Flash) -> FlashMemberStore<&mut Flash> {
        let Ok(s) = FlashMemberStore::new(flash, 0, 2) else { panic!("config") };
        s
    }

    fn load(flash: &mut Flash) -> Result<Option<Vec<u8>>, StoreError> {
        let mut out = vec![0u8; MAX_MEMBER_STATE_LEN];
        Ok(store(flash).load(&mut out)?.map(|n| out[..n].to_vec()))
    }

    fn record(i: u8, len: usize) -> Vec<u8> {
        (0..len).map(|j| i.wrapping_mul(31).wrapping_add(j as u8)).collect()
    }

    #[test]
    fn saves_and_loads_the_newest_record_across_wraps() {
        let mut flash = Flash::new(2);
        assert_eq!(load(&mut flash).unwrap(), None);
        for i in 0..7u8 {
            let r = record(i, 100 + usize::from(i) * 300);
            store(&mut flash).save(&r).unwrap();
            assert_eq!(load(&mut flash).unwrap(), Some(r));
        }
        let full = record(9, MAX_MEMBER_STATE_LEN);
        store(&mut flash).save(&full).unwrap();
        assert_eq!(load(&mut flash).unwrap(), Some(full));
        assert_eq!(store(&mut flash).save(&[0; MAX_MEMBER_STATE_LEN + 1]), Err(StoreError::Write));
    }

    #[test]
    fn changed_bytes_and_another_geometry_are_corrupt() {
        let mut flash = Flash::new(2);
        store(&mut flash).save(&record(1, 300)).unwrap();
        let mut bad = Flash::new(2);
        bad.mem.copy_from_slice(&flash.mem);
        bad.mem[100] ^= 0x01;
        assert_eq!(load(&mut bad), Err(StoreError::Corrupt));
        // The counter store's region layout is not a member region.
        let mut other = TearingFlash::<4, 4096>::new(3);
        other.mem[..8192].copy_from_slice(&flash.mem);
        let Ok(mut s) = FlashMemberStore::new(&mut other, 0, 3) else { panic!("config") };
        assert_eq!(s.load(&mut [0; MAX_MEMBER_STATE_LEN]), Err(StoreError::Corrupt));
    }

    #[test]
    fn rejects_unusable_regions() {
        let mut small = TearingFlash::<4, 1024>::new(4);
        assert_eq!(FlashMemberStore::new(&mut small, 0, 4).err(), Some(FlashConfigError::UnsupportedGeometry));
        let mut flash = Flash::new(2);
        assert_eq!(FlashMemberStore::new(&mut flash, 0, 1).err(), Some(FlashConfigError::TooFewSectors));
        assert_eq!(FlashMemberStore::new(&mut flash, 4096, 2).err(), Some(FlashConfigError::OutOfBounds));
        assert_eq!(FlashMemberStore::new(&mut flash, 100, 2).err(), Some(FlashConfigError::Misaligned));
    }

    /// Power lost at every step of a save (each half byte programmed or
    /// erased), with two records already stored (so the save wraps and
    /// erases): after the reboot the record is the old one or the new one,
    /// and the new one whenever the save returned `Ok`.
    #[test]
    fn power_loss_at_every_step_of_a_save_keeps_the_old_or_the_new_record() {
        let (old, new) = (record(1, 290), record(2, 310));
        let mut base = Flash::new(2);
        store(&mut base).save(&record(0, 200)).unwrap();
        store(&mut base).save(&old).unwrap();
        let mut probe = Flash::new(2);
        probe.mem.copy_from_slice(&base.mem);
        probe.reboot(None);
        store(&mut probe).save(&new).unwrap();
        let total = probe.steps;
        assert!(total > 8192, "the save erases a sector");
        for budget in 0..=total {
            let mut flash = Flash::new(2);
            flash.mem.copy_from_slice(&base.mem);
            flash.reboot(Some(budget));
            let saved = store(&mut flash).save(&new).is_ok();
            flash.reboot(None);
            let got = load(&mut flash).unwrap().unwrap();
            assert!(got == old || got == new, "budget {budget}");
            if saved {
                assert_eq!(got, new, "budget {budget}");
            }
            // The next save after the reboot works and wins.
            store(&mut flash).save(&record(3, 50)).unwrap();
            assert_eq!(load(&mut flash).unwrap().unwrap(), record(3, 50), "budget {budget}");
        }
    }

    const VECTORS: &str = include_str!("../../../../core/tests/vectors/control-v1.json");

    fn field<'a>(json: &'a str, key: &str) -> &'a str {
        let k = std::format!("\"{key}\": \"");
        let start = json.find(&k).map(|i| i + k.len()).unwrap_or_else(|| panic!("{key}"));
        let end = json[start..].find('"').unwrap() + start;
        &json[start..end]
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// The first control vector applied by a member whose state is on
    /// flash: the record saved is the file's, the agent resumes from flash,
    /// and a save that fails (power lost) leaves the agent as it was.
    #[test]
    fn member_agent_state_on_flash() {
        let own = StaticKeyPair::from_secret_text(field(VECTORS, "member_secret")).unwrap();
        let authority = mqseal::PublicKey::from_text(field(VECTORS, "authority_public")).unwrap();
        let id = field(VECTORS, "member_id");
        let topic = field(VECTORS, "control_topic");
        let positive = &VECTORS[VECTORS.find("\"positive\"").unwrap()..];
        let env = hex(field(positive, "envelope_hex"));
        let want = hex(field(positive, "member_state_hex"));
        let mut flash = Flash::new(2);
        let (mut st, mut ack) = (vec![0u8; MAX_MEMBER_STATE_LEN], vec![0u8; MAX_ACK_ENVELOPE_LEN]);

        // Power lost during the save: no change, no ack.
        let mut agent = MemberAgent::new(&own, id, &authority, &ControlTopics::default(), None).unwrap();
        flash.reboot(Some(100));
        let e = agent
            .handle(topic, &mut env.clone(), None, &mut st, &mut ack, |r| {
                store(&mut flash).save(r).map_err(Error::CounterStore)
            })
            .unwrap_err();
        assert_eq!(e, Error::CounterStore(StoreError::Write));
        assert_eq!(agent.epoch(), 0);
        flash.reboot(None);

        let a = agent
            .handle(topic, &mut env.clone(), None, &mut st, &mut ack, |r| {
                store(&mut flash).save(r).map_err(Error::CounterStore)
            })
            .unwrap();
        assert_eq!(a.epoch, 1);
        let saved = load(&mut flash).unwrap().unwrap();
        assert_eq!(saved, want);
        let resumed = MemberAgent::new(&own, id, &authority, &ControlTopics::default(), Some(&saved)).unwrap();
        assert_eq!(resumed.epoch(), 1);
        assert!(resumed.sealing("telemetry", None).is_some());
    }
}
