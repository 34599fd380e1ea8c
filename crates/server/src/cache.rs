//! Small time-bounded caches for the request hot paths (caller grants, vault rows, secret rows).
//!
//! Every write on this node clears them at once (`AppState::changed`), so a node always sees its
//! own writes; another node's writes are seen within the time-to-live. Entries are bounded: a
//! full cache is emptied rather than grown.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// How long cached rows are trusted: the bound on how stale another node's change can look.
pub const HOT_PATH_TTL: Duration = Duration::from_secs(2);
/// How long a verified token's claims are kept (they are re-checked on every use).
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(60);
const ENTRIES_MAX: usize = 10_000;

pub struct TtlCache<K, V> {
    entries: RwLock<HashMap<K, (Instant, V)>>,
    ttl: Duration,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        TtlCache { entries: RwLock::new(HashMap::new()), ttl }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.read().ok()?;
        entries.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, value)| value.clone())
    }

    pub fn insert(&self, key: K, value: V) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= ENTRIES_MAX {
                entries.clear();
            }
            entries.insert(key, (Instant::now(), value));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_clear() {
        let cache = TtlCache::new(Duration::from_secs(60));
        cache.insert("a", 1);
        assert_eq!(cache.get(&"a"), Some(1));
        cache.clear();
        assert_eq!(cache.get(&"a"), None);
        let expired = TtlCache::new(Duration::ZERO);
        expired.insert("a", 1);
        assert_eq!(expired.get(&"a"), None);
    }
}
