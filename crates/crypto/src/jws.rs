//! Compact JWS (RFC 7515) over RSA: signing tokens, verifying client assertions and federated
//! tokens, and the JWK/JWKS shapes that publish our keys.
//!
//! A small implementation over aws-lc-rs instead of the `jsonwebtoken` crate: that crate parses
//! the private key again on every signature, which costs more than the signature itself (see
//! STACK.md). Here an [`RsaSigningKey`] is parsed once, and a [`Signer`] keeps the base64url
//! header ready, so issuing a token costs one RSA signature plus about a microsecond of JSON and
//! base64.
//!
//! Verification is deliberately narrow: [`verify`] takes an explicit allow-list of
//! [`Algorithm`]s and one key, rejects `none`, HMAC and every algorithm it does not implement,
//! and checks only the signature. Claims (`exp`, `nbf`, `aud`, `iss`) are the `issuer` crate's
//! job. To pick the key first, read the unverified header with [`decode_header`] and match
//! `kid`, `x5t` ([`thumbprint_matches`]) or `x5t#S256`.
//!
//! Only RSA exists today; [`Algorithm`] is non-exhaustive so ES256 can join with its own key
//! types without changing callers that match on it.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as AwsRsaKeyPair, KeySize, PublicKey as AwsRsaPublicKey};
use aws_lc_rs::signature::{
    self, KeyPair as _, ParsedPublicKey, RsaEncoding, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{Error, Result, hash};

/// Longest token [`verify`] and [`decode_header`] look at. Entra tokens are 1 to 3 KiB; a
/// header with an `x5c` chain stays well under this.
pub const TOKEN_BYTES_MAX: usize = 64 * 1024;
/// Smallest RSA modulus accepted for signing or verifying.
pub const RSA_MODULUS_BITS_MIN: usize = 2048;
/// Largest RSA modulus accepted for verifying.
pub const RSA_MODULUS_BITS_MAX: usize = 8192;

/// A JWS signature algorithm this crate implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256: Entra's token algorithm and azure-identity's assertions.
    RS256,
    /// RSASSA-PSS with SHA-256 and a 32-byte salt: MSAL's assertions for PEM certificates.
    PS256,
}

/// The JOSE header of a token. Field names are the wire names; unknown members are ignored when
/// reading and never written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwsHeader {
    /// Media type, `JWT` for tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Algorithm name as written in the token; parse it with [`JwsHeader::algorithm`].
    pub alg: String,
    /// base64url SHA-1 thumbprint of the signing certificate (sometimes padded by MSAL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5t: Option<String>,
    /// Key id; in Entra's tokens the same value as `x5t`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// base64url SHA-256 thumbprint of the signing certificate.
    #[serde(rename = "x5t#S256", default, skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
    /// Certificate chain, each entry standard base64 DER, signing certificate first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5c: Option<Vec<String>>,
    /// Critical extensions. No extension is understood, so [`verify`] rejects any token that
    /// carries this member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crit: Option<Vec<String>>,
}

/// A token whose signature verified: its header and raw payload bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    header: JwsHeader,
    payload: Vec<u8>,
}

/// An RSA private key, parsed once and kept in memory (parsing costs more than a signature).
///
/// Its `Debug` shows only the public half.
pub struct RsaSigningKey {
    key_pair: AwsRsaKeyPair,
    /// The public half, computed once at construction.
    public_key: RsaPublicKey,
}

/// An RSA public key with verifiers for every supported algorithm already parsed.
#[derive(Clone)]
pub struct RsaPublicKey {
    /// Modulus, big-endian, no leading zero bytes; between 2048 and 8192 bits.
    n: Vec<u8>,
    /// Public exponent, big-endian, no leading zero bytes.
    e: Vec<u8>,
    rs256: ParsedPublicKey,
    ps256: ParsedPublicKey,
}

/// Signs payloads with one key and one fixed header, encoded to base64url once.
///
/// This is the token-issuing hot path: build one `Signer` per key and header shape at startup
/// or key rotation, share it (it is `Send + Sync`), and call [`Signer::sign_json`] per token.
pub struct Signer {
    key: Arc<RsaSigningKey>,
    alg: Algorithm,
    header: JwsHeader,
    /// base64url of the header's JSON; invariant: it encodes `header`.
    header_b64: String,
}

/// One key of a JSON Web Key Set, with the member names Entra publishes
/// (`kty`, `use`, `kid`, `x5t`, `n`, `e`, `x5c`, `issuer`), plus `alg`, which other OIDC
/// issuers (Kubernetes) include. Members that are absent stay absent when written back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `RSA` for every key this crate can use.
    pub kty: String,
    /// Intended use: `sig` for signing keys.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// Key id, matched against a token header's `kid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// base64url SHA-1 thumbprint of the certificate in `x5c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5t: Option<String>,
    /// RSA modulus, base64url big-endian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url big-endian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Certificate chain, standard base64 DER.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub x5c: Vec<String>,
    /// Issuer the key signs for (Entra's v2 key sets carry it; v1 sets do not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Algorithm the key is meant for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
}

/// A JSON Web Key Set: the body of a `keys` endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys, in publication order.
    pub keys: Vec<Jwk>,
}

impl Algorithm {
    /// The JOSE name (`RS256`, `PS256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::PS256 => "PS256",
        }
    }

    /// Parses a JOSE name, case-sensitively. Everything not implemented here, including
    /// `none` and the HMAC family, is [`Error::UnsupportedAlgorithm`].
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "RS256" => Ok(Algorithm::RS256),
            "PS256" => Ok(Algorithm::PS256),
            other => Err(Error::UnsupportedAlgorithm(printable_prefix(other))),
        }
    }

    fn signing_encoding(self) -> &'static dyn RsaEncoding {
        match self {
            Algorithm::RS256 => &signature::RSA_PKCS1_SHA256,
            Algorithm::PS256 => &signature::RSA_PSS_SHA256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        Algorithm::from_name(name)
    }
}

impl JwsHeader {
    /// A `JWT` header for `alg` with no key identifiers.
    pub fn new(alg: Algorithm) -> Self {
        JwsHeader {
            typ: Some("JWT".to_owned()),
            alg: alg.as_str().to_owned(),
            ..Default::default()
        }
    }

    /// Entra's header shape for a key published with a certificate: `typ`, `alg`, and
    /// `x5t` = `kid` = base64url SHA-1 thumbprint of `cert_der`.
    pub fn for_certificate(alg: Algorithm, cert_der: &[u8]) -> Self {
        let thumbprint = x5t_sha1(cert_der);
        JwsHeader { x5t: Some(thumbprint.clone()), kid: Some(thumbprint), ..JwsHeader::new(alg) }
    }

    /// The parsed `alg`, or [`Error::UnsupportedAlgorithm`].
    pub fn algorithm(&self) -> Result<Algorithm> {
        Algorithm::from_name(&self.alg)
    }
}

impl Verified {
    /// The token's header.
    pub fn header(&self) -> &JwsHeader {
        &self.header
    }

    /// The payload bytes (JSON claims for a JWT).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The payload bytes, by value.
    pub fn into_payload(self) -> Vec<u8> {
        self.payload
    }

    /// The payload parsed as JSON into `T`.
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.payload).map_err(Error::Json)
    }
}

impl RsaSigningKey {
    /// A new random RSA-2048 key.
    pub fn generate_2048() -> Result<Self> {
        let key_pair = AwsRsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| Error::Internal("rsa key generation"))?;
        Self::from_key_pair(key_pair)
    }

    /// Parses an unencrypted PKCS#8 (`PRIVATE KEY`) DER RSA key of 2048 to 8192 bits.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let key_pair = AwsRsaKeyPair::from_pkcs8(der)
            .map_err(|_| Error::InvalidKey("not a pkcs#8 rsa private key of 2048 to 8192 bits"))?;
        Self::from_key_pair(key_pair)
    }

    /// The key as unencrypted PKCS#8 DER, for storing (sealed) or exporting.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        let der = self.key_pair.as_der().map_err(|_| Error::Internal("encode rsa private key"))?;
        Ok(Zeroizing::new(der.as_ref().to_vec()))
    }

    /// The public half.
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public_key
    }

    /// Signs `message` (for a JWS, the ASCII `header.payload` signing input) with `alg`.
    /// The result is as long as the modulus (256 bytes for RSA-2048).
    pub fn sign(&self, alg: Algorithm, message: &[u8]) -> Result<Vec<u8>> {
        let mut signature = vec![0; self.key_pair.public_modulus_len()];
        self.key_pair
            .sign(alg.signing_encoding(), &SystemRandom::new(), message, &mut signature)
            .map_err(|_| Error::Internal("rsa signing"))?;
        Ok(signature)
    }

    /// [`RsaSigningKey::sign`] with RS256.
    pub fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.sign(Algorithm::RS256, message)
    }

    /// [`RsaSigningKey::sign`] with PS256.
    pub fn sign_ps256(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.sign(Algorithm::PS256, message)
    }

    /// The RFC 8017 `RSAPublicKey` DER, as X.509 certificates embed it.
    pub(crate) fn public_key_pkcs1_der(&self) -> &[u8] {
        self.key_pair.public_key().as_ref()
    }

    fn from_key_pair(key_pair: AwsRsaKeyPair) -> Result<Self> {
        let public = key_pair.public_key();
        let public_key = RsaPublicKey::from_components(
            public.modulus().big_endian_without_leading_zero(),
            public.exponent().big_endian_without_leading_zero(),
        )?;
        Ok(RsaSigningKey { key_pair, public_key })
    }
}

impl fmt::Debug for RsaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaSigningKey")
            .field("public_key", &self.public_key)
            .field("private_key", &format_args!("[redacted]"))
            .finish()
    }
}

impl RsaPublicKey {
    /// A key from its modulus and exponent, big-endian (leading zero bytes are ignored).
    /// The modulus must have 2048 to 8192 bits.
    pub fn from_components(n: &[u8], e: &[u8]) -> Result<Self> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let bits = bit_len(n);
        if !(RSA_MODULUS_BITS_MIN..=RSA_MODULUS_BITS_MAX).contains(&bits) {
            return Err(Error::InvalidKey("rsa modulus must have 2048 to 8192 bits"));
        }
        let components = RsaPublicKeyComponents { n, e };
        let parse = |params| {
            components
                .to_parsed_public_key(params)
                .map_err(|_| Error::InvalidKey("not a valid rsa public key"))
        };
        Ok(RsaPublicKey {
            n: n.to_vec(),
            e: e.to_vec(),
            rs256: parse(&signature::RSA_PKCS1_2048_8192_SHA256)?,
            ps256: parse(&signature::RSA_PSS_2048_8192_SHA256)?,
        })
    }

    /// A key from X.509 `SubjectPublicKeyInfo` DER (a `PUBLIC KEY` PEM's content); RFC 8017
    /// `RSAPublicKey` DER is accepted too.
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        let public = AwsRsaPublicKey::from_der(der)
            .map_err(|_| Error::InvalidKey("not an rsa public key"))?;
        Self::from_components(
            public.modulus().big_endian_without_leading_zero(),
            public.exponent().big_endian_without_leading_zero(),
        )
    }

    /// The subject key of an X.509 certificate (DER). The certificate itself is not validated.
    pub fn from_certificate_der(der: &[u8]) -> Result<Self> {
        let (rest, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|error| Error::InvalidCertificate(error.to_string()))?;
        if !rest.is_empty() {
            return Err(Error::InvalidCertificate("trailing data after certificate".to_owned()));
        }
        Self::from_spki_der(cert.public_key().raw)
    }

    /// The key from a JWK: `kty` must be `RSA`, `use` (if present) `sig`, and `n` and `e` present.
    /// `x5c` is not consulted.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self> {
        if jwk.kty != "RSA" {
            return Err(Error::InvalidJwk("kty is not RSA"));
        }
        if jwk.key_use.as_deref().is_some_and(|key_use| key_use != "sig") {
            return Err(Error::InvalidJwk("use is not sig"));
        }
        let decode = |member: &Option<String>, missing| {
            let text = member.as_deref().ok_or(Error::InvalidJwk(missing))?;
            BASE64URL_LENIENT.decode(text).map_err(|_| Error::InvalidJwk("n or e is not base64url"))
        };
        let n = decode(&jwk.n, "n is missing")?;
        let e = decode(&jwk.e, "e is missing")?;
        Self::from_components(&n, &e)
    }

    /// Modulus, big-endian without leading zeros (a JWK's `n` before base64url).
    pub fn n(&self) -> &[u8] {
        &self.n
    }

    /// Public exponent, big-endian without leading zeros (a JWK's `e` before base64url).
    pub fn e(&self) -> &[u8] {
        &self.e
    }

    /// Size of the modulus in bits.
    pub fn modulus_bits(&self) -> usize {
        bit_len(&self.n)
    }

    /// A signing JWK for this key with `kid`; the caller adds `x5t`, `x5c` or `issuer` if it
    /// publishes them (see [`Jwk::from_certificate_der`] for Entra's shape).
    pub fn to_jwk(&self, kid: &str) -> Jwk {
        Jwk {
            kty: "RSA".to_owned(),
            key_use: Some("sig".to_owned()),
            kid: Some(kid.to_owned()),
            n: Some(URL_SAFE_NO_PAD.encode(&self.n)),
            e: Some(URL_SAFE_NO_PAD.encode(&self.e)),
            ..Jwk::default()
        }
    }

    /// Checks `signature` over `message` with `alg`.
    pub fn verify_signature(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> Result<()> {
        let verifier = match alg {
            Algorithm::RS256 => &self.rs256,
            Algorithm::PS256 => &self.ps256,
        };
        verifier.verify_sig(message, signature).map_err(|_| Error::InvalidSignature)
    }
}

impl PartialEq for RsaPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.n == other.n && self.e == other.e
    }
}

impl Eq for RsaPublicKey {}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaPublicKey")
            .field("bits", &self.modulus_bits())
            .field("e", &URL_SAFE_NO_PAD.encode(&self.e))
            .field("n_sha256", &URL_SAFE_NO_PAD.encode(hash::sha256(&self.n)))
            .finish()
    }
}

impl Signer {
    /// A signer for `key` that always writes `header`. The algorithm is the header's `alg`,
    /// which must be one this crate implements.
    pub fn new(key: Arc<RsaSigningKey>, header: JwsHeader) -> Result<Self> {
        let alg = header.algorithm()?;
        let header_json = serde_json::to_vec(&header).map_err(Error::Json)?;
        let header_b64 = URL_SAFE_NO_PAD.encode(header_json);
        Ok(Signer { key, alg, header, header_b64 })
    }

    /// The header every token gets.
    pub fn header(&self) -> &JwsHeader {
        &self.header
    }

    /// The signing algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The signing key.
    pub fn key(&self) -> &RsaSigningKey {
        &self.key
    }

    /// A compact JWS over raw `payload` bytes.
    pub fn sign(&self, payload: &[u8]) -> Result<String> {
        sign_compact(&self.header_b64, self.alg, payload, &self.key)
    }

    /// A compact JWS over `claims` serialized as JSON.
    pub fn sign_json<T: Serialize + ?Sized>(&self, claims: &T) -> Result<String> {
        let payload = serde_json::to_vec(claims).map_err(Error::Json)?;
        self.sign(&payload)
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").field("header", &self.header).field("key", &self.key).finish()
    }
}

impl Jwk {
    /// Entra's JWK for a key published with a certificate (DER): `kty` `RSA`, `use` `sig`,
    /// `kid` = `x5t` = base64url SHA-1 thumbprint, `n` and `e` from the certificate's key,
    /// `x5c` the certificate, and `issuer` if given (v2 key sets).
    pub fn from_certificate_der(cert_der: &[u8], issuer: Option<String>) -> Result<Self> {
        let key = RsaPublicKey::from_certificate_der(cert_der)?;
        let thumbprint = x5t_sha1(cert_der);
        Ok(Jwk {
            x5t: Some(thumbprint.clone()),
            x5c: vec![STANDARD.encode(cert_der)],
            issuer,
            ..key.to_jwk(&thumbprint)
        })
    }
}

impl Jwks {
    /// The key whose `kid` is `kid`.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|jwk| jwk.kid.as_deref() == Some(kid))
    }
}

/// A compact JWS of `claims` serialized as JSON, signed with `key` under `header` (whose `alg`
/// picks the algorithm). For many tokens with the same header, build a [`Signer`] instead.
pub fn encode<T: Serialize + ?Sized>(
    header: &JwsHeader,
    claims: &T,
    key: &RsaSigningKey,
) -> Result<String> {
    let payload = serde_json::to_vec(claims).map_err(Error::Json)?;
    encode_bytes(header, &payload, key)
}

/// A compact JWS over raw `payload` bytes; see [`encode`].
pub fn encode_bytes(header: &JwsHeader, payload: &[u8], key: &RsaSigningKey) -> Result<String> {
    let alg = header.algorithm()?;
    let header_b64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).map_err(Error::Json)?);
    sign_compact(&header_b64, alg, payload, key)
}

/// The header of `token`, NOT verified: use it only to choose the key (`kid`, `x5t`,
/// `x5t#S256`) before calling [`verify`].
pub fn decode_header(token: &str) -> Result<JwsHeader> {
    let segments = Segments::split(token)?;
    parse_header(segments.header)
}

/// Verifies `token`'s signature with `key` and returns its header and payload.
///
/// Checks, in order: size and shape (three base64url segments, JSON header without `crit`),
/// then that `alg` is implemented ([`Error::UnsupportedAlgorithm`] for `none`, `HS256`, ...)
/// and in `allowed` ([`Error::AlgorithmNotAllowed`]; an empty list allows nothing), then the
/// signature ([`Error::InvalidSignature`]). No claims are checked.
///
/// Segments are base64url without padding (RFC 7515 §2): a segment with `=` padding, whitespace
/// or standard-alphabet characters is malformed.
pub fn verify(token: &str, allowed: &[Algorithm], key: &RsaPublicKey) -> Result<Verified> {
    let segments = Segments::split(token)?;
    let header = parse_header(segments.header)?;
    if header.crit.is_some() {
        return Err(Error::MalformedToken("crit header is not supported"));
    }
    let alg = header.algorithm()?;
    if !allowed.contains(&alg) {
        return Err(Error::AlgorithmNotAllowed(alg));
    }
    let signature = BASE64URL_STRICT
        .decode(segments.signature)
        .map_err(|_| Error::MalformedToken("signature is not base64url"))?;
    key.verify_signature(alg, segments.signing_input.as_bytes(), &signature)?;
    let payload = BASE64URL_STRICT
        .decode(segments.payload)
        .map_err(|_| Error::MalformedToken("payload is not base64url"))?;
    Ok(Verified { header, payload })
}

/// `x5t`: base64url (no padding) SHA-1 thumbprint of a DER certificate.
pub fn x5t_sha1(cert_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(hash::sha1(cert_der))
}

/// `x5t#S256`: base64url (no padding) SHA-256 thumbprint of a DER certificate.
pub fn x5t_sha256(cert_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(hash::sha256(cert_der))
}

/// Whether a thumbprint from a token header matches one we computed, ignoring `=` padding
/// (MSAL Python pads `x5t`). Thumbprints are public, so the comparison need not be constant time.
pub fn thumbprint_matches(presented: &str, expected: &str) -> bool {
    !expected.is_empty() && presented.trim_end_matches('=') == expected.trim_end_matches('=')
}

/// A self-signed X.509 certificate (DER) for `key`, valid from `not_before` to `not_after`,
/// so a JWKS can carry `x5c` and use its SHA-1 thumbprint as `kid` and `x5t`, as Entra does.
pub fn self_signed_certificate_der(
    key: &RsaSigningKey,
    common_name: &str,
    not_before: domain::UnixTime,
    not_after: domain::UnixTime,
) -> Result<Vec<u8>> {
    crate::pki::self_signed_rsa_certificate_der(key, common_name, not_before, not_after, &[])
}

/// base64url as JWS segments are written (RFC 7515 §2): no `=` padding, no whitespace, no
/// standard-alphabet characters, canonical trailing bits.
const BASE64URL_STRICT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// base64url that accepts input with or without `=` padding but is otherwise strict, for the
/// `n` and `e` of keys fetched from a federated issuer's JWKS: the issuer is one an admin
/// configured, not a caller, and a padded key there would otherwise lock out all its tokens.
const BASE64URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The three segments of a compact JWS, still encoded.
struct Segments<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    /// `header.payload`, the bytes the signature covers.
    signing_input: &'a str,
}

impl<'a> Segments<'a> {
    fn split(token: &'a str) -> Result<Self> {
        if token.len() > TOKEN_BYTES_MAX {
            return Err(Error::MalformedToken("token is too large"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::MalformedToken("expected three dot-separated segments"));
        };
        let signing_input = &token[..header.len() + 1 + payload.len()];
        Ok(Segments { header, payload, signature, signing_input })
    }
}

fn parse_header(header_b64: &str) -> Result<JwsHeader> {
    let json = BASE64URL_STRICT
        .decode(header_b64)
        .map_err(|_| Error::MalformedToken("header is not base64url"))?;
    serde_json::from_slice(&json)
        .map_err(|_| Error::MalformedToken("header is not a valid jose header"))
}

fn sign_compact(
    header_b64: &str,
    alg: Algorithm,
    payload: &[u8],
    key: &RsaSigningKey,
) -> Result<String> {
    let signature_len = key.key_pair.public_modulus_len();
    let mut token = String::with_capacity(
        header_b64.len()
            + base64::encoded_len(payload.len(), false).unwrap_or(0)
            + base64::encoded_len(signature_len, false).unwrap_or(0)
            + 2,
    );
    token.push_str(header_b64);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let signature = key.sign(alg, token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
    debug_assert_eq!(token.matches('.').count(), 2, "a compact jws has three segments");
    Ok(token)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first_nonzero = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first_nonzero..]
}

/// Bit length of a big-endian unsigned integer without leading zero bytes.
fn bit_len(bytes: &[u8]) -> usize {
    match bytes.first() {
        None => 0,
        Some(&first) => bytes.len() * 8 - first.leading_zeros() as usize,
    }
}

/// At most 32 printable characters of untrusted text, for error messages.
fn printable_prefix(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(32).collect()
}

#[cfg(test)]
mod tests;
