//! Fuzz target: see `webissued_fuzz_checks::mailto` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| webissued_fuzz_checks::mailto(data));
