//! The README's "core in five lines", kept compiling by `cargo test`.
//!
//! ```text
//! MQSEAL_KEY=$(cargo run -q -p mqseal-cli -- keygen group --id 1) cargo run -p mqseal --example readme
//! ```

#![allow(clippy::std_instead_of_core)] // an application, not a no_std library

use mqseal::{FileCounterStore, Key, Keyring, Opener, Sealer, Suite};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = match std::env::var("MQSEAL_KEY") {
        Ok(text) => Key::from_text(&text)?, // mqseal:key:v1:<id>:<base64url>
        Err(_) => Key::generate(1)?,
    };
    // A new sender creates its counter file once; later runs open it with
    // FileCounterStore::open, which refuses a missing file.
    let path = std::env::temp_dir().join(format!("sender-42-{}.ctr", std::process::id()));
    let mut sealer = Sealer::new(&key, 42, Suite::ChaCha20Poly1305, FileCounterStore::create(&path)?)?;
    let envelope = sealer.seal_to_vec("plant/line1/temp", b"21.5")?; // publish this as the payload

    let mut opener: Opener = Opener::new(Keyring::with_primary(key)?);
    let msg = opener.open_to_vec("plant/line1/temp", &envelope)?; // the topic it arrived on
    assert_eq!((msg.payload.as_slice(), msg.header.sender_id), (&b"21.5"[..], 42));
    println!("sealed {} bytes into a {}-byte envelope and opened it again", msg.payload.len(), envelope.len());
    drop(sealer);
    std::fs::remove_file(&path)?;
    Ok(())
}
