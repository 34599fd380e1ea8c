//! The one cache type of the hot paths: a bounded map whose entries expire at a time given by
//! the caller, read from a [`crate::Clock`] (so tests drive expiry with a `FakeClock`).
//!
//! When the map is full, expired entries go first, then the oldest-inserted ones, a tenth of
//! the capacity at a time, so a burst of new keys evicts what is least likely to be used again
//! and the cost of eviction is spread out. There is no IO and nothing async here: a plain mutex
//! guards the map, held only to look up, insert or evict.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::UnixTime;

/// A bounded map from `K` to `V` with per-entry expiry.
pub struct TtlCache<K, V> {
    entries: Mutex<Entries<K, V>>,
    /// How long an entry lives when [`TtlCache::insert`] is given no expiry of its own.
    ttl_millis: i64,
    /// Entries kept at most; at least 1.
    capacity: usize,
}

struct Entries<K, V> {
    map: HashMap<K, Entry<V>>,
    /// Increases with every insert: the order of age for eviction.
    inserted: u64,
}

struct Entry<V> {
    value: V,
    expires_at: UnixTime,
    inserted: u64,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// A cache whose entries live `ttl_millis` and of which at most `capacity` are kept.
    pub fn new(ttl_millis: i64, capacity: usize) -> Self {
        TtlCache {
            entries: Mutex::new(Entries { map: HashMap::new(), inserted: 0 }),
            ttl_millis,
            capacity: capacity.max(1),
        }
    }

    /// The value for `key` if it has not expired at `now`.
    pub fn get(&self, key: &K, now: UnixTime) -> Option<V> {
        let entries = self.lock();
        entries.map.get(key).filter(|entry| now < entry.expires_at).map(|entry| entry.value.clone())
    }

    /// Stores `value` for `key` until `now` plus the cache's time to live.
    pub fn insert(&self, key: K, value: V, now: UnixTime) {
        let expires_at = UnixTime::from_millis(now.millis() + self.ttl_millis);
        self.insert_until(key, value, expires_at, now);
    }

    /// Stores `value` for `key` until `expires_at`.
    pub fn insert_until(&self, key: K, value: V, expires_at: UnixTime, now: UnixTime) {
        let mut entries = self.lock();
        if entries.map.len() >= self.capacity && !entries.map.contains_key(&key) {
            entries.evict(now, self.capacity);
        }
        entries.inserted += 1;
        let inserted = entries.inserted;
        entries.map.insert(key, Entry { value, expires_at, inserted });
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &K) {
        self.lock().map.remove(key);
    }

    /// Forgets everything (a local write that may have changed any entry).
    pub fn clear(&self) {
        self.lock().map.clear();
    }

    /// Keeps only the entries for which `keep` holds.
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.lock().map.retain(|key, entry| keep(key, &entry.value));
    }

    /// How many entries are held (expired ones included until evicted).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Entries<K, V>> {
        // A panic while holding the lock cannot leave the map half changed: every change is
        // one `HashMap` call.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K: Eq + Hash + Clone, V> Entries<K, V> {
    /// Makes room: drops expired entries, then the oldest until a tenth of `capacity` is free.
    fn evict(&mut self, now: UnixTime, capacity: usize) {
        self.map.retain(|_, entry| now < entry.expires_at);
        let target = capacity - (capacity / 10).max(1);
        if self.map.len() <= target {
            return;
        }
        let mut ages: Vec<(u64, K)> =
            self.map.iter().map(|(key, entry)| (entry.inserted, key.clone())).collect();
        ages.sort_unstable_by_key(|(inserted, _)| *inserted);
        let excess = self.map.len() - target;
        for (_, key) in ages.into_iter().take(excess) {
            self.map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> UnixTime {
        UnixTime::from_secs(secs)
    }

    #[test]
    fn entries_expire_at_their_time() {
        let cache = TtlCache::new(2_000, 10);
        cache.insert("a", 1, at(100));
        assert_eq!(cache.get(&"a", at(101)), Some(1));
        assert_eq!(cache.get(&"a", at(102)), None);
        cache.insert_until("b", 2, at(500), at(100));
        assert_eq!(cache.get(&"b", at(499)), Some(2));
        assert_eq!(cache.get(&"b", at(500)), None);
    }

    #[test]
    fn a_full_cache_evicts_expired_then_oldest_entries() {
        let cache = TtlCache::new(1_000_000, 10);
        for n in 0..10 {
            cache.insert(n, n, at(0));
        }
        cache.insert(10, 10, at(1));
        assert_eq!(cache.get(&0, at(1)), None, "the oldest went");
        assert_eq!(cache.get(&1, at(1)), Some(1));
        assert_eq!(cache.get(&10, at(1)), Some(10));
        assert_eq!(cache.len(), 10);
        // Expired entries go before live ones, however old.
        let cache = TtlCache::new(1_000, 3);
        cache.insert_until("old-live", 1, at(1_000), at(0));
        cache.insert("expired", 2, at(0));
        cache.insert("new", 3, at(5));
        cache.insert("newer", 4, at(5));
        assert_eq!(cache.get(&"old-live", at(5)), Some(1));
        assert_eq!(cache.get(&"newer", at(5)), Some(4));
    }

    #[test]
    fn clear_retain_and_remove() {
        let cache = TtlCache::new(1_000, 10);
        cache.insert("a", 1, at(0));
        cache.insert("b", 2, at(0));
        cache.retain(|_, value| *value == 2);
        assert_eq!(cache.get(&"a", at(0)), None);
        cache.remove(&"b");
        assert!(cache.is_empty());
        cache.insert("c", 3, at(0));
        cache.clear();
        assert!(cache.is_empty());
    }
}
