//! The progress bar of `portwarden scan` on a terminal: bytes read of the total, bytes and
//! lines per second, and the ETA (`indicatif`, on standard error).
//!
//! [`for_stderr`] gives a bar only when standard error is a terminal; otherwise (cron, a pipe,
//! a test capturing stderr) nothing is drawn and nothing extra is written. Bytes are counted
//! before decompression, so the ETA of a `.gz` file is right; standard input has no known
//! length, and then the bar shows the rates without an ETA.

use std::cell::Cell;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{NoProgress, ScanProgress};

/// A progress bar on standard error when it is a terminal, else nothing.
pub fn for_stderr() -> Box<dyn ScanProgress> {
    if std::io::stderr().is_terminal() {
        Box::new(TerminalProgress::new(ProgressDrawTarget::stderr()))
    } else {
        Box::new(NoProgress)
    }
}

/// The bar itself.
#[derive(Debug)]
pub struct TerminalProgress {
    bar: ProgressBar,
    started: Instant,
    lines: Cell<u64>,
    unknown_length: Cell<bool>,
}

const WITH_ETA: &str =
    "{spinner} {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} ETA {eta}";
const WITHOUT_ETA: &str = "{spinner} {bytes} read {binary_bytes_per_sec} {msg} {elapsed}";

fn style(template: &str) -> ProgressStyle {
    // The templates are constants checked by the unit test below; a bad one falls back to the
    // default style rather than failing a scan.
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl TerminalProgress {
    pub fn new(target: ProgressDrawTarget) -> TerminalProgress {
        let bar = ProgressBar::with_draw_target(Some(0), target);
        bar.set_style(style(WITH_ETA));
        bar.set_message("0 lines/s");
        TerminalProgress {
            bar,
            started: Instant::now(),
            lines: Cell::new(0),
            unknown_length: Cell::new(false),
        }
    }
}

impl ScanProgress for TerminalProgress {
    fn start_file(&self, _path: &Path, len: Option<u64>) {
        match len {
            Some(n) => self.bar.inc_length(n),
            None if !self.unknown_length.get() => {
                self.unknown_length.set(true);
                self.bar.set_style(style(WITHOUT_ETA));
            }
            None => {}
        }
        self.bar.tick();
    }

    fn advance(&self, bytes: u64, lines: u64) {
        self.lines.set(self.lines.get() + lines);
        let secs = self.started.elapsed().as_secs_f64();
        if secs > 0.0 {
            let rate = self.lines.get() as f64 / secs;
            self.bar.set_message(format!("{rate:.0} lines/s"));
        }
        self.bar.inc(bytes);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn counts_lines(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_valid() {
        for t in [WITH_ETA, WITHOUT_ETA] {
            assert!(ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn counts_bytes_and_lines() {
        let p = TerminalProgress::new(ProgressDrawTarget::hidden());
        p.start_file(Path::new("a"), Some(1000));
        p.start_file(Path::new("b"), Some(24));
        p.advance(600, 10);
        p.advance(424, 5);
        assert_eq!(p.bar.length(), Some(1024));
        assert_eq!(p.bar.position(), 1024);
        assert_eq!(p.lines.get(), 15);
        assert!(p.bar.message().ends_with("lines/s"), "{}", p.bar.message());
        p.start_file(Path::new("-"), None);
        assert!(p.unknown_length.get());
        p.finish();
        assert!(p.bar.is_finished());
    }
}
