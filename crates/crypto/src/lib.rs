//! Key material, signing and verification, and envelope encryption: the only crate in Ambient
//! that calls cryptographic primitives.
//!
//! Everything here wraps vetted libraries (aws-lc-rs for primitives, rcgen and x509-parser for
//! certificates); nothing is invented. The modules:
//!
//! - [`random`]: random bytes, arrays and URL-safe tokens from the system generator.
//! - [`hash`]: SHA-256, SHA-1 (thumbprints only), constant-time comparison, and
//!   [`hash::SecretHasher`], the peppered HMAC used to store client secrets and join tokens.
//! - [`envelope`]: [`envelope::MasterKey`] seals values with AES-256-GCM under a fresh data key
//!   per value and wraps that key under the master key.
//! - [`jws`]: compact JWS over RSA (RS256, PS256) with a strict algorithm allow-list:
//!   [`jws::RsaSigningKey`], [`jws::Signer`] for the token-issuing hot path, [`jws::verify`],
//!   [`jws::RsaPublicKey`], and the JWK/JWKS wire shapes.
//! - [`pki`]: the local certificate authority ([`pki::CertificateAuthority`]) for the server's
//!   TLS certificate and agents' client certificates, CSRs, and certificate inspection.
//!
//! Typical call sequences:
//!
//! ```text
//! // Server start: derive keys from the master key and load the signing key once.
//! let master = MasterKey::from_base64(&config.master_key)?;
//! let hasher = SecretHasher::new(&master.derive_subkey("client-secret-pepper"));
//! let pkcs8 = master.open(&stored_signing_key_blob, b"signing-key/<kid>")?;
//! let key = Arc::new(RsaSigningKey::from_pkcs8_der(&pkcs8)?);
//! let cert = jws::self_signed_certificate_der(&key, "ambient token signing", now, not_after)?;
//! let signer = Signer::new(key.clone(), JwsHeader::for_certificate(Algorithm::RS256, &cert))?;
//!
//! // Token endpoint: check the secret, sign claims.
//! hasher.verify(presented_secret.as_bytes(), &stored_hash);
//! let token = signer.sign_json(&claims)?;
//!
//! // Client assertion: pick the key by thumbprint, then verify with an explicit allow-list.
//! let header = jws::decode_header(assertion)?;
//! let verified = jws::verify(assertion, &[Algorithm::RS256, Algorithm::PS256], &public_key)?;
//! ```
//!
//! Time is always a parameter ([`domain::UnixTime`]); nothing here reads the clock.
//! Private key material lives in zeroizing buffers and never reaches `Debug` output.

pub mod envelope;
pub mod hash;
pub mod jws;
pub mod pki;
pub mod random;

/// The result type of every fallible function in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate. Variants say what the caller can act on;
/// messages never contain secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Key bytes were the wrong length, the wrong type or otherwise unusable.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// Text that should be base64 was not.
    #[error("invalid base64")]
    InvalidBase64,

    /// An envelope blob is too short or has an unknown layout.
    #[error("malformed envelope: {0}")]
    MalformedEnvelope(&'static str),
    /// An envelope blob was sealed under another master key.
    #[error("envelope sealed under key {found}, not {expected}")]
    WrongKeyId {
        /// The id of the key that tried to open the blob.
        expected: String,
        /// The id recorded in the blob.
        found: String,
    },
    /// The wrapped data key failed authentication: the blob's header or wrapped key was altered.
    #[error("envelope data key failed authentication")]
    EnvelopeKeyTampered,
    /// The ciphertext failed authentication: it was altered, or the associated data differs
    /// from the data given when sealing.
    #[error("envelope ciphertext failed authentication: tampered or wrong associated data")]
    EnvelopeDecrypt,

    /// A JWS is not three base64url segments with a JSON header, or is too large.
    #[error("malformed token: {0}")]
    MalformedToken(&'static str),
    /// The header names an algorithm this crate does not implement (`none`, `HS256`, ...).
    /// The value is cut to a short prefix.
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// The algorithm is implemented but not in the caller's allow-list.
    #[error("algorithm not allowed: {0}")]
    AlgorithmNotAllowed(jws::Algorithm),
    /// The signature does not verify under the given key.
    #[error("invalid signature")]
    InvalidSignature,
    /// The JWK is not a usable RSA public key.
    #[error("invalid jwk: {0}")]
    InvalidJwk(&'static str),
    /// Serializing claims or a header to JSON, or parsing verified claims, failed.
    #[error("json encoding or decoding failed")]
    Json(#[source] serde_json::Error),
    /// A primitive failed where it should not (random generator, signing).
    #[error("cryptographic operation failed: {0}")]
    Internal(&'static str),

    /// Text that should be PEM was not, or had the wrong label.
    #[error("invalid pem: {0}")]
    InvalidPem(String),
    /// A certificate could not be parsed or does not fit its use.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// A certificate signing request could not be parsed or its signature is wrong.
    #[error("invalid certificate signing request: {0}")]
    InvalidCsr(String),
    /// Parameters for a new certificate were rejected (empty names, bad validity, ...).
    #[error("invalid certificate parameters: {0}")]
    InvalidCertificateParams(String),
    /// rcgen failed to build or sign a certificate or request.
    #[error("certificate generation failed")]
    CertificateGeneration(#[source] rcgen::Error),
}
