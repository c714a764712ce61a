//! Footprint probe: sealing with HMAC-SHA256 only.
#![no_std]
#![no_main]

#[path = "../footprint_common.rs"]
mod common;

#[allow(unused_imports)]
use core::hint::black_box;
#[allow(unused_imports)]
use mqseal::Suite;

#[cortex_m_rt::entry]
fn main() -> ! {
    let mut buf = [0u8; 64];
    let n = common::seal(&common::key(), Suite::HmacSha256, &mut buf);
    common::done(n + usize::from(black_box(buf)[0]))
}
