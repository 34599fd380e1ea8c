//! The token cache: one slot per (resource, identity, audience). A token is reused until half
//! its lifetime has passed; one fetch per slot is in flight at a time and other requests for
//! the same slot wait for it (single flight). Tokens of identities that leave a resource are
//! dropped as soon as the new assignments arrive.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use api_types::hosting::IssuedToken;
use domain::{Clock, UnixTime};

/// Slots kept at most; audiences come from workloads, so the map must not grow without bound.
pub(crate) const TOKEN_CACHE_SLOTS_MAX: usize = 4096;
/// When the server cannot be reached, a cached token is still served while it has at least
/// this long to live (MSAL Python discards tokens 5 minutes before expiry).
const STALE_TOKEN_MARGIN_SECS: i64 = 300;

/// What a slot is for. Ids are lower-cased; the audience is kept as the workload sent it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub(crate) resource_key: String,
    pub(crate) principal_id: String,
    pub(crate) audience: String,
}

/// Why a token could not be had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FetchError {
    /// The server refused (4xx): nothing cached for the slot is served any more.
    Refused { status: u16 },
    /// The server failed or could not be reached; a still-valid cached token may be served.
    Unavailable,
}

#[derive(Default)]
pub(crate) struct TokenCache {
    slots: Mutex<HashMap<CacheKey, Slot>>,
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<IssuedToken>>>>;

impl CacheKey {
    pub(crate) fn new(resource_key: &str, principal_id: &str, audience: &str) -> Self {
        CacheKey {
            resource_key: resource_key.to_ascii_lowercase(),
            principal_id: principal_id.to_ascii_lowercase(),
            audience: audience.to_owned(),
        }
    }
}

impl TokenCache {
    /// The cached token for `key` if it is before its refresh time, else the result of
    /// `fetch`, which runs at most once at a time per key.
    pub(crate) async fn get_or_fetch<F, Fut>(
        &self,
        key: CacheKey,
        clock: &dyn Clock,
        fetch: F,
    ) -> Result<Arc<IssuedToken>, FetchError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<IssuedToken, FetchError>>,
    {
        let slot = self.slot(key, clock.now());
        let mut cached = slot.lock().await;
        let now = clock.now();
        if let Some(token) = cached.as_ref()
            && now < refresh_at(token)
        {
            return Ok(token.clone());
        }
        match fetch().await {
            Ok(token) => {
                let token = Arc::new(token);
                *cached = Some(token.clone());
                Ok(token)
            }
            Err(FetchError::Unavailable) => match cached.as_ref() {
                Some(token)
                    if now.plus_secs(STALE_TOKEN_MARGIN_SECS)
                        < UnixTime::from_secs(token.expires_on) =>
                {
                    tracing::warn!("server unavailable; serving a cached token before its expiry");
                    Ok(token.clone())
                }
                _ => Err(FetchError::Unavailable),
            },
            Err(refused) => {
                *cached = None;
                Err(refused)
            }
        }
    }

    /// Keeps only the slots for which `keep` holds.
    pub(crate) fn retain(&self, keep: impl Fn(&CacheKey) -> bool) {
        self.lock().retain(|key, _| keep(key));
    }

    /// Drops every token.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// The slot for `key`, made if missing. When the map is full, expired slots are dropped
    /// first; if it is still full, the caller gets a slot of its own that is not kept.
    fn slot(&self, key: CacheKey, now: UnixTime) -> Slot {
        let mut slots = self.lock();
        if let Some(slot) = slots.get(&key) {
            return slot.clone();
        }
        if slots.len() >= TOKEN_CACHE_SLOTS_MAX {
            slots.retain(|_, slot| match slot.try_lock() {
                Ok(cached) => {
                    cached.as_ref().is_some_and(|token| now < UnixTime::from_secs(token.expires_on))
                }
                Err(_) => true, // A fetch is in flight.
            });
        }
        let slot = Slot::default();
        if slots.len() < TOKEN_CACHE_SLOTS_MAX {
            slots.insert(key, slot.clone());
        }
        slot
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Half-way from `not_before` to `expires_on`: clients refresh at half-life, so the agent
/// hands out tokens with at least half their life left.
fn refresh_at(token: &IssuedToken) -> UnixTime {
    let lifetime = (token.expires_on - token.not_before).max(0);
    UnixTime::from_secs(token.not_before + lifetime / 2)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use domain::FakeClock;

    use super::*;

    fn token(now: UnixTime, lifetime_secs: i64, n: usize) -> IssuedToken {
        IssuedToken {
            access_token: format!("token-{n}"),
            expires_on: now.secs() + lifetime_secs,
            expires_in: lifetime_secs,
            not_before: now.secs(),
            resource: "https://vault.azure.net".to_owned(),
            client_id: "cid".to_owned(),
            object_id: "oid".to_owned(),
            identity_resource_id: String::new(),
        }
    }

    fn key() -> CacheKey {
        CacheKey::new("/subscriptions/s/vm", "OID", "https://vault.azure.net")
    }

    /// Fetches through the cache, counting calls to the fake server in `fetches`.
    async fn get(
        cache: &TokenCache,
        clock: &FakeClock,
        fetches: &AtomicUsize,
        outcome: Result<(), FetchError>,
    ) -> Result<String, FetchError> {
        let now = clock.now();
        cache
            .get_or_fetch(key(), clock, || async move {
                let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
                outcome.map(|()| token(now, 3600, n))
            })
            .await
            .map(|token| token.access_token.clone())
    }

    #[tokio::test]
    async fn reuses_a_token_until_half_life() {
        let (cache, clock, fetches) =
            (TokenCache::default(), FakeClock::default(), AtomicUsize::new(0));
        assert_eq!(get(&cache, &clock, &fetches, Ok(())).await.unwrap(), "token-1");
        clock.advance_secs(1799);
        assert_eq!(get(&cache, &clock, &fetches, Ok(())).await.unwrap(), "token-1");
        clock.advance_secs(1);
        assert_eq!(get(&cache, &clock, &fetches, Ok(())).await.unwrap(), "token-2");
    }

    #[tokio::test]
    async fn serves_a_valid_token_when_the_server_is_unavailable_but_not_after_a_refusal() {
        let (cache, clock, fetches) =
            (TokenCache::default(), FakeClock::default(), AtomicUsize::new(0));
        get(&cache, &clock, &fetches, Ok(())).await.unwrap();
        clock.advance_secs(2000);
        let stale = get(&cache, &clock, &fetches, Err(FetchError::Unavailable)).await;
        assert_eq!(stale.unwrap(), "token-1");
        let refused = get(&cache, &clock, &fetches, Err(FetchError::Refused { status: 403 })).await;
        assert_eq!(refused, Err(FetchError::Refused { status: 403 }));
        let after = get(&cache, &clock, &fetches, Err(FetchError::Unavailable)).await;
        assert_eq!(after, Err(FetchError::Unavailable));
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_fetch() {
        let cache = Arc::new(TokenCache::default());
        let clock = FakeClock::default();
        let fetches = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, clock, fetches) = (cache.clone(), clock.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_fetch(key(), &clock, || async {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        Ok(token(clock.now(), 3600, fetches.fetch_add(1, Ordering::SeqCst)))
                    })
                    .await
                    .unwrap()
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn retain_drops_tokens_at_once() {
        let (cache, clock, fetches) =
            (TokenCache::default(), FakeClock::default(), AtomicUsize::new(0));
        get(&cache, &clock, &fetches, Ok(())).await.unwrap();
        cache.retain(|key| key.principal_id != "oid");
        assert_eq!(cache.len(), 0);
        assert_eq!(get(&cache, &clock, &fetches, Ok(())).await.unwrap(), "token-2");
    }
}
