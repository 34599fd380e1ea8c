//! Service Fabric's managed-identity endpoint: HTTPS whose server certificate is trusted by its
//! SHA-1 thumbprint, not by a CA (02-hosted-endpoints.md §5).
//!
//! Service Fabric gives an application `IDENTITY_ENDPOINT` (an `https` URL), `IDENTITY_HEADER`
//! (sent as the `Secret` header) and `IDENTITY_SERVER_THUMBPRINT`, the SHA-1 thumbprint of the
//! endpoint's certificate, which is usually self-signed. MSAL Python (which azure-identity 1.27
//! uses for Service Fabric) pins that thumbprint: it skips CA and host-name validation and
//! refuses the connection unless SHA-1 of the leaf certificate's DER equals the variable. This
//! module does the same with a rustls [`ServerCertVerifier`] that accepts exactly that
//! certificate and still verifies the handshake signature, so the server must hold the
//! certificate's private key. The secret header is sent only after the handshake succeeded.
//!
//! (azure-identity's async credential sends the request with certificate validation turned off
//! and no pinning at all; that is not copied.)

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, digest};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use serde::Deserialize;

use crate::response::parse_error_response;
use crate::{Error, Result};

/// The SHA-1 thumbprint a Service Fabric endpoint's certificate must have.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Thumbprint([u8; 20]);

impl Thumbprint {
    /// Parses `IDENTITY_SERVER_THUMBPRINT` as MSAL Python does: spaces, tabs, line breaks and
    /// colons are ignored, and what remains must be 40 hexadecimal digits of either case.
    pub(crate) fn parse(text: &str) -> Result<Thumbprint> {
        let digits: Vec<u8> = text
            .bytes()
            .filter(|byte| !matches!(byte, b' ' | b'\t' | b'\r' | b'\n' | b':'))
            .collect();
        let invalid = || {
            Error::InvalidConfig(
                "IDENTITY_SERVER_THUMBPRINT must be a SHA-1 certificate thumbprint (40 hexadecimal digits)"
                    .to_owned(),
            )
        };
        if digits.len() != 40 {
            return Err(invalid());
        }
        let mut bytes = [0_u8; 20];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let high = hex_value(pair[0]).ok_or_else(invalid)?;
            let low = hex_value(pair[1]).ok_or_else(invalid)?;
            *byte = high << 4 | low;
        }
        Ok(Thumbprint(bytes))
    }

    /// The thumbprint of a certificate given as DER.
    pub(crate) fn of_certificate(der: &[u8]) -> Thumbprint {
        let mut bytes = [0_u8; 20];
        bytes.copy_from_slice(digest(&SHA1_FOR_LEGACY_USE_ONLY, der).as_ref());
        Thumbprint(bytes)
    }
}

impl fmt::Debug for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// An HTTP client whose only trusted server certificate is the one with `thumbprint`: no CA, no
/// host-name or validity-period check (Service Fabric's certificates are self-signed and named
/// after the cluster), but the handshake signature is verified with the certificate's key.
/// No proxy and no redirects, like every managed-identity client.
pub(crate) fn pinned_http_client(
    thumbprint: Thumbprint,
    timeout: Duration,
    connect_timeout: Duration,
) -> Result<reqwest::Client> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = PinnedCertificate { thumbprint, provider: provider.clone() };
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::InvalidConfig(format!("configure tls: {error}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .connect_timeout(connect_timeout.min(timeout))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|error| Error::InvalidConfig(format!("build http client: {error}")))
}

/// A refusal from Service Fabric, `{"error": {"code": ..., "message": ...}}`, mapped to OAuth
/// error codes as MSAL Python maps them; any other body is read as an OAuth error body.
pub(crate) fn error_from_response(status: u16, body: &[u8]) -> Error {
    let Ok(ErrorResponseWire { error: Some(ErrorWire { code, message }) }) =
        serde_json::from_slice::<ErrorResponseWire>(body)
    else {
        return parse_error_response(status, body);
    };
    let code = code.unwrap_or_default();
    let error = match code.as_str() {
        "SecretHeaderNotFound" => "unauthorized_client",
        "ManagedIdentityNotFound" => "invalid_client",
        "ArgumentNullOrEmpty" => "invalid_scope",
        _ => "invalid_request",
    };
    Error::Authentication {
        status: Some(status),
        error: error.to_owned(),
        description: format!("{code}: {}", message.unwrap_or_default()),
    }
}

#[derive(Deserialize)]
struct ErrorResponseWire {
    error: Option<ErrorWire>,
}

#[derive(Deserialize)]
struct ErrorWire {
    code: Option<String>,
    message: Option<String>,
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Trusts exactly the server certificate with `thumbprint`.
#[derive(Debug)]
struct PinnedCertificate {
    thumbprint: Thumbprint,
    provider: Arc<CryptoProvider>,
}

/// Why the handshake was refused, carried to the caller inside the TLS error (whose message
/// shows it with `Debug`, hence the same text for both).
struct ThumbprintMismatch {
    actual: Thumbprint,
}

impl fmt::Debug for ThumbprintMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ThumbprintMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the Service Fabric endpoint's certificate has thumbprint {:?}, not the one in IDENTITY_SERVER_THUMBPRINT",
            self.actual
        )
    }
}

impl std::error::Error for ThumbprintMismatch {}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let actual = Thumbprint::of_certificate(end_entity.as_ref());
        match verify_slices_are_equal(&actual.0, &self.thumbprint.0) {
            Ok(()) => Ok(ServerCertVerified::assertion()),
            Err(_) => Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(ThumbprintMismatch { actual })),
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::Error;
    use crate::managed_identity::service_fabric::{Thumbprint, error_from_response};

    #[test]
    fn thumbprints_parse_as_msal_python_normalizes_them() {
        let expected = "0123456789abcdef0123456789abcdef01234567";
        for text in [
            "0123456789abcdef0123456789abcdef01234567",
            "0123456789ABCDEF0123456789ABCDEF01234567",
            "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:ab:cd:ef:01:23:45:67",
            " 01 23 45 67 89 ab cd ef 01 23\t45 67 89 ab cd ef 01 23 45 67\r\n",
        ] {
            assert_eq!(format!("{:?}", Thumbprint::parse(text).unwrap()), expected, "{text:?}");
        }
        for text in [
            "",
            "0123456789abcdef0123456789abcdef0123456",
            "0123456789abcdef0123456789abcdef012345678",
            "0123456789abcdef0123456789abcdef0123456g",
            "0123456789abcdef-0123456789abcdef0123456",
            // A SHA-256 thumbprint is not accepted in its place.
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(matches!(Thumbprint::parse(text), Err(Error::InvalidConfig(_))), "{text:?}");
        }
    }

    #[test]
    fn thumbprint_of_a_certificate_is_sha1_of_its_der() {
        // SHA-1("abc"), FIPS 180-2 appendix A.1.
        assert_eq!(
            format!("{:?}", Thumbprint::of_certificate(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    #[test]
    fn service_fabric_errors_map_to_oauth_codes() {
        let check = |body: &str, error: &str, description: &str| {
            assert_eq!(
                error_from_response(401, body.as_bytes()),
                Error::Authentication {
                    status: Some(401),
                    error: error.to_owned(),
                    description: description.to_owned(),
                },
                "{body}"
            );
        };
        check(
            r#"{"error":{"code":"SecretHeaderNotFound","message":"Secret is not found in the request headers."}}"#,
            "unauthorized_client",
            "SecretHeaderNotFound: Secret is not found in the request headers.",
        );
        check(
            r#"{"error":{"code":"ManagedIdentityNotFound","message":"Managed Identity not found."}}"#,
            "invalid_client",
            "ManagedIdentityNotFound: Managed Identity not found.",
        );
        check(
            r#"{"error":{"code":"ArgumentNullOrEmpty","message":"Value cannot be null or empty."}}"#,
            "invalid_scope",
            "ArgumentNullOrEmpty: Value cannot be null or empty.",
        );
        check(r#"{"error":{"code":"Other","message":"m"}}"#, "invalid_request", "Other: m");
        // An OAuth body is read as one.
        check(r#"{"error":"invalid_request","error_description":"d"}"#, "invalid_request", "d");
        assert!(matches!(error_from_response(500, b"<html>"), Error::Http(_)));
    }
}
