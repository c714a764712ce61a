#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mqseal::fuzzing::backend_differential(data));
