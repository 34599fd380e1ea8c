//! Digests, constant-time comparison, and the peppered hash that stores client secrets and
//! join tokens.
//!
//! Stored secrets are server-generated with at least 256 bits of entropy, so a keyed fast hash
//! (HMAC-SHA256 under a server-side pepper) already makes guessing hopeless, and verifying costs
//! well under a microsecond instead of the 16 ms an Argon2id check takes (see STACK.md).
//! Human-chosen passwords would need a slow hash; nothing in Ambient stores one.

use std::fmt;

use aws_lc_rs::{constant_time, digest, hmac};

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    digest::digest(&digest::SHA256, data).as_ref().try_into().expect("a SHA-256 digest is 32 bytes")
}

/// Lower-case hex of the SHA-256 of `data` (64 characters), for keys and markers that must
/// name a value without holding it.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&sha256(data))
}

/// SHA-1 of `data`. Only for X.509 thumbprints (`x5t`), which Entra and MSAL define with SHA-1;
/// never use it for anything that needs collision resistance.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .try_into()
        .expect("a SHA-1 digest is 20 bytes")
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// HMAC-SHA256 under a secret pepper: turns a high-entropy secret into the value stored in the
/// database, so a database leak alone does not reveal usable secrets.
///
/// The pepper is typically derived from the master key with
/// [`crate::envelope::MasterKey::derive_subkey`].
pub struct SecretHasher {
    /// HMAC key built from the 32-byte pepper; aws-lc-rs keeps it out of `Debug`.
    key: hmac::Key,
}

impl SecretHasher {
    /// A hasher keyed by `pepper`.
    pub fn new(pepper: &[u8; 32]) -> Self {
        SecretHasher { key: hmac::Key::new(hmac::HMAC_SHA256, pepper) }
    }

    /// The value to store for `secret`.
    pub fn hash(&self, secret: &[u8]) -> [u8; 32] {
        hmac::sign(&self.key, secret).as_ref().try_into().expect("an HMAC-SHA256 tag is 32 bytes")
    }

    /// Whether `secret` hashes to `expected_hash`, compared in constant time.
    pub fn verify(&self, secret: &[u8], expected_hash: &[u8]) -> bool {
        hmac::verify(&self.key, secret, expected_hash).is_ok()
    }
}

impl fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHasher { pepper: [redacted] }")
    }
}

/// Lower-case hex of `bytes`, for fingerprints and key ids.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
        write!(text, "{byte:02x}").expect("writing to a String does not fail");
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_known_vectors() {
        // FIPS 180-2 test vectors for "abc".
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex(&sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(sha256_hex(b"abc"), hex(&sha256(b"abc")));
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"sane"));
        assert!(!constant_time_eq(b"same", b"same!"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn secret_hasher_matches_rfc_4231_vector() {
        // RFC 4231 test case 2 uses the 4-byte key "Jefe"; HMAC pads keys shorter than the block
        // size with zeros, so the same key zero-padded to 32 bytes gives the same tag.
        let mut pepper = [0u8; 32];
        pepper[..4].copy_from_slice(b"Jefe");
        let hasher = SecretHasher::new(&pepper);
        assert_eq!(
            hex(&hasher.hash(b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn secret_hasher_verifies_only_the_right_secret_and_pepper() {
        let hasher = SecretHasher::new(&[7; 32]);
        let stored = hasher.hash(b"client-secret");
        assert!(hasher.verify(b"client-secret", &stored));
        assert!(!hasher.verify(b"client-secreT", &stored));
        assert!(!hasher.verify(b"client-secret", &stored[..31]));
        assert!(!SecretHasher::new(&[8; 32]).verify(b"client-secret", &stored));
    }

    #[test]
    fn secret_hasher_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", SecretHasher::new(&[7; 32])),
            "SecretHasher { pepper: [redacted] }"
        );
    }
}
