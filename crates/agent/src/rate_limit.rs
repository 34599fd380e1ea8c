//! The request budget of one resource: a token bucket (sustained rate and burst) and a cap on
//! requests in flight. Every request to a resource's endpoints counts, the availability probe
//! included; a request over budget is answered 429 with `Retry-After`.
//!
//! The bucket reads a monotonic `Instant`, not `domain::Clock`: it paces requests in real
//! time, and wall-clock jumps must not refill or drain it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::RateLimit;

/// The budget of one resource.
pub(crate) struct Limiter {
    requests_per_second: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
    in_flight: Arc<Semaphore>,
}

struct Bucket {
    /// Requests that may start now; at most `burst`.
    tokens: f64,
    refilled_at: Instant,
}

/// Over budget: retry after this many seconds (at least 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetryAfterSecs(pub(crate) u64);

impl Limiter {
    /// A full bucket. Zero values in `limit` are raised to one.
    pub(crate) fn new(limit: RateLimit, now: Instant) -> Self {
        let burst = f64::from(limit.burst.max(1));
        Limiter {
            requests_per_second: f64::from(limit.requests_per_second.max(1)),
            burst,
            bucket: Mutex::new(Bucket { tokens: burst, refilled_at: now }),
            in_flight: Arc::new(Semaphore::new(limit.concurrent.max(1) as usize)),
        }
    }

    /// Admits one request at `now`; the permit counts it as in flight until dropped.
    pub(crate) fn try_acquire(&self, now: Instant) -> Result<OwnedSemaphorePermit, RetryAfterSecs> {
        let permit = self.in_flight.clone().try_acquire_owned().map_err(|_| RetryAfterSecs(1))?;
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed_secs = now.saturating_duration_since(bucket.refilled_at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed_secs * self.requests_per_second).min(self.burst);
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(permit)
        } else {
            let wait_secs = ((1.0 - bucket.tokens) / self.requests_per_second).ceil();
            // The wait is at most 1 / requests_per_second <= 1 second, rounded up.
            Err(RetryAfterSecs((wait_secs as u64).max(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_refills_at_the_rate() {
        let start = Instant::now();
        let limiter =
            Limiter::new(RateLimit { requests_per_second: 2, burst: 3, concurrent: 10 }, start);
        let admitted = (0..5).filter(|_| limiter.try_acquire(start).is_ok()).count();
        assert_eq!(admitted, 3);
        assert_eq!(limiter.try_acquire(start).err(), Some(RetryAfterSecs(1)));
        let later = start + Duration::from_millis(1000);
        let admitted_later = (0..5).filter(|_| limiter.try_acquire(later).is_ok()).count();
        assert_eq!(admitted_later, 2);
    }

    #[test]
    fn in_flight_requests_are_capped() {
        let now = Instant::now();
        let limiter =
            Limiter::new(RateLimit { requests_per_second: 100, burst: 100, concurrent: 2 }, now);
        let first = limiter.try_acquire(now).unwrap();
        let _second = limiter.try_acquire(now).unwrap();
        assert_eq!(limiter.try_acquire(now).err(), Some(RetryAfterSecs(1)));
        drop(first);
        assert!(limiter.try_acquire(now).is_ok());
    }

    #[test]
    fn zero_limits_are_raised_to_one() {
        let now = Instant::now();
        let limiter =
            Limiter::new(RateLimit { requests_per_second: 0, burst: 0, concurrent: 0 }, now);
        assert!(limiter.try_acquire(now).is_ok());
        assert_eq!(limiter.try_acquire(now).err(), Some(RetryAfterSecs(1)));
    }
}
