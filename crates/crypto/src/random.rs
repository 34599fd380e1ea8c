//! Random bytes from the operating system's generator (through aws-lc-rs), for keys, nonces,
//! client secrets, join tokens and serial numbers.
//!
//! The system generator does not fail on any platform we support; if it ever did, carrying on
//! with predictable bytes would be worse than stopping, so these functions panic instead.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `len` random bytes.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    fill(&mut bytes);
    bytes
}

/// A fixed-size array of random bytes, for keys and nonces.
pub fn random_array<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    fill(&mut bytes);
    bytes
}

/// `bytes` random bytes as base64url without padding: a token safe in URLs, headers and
/// form bodies. 32 bytes give a 43-character token with 256 bits of entropy.
pub fn random_token(bytes: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(bytes))
}

/// Fills `dest` with random bytes.
pub(crate) fn fill(dest: &mut [u8]) {
    SystemRandom::new().fill(dest).expect("the system random generator does not fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_as_asked() {
        assert_eq!(random_bytes(0).len(), 0);
        assert_eq!(random_bytes(33).len(), 33);
        assert_eq!(random_token(32).len(), 43);
        assert_eq!(random_token(3).len(), 4);
    }

    #[test]
    fn tokens_are_url_safe_and_distinct() {
        let a = random_token(32);
        let b = random_token(32);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'), "{a}");
    }

    #[test]
    fn arrays_are_not_all_zero() {
        // 32 zero bytes from a working generator has probability 2^-256.
        let array: [u8; 32] = random_array();
        assert_ne!(array, [0; 32]);
        assert_ne!(array, random_array::<32>());
    }
}
