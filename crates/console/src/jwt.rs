//! The token inspector's engine: decodes a compact JWS and checks it against this deployment's
//! public data (its discovery documents and JWKS), as any relying party could.
//!
//! Signature checks accept RS256 only, the one algorithm the token service signs with; any other
//! `alg` (`none` included) is reported, never trusted. The key is found by `kid` in the JWKS.

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// Longest token accepted for inspection.
pub const TOKEN_CHARS_MAX: usize = 16 * 1024;

/// A token split into its parts, not yet trusted.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub header: Value,
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

/// What the signature check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// Signed by the published key `kid`.
    Valid { kid: String },
    /// The header's `alg` is not RS256.
    UnsupportedAlgorithm(String),
    /// No published key has this `kid` (rotated out long ago, or another issuer's token).
    UnknownKey(String),
    /// The key was found and the signature does not verify.
    Invalid { kid: String },
}

/// One line of the inspector's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// What this deployment accepts, for [`checks`].
pub struct Expectations<'a> {
    /// Issuers of this tenant (v1 and v2).
    pub issuers: &'a [String],
    /// Audiences some surface of this server accepts, each with the surface's name.
    pub audiences: &'a [(String, &'static str)],
    /// Unix seconds.
    pub now: i64,
    /// Allowed clock skew in seconds.
    pub leeway: i64,
}

/// Splits and decodes `token` (surrounding whitespace and a `Bearer ` prefix are ignored).
pub fn decode(token: &str) -> Result<Decoded, String> {
    let token = token.trim();
    let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
    if token.len() > TOKEN_CHARS_MAX {
        return Err(format!("the token is longer than {TOKEN_CHARS_MAX} characters"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err(format!(
            "a JWT has three parts separated by dots; this text has {}",
            parts.len()
        ));
    };
    let part = |name: &str, text: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| format!("the {name} is not base64url"))?;
        serde_json::from_slice(&bytes).map_err(|_| format!("the {name} is not JSON"))
    };
    let header_json = part("header", header)?;
    let claims_json = part("payload", claims)?;
    if !header_json.is_object() || !claims_json.is_object() {
        return Err("the header and the payload must be JSON objects".to_owned());
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature.trim_end_matches('='))
        .map_err(|_| "the signature is not base64url".to_owned())?;
    Ok(Decoded {
        header: header_json,
        claims: claims_json,
        signing_input: format!("{header}.{claims}"),
        signature,
    })
}

/// Checks the signature against the keys of `jwks` (`{"keys": [...]}`).
pub fn verify(token: &Decoded, jwks: &Value) -> Signature {
    let alg = token.header["alg"].as_str().unwrap_or_default();
    if alg != "RS256" {
        return Signature::UnsupportedAlgorithm(alg.to_owned());
    }
    let kid = token.header["kid"].as_str().unwrap_or_default().to_owned();
    let key = jwks["keys"].as_array().and_then(|keys| {
        keys.iter().find(|key| key["kid"].as_str() == Some(kid.as_str()) && key["kty"] == "RSA")
    });
    let Some(key) = key else { return Signature::UnknownKey(kid) };
    let component = |name: &str| {
        key[name].as_str().and_then(|text| URL_SAFE_NO_PAD.decode(text).ok()).map(|bytes| {
            let start = bytes.iter().position(|byte| *byte != 0).unwrap_or(bytes.len());
            bytes[start..].to_vec()
        })
    };
    let (Some(n), Some(e)) = (component("n"), component("e")) else {
        return Signature::Invalid { kid };
    };
    let public_key = RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() };
    match public_key.verify(
        &RSA_PKCS1_2048_8192_SHA256,
        token.signing_input.as_bytes(),
        &token.signature,
    ) {
        Ok(()) => Signature::Valid { kid },
        Err(_) => Signature::Invalid { kid },
    }
}

/// Issuer, audience and lifetime checks, in the order a relying party makes them.
pub fn checks(token: &Decoded, expect: &Expectations<'_>) -> Vec<Check> {
    let claims = &token.claims;
    let mut out = Vec::new();
    let issuer = claims["iss"].as_str().unwrap_or_default();
    out.push(Check {
        name: "Issuer",
        passed: expect.issuers.iter().any(|known| known == issuer),
        detail: if issuer.is_empty() {
            "the token has no iss claim".to_owned()
        } else if expect.issuers.iter().any(|known| known == issuer) {
            format!("{issuer} is this tenant's issuer")
        } else {
            format!("{issuer} is not an issuer of this tenant")
        },
    });
    let audiences: Vec<&str> = match &claims["aud"] {
        Value::String(aud) => vec![aud.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let accepted: Vec<&str> = audiences
        .iter()
        .filter_map(|aud| {
            expect
                .audiences
                .iter()
                // As the server compares: exactly, each audience with or without one trailing
                // slash (`https://x//` is neither).
                .find(|(known, _)| {
                    known.strip_suffix('/').unwrap_or(known) == aud.strip_suffix('/').unwrap_or(aud)
                })
                .map(|(_, surface)| *surface)
        })
        .collect();
    out.push(Check {
        name: "Audience",
        passed: !accepted.is_empty(),
        detail: match (audiences.is_empty(), accepted.first()) {
            (true, _) => "the token has no aud claim".to_owned(),
            (false, Some(surface)) => format!("{} is accepted by {surface}", audiences.join(", ")),
            (false, None) => format!(
                "{} is not an audience this server accepts (it may be an application's own API)",
                audiences.join(", ")
            ),
        },
    });
    let number = |name: &str| claims[name].as_i64();
    out.push(match number("exp") {
        None => {
            Check { name: "Expiry", passed: false, detail: "the token has no exp claim".to_owned() }
        }
        Some(exp) if exp + expect.leeway <= expect.now => Check {
            name: "Expiry",
            passed: false,
            detail: format!(
                "expired {} ago ({})",
                duration(expect.now - exp),
                crate::html::time_text(exp)
            ),
        },
        Some(exp) => Check {
            name: "Expiry",
            passed: true,
            detail: format!(
                "valid for {} more ({})",
                duration(exp - expect.now),
                crate::html::time_text(exp)
            ),
        },
    });
    if let Some(nbf) = number("nbf") {
        out.push(Check {
            name: "Not before",
            passed: nbf - expect.leeway <= expect.now,
            detail: if nbf - expect.leeway <= expect.now {
                format!("valid since {}", crate::html::time_text(nbf))
            } else {
                format!("not valid until {}", crate::html::time_text(nbf))
            },
        });
    }
    out
}

/// `1 h 5 min`, `42 s`: a short span for people.
pub fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// The claims of a token the console received itself from the token endpoint over TLS, read
/// without a signature check (it came straight from the server).
pub fn claims_unverified(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

#[cfg(test)]
mod tests;
