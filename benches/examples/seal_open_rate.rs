//! Native seal+open per second, for benchmark drivers in other languages
//! that put the native figure beside theirs in the same run
//! (`benches/python/bench.py`):
//!
//! ```sh
//! cargo build --release -p mqseal-benches --example seal_open_rate
//! target/release/examples/seal_open_rate SECONDS SIZE...
//! ```
//!
//! For each SIZE (bytes) it seals and opens for about SECONDS with the
//! allocating API (`seal_to_vec` + `open_to_vec`, as a binding does: a new
//! envelope and a new payload per message), ChaCha20-Poly1305, and prints
//! one line `SIZE OPS_PER_SECOND`. Every opened payload is checked.

use core::time::Duration;
use std::time::Instant;

use mqseal::{Key, Keyring, MemoryCounterStore, Opener, Sealer, Suite};
use mqseal_benches::{payload, KEY_BYTES, TOPIC};

fn rate(size: usize, seconds: f64) -> Result<f64, Box<dyn core::error::Error>> {
    let msg = payload(size);
    let key = Key::from_bytes(1, KEY_BYTES);
    let mut sealer = Sealer::new(&key, 7, Suite::ChaCha20Poly1305, MemoryCounterStore::new())?;
    let mut opener: Opener = Opener::new(Keyring::with_primary(key)?);
    let budget = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut ops = 0u64;
    // Batches of 256 keep the clock out of the loop.
    while start.elapsed() < budget {
        for _ in 0..256 {
            let envelope = sealer.seal_to_vec(TOPIC, &msg)?;
            let opened = opener.open_to_vec(TOPIC, &envelope)?;
            if opened.payload != msg {
                return Err("opened payload differs".into());
            }
        }
        ops += 256;
    }
    #[allow(clippy::cast_precision_loss)] // a rate, not an exact count
    Ok(ops as f64 / start.elapsed().as_secs_f64())
}

fn main() -> Result<(), Box<dyn core::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((seconds, sizes)) = args.split_first() else {
        return Err("usage: seal_open_rate SECONDS SIZE...".into());
    };
    let seconds: f64 = seconds.parse()?;
    for size in sizes {
        let size: usize = size.parse()?;
        println!("{size} {:.0}", rate(size, seconds)?);
    }
    Ok(())
}
