//! The time source of the crate: everything that needs "now" reads it through [`Clock`].
//!
//! Production code uses [`SystemClock`]; tests use [`FakeClock`], which only moves when told to,
//! so expiry and refresh rules are tested without sleeping. The trait is internal: this crate
//! depends on no other crate of the workspace, so it cannot share `domain::Clock`.

use std::fmt;
use std::sync::Arc;

/// The source of the current time, in whole seconds since the Unix epoch.
pub(crate) trait Clock: Send + Sync + fmt::Debug + 'static {
    fn now_unix_secs(&self) -> i64;
}

/// A shared clock, as held by credentials and the token cache.
pub(crate) type SharedClock = Arc<dyn Clock>;

/// The real wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SystemClock;

impl SystemClock {
    pub(crate) fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

impl Clock for SystemClock {
    fn now_unix_secs(&self) -> i64 {
        // This is the one place in the crate that reads the system time.
        #[allow(clippy::disallowed_methods)]
        let now = std::time::SystemTime::now();
        match now.duration_since(std::time::UNIX_EPOCH) {
            Ok(since_epoch) => i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
            // A clock before 1970 is broken; every token then looks fresh rather than the crate
            // panicking inside a caller's request.
            Err(_) => 0,
        }
    }
}

/// A clock for tests: starts at a fixed instant and moves only through
/// [`FakeClock::advance_secs`].
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct FakeClock {
    now_unix_secs: std::sync::atomic::AtomicI64,
}

#[cfg(test)]
impl FakeClock {
    /// 2024-01-01T00:00:00Z, a fixed instant so test output is deterministic.
    pub(crate) const START_UNIX_SECS: i64 = 1_704_067_200;

    pub(crate) fn new() -> Arc<FakeClock> {
        Arc::new(FakeClock {
            now_unix_secs: std::sync::atomic::AtomicI64::new(Self::START_UNIX_SECS),
        })
    }

    pub(crate) fn advance_secs(&self, secs: i64) {
        self.now_unix_secs.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
impl Clock for FakeClock {
    fn now_unix_secs(&self) -> i64 {
        self.now_unix_secs.load(std::sync::atomic::Ordering::SeqCst)
    }
}
