//! # mqseal-embedded: mqseal on bare-metal firmware
//!
//! Everything here is `no_std` and needs no allocator. The cryptography
//! stays in the [`mqseal`] core; this crate adds what a device needs around
//! it:
//!
//! * [`FlashCounterStore`]: the sender's counter reservations on NOR flash
//!   (any [`embedded_storage::nor_flash::NorFlash`] driver), spread over a
//!   ring of erase sectors and safe against power loss at any point: a torn
//!   write or erase never makes the sealer reuse a counter (nonce). Every
//!   record is bound to the region's geometry (a changed layout reads as
//!   corrupt, never as "start at 0"), every persist is a compare-and-swap,
//!   and a new sender is provisioned explicitly
//!   ([`FlashCounterStore::create`]).
//! * [`FlashMemberStore`]: a key-distribution member's state record
//!   (`docs/PROTOCOL.md` 14.9) in a flash region of its own, with the same
//!   ring, geometry binding and two-step (data, then marker) writes: a torn
//!   save leaves the previous record; give its `save` to
//!   [`mqseal::MemberAgent::handle`] so the state is on flash
//!   before the ack goes out.
//! * [`mqtt`] (feature `minimq`, on by default): seal on publish and open
//!   on receive with the `minimq` MQTT 5 client and static buffers.
//! * feature `defmt`: `defmt::Format` for this crate's errors, and
//!   `ErrorCode` to log a core [`mqseal::Error`] by its stable code.
//!
//! ```text
//!   app ──payload──▶ Sealer::seal_into ──envelope──▶ minimq TX buffer ──▶ broker
//!                      │ FlashCounterStore (NOR flash ring)
//!   app ◀─payload─── Opener::open_in_place ◀──copy── minimq RX buffer ◀── broker
//! ```
//!
//! The C library (`mqseal-ffi`) covers firmware written in C.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod flash;
#[cfg(feature = "minimq")]
pub mod mqtt;

pub use flash::{FlashConfigError, FlashCounterStore, FlashMemberStore, MAX_WRITE_SIZE};
pub use mqseal;

/// Formats a core [`mqseal::Error`] with `defmt` as its stable code
/// ([`mqseal::Error::code`], e.g. `auth`, `duplicate`) and, for counter
/// store failures, the store error by [`mqseal::StoreError::code`]
/// (`counterStore(missing)`): `defmt::info!("{}", ErrorCode(e))`.
#[cfg(feature = "defmt")]
#[derive(Clone, Copy, Debug)]
pub struct ErrorCode(pub mqseal::Error);

#[cfg(feature = "defmt")]
impl defmt::Format for ErrorCode {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self.0 {
            mqseal::Error::CounterStore(e) => defmt::write!(f, "counterStore({=str})", e.code()),
            mqseal::Error::BufferTooSmall { needed } => defmt::write!(f, "bufferTooSmall({=usize})", needed),
            e => defmt::write!(f, "{=str}", e.code()),
        }
    }
}
