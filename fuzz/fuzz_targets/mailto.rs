//! Fuzz target: see `webissued::fuzz_checks::mailto` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| webissued::fuzz_checks::mailto(data));
