//! cargo-fuzz target: see `portwarden_fuzz::config_load` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portwarden_fuzz::config_load(data));
