//! Flood bounds for the logs: which stored event an incoming one is counted into, so that a
//! caller repeating itself, or varying what it sends, adds a bounded number of events.
//!
//! Time is cut into fixed windows. Within a window, events with the same key (the fields that
//! make two events the same, chosen by the log) are one stored event with a count. A caller (an
//! address, a principal) gets at most `per_caller_max` distinct keys per window; its further
//! distinct events are counted into one summary event for that caller and window. When more
//! than `callers_max` callers are seen in a window, the newcomers share one summary event. So a
//! window adds at most `callers_max × (per_caller_max + 1) + 1` events, whatever the traffic.
//!
//! [`Aggregator`] only decides; the log builds the stored event's key from the [`Placement`]
//! and counts into it (an upsert), so nodes that decide alike count into the same rows. It holds
//! 64-bit digests of the keys it has seen in the current window, no more.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use crate::UnixTime;

/// How an [`Aggregator`] bounds a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AggregationPolicy {
    /// The length of a window; at least 1.
    pub window_millis: i64,
    /// Distinct keys one caller gets per window before its events share a summary.
    pub per_caller_max: usize,
    /// Callers told apart per window before newcomers share one summary.
    pub callers_max: usize,
}

/// Where one event is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Into the event of its own key in this window.
    Own,
    /// Into its caller's summary event of this window.
    CallerSummary,
    /// Into the summary shared by callers beyond `callers_max` in this window.
    SharedSummary,
}

/// The decision for one event: its window's number and where it is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// `time / window_millis`, rounded down: part of every stored key.
    pub window: i64,
    pub placement: Placement,
}

/// Decides where events are counted; see the module documentation.
#[derive(Debug)]
pub struct Aggregator {
    policy: AggregationPolicy,
    /// The newest window seen; what is held belongs to it.
    window: i64,
    /// Per caller digest, the digests of its distinct keys in `window` (at most
    /// `per_caller_max` each).
    callers: HashMap<u64, HashSet<u64>>,
    digests: RandomState,
}

impl Aggregator {
    pub fn new(policy: AggregationPolicy) -> Self {
        Aggregator {
            policy: AggregationPolicy { window_millis: policy.window_millis.max(1), ..policy },
            window: i64::MIN,
            callers: HashMap::new(),
            digests: RandomState::new(),
        }
    }

    pub fn policy(&self) -> AggregationPolicy {
        self.policy
    }

    /// The window `time` falls in.
    pub fn window_of(&self, time: UnixTime) -> i64 {
        time.millis().div_euclid(self.policy.window_millis)
    }

    /// Where an event of `caller` with `key` at `time` is counted. An event of an earlier
    /// window than the newest seen is placed by the newest window's state (late events are
    /// rare: each node stamps its own events).
    pub fn place(&mut self, caller: &str, key: &str, time: UnixTime) -> Slot {
        let window = self.window_of(time);
        if window > self.window {
            self.window = window;
            self.callers.clear();
        }
        let caller_digest = self.digests.hash_one(caller);
        let key_digest = self.digests.hash_one(key);
        let callers_held = self.callers.len();
        let placement = match self.callers.get_mut(&caller_digest) {
            Some(keys) if keys.contains(&key_digest) => Placement::Own,
            Some(keys) if keys.len() < self.policy.per_caller_max => {
                keys.insert(key_digest);
                Placement::Own
            }
            Some(_) => Placement::CallerSummary,
            None if callers_held >= self.policy.callers_max => Placement::SharedSummary,
            None if self.policy.per_caller_max == 0 => {
                self.callers.insert(caller_digest, HashSet::new());
                Placement::CallerSummary
            }
            None => {
                self.callers.insert(caller_digest, HashSet::from([key_digest]));
                Placement::Own
            }
        };
        assert!(self.callers.len() <= self.policy.callers_max, "callers are bounded");
        Slot { window, placement }
    }

    /// Callers held for the current window.
    pub fn callers_held(&self) -> usize {
        self.callers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aggregator() -> Aggregator {
        Aggregator::new(AggregationPolicy {
            window_millis: 60_000,
            per_caller_max: 2,
            callers_max: 2,
        })
    }

    fn at(secs: i64) -> UnixTime {
        UnixTime::from_secs(secs)
    }

    #[test]
    fn repeats_share_an_event_and_a_callers_variety_is_bounded() {
        let mut log = aggregator();
        let place = |log: &mut Aggregator, caller, key, secs| log.place(caller, key, at(secs));
        assert_eq!(place(&mut log, "10.0.0.1", "a", 0).placement, Placement::Own);
        assert_eq!(place(&mut log, "10.0.0.1", "a", 1).placement, Placement::Own);
        assert_eq!(place(&mut log, "10.0.0.1", "b", 2).placement, Placement::Own);
        assert_eq!(place(&mut log, "10.0.0.1", "c", 3).placement, Placement::CallerSummary);
        assert_eq!(place(&mut log, "10.0.0.1", "a", 4).placement, Placement::Own, "a is known");
        assert_eq!(place(&mut log, "10.0.0.2", "c", 5).placement, Placement::Own);
        assert_eq!(place(&mut log, "10.0.0.3", "c", 6).placement, Placement::SharedSummary);
        assert_eq!(log.callers_held(), 2);
        // A new window starts afresh.
        let slot = place(&mut log, "10.0.0.3", "c", 60);
        assert_eq!(slot, Slot { window: 1, placement: Placement::Own });
        assert_eq!(log.callers_held(), 1);
    }

    #[test]
    fn windows_are_fixed_and_negative_times_round_down() {
        let log = aggregator();
        assert_eq!(log.window_of(at(59)), 0);
        assert_eq!(log.window_of(at(60)), 1);
        assert_eq!(log.window_of(UnixTime::from_millis(-1)), -1);
    }

    #[test]
    fn a_flood_of_distinct_keys_holds_bounded_memory() {
        let mut log = aggregator();
        for n in 0..10_000 {
            log.place(&format!("caller-{}", n % 7), &format!("key-{n}"), at(n % 50));
        }
        assert_eq!(log.callers_held(), 2);
        assert!(log.callers.values().all(|keys| keys.len() <= 2));
    }

    proptest::proptest! {
        #[test]
        fn a_window_holds_a_bounded_number_of_stored_events(
            events in proptest::collection::vec((0_u8..40, 0_u16..400, 0_i64..60_000), 0..2000),
        ) {
            // Whatever callers and keys arrive within one window, they are counted into at
            // most callers_max × (per_caller_max + 1) + 1 stored events.
            let policy =
                AggregationPolicy { window_millis: 60_000, per_caller_max: 3, callers_max: 5 };
            let mut log = Aggregator::new(policy);
            let mut stored = HashSet::new();
            for (caller, key, millis) in events {
                let slot =
                    log.place(&caller.to_string(), &key.to_string(), UnixTime::from_millis(millis));
                let name = match slot.placement {
                    Placement::Own => format!("own {caller} {key}"),
                    Placement::CallerSummary => format!("summary {caller}"),
                    Placement::SharedSummary => "shared".to_owned(),
                };
                stored.insert((slot.window, name));
            }
            proptest::prop_assert!(stored.len() <= 5 * (3 + 1) + 1, "{}", stored.len());
        }
    }
}
