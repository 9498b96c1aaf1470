//! Replays the fuzz corpus and every past crash through the fuzz harness, on stable Rust.
//!
//! The harness (`fuzz/src/lib.rs`) is compiled into this test as a module, so `cargo test`
//! runs exactly what `cargo +nightly fuzz run TARGET` runs, input by input, from
//! `fuzz/corpus/TARGET/` (the minimised corpus) and `fuzz/regressions/TARGET/` (each crash
//! libFuzzer ever found, kept after its fix). A panic names the file that caused it.

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
    }
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "no corpus for {target}: fuzz/corpus/{target}/ must be checked in"
    );
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{} fails {target}", file.display());
    }
    println!("{target}: {} input(s) replayed", files.len());
}

#[test]
fn parse_line_corpus_and_past_crashes() {
    replay("parse_line", harness::parse_line);
}

#[test]
fn config_load_corpus_and_past_crashes() {
    replay("config_load", harness::config_load);
}

#[test]
fn file_cursor_corpus_and_past_crashes() {
    replay("file_cursor", harness::file_cursor);
    harness::remove_scratch();
}
