//! The wall clock, behind a trait so that every stage that asks for the time (engine, daemon,
//! ban book, decide, the parser's "now", the CLI) can be tested at any instant without
//! sleeping.
//!
//! In: nothing. Out: a [`jiff::Timestamp`]. [`SystemClock`] reads the system time;
//! [`FakeClock`] holds a settable instant (atomic, so it can be shared across threads) that tests
//! move forward by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::{SignedDuration, Timestamp};

/// Something that tells the time.
pub trait Clock {
    fn now(&self) -> Timestamp;
}

/// The clock as the engine, the daemon, the ban book and the CLI share it.
pub type SharedClock = Arc<dyn Clock + Send + Sync>;

/// The system clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to. Resolution: one microsecond (what the store keeps).
#[derive(Debug)]
pub struct FakeClock {
    micros: AtomicI64,
}

impl FakeClock {
    pub fn new(start: Timestamp) -> FakeClock {
        FakeClock {
            micros: AtomicI64::new(start.as_microsecond()),
        }
    }

    /// Set the time (it may go backwards: tests of clock jumps need that).
    pub fn set(&self, t: Timestamp) {
        self.micros.store(t.as_microsecond(), Ordering::SeqCst);
    }

    /// Move the time forward (or back, with a negative duration).
    pub fn advance(&self, by: SignedDuration) {
        let by = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.micros.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        // Only values that came from a valid Timestamp (plus test-sized steps) are stored;
        // fall back to the epoch bound rather than panicking if a test overflows it.
        Timestamp::from_microsecond(self.micros.load(Ordering::SeqCst)).unwrap_or(Timestamp::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_moves_only_when_told() {
        let start: Timestamp = "2026-11-24T23:00:00Z".parse().unwrap();
        let clock = FakeClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(SignedDuration::from_secs(90));
        assert_eq!(clock.now(), "2026-11-24T23:01:30Z".parse().unwrap());
        clock.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn system_clock_is_after_2024() {
        assert!(SystemClock.now() > "2024-01-01T00:00:00Z".parse().unwrap());
    }
}
