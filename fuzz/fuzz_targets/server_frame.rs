#![no_main]
//! See `ricochet::fuzzing::server_frame`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ricochet::fuzzing::server_frame(data));
