//! Tests of the PKCS#12 reader against files the OpenSSL 3 CLI wrote once (see `testdata/`):
//! the default format yields the key and certificate of the PEM it was exported from, wrong
//! passwords and legacy ciphers are refused with clear messages, and random input never panics.
//!
//! The fixtures were made with OpenSSL 3.0 from `key.pem` and `cert.pem` (a throwaway RSA-2048
//! key and its self-signed certificate):
//!
//! ```text
//! openssl pkcs12 -export -inkey key.pem -in cert.pem -out modern.pfx -passout pass:secret
//! openssl pkcs12 -export -inkey key.pem -in cert.pem -out empty-password.pfx -passout pass:
//! openssl pkcs12 -export -legacy -inkey key.pem -in cert.pem -out legacy.pfx -passout pass:secret
//! openssl pkcs12 -export -inkey key.pem -in cert.pem -out aes128-sha1.pfx -passout pass:secret \
//!     -keypbe AES-128-CBC -certpbe AES-128-CBC -macalg sha1
//! openssl pkcs12 -export -inkey key.pem -in cert.pem -out unencrypted.pfx -passout pass:secret \
//!     -keypbe NONE -certpbe NONE
//! openssl pkcs8 -topk8 -in key.pem -v2 aes-256-cbc -v2prf hmacWithSHA1 -passout pass:secret \
//!     -outform DER -out key-sha1prf.p8
//! ```

use proptest::prelude::*;
use rustls_pki_types::pem::{PemObject, SectionKind};

use crate::Error;
use crate::pkcs12::{Pkcs12, decrypt_private_key, parse};

const KEY_PEM: &[u8] = include_bytes!("testdata/key.pem");
const CERT_PEM: &[u8] = include_bytes!("testdata/cert.pem");
const MODERN: &[u8] = include_bytes!("testdata/modern.pfx");
const EMPTY_PASSWORD: &[u8] = include_bytes!("testdata/empty-password.pfx");
const LEGACY: &[u8] = include_bytes!("testdata/legacy.pfx");
const AES128_SHA1: &[u8] = include_bytes!("testdata/aes128-sha1.pfx");
const UNENCRYPTED: &[u8] = include_bytes!("testdata/unencrypted.pfx");
const KEY_SHA1_PRF: &[u8] = include_bytes!("testdata/key-sha1prf.p8");

fn pem_der(pem: &[u8], kind: SectionKind) -> Vec<u8> {
    <(SectionKind, Vec<u8>)>::pem_slice_iter(pem)
        .map(Result::unwrap)
        .find(|(found, _)| *found == kind)
        .unwrap()
        .1
}

/// Parses `pfx` and checks it holds exactly the fixture's key and certificate.
#[track_caller]
fn check_ok(pfx: &[u8], password: &str) {
    let Pkcs12 { certificates_der, private_key_pkcs8_der } = parse(pfx, password).unwrap();
    assert_eq!(certificates_der, vec![pem_der(CERT_PEM, SectionKind::Certificate)]);
    assert!(private_key_pkcs8_der == pem_der(KEY_PEM, SectionKind::PrivateKey), "key differs");
}

#[track_caller]
fn check_refused(pfx: &[u8], password: &str, fragment: &str) {
    let result = parse(pfx, password);
    let Err(Error::InvalidConfig(message)) = &result else { panic!("{result:?}") };
    assert!(message.contains(fragment), "{message}");
    assert!(password.is_empty() || !message.contains(password), "{message}");
}

#[test]
fn openssl3_default_file_yields_the_pem_key_and_certificate() {
    check_ok(MODERN, "secret");
}

#[test]
fn empty_password_works() {
    check_ok(EMPTY_PASSWORD, "");
}

#[test]
fn aes128_with_sha1_mac_and_unencrypted_bags_work() {
    check_ok(AES128_SHA1, "secret");
    check_ok(UNENCRYPTED, "secret");
}

#[test]
fn pbkdf2_with_hmac_sha1_decrypts() {
    let key = decrypt_private_key(KEY_SHA1_PRF, "secret").unwrap();
    assert!(key == pem_der(KEY_PEM, SectionKind::PrivateKey), "key differs");
}

#[test]
fn wrong_password_is_refused() {
    check_refused(MODERN, "Secret", "wrong password or damaged file");
    check_refused(MODERN, "", "wrong password or damaged file");
    check_refused(EMPTY_PASSWORD, "secret", "wrong password or damaged file");
}

#[test]
fn damaged_file_is_refused() {
    // Flipping a byte of the encrypted content breaks the MAC.
    let mut damaged = MODERN.to_vec();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 1;
    let result = parse(&damaged, "secret");
    assert!(matches!(result, Err(Error::InvalidConfig(_))), "{result:?}");
}

#[test]
fn legacy_cipher_is_refused_with_a_conversion_hint() {
    check_refused(LEGACY, "secret", "legacy cipher");
    check_refused(LEGACY, "secret", "| openssl pkcs12 -export -out new.pfx");
    // The MAC is checked first: a wrong password is reported as such.
    check_refused(LEGACY, "not-the-password", "wrong password");
}

#[test]
fn debug_hides_the_key() {
    let contents = parse(MODERN, "secret").unwrap();
    assert_eq!(format!("{contents:?}"), "Pkcs12 { certificates: 1, private_key: \"[redacted]\" }");
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse(&bytes, "secret");
        let _ = decrypt_private_key(&bytes, "secret");
    }

    #[test]
    fn damaged_files_never_panic(index in 0..MODERN.len(), value in any::<u8>(), cut in 0..MODERN.len()) {
        let mut damaged = MODERN.to_vec();
        damaged[index] = value;
        let _ = parse(&damaged, "secret");
        let _ = parse(&damaged[..cut], "secret");
    }

    #[test]
    fn damaged_encrypted_keys_never_panic(index in 0..KEY_SHA1_PRF.len(), value in any::<u8>()) {
        // Damage in the PBES2 parameters reaches PBKDF2 and AES with odd salts and lengths.
        let mut damaged = KEY_SHA1_PRF.to_vec();
        damaged[index] = value;
        let _ = decrypt_private_key(&damaged, "secret");
    }
}
