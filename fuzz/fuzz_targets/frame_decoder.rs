#![no_main]
//! See `ricochet::fuzzing::frame_decoder`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ricochet::fuzzing::frame_decoder(data));
