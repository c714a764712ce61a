#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mqseal::fuzzing::control_message(data));
