#![no_main]
//! See `ricochet::fuzzing::decrypt`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ricochet::fuzzing::decrypt(data));
