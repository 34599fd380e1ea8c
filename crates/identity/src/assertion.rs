//! Client assertions for certificate credentials: the PEM is parsed once into a
//! [`ClientCertificate`], which then signs a short-lived RS256 JWT per token request.
//!
//! The shape is azure-identity `CertificateCredential`'s (03-sts.md §5): header `alg` RS256,
//! `typ` JWT, `x5t` = base64url(SHA-1 of the certificate DER) and, when asked, `x5c`; claims
//! `aud` (the token endpoint), `iss` = `sub` = client id, `jti`, `iat`, `nbf`, `exp` = now + 600.
//!
//! This is the one place outside the `crypto` crate that signs: `identity` must stand alone so
//! applications outside this workspace can use it, so it calls aws-lc-rs directly.

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair as _, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rustls_pki_types::pem::{PemObject, SectionKind};

use crate::secret::Secret;
use crate::{Error, Result};

/// How long a client assertion is valid, as azure-identity and MSAL sign them.
pub(crate) const ASSERTION_LIFETIME_SECS: i64 = 600;

/// Largest PEM accepted: a certificate chain and a key fit in a few KiB.
pub(crate) const PEM_BYTES_MAX: usize = 256 * 1024;

/// A certificate and its RSA private key, parsed once.
pub(crate) struct ClientCertificate {
    key_pair: RsaKeyPair,
    /// base64url(SHA-1(leaf certificate DER)): the `x5t` header.
    thumbprint_sha1: String,
    /// DER certificates, the one matching the key first, then the others in file order.
    chain_der: Vec<Vec<u8>>,
}

impl ClientCertificate {
    /// Parses a PEM holding at least one `CERTIFICATE` and one RSA private key (`PRIVATE KEY`,
    /// PKCS#8, or `RSA PRIVATE KEY`, PKCS#1). The certificate whose public key matches the
    /// private key is the one presented; other certificates form the rest of the `x5c` chain.
    pub(crate) fn from_pem(pem: &[u8]) -> Result<ClientCertificate> {
        if pem.len() > PEM_BYTES_MAX {
            return Err(Error::InvalidConfig(format!(
                "certificate PEM is larger than {PEM_BYTES_MAX} bytes"
            )));
        }
        if contains(pem, b"-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(Error::InvalidConfig(
                "certificate PEM holds an encrypted private key; decrypt it first".to_owned(),
            ));
        }
        let mut certificates = Vec::new();
        let mut key_pair = None;
        for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
            let (kind, der) = section.map_err(|error| {
                Error::InvalidConfig(format!("certificate PEM is malformed: {error}"))
            })?;
            let parsed_key = match kind {
                SectionKind::Certificate => {
                    certificates.push(der);
                    continue;
                }
                SectionKind::PrivateKey => RsaKeyPair::from_pkcs8(&der),
                SectionKind::RsaPrivateKey => RsaKeyPair::from_der(&der),
                SectionKind::EcPrivateKey => {
                    return Err(Error::InvalidConfig(
                        "certificate PEM holds an EC key; only RSA keys are supported".to_owned(),
                    ));
                }
                _ => continue,
            };
            if key_pair.is_some() {
                return Err(Error::InvalidConfig(
                    "certificate PEM holds more than one private key".to_owned(),
                ));
            }
            key_pair = Some(parsed_key.map_err(|error| {
                Error::InvalidConfig(format!(
                    "certificate PEM private key is not a usable RSA key: {error}"
                ))
            })?);
        }
        let key_pair = key_pair.ok_or_else(|| {
            Error::InvalidConfig("certificate PEM holds no PRIVATE KEY block".to_owned())
        })?;
        if certificates.is_empty() {
            return Err(Error::InvalidConfig(
                "certificate PEM holds no CERTIFICATE block".to_owned(),
            ));
        }
        Self::from_parts(key_pair, certificates, "PEM")
    }

    /// As [`ClientCertificate::from_pem`], from DER: a PKCS#8 RSA private key and at least one
    /// certificate (as a PKCS#12 file holds them). `source` names the file kind in messages.
    pub(crate) fn from_der(
        private_key_pkcs8_der: &[u8],
        certificates_der: Vec<Vec<u8>>,
        source: &str,
    ) -> Result<ClientCertificate> {
        let key_pair = RsaKeyPair::from_pkcs8(private_key_pkcs8_der).map_err(|error| {
            Error::InvalidConfig(format!(
                "certificate {source} private key is not a usable RSA key: {error}"
            ))
        })?;
        if certificates_der.is_empty() {
            return Err(Error::InvalidConfig(format!("certificate {source} holds no certificate")));
        }
        Self::from_parts(key_pair, certificates_der, source)
    }

    fn from_parts(
        key_pair: RsaKeyPair,
        mut certificates: Vec<Vec<u8>>,
        source: &str,
    ) -> Result<ClientCertificate> {
        // The certificate's SubjectPublicKeyInfo wraps the PKCS#1 public key verbatim, so a
        // byte search finds the certificate of this key without an X.509 parser.
        let public_key = key_pair.public_key().as_ref();
        let leaf_index =
            certificates.iter().position(|der| contains(der, public_key)).ok_or_else(|| {
                Error::InvalidConfig(format!(
                    "no certificate in the {source} matches its private key"
                ))
            })?;
        let leaf = certificates.remove(leaf_index);
        certificates.insert(0, leaf);
        let thumbprint_sha1 = URL_SAFE_NO_PAD
            .encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &certificates[0]).as_ref());
        Ok(ClientCertificate { key_pair, thumbprint_sha1, chain_der: certificates })
    }

    /// A signed client assertion for `client_id` at the token endpoint `audience`.
    pub(crate) fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now_unix_secs: i64,
        send_certificate_chain: bool,
    ) -> Result<Secret> {
        let mut header = serde_json::json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5t": self.thumbprint_sha1,
        });
        if send_certificate_chain {
            let chain: Vec<String> =
                self.chain_der.iter().map(|der| STANDARD.encode(der)).collect();
            header["x5c"] = serde_json::json!(chain);
        }
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": now_unix_secs,
            "nbf": now_unix_secs,
            "exp": now_unix_secs + ASSERTION_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key_pair.public_modulus_len()];
        self.key_pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| {
                Error::InvalidConfig("sign client assertion: RSA signing failed".to_owned())
            })?;
        Ok(Secret::new(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))))
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t", &self.thumbprint_sha1)
            .field("chain_len", &self.chain_der.len())
            .field("private_key", &"[redacted]")
            .finish()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|window| window == needle)
}
