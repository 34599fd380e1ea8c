//! The local certificate authority and certificate helpers: the server's TLS certificate,
//! agents' client certificates (issued from CSRs), self-signed certificates for service-principal
//! credentials and token-signing keys, and reading certificates.
//!
//! Built on rcgen (writing) and x509-parser (reading). This module writes and inspects
//! certificates; it never validates chains for authentication, which is rustls' job
//! (`WebPkiClientVerifier`) in the server.
//!
//! Conventions for every certificate issued here:
//!
//! - `not_before` is backdated by [`domain::limits::CLOCK_LEEWAY_SECS`], so a peer whose clock
//!   runs a little behind still accepts a certificate issued just now. (Only
//!   [`crate::jws::self_signed_certificate_der`], which takes `not_before` explicitly, uses the
//!   caller's value as is.)
//! - Serial numbers are 128 random bits.
//! - Keys are ECDSA P-256 (fast, fine for TLS), except the RSA-2048 keys that Entra-compatible
//!   token signing and service-principal certificates need.

use std::fmt;
use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, PublicKeyData,
    SanType, SerialNumber, SignatureAlgorithm, SigningKey, SubjectPublicKeyInfo,
};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use zeroize::Zeroizing;

use crate::hash::hex;
use crate::jws::{self, Algorithm, RsaSigningKey};
use crate::{Error, Result, hash, random};

/// Validity of a generated CA certificate: ten years.
pub const CA_VALIDITY_SECS: i64 = 10 * 365 * 24 * 3600;
/// X.509's upper bound on a common name (RFC 5280 `ub-common-name`).
pub const COMMON_NAME_CHARS_MAX: usize = 64;

/// A certificate authority: a self-signed CA certificate and its ECDSA P-256 key, used to
/// issue the server's TLS certificate and agents' client certificates.
pub struct CertificateAuthority {
    /// The CA's private key; zeroed on drop.
    key: Zeroizing<KeyPair>,
    cert_pem: String,
    cert_der: Vec<u8>,
    not_after: domain::UnixTime,
}

/// A certificate issued together with a freshly generated private key.
pub struct IssuedCertificate {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM (`PRIVATE KEY`).
    pub key_pem: Zeroizing<String>,
    /// End of validity.
    pub not_after: domain::UnixTime,
}

/// A certificate issued for a key the requester holds (from a CSR).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCertificate {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// End of validity.
    pub not_after: domain::UnixTime,
    /// SHA-256 of the certificate DER, lower-case hex: the value to record for the agent.
    pub sha256_fingerprint_hex: String,
}

/// A fresh private key and a certificate signing request for it.
pub struct GeneratedCsr {
    /// The request, PEM (`CERTIFICATE REQUEST`).
    pub csr_pem: String,
    /// The private key, PKCS#8 PEM; it never leaves the host that generated it.
    pub key_pem: Zeroizing<String>,
}

/// A self-signed certificate with its private key.
pub struct SelfSignedCertificate {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM (`PRIVATE KEY`).
    pub key_pem: Zeroizing<String>,
}

/// What Ambient needs to know about a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject's first common name, if any.
    pub subject_cn: Option<String>,
    /// The issuer's first common name, if any.
    pub issuer_cn: Option<String>,
    /// Start of validity.
    pub not_before: domain::UnixTime,
    /// End of validity.
    pub not_after: domain::UnixTime,
    /// base64url SHA-1 of the DER: `x5t`, and the `kid` of Entra-style keys.
    pub sha1_thumbprint_b64url: String,
    /// base64url SHA-256 of the DER: `x5t#S256`.
    pub sha256_thumbprint_b64url: String,
    /// SHA-256 of the DER, lower-case hex.
    pub sha256_fingerprint_hex: String,
    /// DNS names from the subject alternative names.
    pub dns_names: Vec<String>,
    /// IP addresses from the subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// Whether basic constraints mark it as a CA.
    pub is_ca: bool,
}

impl CertificateAuthority {
    /// A new CA named `common_name`, valid for [`CA_VALIDITY_SECS`] from `now`, allowed to
    /// sign end-entity certificates only (path length 0).
    pub fn generate(common_name: &str, now: domain::UnixTime) -> Result<Self> {
        let key = Zeroizing::new(
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(Error::CertificateGeneration)?,
        );
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name_dn(common_name)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, now, now.plus_secs(CA_VALIDITY_SECS))?;
        let cert = params.self_signed(&*key).map_err(Error::CertificateGeneration)?;
        Self::from_parts(key, cert.der().to_vec())
    }

    /// A CA from its certificate and private key PEM (as written by
    /// [`CertificateAuthority::cert_pem`] and [`CertificateAuthority::key_pem`]). The
    /// certificate must be a CA certificate for that key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self> {
        let key = Zeroizing::new(
            KeyPair::from_pem(key_pem)
                .map_err(|_| Error::InvalidKey("ca key is not a pem private key"))?,
        );
        let cert_der = pem_decode(cert_pem, &["CERTIFICATE"])?;
        Self::from_parts(key, cert_der)
    }

    /// The CA certificate, PEM: what clients add to their trust store.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA private key, PKCS#8 PEM, for storing (sealed) and reloading with
    /// [`CertificateAuthority::from_pem`].
    pub fn key_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(self.key.serialize_pem())
    }

    /// End of the CA's validity; nothing it issues may outlive it.
    pub fn not_after(&self) -> domain::UnixTime {
        self.not_after
    }

    /// A TLS server certificate with a new P-256 key, for `dns_names` (wildcards such as
    /// `*.vault.localhost` allowed) and `ip_addresses`, valid `validity_days` from `now`.
    /// The subject CN is the first DNS name (or IP address) when it fits the 64-character CN
    /// limit, and absent otherwise; clients match the alternative names. The EKU is serverAuth.
    pub fn issue_server_certificate(
        &self,
        dns_names: &[String],
        ip_addresses: &[IpAddr],
        now: domain::UnixTime,
        validity_days: u32,
    ) -> Result<IssuedCertificate> {
        let first_name = match (dns_names.first(), ip_addresses.first()) {
            (Some(name), _) => name.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => {
                return Err(Error::InvalidCertificateParams(
                    "a server certificate needs a dns name or ip address".to_owned(),
                ));
            }
        };
        let not_after = self.leaf_not_after(now, i64::from(validity_days) * 24 * 3600)?;
        let mut params = leaf_params(&first_name, now, not_after)?;
        if first_name.len() > COMMON_NAME_CHARS_MAX {
            params.distinguished_name = DistinguishedName::new();
        }
        for name in dns_names {
            params.subject_alt_names.push(SanType::DnsName(dns_name(name)?));
        }
        for ip in ip_addresses {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];

        let key = Zeroizing::new(
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(Error::CertificateGeneration)?,
        );
        let cert =
            params.signed_by(&*key, &self.issuer()?).map_err(Error::CertificateGeneration)?;
        Ok(IssuedCertificate {
            cert_pem: cert.pem(),
            key_pem: Zeroizing::new(key.serialize_pem()),
            not_after,
        })
    }

    /// A client certificate (EKU clientAuth) for the key in `csr_pem`, valid `validity_secs`
    /// from `now`. The CSR's signature must verify (proof that the requester holds the key);
    /// everything else it asks for is ignored: the subject is exactly `CN=common_name`, with
    /// no alternative names and no CA rights.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        common_name: &str,
        now: domain::UnixTime,
        validity_secs: i64,
    ) -> Result<SignedCertificate> {
        let csr_der = pem_decode(csr_pem, &["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"])?;
        let (rest, csr) = X509CertificationRequest::from_der(&csr_der)
            .map_err(|error| Error::InvalidCsr(error.to_string()))?;
        if !rest.is_empty() {
            return Err(Error::InvalidCsr("trailing data after request".to_owned()));
        }
        csr.verify_signature()
            .map_err(|_| Error::InvalidCsr("signature does not verify".to_owned()))?;
        let public_key =
            SubjectPublicKeyInfo::from_der(csr.certification_request_info.subject_pki.raw)
                .map_err(|_| Error::InvalidCsr("unsupported public key type".to_owned()))?;

        let not_after = self.leaf_not_after(now, validity_secs)?;
        let mut params = leaf_params(common_name, now, not_after)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert =
            params.signed_by(&public_key, &self.issuer()?).map_err(Error::CertificateGeneration)?;
        Ok(SignedCertificate {
            cert_pem: cert.pem(),
            not_after,
            sha256_fingerprint_hex: hex(&hash::sha256(cert.der())),
        })
    }

    fn from_parts(key: Zeroizing<KeyPair>, cert_der: Vec<u8>) -> Result<Self> {
        let cert = parse_certificate(&cert_der)?;
        if !cert.is_ca() {
            return Err(Error::InvalidCertificate("not a ca certificate".to_owned()));
        }
        if cert.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
            return Err(Error::InvalidCertificate(
                "ca key does not match the certificate".to_owned(),
            ));
        }
        let not_after = unix_time(cert.validity().not_after.timestamp());
        let cert_pem = pem_encode("CERTIFICATE", &cert_der);
        Ok(CertificateAuthority { key, cert_pem, cert_der, not_after })
    }

    fn issuer(&self) -> Result<Issuer<'static, &KeyPair>> {
        Issuer::from_ca_cert_der(&self.cert_der.as_slice().into(), &*self.key)
            .map_err(Error::CertificateGeneration)
    }

    fn leaf_not_after(
        &self,
        now: domain::UnixTime,
        validity_secs: i64,
    ) -> Result<domain::UnixTime> {
        if validity_secs <= 0 {
            return Err(Error::InvalidCertificateParams("validity must be positive".to_owned()));
        }
        let not_after = domain::UnixTime::from_secs(now.secs().saturating_add(validity_secs));
        if not_after > self.not_after {
            return Err(Error::InvalidCertificateParams(
                "certificate would outlive its ca".to_owned(),
            ));
        }
        Ok(not_after)
    }
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("sha256", &hex(&hash::sha256(&self.cert_der)))
            .field("not_after", &self.not_after)
            .field("key", &format_args!("[redacted]"))
            .finish()
    }
}

impl fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &format_args!("[redacted]"))
            .field("not_after", &self.not_after)
            .finish()
    }
}

impl fmt::Debug for GeneratedCsr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedCsr")
            .field("csr_pem", &self.csr_pem)
            .field("key_pem", &format_args!("[redacted]"))
            .finish()
    }
}

impl fmt::Debug for SelfSignedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfSignedCertificate")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &format_args!("[redacted]"))
            .finish()
    }
}

/// A new ECDSA P-256 key and a CSR for it with subject `CN=common_name`: what an agent sends
/// to the server to get its client certificate.
pub fn generate_csr(common_name: &str) -> Result<GeneratedCsr> {
    let key = Zeroizing::new(
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(Error::CertificateGeneration)?,
    );
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_dn(common_name)?;
    let csr = params.serialize_request(&*key).map_err(Error::CertificateGeneration)?;
    Ok(GeneratedCsr {
        csr_pem: csr.pem().map_err(Error::CertificateGeneration)?,
        key_pem: Zeroizing::new(key.serialize_pem()),
    })
}

/// A self-signed client certificate with a new RSA-2048 key, for a service principal's
/// certificate credential (the `az ad sp create-for-rbac --create-cert` equivalent). The key is
/// PKCS#8 PEM (`PRIVATE KEY`), which azure-identity's `CertificateCredential` loads; callers
/// usually hand out `cert_pem` and `key_pem` concatenated in one file.
pub fn generate_self_signed_client_certificate(
    common_name: &str,
    now: domain::UnixTime,
    validity_days: u32,
) -> Result<SelfSignedCertificate> {
    if validity_days == 0 {
        return Err(Error::InvalidCertificateParams("validity must be positive".to_owned()));
    }
    let key = RsaSigningKey::generate_2048()?;
    let not_before = now.minus_secs(domain::limits::CLOCK_LEEWAY_SECS);
    let not_after = now.plus_secs(i64::from(validity_days) * 24 * 3600);
    let cert_der = self_signed_rsa_certificate_der(
        &key,
        common_name,
        not_before,
        not_after,
        &[ExtendedKeyUsagePurpose::ClientAuth],
    )?;
    let key_der = key.to_pkcs8_der()?;
    Ok(SelfSignedCertificate {
        cert_pem: pem_encode("CERTIFICATE", &cert_der),
        key_pem: Zeroizing::new(pem_encode("PRIVATE KEY", &key_der)),
    })
}

/// Reads a certificate given as PEM (`CERTIFICATE`) or DER.
pub fn certificate_info(cert_pem_or_der: &[u8]) -> Result<CertificateInfo> {
    let der = certificate_der(cert_pem_or_der)?;
    let cert = parse_certificate(&der)?;
    let first_cn = |name: &x509_parser::x509::X509Name<'_>| {
        name.iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned)
    };
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    let san = cert
        .subject_alternative_name()
        .map_err(|error| Error::InvalidCertificate(error.to_string()))?;
    for name in san.iter().flat_map(|san| san.value.general_names.iter()) {
        match name {
            GeneralName::DNSName(dns) => dns_names.push((*dns).to_owned()),
            GeneralName::IPAddress(bytes) => {
                if let Some(ip) = ip_from_bytes(bytes) {
                    ip_addresses.push(ip);
                }
            }
            _ => {}
        }
    }
    Ok(CertificateInfo {
        subject_cn: first_cn(cert.subject()),
        issuer_cn: first_cn(cert.issuer()),
        not_before: unix_time(cert.validity().not_before.timestamp()),
        not_after: unix_time(cert.validity().not_after.timestamp()),
        sha1_thumbprint_b64url: jws::x5t_sha1(&der),
        sha256_thumbprint_b64url: jws::x5t_sha256(&der),
        sha256_fingerprint_hex: hex(&hash::sha256(&der)),
        dns_names,
        ip_addresses,
        is_ca: cert.is_ca(),
    })
}

/// The DER of a certificate given as PEM (`CERTIFICATE`, the first one if several) or DER.
pub fn certificate_der(cert_pem_or_der: &[u8]) -> Result<Vec<u8>> {
    if cert_pem_or_der.trim_ascii_start().starts_with(b"-----BEGIN") {
        let text = std::str::from_utf8(cert_pem_or_der)
            .map_err(|_| Error::InvalidPem("not utf-8".to_owned()))?;
        pem_decode(text, &["CERTIFICATE"])
    } else {
        Ok(cert_pem_or_der.to_vec())
    }
}

/// A self-signed certificate (DER) for an RSA key held by this crate, signed RS256.
pub(crate) fn self_signed_rsa_certificate_der(
    key: &RsaSigningKey,
    common_name: &str,
    not_before: domain::UnixTime,
    not_after: domain::UnixTime,
    extended_key_usages: &[ExtendedKeyUsagePurpose],
) -> Result<Vec<u8>> {
    if not_after <= not_before {
        return Err(Error::InvalidCertificateParams("not_after must follow not_before".to_owned()));
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_dn(common_name)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = extended_key_usages.to_vec();
    params.serial_number = Some(random_serial());
    params.not_before = offset_date_time(not_before)?;
    params.not_after = offset_date_time(not_after)?;
    let cert =
        params.self_signed(&RsaCertificateSigner(key)).map_err(Error::CertificateGeneration)?;
    Ok(cert.der().to_vec())
}

/// Lets rcgen sign with an [`RsaSigningKey`] without a second parsed copy of the key.
struct RsaCertificateSigner<'a>(&'a RsaSigningKey);

impl PublicKeyData for RsaCertificateSigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0.public_key_pkcs1_der()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_RSA_SHA256
    }
}

impl SigningKey for RsaCertificateSigner<'_> {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.0.sign(Algorithm::RS256, message).map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// Parameters shared by every end-entity certificate the CA issues.
/// The CN may be empty only for server certificates whose first name is too long for a CN;
/// `issue_server_certificate` then clears it.
fn leaf_params(
    common_name: &str,
    now: domain::UnixTime,
    not_after: domain::UnixTime,
) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = if common_name.len() > COMMON_NAME_CHARS_MAX {
        DistinguishedName::new()
    } else {
        common_name_dn(common_name)?
    };
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, now, not_after)?;
    Ok(params)
}

/// Sets a random serial and the validity window, backdating `not_before` by the clock leeway.
fn set_validity(
    params: &mut CertificateParams,
    now: domain::UnixTime,
    not_after: domain::UnixTime,
) -> Result<()> {
    params.serial_number = Some(random_serial());
    params.not_before = offset_date_time(now.minus_secs(domain::limits::CLOCK_LEEWAY_SECS))?;
    params.not_after = offset_date_time(not_after)?;
    Ok(())
}

fn common_name_dn(common_name: &str) -> Result<DistinguishedName> {
    if common_name.is_empty() || common_name.len() > COMMON_NAME_CHARS_MAX {
        return Err(Error::InvalidCertificateParams(
            "common name must have 1 to 64 characters".to_owned(),
        ));
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    Ok(dn)
}

fn dns_name(name: &str) -> Result<rcgen::string::Ia5String> {
    let labels_ok = name.split('.').all(|label| !label.is_empty() && label.len() <= 63);
    let wildcard_ok = name.rfind('*').is_none_or(|at| at == 0 && name.starts_with("*."));
    if name.len() > 253 || !labels_ok || !wildcard_ok {
        return Err(Error::InvalidCertificateParams(format!("invalid dns name {name:?}")));
    }
    rcgen::string::Ia5String::try_from(name)
        .map_err(|_| Error::InvalidCertificateParams(format!("invalid dns name {name:?}")))
}

fn random_serial() -> SerialNumber {
    let mut serial = random::random_array::<16>();
    // A positive INTEGER of exactly 16 bytes: top bit clear, so no sign padding is needed.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&serial)
}

fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|error| Error::InvalidCertificate(error.to_string()))?;
    if !rest.is_empty() {
        return Err(Error::InvalidCertificate("trailing data after certificate".to_owned()));
    }
    Ok(cert)
}

/// The contents of the first PEM block in `text`, whose label must be one of `labels`.
fn pem_decode(text: &str, labels: &[&str]) -> Result<Vec<u8>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(text.as_bytes())
        .map_err(|_| Error::InvalidPem("no well-formed pem block".to_owned()))?;
    if !labels.contains(&pem.label.as_str()) {
        return Err(Error::InvalidPem(format!("expected {}, found {}", labels[0], pem.label)));
    }
    Ok(pem.contents)
}

/// PEM with 64-character lines (RFC 7468). Buffers are sized up front so that, for private
/// keys, no reallocation leaves a copy behind; the caller wraps the result in `Zeroizing`.
fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64_len = base64::encoded_len(der.len(), true).expect("a pem body fits in memory");
    let mut b64 = Zeroizing::new(String::with_capacity(b64_len));
    STANDARD.encode_string(der, &mut b64);
    let mut pem = String::with_capacity(b64_len + b64_len / 64 + 2 * label.len() + 40);
    pem.push_str("-----BEGIN ");
    pem.push_str(label);
    pem.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
        pem.push('\n');
    }
    pem.push_str("-----END ");
    pem.push_str(label);
    pem.push_str("-----\n");
    pem
}

fn offset_date_time(time: domain::UnixTime) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(time.secs())
        .map_err(|_| Error::InvalidCertificateParams("time out of range".to_owned()))
}

fn unix_time(secs: i64) -> domain::UnixTime {
    domain::UnixTime::from_secs(secs)
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
