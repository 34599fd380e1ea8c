//! Tests of the token cache alone: refresh rules, reuse, failure handling and single flight,
//! with a fake clock and a counting fetch function instead of HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::Error;
use crate::cache::{
    CacheKey, ENTRIES_MAX, REFRESH_BEFORE_EXPIRY_SECS, REFRESH_RETRY_DELAY_SECS, TokenCache,
    refresh_on,
};
use crate::clock::{Clock, FakeClock};
use crate::credential::AccessToken;
use crate::secret::Secret;

const START: i64 = FakeClock::START_UNIX_SECS;

/// A cache on a fake clock, plus a fetch function that counts its calls and issues numbered
/// tokens of a fixed lifetime, or fails while `failing` is set.
struct Harness {
    clock: Arc<FakeClock>,
    cache: TokenCache,
    fetches: AtomicUsize,
    failing: std::sync::atomic::AtomicBool,
    lifetime_secs: i64,
}

impl Harness {
    fn new(lifetime_secs: i64) -> Harness {
        let clock = FakeClock::new();
        Harness {
            cache: TokenCache::new(clock.clone()),
            clock,
            fetches: AtomicUsize::new(0),
            failing: std::sync::atomic::AtomicBool::new(false),
            lifetime_secs,
        }
    }

    async fn get(&self, scope: &str) -> Result<String, Error> {
        let token = self
            .cache
            .get_token(CacheKey::new(&[scope], Some("tenant")), || async {
                let number = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
                if self.failing.load(Ordering::SeqCst) {
                    return Err(Error::Http("token service down".to_owned()));
                }
                let now = self.clock.now_unix_secs();
                let expires_on = now + self.lifetime_secs;
                Ok(AccessToken {
                    token: Secret::new(format!("token-{number}")),
                    expires_on,
                    refresh_on: Some(refresh_on(now, expires_on, None)),
                })
            })
            .await?;
        Ok(token.token.expose().to_owned())
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

#[test]
fn refresh_on_uses_refresh_in_when_given() {
    assert_eq!(refresh_on(START, START + 86_400, Some(3_600)), START + 3_600);
    // A refresh_in beyond expiry is clamped to the expiry.
    assert_eq!(refresh_on(START, START + 600, Some(3_600)), START + 600);
    // A non-positive refresh_in is ignored.
    assert_eq!(refresh_on(START, START + 3_600, Some(0)), START + 3_600 - 300);
}

#[test]
fn refresh_on_is_half_life_from_two_hours() {
    assert_eq!(refresh_on(START, START + 86_400, None), START + 43_200);
    assert_eq!(refresh_on(START, START + 7_200, None), START + 3_600);
}

#[test]
fn refresh_on_is_five_minutes_before_expiry_below_two_hours() {
    assert_eq!(refresh_on(START, START + 7_199, None), START + 7_199 - 300);
    assert_eq!(refresh_on(START, START + 3_599, None), START + 3_299);
}

#[tokio::test]
async fn token_is_reused_until_refresh_time() {
    let harness = Harness::new(3_600);
    assert_eq!(harness.get("s").await.unwrap(), "token-1");
    harness.clock.advance_secs(3_600 - REFRESH_BEFORE_EXPIRY_SECS - 1);
    assert_eq!(harness.get("s").await.unwrap(), "token-1");
    assert_eq!(harness.fetches(), 1);

    harness.clock.advance_secs(1);
    assert_eq!(harness.get("s").await.unwrap(), "token-2");
    assert_eq!(harness.fetches(), 2);
}

#[tokio::test]
async fn long_lived_token_is_refreshed_at_half_life() {
    let harness = Harness::new(86_400);
    assert_eq!(harness.get("s").await.unwrap(), "token-1");
    harness.clock.advance_secs(43_199);
    assert_eq!(harness.get("s").await.unwrap(), "token-1");
    harness.clock.advance_secs(1);
    assert_eq!(harness.get("s").await.unwrap(), "token-2");
}

#[tokio::test]
async fn keys_are_cached_separately() {
    let harness = Harness::new(3_600);
    assert_eq!(harness.get("a").await.unwrap(), "token-1");
    assert_eq!(harness.get("b").await.unwrap(), "token-2");
    assert_eq!(harness.get("a").await.unwrap(), "token-1");
    assert_eq!(CacheKey::new(&["a"], Some("T")), CacheKey::new(&["a"], Some("t")));
}

#[tokio::test]
async fn failed_refresh_serves_the_still_valid_token() {
    // Goal: a token service outage during the refresh window is invisible to callers until the
    // cached token expires; retries are spaced by the retry delay.
    let harness = Harness::new(3_600);
    assert_eq!(harness.get("s").await.unwrap(), "token-1");
    harness.set_failing(true);
    harness.clock.advance_secs(3_600 - REFRESH_BEFORE_EXPIRY_SECS);

    assert_eq!(harness.get("s").await.unwrap(), "token-1");
    assert_eq!(harness.fetches(), 2);
    // Within the retry delay, no new attempt.
    harness.clock.advance_secs(REFRESH_RETRY_DELAY_SECS - 1);
    assert_eq!(harness.get("s").await.unwrap(), "token-1");
    assert_eq!(harness.fetches(), 2);
    // After it, one more attempt, still served from cache.
    harness.clock.advance_secs(1);
    assert_eq!(harness.get("s").await.unwrap(), "token-1");
    assert_eq!(harness.fetches(), 3);

    // Once expired, the failure reaches the caller.
    harness.clock.advance_secs(REFRESH_BEFORE_EXPIRY_SECS);
    assert_eq!(harness.get("s").await, Err(Error::Http("token service down".to_owned())));
    // And recovery is immediate.
    harness.set_failing(false);
    assert_eq!(harness.get("s").await.unwrap(), "token-5");
}

#[tokio::test]
async fn failure_without_cached_token_is_returned_and_retried_next_call() {
    let harness = Harness::new(3_600);
    harness.set_failing(true);
    assert!(harness.get("s").await.is_err());
    harness.set_failing(false);
    assert_eq!(harness.get("s").await.unwrap(), "token-2");
}

#[tokio::test]
async fn concurrent_callers_share_one_fetch_and_its_failure() {
    // Goal: callers that queue while a fetch is in flight take its outcome, even a failure,
    // instead of each sending their own request. Method: the fetch waits on a gate that opens
    // only after every caller has been polled (current-thread runtime: spawned tasks run while
    // this task yields).
    let clock = FakeClock::new();
    let cache = Arc::new(TokenCache::new(clock.clone()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));

    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (cache, fetches, gate) = (cache.clone(), fetches.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get_token(CacheKey::new(&["s"], None), || async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    gate.acquire().await.unwrap().forget();
                    Err::<AccessToken, _>(Error::Http("down".to_owned()))
                })
                .await
        }));
    }
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    // Enough permits for every caller, so a broken single flight fails the count, not hangs.
    gate.add_permits(50);
    for task in tasks {
        assert_eq!(task.await.unwrap(), Err(Error::Http("down".to_owned())));
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn cache_holds_at_most_entries_max_keys() {
    let harness = Harness::new(3_600);
    for index in 0..ENTRIES_MAX + 10 {
        harness.get(&format!("scope-{index}")).await.unwrap();
    }
    assert_eq!(harness.cache.len(), ENTRIES_MAX);
    // A key that did not fit is fetched every time rather than cached.
    let fetches = harness.fetches();
    harness.get(&format!("scope-{}", ENTRIES_MAX + 5)).await.unwrap();
    assert_eq!(harness.fetches(), fetches + 1);
    // Once the cached tokens expire, their entries make room.
    harness.clock.advance_secs(3_600);
    harness.get("new").await.unwrap();
    assert_eq!(harness.cache.len(), 1);
}
