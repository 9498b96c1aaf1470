//! cargo-fuzz target: see `portwarden_fuzz::file_cursor` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portwarden_fuzz::file_cursor(data));
