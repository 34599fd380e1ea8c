//! Tests of the token inspector's engine: signatures made with a fresh RSA key and checked
//! against a JWKS built from it, and the issuer, audience and lifetime checks.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use expect_test::{Expect, expect};
use serde_json::{Value, json};

use crate::jwt::{Expectations, Signature, checks, decode, verify};

const NOW: i64 = 1_700_000_000;

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn key() -> RsaKeyPair {
    RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap()
}

fn sign(key: &RsaKeyPair, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", encode(header), encode(claims));
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut signature).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn jwks(key: &RsaKeyPair, kid: &str) -> Value {
    let components: RsaPublicKeyComponents<Vec<u8>> = key.public_key().into();
    json!({"keys": [{
        "kty": "RSA", "kid": kid, "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(&components.n),
        "e": URL_SAFE_NO_PAD.encode(&components.e),
    }]})
}

fn claims() -> Value {
    json!({
        "iss": "https://localhost:8443/t/v2.0",
        "aud": "https://management.azure.com/",
        "oid": "o", "nbf": NOW - 60, "iat": NOW - 60, "exp": NOW + 3540,
    })
}

#[test]
fn a_token_signed_by_a_published_key_verifies() {
    let key = key();
    let token = sign(&key, &json!({"alg": "RS256", "kid": "k1", "typ": "JWT"}), &claims());
    let decoded = decode(&format!("Bearer {token}\n")).unwrap();
    assert_eq!(verify(&decoded, &jwks(&key, "k1")), Signature::Valid { kid: "k1".into() });
    assert_eq!(verify(&decoded, &jwks(&key, "k2")), Signature::UnknownKey("k1".into()));
    assert_eq!(
        verify(&decoded, &jwks(&self::key(), "k1")),
        Signature::Invalid { kid: "k1".into() }
    );
}

#[test]
fn an_altered_token_or_another_algorithm_is_not_trusted() {
    let key = key();
    let token = sign(&key, &json!({"alg": "RS256", "kid": "k1"}), &claims());
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut altered = claims();
    altered["oid"] = json!("someone-else");
    parts[1] = encode(&altered);
    let decoded = decode(&parts.join(".")).unwrap();
    assert_eq!(verify(&decoded, &jwks(&key, "k1")), Signature::Invalid { kid: "k1".into() });
    let none = format!("{}.{}.", encode(&json!({"alg": "none"})), encode(&claims()));
    assert_eq!(
        verify(&decode(&none).unwrap(), &jwks(&key, "k1")),
        Signature::UnsupportedAlgorithm("none".into())
    );
}

#[test]
fn text_that_is_not_a_jwt_says_why() {
    let errors: Vec<String> = ["", "a.b", "a.b.c.d", "!!.e30.", "e30.bm90IGpzb24.", "W10.e30."]
        .iter()
        .map(|text| decode(text).err().unwrap())
        .collect();
    expect![[r#"
        [
            "a JWT has three parts separated by dots; this text has 1",
            "a JWT has three parts separated by dots; this text has 2",
            "a JWT has three parts separated by dots; this text has 4",
            "the header is not base64url",
            "the payload is not JSON",
            "the header and the payload must be JSON objects",
        ]
    "#]]
    .assert_debug_eq(&errors);
}

#[track_caller]
fn check(claims: Value, expect: Expect) {
    let token = format!("{}.{}.", encode(&json!({"alg": "RS256"})), encode(&claims));
    let issuers =
        vec!["https://localhost:8443/t/v2.0".to_owned(), "https://localhost:8443/t/".to_owned()];
    let audiences = vec![
        ("https://management.azure.com/".to_owned(), "the control plane"),
        ("https://vault.azure.net".to_owned(), "Key Vault"),
    ];
    let result = checks(
        &decode(&token).unwrap(),
        &Expectations { issuers: &issuers, audiences: &audiences, now: NOW, leeway: 300 },
    );
    let lines: Vec<String> = result
        .iter()
        .map(|check| {
            format!(
                "{} {}: {}",
                if check.passed { "pass" } else { "FAIL" },
                check.name,
                check.detail
            )
        })
        .collect();
    expect.assert_eq(&lines.join("\n"));
}

#[test]
fn a_current_token_for_this_deployment_passes() {
    check(
        claims(),
        expect![[r#"
            pass Issuer: https://localhost:8443/t/v2.0 is this tenant's issuer
            pass Audience: https://management.azure.com/ is accepted by the control plane
            pass Expiry: valid for 59 min more (2023-11-14 23:12:20 UTC)
            pass Not before: valid since 2023-11-14 22:12:20 UTC"#]],
    );
}

#[test]
fn foreign_expired_and_early_tokens_fail_with_reasons() {
    check(
        json!({"iss": "https://sts.windows.net/x/", "aud": ["api://app", "https://vault.azure.net/"], "exp": NOW - 301, "nbf": NOW + 400}),
        expect![[r#"
            FAIL Issuer: https://sts.windows.net/x/ is not an issuer of this tenant
            pass Audience: api://app, https://vault.azure.net/ is accepted by Key Vault
            FAIL Expiry: expired 5 min ago (2023-11-14 22:08:19 UTC)
            FAIL Not before: not valid until 2023-11-14 22:20:00 UTC"#]],
    );
    check(
        json!({"aud": "api://app"}),
        expect![[r#"
            FAIL Issuer: the token has no iss claim
            FAIL Audience: api://app is not an audience this server accepts (it may be an application's own API)
            FAIL Expiry: the token has no exp claim"#]],
    );
}
