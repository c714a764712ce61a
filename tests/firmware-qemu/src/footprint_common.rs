//! Shared by the footprint probes (scripts/footprint.sh). Each probe is a
//! minimal cortex-m-rt program; inputs go through `black_box` so nothing is
//! folded away, and the suite is a constant so that link-time optimization
//! can drop the other suite where the API allows it.
#![allow(dead_code)] // each probe uses part of this module

use core::hint::black_box;

use mqseal::{Key, Keyring, MemoryCounterStore, Opener, Sealer, Suite};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        cortex_m::asm::nop();
    }
}

pub fn key() -> Key {
    Key::from_bytes(black_box(1), black_box([7; 32]))
}

/// Seals one message; the envelope length (0 on error).
#[inline(never)]
pub fn seal(key: &Key, suite: Suite, buf: &mut [u8]) -> usize {
    match Sealer::new(key, black_box(42), suite, MemoryCounterStore::new()) {
        Ok(mut s) => s.seal_into(black_box("factory/line1/temp"), black_box(b"21.5"), buf).unwrap_or(0),
        Err(_) => 0,
    }
}

/// Opens one message in place; the payload length (0 on error).
#[inline(never)]
pub fn open(key: Key, buf: &mut [u8]) -> usize {
    let Ok(ring) = Keyring::with_primary(key) else { return 0 };
    let mut opener: Opener<1, 4> = Opener::new(ring);
    opener.open_in_place(black_box("factory/line1/temp"), buf).map_or(0, |m| m.payload.len())
}

pub fn done(x: usize) -> ! {
    black_box(x);
    loop {
        cortex_m::asm::nop();
    }
}
