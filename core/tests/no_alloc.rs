//! The hot path allocates nothing: sealing into a caller buffer and opening
//! in place, for both suites and for senders the opener already knows.

// A counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to
// the system allocator.
#![allow(unsafe_code, clippy::unwrap_used, missing_docs)]

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use std::alloc::System;

use mqseal::{Key, Keyring, MemoryCounterStore, Opener, Sealer, Suite, MAX_OVERHEAD};

struct Counting;

thread_local! {
    // Per thread: the test harness allocates on its own threads meanwhile.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: forwards every call unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counter has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: the slot may be gone while the thread is torn down.
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn seal_into_and_open_in_place_do_not_allocate() {
    let long_topic = "t/".repeat(100); // the hashed-topic form too
    for suite in Suite::ALL {
        for topic in ["plant/line1/temp", long_topic.as_str()] {
            let key = Key::from_bytes(1, [7; 32]);
            let mut sealer = Sealer::new(&key, 1, suite, MemoryCounterStore::new()).unwrap();
            let mut opener: Opener<2, 8> = Opener::new(Keyring::with_primary(key).unwrap());
            let mut buf = [0u8; 256 + MAX_OVERHEAD];
            // Warm up: the opener meets the sender (derives and caches its subkey).
            let n = sealer.seal_into(topic, &[1; 256], &mut buf).unwrap();
            opener.open_in_place(topic, &mut buf[..n]).unwrap();

            let before = allocations();
            for i in 0..100u8 {
                let n = sealer.seal_into(topic, &[i; 256], &mut buf).unwrap();
                let opened = opener.open_in_place(topic, &mut buf[..n]).unwrap();
                assert_eq!(opened.payload, &[i; 256]);
            }
            assert_eq!(allocations(), before, "{suite} allocated on the hot path");
        }
    }
}
