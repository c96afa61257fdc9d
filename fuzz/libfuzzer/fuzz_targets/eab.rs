#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cobble_fuzz::eab(data));
