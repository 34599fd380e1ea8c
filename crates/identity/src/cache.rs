//! The token cache every credential of this crate keeps: one token per (scopes, tenant), reused
//! until its refresh time, with at most one request in flight per key.
//!
//! Rules (those of azure-identity and MSAL):
//!
//! - A token is refreshed at its `refresh_on`: the server's `refresh_in` when given, else half
//!   its lifetime when that is two hours or more, else five minutes before expiry
//!   ([`refresh_on`]).
//! - One refresh at a time per key: concurrent callers queue on the entry's lock, and those that
//!   queued while a request was in flight receive that request's outcome, success or failure,
//!   instead of sending their own (single flight).
//! - A failed refresh while the cached token is still valid serves the cached token, and the
//!   next attempt waits [`REFRESH_RETRY_DELAY_SECS`], so an unavailable token service is not
//!   hammered by every call.
//! - The number of keys is capped at [`ENTRIES_MAX`]; beyond it, tokens are fetched uncached.
//!
//! A credential holds its cache behind an `Arc`, so clones of the credential share it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};

use crate::Result;
use crate::clock::SharedClock;
use crate::credential::AccessToken;

/// Lifetime from which a token is refreshed at half-life instead of shortly before expiry.
pub(crate) const HALF_LIFE_REFRESH_LIFETIME_SECS_MIN: i64 = 2 * 60 * 60;

/// How long before expiry a short-lived token is refreshed.
pub(crate) const REFRESH_BEFORE_EXPIRY_SECS: i64 = 5 * 60;

/// Least time between two refresh attempts while the cached token is still valid.
pub(crate) const REFRESH_RETRY_DELAY_SECS: i64 = 30;

/// Most (scopes, tenant) keys one cache holds.
pub(crate) const ENTRIES_MAX: usize = 256;

const _: () = assert!(REFRESH_RETRY_DELAY_SECS < REFRESH_BEFORE_EXPIRY_SECS);
const _: () = assert!(2 * REFRESH_BEFORE_EXPIRY_SECS < HALF_LIFE_REFRESH_LIFETIME_SECS_MIN);

/// When to refresh a token received at `now` that expires at `expires_on`.
///
/// `refresh_in` (seconds, from the server) wins when positive; the result never lies after
/// `expires_on`.
pub(crate) fn refresh_on(now: i64, expires_on: i64, refresh_in: Option<i64>) -> i64 {
    let lifetime = expires_on.saturating_sub(now);
    let refresh_on = match refresh_in {
        Some(refresh_in) if refresh_in > 0 => now.saturating_add(refresh_in),
        _ if lifetime >= HALF_LIFE_REFRESH_LIFETIME_SECS_MIN => now + lifetime / 2,
        _ => expires_on - REFRESH_BEFORE_EXPIRY_SECS,
    };
    refresh_on.min(expires_on)
}

/// What a token is cached under.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    scopes: Vec<String>,
    /// The tenant, lower-cased; `None` for sources without tenants (managed identity).
    tenant_id: Option<String>,
}

impl CacheKey {
    pub(crate) fn new(scopes: &[&str], tenant_id: Option<&str>) -> CacheKey {
        CacheKey {
            scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
            tenant_id: tenant_id.map(str::to_ascii_lowercase),
        }
    }
}

/// Tokens of one credential, shared by its clones.
#[derive(Debug)]
pub(crate) struct TokenCache {
    clock: SharedClock,
    entries: std::sync::Mutex<HashMap<CacheKey, Arc<Entry>>>,
}

#[derive(Debug, Default)]
struct Entry {
    /// Completed fetch attempts. A caller reads it before queueing on `state`; if it changed by
    /// the time the caller holds the lock, a fetch finished while it waited, and it takes that
    /// fetch's outcome.
    attempts_completed: AtomicU64,
    state: tokio::sync::Mutex<EntryState>,
}

#[derive(Debug, Default)]
struct EntryState {
    token: Option<AccessToken>,
    last_attempt_unix_secs: Option<i64>,
    last_outcome: Option<Result<AccessToken>>,
}

impl TokenCache {
    pub(crate) fn new(clock: SharedClock) -> TokenCache {
        TokenCache { clock, entries: std::sync::Mutex::new(HashMap::new()) }
    }

    /// The cached token for `key`, or the result of `fetch` when there is none to serve.
    ///
    /// `fetch` runs at most once, inside the caller's task, while the entry is locked; dropping
    /// the returned future releases the lock and lets the next caller fetch.
    pub(crate) async fn get_token<F, Fut>(&self, key: CacheKey, fetch: F) -> Result<AccessToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken>>,
    {
        let entry = self.entry(key);
        let attempts_seen = entry.attempts_completed.load(Ordering::SeqCst);
        let mut state = entry.state.lock().await;
        if entry.attempts_completed.load(Ordering::SeqCst) != attempts_seen
            && let Some(outcome) = &state.last_outcome
        {
            return outcome.clone();
        }

        let now = self.clock.now_unix_secs();
        if let Some(token) = &state.token
            && !needs_fetch(token, now, state.last_attempt_unix_secs)
        {
            return Ok(token.clone());
        }

        state.last_attempt_unix_secs = Some(now);
        let outcome = match fetch().await {
            Ok(token) => {
                state.token = Some(token.clone());
                Ok(token)
            }
            Err(error) => {
                let now = self.clock.now_unix_secs();
                match &state.token {
                    Some(cached) if now < cached.expires_on => Ok(cached.clone()),
                    _ => Err(error),
                }
            }
        };
        state.last_outcome = Some(outcome.clone());
        entry.attempts_completed.fetch_add(1, Ordering::SeqCst);
        outcome
    }

    /// The entry for `key`, created if missing. When the cache is full, entries that are neither
    /// in use nor holding a valid token are dropped; if it is still full, the caller gets an
    /// entry that is not kept.
    fn entry(&self, key: CacheKey) -> Arc<Entry> {
        // The lock guards only map operations that cannot panic, so a poisoned map is intact.
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entries.get(&key) {
            return entry.clone();
        }
        if entries.len() >= ENTRIES_MAX {
            let now = self.clock.now_unix_secs();
            entries.retain(|_, entry| Arc::strong_count(entry) > 1 || entry.holds_valid_token(now));
        }
        let entry = Arc::new(Entry::default());
        if entries.len() < ENTRIES_MAX {
            entries.insert(key, entry.clone());
        }
        entry
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Entry {
    /// Whether the entry may be worth keeping; an entry locked by someone counts as valid.
    fn holds_valid_token(&self, now: i64) -> bool {
        match self.state.try_lock() {
            Ok(state) => state.token.as_ref().is_some_and(|token| now < token.expires_on),
            Err(_) => true,
        }
    }
}

/// Whether `token` must be replaced at `now`, given the last fetch attempt.
fn needs_fetch(token: &AccessToken, now: i64, last_attempt_unix_secs: Option<i64>) -> bool {
    if now >= token.expires_on {
        return true;
    }
    let refresh_on = token.refresh_on.unwrap_or(token.expires_on - REFRESH_BEFORE_EXPIRY_SECS);
    if now < refresh_on {
        return false;
    }
    last_attempt_unix_secs.is_none_or(|last| now - last >= REFRESH_RETRY_DELAY_SECS)
}

#[cfg(test)]
mod tests;
