#![no_main]
//! See `ricochet::fuzzing::auth_check`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ricochet::fuzzing::auth_check(data));
