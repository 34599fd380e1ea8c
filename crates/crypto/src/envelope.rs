//! Envelope encryption for values at rest (vault secrets, stored signing keys).
//!
//! Each value gets a fresh random 256-bit data key. The value is sealed with AES-256-GCM under
//! that data key (random 96-bit nonce, the caller's associated data), and the data key is sealed
//! under the [`MasterKey`] (its own random nonce, associated data binding the format version and
//! the master key id). Because every data key encrypts exactly one value, random nonces never
//! come near the GCM collision bound, and rotating the master key only means re-wrapping 48-byte
//! data keys.
//!
//! Blob layout, version 1 (all lengths in bytes):
//!
//! ```text
//! version (1) = 1 | key id (8) | wrap nonce (12) | wrapped data key (32 + 16 tag)
//!                 | data nonce (12) | ciphertext (n) + tag (16)
//! ```
//!
//! The caller's associated data should name what the value is and where it belongs (tenant,
//! vault, secret name, version) so a blob copied to another record fails to open.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
use aws_lc_rs::{hkdf, hmac};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use crate::hash::hex;
use crate::{Error, Result, random};

/// The only blob format version this code writes and reads.
const VERSION: u8 = 1;
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const DATA_KEY_LEN: usize = 32;
const WRAPPED_KEY_LEN: usize = DATA_KEY_LEN + TAG_LEN;
const KEY_ID_START: usize = 1;
const WRAP_NONCE_START: usize = KEY_ID_START + KEY_ID_LEN;
const WRAPPED_KEY_START: usize = WRAP_NONCE_START + NONCE_LEN;
const DATA_NONCE_START: usize = WRAPPED_KEY_START + WRAPPED_KEY_LEN;
const CIPHERTEXT_START: usize = DATA_NONCE_START + NONCE_LEN;
/// How many bytes sealing adds to a plaintext (97 for version 1).
pub const BLOB_OVERHEAD_BYTES: usize = CIPHERTEXT_START + TAG_LEN;
/// The shortest possible blob: an empty plaintext still carries its tag.
const BLOB_BYTES_MIN: usize = BLOB_OVERHEAD_BYTES;

/// Domain-separation labels, so the key id, the wrapping and derived subkeys can never collide.
const KEY_ID_LABEL: &[u8] = b"ambient-key-id";
const WRAP_AAD_LABEL: &[u8] = b"ambient-envelope-wrap";
const SUBKEY_SALT: &[u8] = b"ambient-master-key-subkey-v1";

/// The key-encryption key: 32 secret bytes, loaded from configuration at startup.
///
/// Its [`MasterKey::key_id`] is a non-secret fingerprint recorded in every blob, so records can
/// say which key sealed them and rotation can find what to re-wrap.
pub struct MasterKey {
    /// The raw key, zeroed on drop.
    bytes: Zeroizing<[u8; 32]>,
    /// AES-256-GCM key schedule built once from `bytes`, used to wrap data keys.
    wrapping_key: RandomizedNonceKey,
    /// First 8 bytes of HMAC-SHA256(`bytes`, "ambient-key-id").
    key_id: [u8; KEY_ID_LEN],
}

impl MasterKey {
    /// A new random master key.
    pub fn generate() -> Self {
        Self::from_array(Zeroizing::new(random::random_array()))
    }

    /// The key from its 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let array: [u8; 32] =
            bytes.try_into().map_err(|_| Error::InvalidKey("master key must be 32 bytes"))?;
        Ok(Self::from_array(Zeroizing::new(array)))
    }

    /// The key from base64 (standard alphabet with padding, as [`MasterKey::to_base64`] writes
    /// it; base64url without padding is accepted too). Surrounding whitespace is ignored.
    pub fn from_base64(text: &str) -> Result<Self> {
        let text = text.trim();
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE_NO_PAD.decode(text))
                .map_err(|_| Error::InvalidBase64)?,
        );
        Self::from_bytes(&bytes)
    }

    /// The key as standard base64, for writing a generated key to configuration.
    pub fn to_base64(&self) -> domain::Secret<String> {
        domain::Secret::new(STANDARD.encode(self.bytes.as_slice()))
    }

    /// A short non-secret fingerprint of the key: 16 lower-case hex characters.
    pub fn key_id(&self) -> String {
        hex(&self.key_id)
    }

    /// Encrypts `plaintext` under a fresh data key, binding `aad`, and returns the
    /// self-describing blob (see the module docs for its layout).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let data_key = Zeroizing::new(random::random_array::<DATA_KEY_LEN>());
        let data_sealer = RandomizedNonceKey::new(&AES_256_GCM, data_key.as_slice())
            .expect("a 32-byte key is a valid AES-256-GCM key");

        let mut wrapped_key = Zeroizing::new(data_key.to_vec());
        let wrap_nonce = self
            .wrapping_key
            .seal_in_place_append_tag(Aad::from(self.wrap_aad()), &mut *wrapped_key)
            .expect("AES-256-GCM sealing with a valid key does not fail");

        // Encrypt in a buffer with room for the tag, so appending it never reallocates and leaves
        // no stray copy of the plaintext on the heap.
        let mut ciphertext = Vec::with_capacity(plaintext.len() + TAG_LEN);
        ciphertext.extend_from_slice(plaintext);
        let data_nonce = data_sealer
            .seal_in_place_append_tag(Aad::from(aad), &mut ciphertext)
            .expect("AES-256-GCM sealing with a valid key does not fail");

        let mut blob = Vec::with_capacity(BLOB_OVERHEAD_BYTES + plaintext.len());
        blob.push(VERSION);
        blob.extend_from_slice(&self.key_id);
        blob.extend_from_slice(wrap_nonce.as_ref());
        blob.extend_from_slice(&wrapped_key);
        blob.extend_from_slice(data_nonce.as_ref());
        blob.extend_from_slice(&ciphertext);

        assert_eq!(blob.len(), BLOB_OVERHEAD_BYTES + plaintext.len(), "blob length");
        blob
    }

    /// Decrypts a blob made by [`MasterKey::seal`] with the same key and `aad`.
    ///
    /// Fails, without panicking on any input, when the blob is truncated or of an unknown
    /// version ([`Error::MalformedEnvelope`]), was sealed under another master key
    /// ([`Error::WrongKeyId`]), has an altered header or wrapped key
    /// ([`Error::EnvelopeKeyTampered`]), or has an altered ciphertext or a different `aad`
    /// ([`Error::EnvelopeDecrypt`]).
    pub fn open(&self, blob: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let found_key_id = parse_header(blob)?;
        if found_key_id != self.key_id {
            return Err(Error::WrongKeyId { expected: self.key_id(), found: hex(&found_key_id) });
        }

        let wrap_nonce = nonce_at(blob, WRAP_NONCE_START);
        let mut data_key = Zeroizing::new([0u8; WRAPPED_KEY_LEN]);
        data_key.copy_from_slice(&blob[WRAPPED_KEY_START..DATA_NONCE_START]);
        let data_key = self
            .wrapping_key
            .open_in_place(wrap_nonce, Aad::from(self.wrap_aad()), data_key.as_mut_slice())
            .map_err(|_| Error::EnvelopeKeyTampered)?;
        let data_opener = RandomizedNonceKey::new(&AES_256_GCM, data_key)
            .map_err(|_| Error::Internal("build data key"))?;

        let data_nonce = nonce_at(blob, DATA_NONCE_START);
        let mut plaintext = Zeroizing::new(blob[CIPHERTEXT_START..].to_vec());
        let plaintext_len = data_opener
            .open_in_place(data_nonce, Aad::from(aad), plaintext.as_mut_slice())
            .map_err(|_| Error::EnvelopeDecrypt)?
            .len();
        plaintext.truncate(plaintext_len);
        Ok(plaintext)
    }

    /// A 32-byte key for another purpose, derived from the master key with HKDF-SHA256 and
    /// `label` as the context: for example `derive_subkey("client-secret-pepper")` for the
    /// [`crate::hash::SecretHasher`]. Different labels give independent keys; the same label
    /// always gives the same key.
    pub fn derive_subkey(&self, label: &str) -> Zeroizing<[u8; 32]> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SUBKEY_SALT).extract(self.bytes.as_slice());
        let info = [label.as_bytes()];
        let mut subkey = Zeroizing::new([0u8; 32]);
        prk.expand(&info, hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(subkey.as_mut_slice()))
            .expect("HKDF-SHA256 can expand to 32 bytes");
        subkey
    }

    fn from_array(bytes: Zeroizing<[u8; 32]>) -> Self {
        let wrapping_key = RandomizedNonceKey::new(&AES_256_GCM, bytes.as_slice())
            .expect("a 32-byte key is a valid AES-256-GCM key");
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, bytes.as_slice()), KEY_ID_LABEL);
        let key_id = tag.as_ref()[..KEY_ID_LEN].try_into().expect("an HMAC-SHA256 tag is 32 bytes");
        MasterKey { bytes, wrapping_key, key_id }
    }

    /// Associated data for wrapping a data key: binds the format version and this key's id.
    fn wrap_aad(&self) -> [u8; WRAP_AAD_LABEL.len() + 1 + KEY_ID_LEN] {
        let mut aad = [0; WRAP_AAD_LABEL.len() + 1 + KEY_ID_LEN];
        aad[..WRAP_AAD_LABEL.len()].copy_from_slice(WRAP_AAD_LABEL);
        aad[WRAP_AAD_LABEL.len()] = VERSION;
        aad[WRAP_AAD_LABEL.len() + 1..].copy_from_slice(&self.key_id);
        aad
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("key_id", &self.key_id())
            .field("key", &format_args!("[redacted]"))
            .finish()
    }
}

/// The id of the master key that sealed `blob`, without opening it: lets a caller holding
/// several keys (during rotation) pick the right one.
pub fn blob_key_id(blob: &[u8]) -> Result<String> {
    parse_header(blob).map(|key_id| hex(&key_id))
}

/// Checks length and version, and returns the key id.
fn parse_header(blob: &[u8]) -> Result<[u8; KEY_ID_LEN]> {
    if blob.len() < BLOB_BYTES_MIN {
        return Err(Error::MalformedEnvelope("truncated"));
    }
    if blob[0] != VERSION {
        return Err(Error::MalformedEnvelope("unknown version"));
    }
    Ok(blob[KEY_ID_START..WRAP_NONCE_START].try_into().expect("the range is KEY_ID_LEN long"))
}

fn nonce_at(blob: &[u8], start: usize) -> Nonce {
    let bytes: &[u8; NONCE_LEN] =
        blob[start..start + NONCE_LEN].try_into().expect("the range is NONCE_LEN long");
    Nonce::from(bytes)
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};
    use proptest::prelude::*;

    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes(&[byte; 32]).unwrap()
    }

    /// Opens `blob` with `key` and `aad`, rendering the plaintext as text or the error.
    #[track_caller]
    fn check_open(key: &MasterKey, blob: &[u8], aad: &[u8], expect: Expect) {
        let actual = match key.open(blob, aad) {
            Ok(plaintext) => format!("Ok({:?})", String::from_utf8_lossy(&plaintext)),
            Err(error) => format!("Err({error})"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn round_trip() {
        let key = key(1);
        let blob = key.seal(b"hunter2", b"vault/v1/secrets/db/1");
        assert_eq!(blob.len(), BLOB_OVERHEAD_BYTES + 7);
        check_open(&key, &blob, b"vault/v1/secrets/db/1", expect![[r#"Ok("hunter2")"#]]);
    }

    #[test]
    fn empty_plaintext_round_trips() {
        let key = key(1);
        let blob = key.seal(b"", b"");
        assert_eq!(blob.len(), BLOB_BYTES_MIN);
        check_open(&key, &blob, b"", expect![[r#"Ok("")"#]]);
    }

    #[test]
    fn sealing_twice_gives_different_blobs() {
        let key = key(1);
        assert_ne!(key.seal(b"same", b"aad"), key.seal(b"same", b"aad"));
    }

    #[test]
    fn wrong_aad_fails() {
        let key = key(1);
        let blob = key.seal(b"hunter2", b"secret/a");
        check_open(
            &key,
            &blob,
            b"secret/b",
            expect![
                "Err(envelope ciphertext failed authentication: tampered or wrong associated data)"
            ],
        );
    }

    #[test]
    fn wrong_key_fails_with_both_ids() {
        let blob = key(1).seal(b"hunter2", b"");
        check_open(
            &key(2),
            &blob,
            b"",
            expect!["Err(envelope sealed under key 41dce9a771a193ea, not 63fe5f50b6c549f4)"],
        );
    }

    #[test]
    fn truncated_and_unknown_version_fail() {
        let key = key(1);
        let blob = key.seal(b"hunter2", b"");
        check_open(
            &key,
            &blob[..BLOB_BYTES_MIN - 1],
            b"",
            expect!["Err(malformed envelope: truncated)"],
        );
        check_open(&key, &[], b"", expect!["Err(malformed envelope: truncated)"]);
        let mut other_version = blob.clone();
        other_version[0] = 2;
        check_open(&key, &other_version, b"", expect!["Err(malformed envelope: unknown version)"]);
    }

    #[test]
    fn tampered_wrapped_key_and_ciphertext_fail_differently() {
        let key = key(1);
        let blob = key.seal(b"hunter2", b"");
        let mut bad_key = blob.clone();
        bad_key[WRAPPED_KEY_START] ^= 1;
        check_open(&key, &bad_key, b"", expect!["Err(envelope data key failed authentication)"]);
        let mut bad_text = blob.clone();
        bad_text[CIPHERTEXT_START] ^= 1;
        check_open(
            &key,
            &bad_text,
            b"",
            expect![
                "Err(envelope ciphertext failed authentication: tampered or wrong associated data)"
            ],
        );
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        // Goal: no byte of the blob is unauthenticated. Method: flip one bit in each position.
        let key = key(1);
        let blob = key.seal(b"hunter2", b"aad");
        for index in 0..blob.len() {
            let mut tampered = blob.clone();
            tampered[index] ^= 0x10;
            assert!(key.open(&tampered, b"aad").is_err(), "flip at {index} went unnoticed");
        }
    }

    #[test]
    fn blob_key_id_reads_the_header() {
        let key = key(1);
        assert_eq!(blob_key_id(&key.seal(b"x", b"")).unwrap(), key.key_id());
        assert!(blob_key_id(b"short").is_err());
    }

    #[test]
    fn key_id_is_stable_and_short() {
        expect!["41dce9a771a193ea"].assert_eq(&key(1).key_id());
        assert_ne!(key(1).key_id(), key(2).key_id());
    }

    #[test]
    fn base64_round_trip_and_errors() {
        let key = MasterKey::generate();
        let text = key.to_base64();
        let again = MasterKey::from_base64(&format!(" {}\n", text.expose())).unwrap();
        assert_eq!(again.key_id(), key.key_id());
        let url_safe = URL_SAFE_NO_PAD.encode([1u8; 32]);
        assert_eq!(MasterKey::from_base64(&url_safe).unwrap().key_id(), self::key(1).key_id());
        expect!["invalid base64"]
            .assert_eq(&MasterKey::from_base64("not base64!").unwrap_err().to_string());
        expect!["invalid key: master key must be 32 bytes"]
            .assert_eq(&MasterKey::from_base64("AAAA").unwrap_err().to_string());
    }

    #[test]
    fn debug_hides_the_key() {
        expect![[r#"MasterKey { key_id: "41dce9a771a193ea", key: [redacted] }"#]]
            .assert_eq(&format!("{:?}", key(1)));
        expect!["[redacted]"].assert_eq(&format!("{:?}", key(1).to_base64()));
    }

    #[test]
    fn subkeys_are_deterministic_and_label_separated() {
        let key = key(1);
        assert_eq!(
            *key.derive_subkey("client-secret-pepper"),
            *key.derive_subkey("client-secret-pepper")
        );
        assert_ne!(
            *key.derive_subkey("client-secret-pepper"),
            *key.derive_subkey("join-token-pepper")
        );
        assert_ne!(*key.derive_subkey("a"), *self::key(2).derive_subkey("a"));
        assert_ne!(key.derive_subkey("a").as_slice(), [1u8; 32].as_slice());
    }

    #[test]
    fn master_key_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<MasterKey>();
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(blob in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = key(1).open(&blob, b"aad");
        }

        #[test]
        fn arbitrary_bytes_behind_a_valid_header_never_open(
            tail in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            // Goal: reach the decryption paths, not just the header checks.
            let key = key(1);
            let mut blob = vec![VERSION];
            blob.extend_from_slice(&key.key_id);
            blob.extend_from_slice(&tail);
            prop_assert!(key.open(&blob, b"aad").is_err());
        }

        #[test]
        fn any_plaintext_round_trips(
            plaintext in proptest::collection::vec(any::<u8>(), 0..512),
            aad in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let key = key(3);
            let blob = key.seal(&plaintext, &aad);
            let opened = key.open(&blob, &aad).unwrap();
            prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
        }
    }
}
