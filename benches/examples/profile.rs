//! A fixed loop over one operation, for instruction-level profiling where
//! timings are too noisy (a shared 2-core machine):
//!
//! ```sh
//! cargo build --release -p mqseal-benches --example profile
//! valgrind --tool=callgrind target/release/examples/profile seal_open 64 10000
//! ```
//!
//! Operations: `raw` (chacha20poly1305 encrypt+decrypt), `raw_aad` (the
//! same with 41 bytes of associated data, as long as mqseal's), `seal_open`
//! (mqseal, same suite), `hmac_raw`, `hmac_seal_open`.

use mqseal::{Key, Keyring, MemoryCounterStore, Opener, Sealer, Suite, MAX_OVERHEAD};
use mqseal_benches::{payload, raw_hmac, raw_hmac_verify, RawAead, KEY_BYTES, TOPIC, TYPICAL_AAD_LEN};

fn main() -> Result<(), Box<dyn core::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (op, size, iters) = match args.as_slice() {
        [_, op, size, iters] => (op.as_str(), size.parse::<usize>()?, iters.parse::<u64>()?),
        _ => return Err("usage: profile raw|raw_aad|seal_open|hmac_raw|hmac_seal_open SIZE ITERATIONS".into()),
    };
    let msg = payload(size);
    let mut buf = vec![0u8; size + MAX_OVERHEAD];
    let key = Key::from_bytes(1, KEY_BYTES);
    let suite = if op.starts_with("hmac") { Suite::HmacSha256 } else { Suite::ChaCha20Poly1305 };
    let mut sealer = Sealer::new(&key, 7, suite, MemoryCounterStore::new())?;
    let mut opener: Opener = Opener::new(Keyring::with_primary(key)?);
    let mut raw = if op == "raw_aad" { RawAead::with_aad(TYPICAL_AAD_LEN) } else { RawAead::new() };
    let mut check = 0u64;
    for _ in 0..iters {
        match op {
            "raw" | "raw_aad" => {
                buf[..size].copy_from_slice(&msg);
                let (c, tag) = raw.encrypt(&mut buf[..size]).map_err(|_| "encrypt")?;
                raw.decrypt(c, &mut buf[..size], &tag).map_err(|_| "decrypt")?;
                check += u64::from(buf[0]);
            }
            "seal_open" | "hmac_seal_open" => {
                let n = sealer.seal_into(TOPIC, &msg, &mut buf)?;
                let o = opener.open_in_place(TOPIC, &mut buf[..n])?;
                check += u64::from(o.payload[0]);
            }
            "hmac_raw" => {
                let tag = raw_hmac(&msg);
                check += u64::from(raw_hmac_verify(&msg, &tag[..16]));
            }
            _ => return Err(format!("unknown operation {op}").into()),
        }
    }
    println!("{op} {size} B x {iters}: checksum {check}");
    Ok(())
}
