//! Footprint probe: the runtime alone (cortex-m-rt, a panic handler), subtracted from the others.
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
    let mut buf = black_box([0u8; 64]);
    buf[0] = black_box(1);
    common::done(usize::from(black_box(buf)[0]))
}
