//! The CLI's token cache: access tokens kept in `$AMBIENT_HOME/token-cache.json` (mode 0600)
//! between commands, as az keeps MSAL's cache under `~/.azure`, so that a command signs in
//! only when it has no token that lasts at least [`REFRESH_MARGIN_SECS`] more.
//!
//! Without it every command signed in again, and most of the sign-in log was the CLI's own.
//! The cache is best effort: a missing, unreadable or corrupt file means "no token", and a
//! failed write costs only a sign-in next time.
//! Entries are keyed by server, tenant, principal and scopes, so `ambient login` as someone
//! else, or against another server, never reuses a token.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use identity::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use serde_json::{Map, Value, json};

use crate::profile;

/// A cached token is used only while it lasts at least this much longer (az uses five minutes).
pub const REFRESH_MARGIN_SECS: i64 = 300;

/// The most entries the file keeps; the ones expiring first go.
const ENTRIES_MAX: usize = 64;

/// A credential that asks `inner` only when the cache file has no good token.
#[derive(Debug)]
pub struct CachedCredential {
    inner: Arc<dyn TokenCredential>,
    path: PathBuf,
    /// Server, tenant and principal: what the profile signs in as.
    identity: String,
}

impl CachedCredential {
    /// Wraps `inner`, the credential of `identity`, with the cache file in `home`.
    pub fn new(inner: Arc<dyn TokenCredential>, home: &Path, identity: String) -> CachedCredential {
        CachedCredential { inner, path: home.join("token-cache.json"), identity }
    }

    fn key(&self, scopes: &[&str], options: &TokenRequestOptions) -> String {
        format!(
            "{} {} {}",
            self.identity,
            options.tenant_id.as_deref().unwrap_or("-"),
            scopes.join(" ")
        )
    }
}

#[async_trait]
impl TokenCredential for CachedCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: &TokenRequestOptions,
    ) -> identity::Result<AccessToken> {
        let key = self.key(scopes, options);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let cache = read(&self.path);
        if let Some(token) = lookup(&cache, &key, now) {
            return Ok(token);
        }
        let token = self.inner.get_token(scopes, options).await?;
        // Best effort, as the module says: a failed write costs a sign-in next time.
        let _ = profile::write_private(
            &self.path,
            &serde_json::to_vec(&store(cache, &key, &token, now)).unwrap_or_default(),
        );
        Ok(token)
    }
}

fn read(path: &Path) -> Map<String, Value> {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|value| value.as_object().cloned())
        .unwrap_or_default()
}

/// The cached token for `key` if it lasts at least [`REFRESH_MARGIN_SECS`] after `now`.
fn lookup(cache: &Map<String, Value>, key: &str, now: i64) -> Option<AccessToken> {
    let entry = cache.get(key)?;
    let token = entry["accessToken"].as_str()?;
    let expires_on = entry["expiresOn"].as_i64()?;
    (expires_on - now >= REFRESH_MARGIN_SECS).then(|| AccessToken {
        token: Secret::new(token),
        expires_on,
        refresh_on: None,
    })
}

/// `cache` with `token` under `key`, without expired entries, at most [`ENTRIES_MAX`].
fn store(
    mut cache: Map<String, Value>,
    key: &str,
    token: &AccessToken,
    now: i64,
) -> Map<String, Value> {
    cache.retain(|_, entry| entry["expiresOn"].as_i64().is_some_and(|expires| expires > now));
    cache.insert(
        key.to_owned(),
        json!({"accessToken": token.token.expose(), "expiresOn": token.expires_on}),
    );
    while cache.len() > ENTRIES_MAX {
        let first = cache
            .iter()
            .min_by_key(|(_, entry)| entry["expiresOn"].as_i64().unwrap_or(i64::MIN))
            .map(|(key, _)| key.clone())
            .expect("a map over its limit is not empty");
        cache.remove(&first);
    }
    cache
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str, expires_on: i64) -> AccessToken {
        AccessToken { token: Secret::new(text), expires_on, refresh_on: None }
    }

    #[test]
    fn tokens_are_reused_until_shortly_before_expiry() {
        let cache = store(Map::new(), "k", &token("t1", 10_000), 1_000);
        let found = |now| lookup(&cache, "k", now).map(|token| token.token.expose().to_owned());
        assert_eq!(found(1_000).as_deref(), Some("t1"));
        assert_eq!(found(10_000 - REFRESH_MARGIN_SECS).as_deref(), Some("t1"));
        assert_eq!(found(10_000 - REFRESH_MARGIN_SECS + 1), None, "refreshed before expiry");
        assert_eq!(lookup(&cache, "other", 1_000).map(|token| token.expires_on), None);
    }

    #[test]
    fn expired_and_surplus_entries_go() {
        let mut cache = store(Map::new(), "old", &token("t0", 500), 0);
        cache = store(cache, "new", &token("t1", 5_000), 1_000);
        assert_eq!(cache.keys().collect::<Vec<_>>(), ["new"]);
        for index in 0..ENTRIES_MAX + 5 {
            let expires = 10_000 + i64::try_from(index).unwrap();
            cache = store(cache, &format!("k{index}"), &token("t", expires), 1_000);
        }
        assert_eq!(cache.len(), ENTRIES_MAX);
        assert!(!cache.contains_key("new"), "the soonest to expire went first");
        assert!(cache.contains_key(&format!("k{}", ENTRIES_MAX + 4)));
    }

    #[test]
    fn a_corrupt_file_is_no_token() {
        let dir =
            std::env::temp_dir().join(format!("ambient-token-cache-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token-cache.json");
        std::fs::write(&path, b"not json").unwrap();
        assert!(read(&path).is_empty());
        assert!(read(&dir.join("missing.json")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
