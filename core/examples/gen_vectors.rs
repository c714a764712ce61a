//! Writes the shared test vectors to `core/tests/vectors/v1.json`.
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

fn main() -> std::io::Result<()> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/v1.json");
    std::fs::write(path, generate::to_json())?;
    println!("wrote {path}");
    Ok(())
}
