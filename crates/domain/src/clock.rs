//! Time as a parameter: code reads the time from a [`Clock`], never from the system directly.
//!
//! Production uses [`SystemClock`]; tests use [`FakeClock`], which only moves when told to.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A point in time as milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime {
    millis: i64,
}

impl UnixTime {
    pub const fn from_millis(millis: i64) -> Self {
        UnixTime { millis }
    }

    pub const fn from_secs(secs: i64) -> Self {
        UnixTime { millis: secs * 1000 }
    }

    pub const fn millis(self) -> i64 {
        self.millis
    }

    /// Whole seconds, rounded down.
    pub const fn secs(self) -> i64 {
        self.millis.div_euclid(1000)
    }

    pub const fn plus_secs(self, secs: i64) -> Self {
        UnixTime { millis: self.millis + secs * 1000 }
    }

    pub const fn minus_secs(self, secs: i64) -> Self {
        UnixTime { millis: self.millis - secs * 1000 }
    }
}

/// The source of the current time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> UnixTime;
}

/// The real wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        #[allow(clippy::disallowed_methods)] // This is the one place that reads the system time.
        let now = std::time::SystemTime::now();
        let since_epoch =
            now.duration_since(std::time::UNIX_EPOCH).expect("system clock is after 1970");
        UnixTime::from_millis(i64::try_from(since_epoch.as_millis()).expect("time fits in i64"))
    }
}

/// A clock for tests: starts at a fixed instant and moves only through [`FakeClock::advance_secs`].
/// Clones share the same time.
#[derive(Clone, Debug)]
pub struct FakeClock {
    millis: Arc<AtomicI64>,
}

impl FakeClock {
    pub fn new(start: UnixTime) -> Self {
        FakeClock { millis: Arc::new(AtomicI64::new(start.millis())) }
    }

    pub fn advance_secs(&self, secs: i64) {
        self.millis.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    pub fn set(&self, time: UnixTime) {
        self.millis.store(time.millis(), Ordering::SeqCst);
    }
}

impl Default for FakeClock {
    /// 2024-01-01T00:00:00Z, a fixed and recognisable instant.
    fn default() -> Self {
        FakeClock::new(UnixTime::from_secs(1_704_067_200))
    }
}

impl Clock for FakeClock {
    fn now(&self) -> UnixTime {
        UnixTime::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_moves_only_when_told() {
        let clock = FakeClock::default();
        let start = clock.now();
        let shared = clock.clone();
        shared.advance_secs(90);
        assert_eq!(clock.now().secs() - start.secs(), 90);
    }

    #[test]
    fn secs_round_down_before_the_epoch() {
        assert_eq!(UnixTime::from_millis(-1).secs(), -1);
        assert_eq!(UnixTime::from_millis(1999).secs(), 1);
    }
}
