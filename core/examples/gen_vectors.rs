//! Writes the shared test vectors to `core/tests/vectors/v1.json` (the
//! envelope) and `core/tests/vectors/control-v1.json` (key distribution).
//!
//! ```text
//! cargo run -p mqseal --example gen_vectors
//! ```
//!
//! Run it only for a deliberate wire-format change (which is a new protocol
//! version); `core/tests/vectors.rs` fails whenever the committed file and
//! the code disagree.

#[path = "../tests/vectors/generate.rs"]
#[allow(clippy::unwrap_used, clippy::panic)]
mod generate;

#[path = "../tests/vectors/generate_control.rs"]
#[allow(clippy::unwrap_used, clippy::panic)]
mod generate_control;

fn main() -> std::io::Result<()> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/v1.json");
    std::fs::write(path, generate::to_json())?;
    println!("wrote {path}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/control-v1.json");
    std::fs::write(path, generate_control::to_json())?;
    println!("wrote {path}");
    Ok(())
}
