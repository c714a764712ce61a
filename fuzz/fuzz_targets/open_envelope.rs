#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mqseal::fuzzing::open_envelope(data));
