//! Throttling of failed token requests (issue 17): each node counts, in fixed windows of
//! [`CLIENT_AUTH_THROTTLE_WINDOW_SECS`], the failed requests of each source address (an IPv4
//! address or an IPv6 /64) and the failed client authentications of each client id. Once a
//! count reaches the limit (`--sign-in-failures-per-minute`), further requests from that address
//! or for that client id are answered 429 with `Retry-After` until the window ends, before any
//! credential is checked.
//!
//! The counts live in a bounded [`TtlCache`]: a flood of new keys evicts the oldest counts, never
//! grows memory. Behind a proxy every client shares the proxy's address, so the limit applies to
//! all of them together; the setting can raise it, or turn throttling off with 0.

use std::net::IpAddr;

use domain::limits::{CLIENT_AUTH_THROTTLE_KEYS_MAX, CLIENT_AUTH_THROTTLE_WINDOW_SECS};
use domain::{TtlCache, UnixTime};

/// Failure counts per address and per client id.
pub struct Throttle {
    /// Failures allowed per key and window; 0 turns throttling off.
    failures_max: u32,
    /// Per key, the window the count belongs to and the count; expires at the window's end.
    counts: TtlCache<String, (i64, u32)>,
}

impl Throttle {
    pub fn new(failures_max: u32) -> Throttle {
        Throttle {
            failures_max,
            counts: TtlCache::new(
                CLIENT_AUTH_THROTTLE_WINDOW_SECS * 1000,
                CLIENT_AUTH_THROTTLE_KEYS_MAX,
            ),
        }
    }

    /// Seconds until `key` may try again, when it has used up its failures in this window.
    pub fn retry_after(&self, key: &str, now: UnixTime) -> Option<i64> {
        if self.failures_max == 0 {
            return None;
        }
        let window = window_of(now);
        match self.counts.get(&key.to_owned(), now) {
            Some((counted, failures)) if counted == window && failures >= self.failures_max => {
                let end = (window + 1) * CLIENT_AUTH_THROTTLE_WINDOW_SECS * 1000;
                Some((end - now.millis() + 999) / 1000)
            }
            _ => None,
        }
    }

    /// Counts one failure of `key`.
    pub fn failed(&self, key: &str, now: UnixTime) {
        if self.failures_max == 0 {
            return;
        }
        let window = window_of(now);
        let failures = match self.counts.get(&key.to_owned(), now) {
            Some((counted, failures)) if counted == window => failures.saturating_add(1),
            _ => 1,
        };
        let end = UnixTime::from_millis((window + 1) * CLIENT_AUTH_THROTTLE_WINDOW_SECS * 1000);
        self.counts.insert_until(key.to_owned(), (window, failures), end, now);
    }
}

/// The key of a source address: an IPv4 address (IPv4-mapped IPv6 included), or the /64 of an
/// IPv6 address, which one host can fill with addresses of its own.
pub fn address_key(address: IpAddr) -> String {
    let address = match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    match address {
        IpAddr::V4(v4) => format!("address {v4}"),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("address {:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The key of a client id (a GUID, any case).
pub fn client_key(client_id: &str) -> String {
    format!("client {}", client_id.to_ascii_lowercase())
}

fn window_of(now: UnixTime) -> i64 {
    now.millis().div_euclid(CLIENT_AUTH_THROTTLE_WINDOW_SECS * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_throttled_after_its_failures_until_the_window_ends() {
        let throttle = Throttle::new(3);
        let start = UnixTime::from_secs(600);
        for _ in 0..3 {
            assert_eq!(throttle.retry_after("k", start), None);
            throttle.failed("k", start);
        }
        assert_eq!(throttle.retry_after("k", start), Some(60));
        assert_eq!(throttle.retry_after("k", start.plus_secs(45)), Some(15));
        assert_eq!(throttle.retry_after("other", start), None);
        assert_eq!(throttle.retry_after("k", start.plus_secs(60)), None, "a new window");
    }

    #[test]
    fn zero_turns_throttling_off() {
        let throttle = Throttle::new(0);
        for _ in 0..100 {
            throttle.failed("k", UnixTime::from_secs(0));
        }
        assert_eq!(throttle.retry_after("k", UnixTime::from_secs(0)), None);
    }

    #[test]
    fn ipv6_addresses_count_by_network() {
        let key = |text: &str| address_key(text.parse().unwrap());
        assert_eq!(key("10.0.0.1"), "address 10.0.0.1");
        assert_eq!(key("::ffff:10.0.0.1"), "address 10.0.0.1");
        assert_eq!(key("2001:db8::1"), key("2001:db8::ffff:1"));
        assert_ne!(key("2001:db8::1"), key("2001:db8:0:1::1"));
    }
}
