//! Tests of [`ClientCertificateCredential`]: the fake Entra endpoint verifies each assertion's
//! RS256 signature with the certified public key, its thumbprint, audience, issuer, subject and
//! time window; the tests then check the exact header and claims.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::clock::FakeClock;
use crate::testing::{FakeEntra, PKI, jwt_json, thumbprint};
use crate::{
    ClientCertificateCredential, ClientCertificateCredentialOptions, Error, TokenCredential,
    TokenRequestOptions,
};

const TENANT: &str = "contoso.onmicrosoft.com";
const CLIENT_ID: &str = "3f9c2a1e-0000-4000-8000-000000000002";
const VAULT: &str = "https://vault.azure.net/.default";
const START: i64 = FakeClock::START_UNIX_SECS;

fn certificate_and_key_pem() -> String {
    format!("{}{}", PKI.client.cert_pem, PKI.client.key_pem)
}

async fn setup(
    pem: &str,
    send_certificate_chain: bool,
) -> (FakeEntra, ClientCertificateCredential, Arc<FakeClock>) {
    let clock = FakeClock::new();
    let fake = FakeEntra::start(clock.clone()).await;
    fake.register_certificate(CLIENT_ID, &PKI.client.public_key, &thumbprint(&PKI.client.cert_der));
    let options = ClientCertificateCredentialOptions {
        client_options: PKI.client_options(&fake.authority),
        send_certificate_chain,
    };
    let credential = ClientCertificateCredential::with_clock(
        TENANT,
        CLIENT_ID,
        pem.as_bytes(),
        &options,
        clock.clone(),
    )
    .unwrap();
    (fake, credential, clock)
}

fn new_credential(pem: &[u8]) -> Result<ClientCertificateCredential, Error> {
    ClientCertificateCredential::new(
        TENANT,
        CLIENT_ID,
        pem,
        ClientCertificateCredentialOptions::default(),
    )
}

#[tokio::test]
async fn assertion_verifies_and_carries_the_expected_claims() {
    let (fake, credential, _clock) = setup(&certificate_and_key_pem(), false).await;

    let token = credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap();

    assert_eq!(token.token.expose(), "fake-token-1");
    let request = &fake.requests()[0];
    assert_eq!(request.form["client_id"], CLIENT_ID);
    assert_eq!(request.form["grant_type"], "client_credentials");
    assert_eq!(request.form["scope"], VAULT);
    assert_eq!(
        request.form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert!(!request.form.contains_key("client_secret"));

    let segments: Vec<&str> = request.form["client_assertion"].split('.').collect();
    assert_eq!(segments.len(), 3);
    assert_eq!(
        jwt_json(segments[0]),
        json!({"alg": "RS256", "typ": "JWT", "x5t": thumbprint(&PKI.client.cert_der)})
    );
    let mut claims = jwt_json(segments[1]);
    let jti = claims["jti"].take();
    assert_eq!(
        claims,
        json!({
            "aud": format!("{}/{TENANT}/oauth2/v2.0/token", fake.authority),
            "iss": CLIENT_ID,
            "sub": CLIENT_ID,
            "jti": null,
            "iat": START,
            "nbf": START,
            "exp": START + 600,
        })
    );
    assert_eq!(jti.as_str().map(str::len), Some(36), "{jti}");
}

#[tokio::test]
async fn each_request_gets_a_fresh_assertion() {
    let (fake, credential, clock) = setup(&certificate_and_key_pem(), false).await;
    credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap();
    clock.advance_secs(3_600);
    credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap();

    let requests = fake.requests();
    let claims: Vec<_> = requests
        .iter()
        .map(|r| jwt_json(r.form["client_assertion"].split('.').nth(1).unwrap()))
        .collect();
    assert_ne!(claims[0]["jti"], claims[1]["jti"]);
    assert_eq!(claims[1]["iat"], START + 3_600);
}

#[tokio::test]
async fn certificate_chain_is_sent_when_asked() {
    // The CA certificate first, then the key, then the leaf: the leaf is found by its key.
    let pem = format!("{}{}{}", PKI.ca_pem, PKI.client.key_pem, PKI.client.cert_pem);
    let (fake, credential, _clock) = setup(&pem, true).await;

    credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap();

    let header = jwt_json(fake.requests()[0].form["client_assertion"].split('.').next().unwrap());
    assert_eq!(header["x5t"], thumbprint(&PKI.client.cert_der));
    assert_eq!(
        header["x5c"],
        json!([STANDARD.encode(&PKI.client.cert_der), STANDARD.encode(&PKI.ca_der)])
    );
}

#[tokio::test]
async fn pkcs1_rsa_private_key_is_accepted() {
    let pkcs1 = pkcs8_to_pkcs1(&PKI.client.key_pkcs8_der);
    let pem = format!("{}{}", PKI.client.cert_pem, pem_block("RSA PRIVATE KEY", &pkcs1));
    let (fake, credential, _clock) = setup(&pem, false).await;
    credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap();
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn assertion_that_does_not_verify_is_refused() {
    // Goal: the fake really checks the signature. Method: register the application's thumbprint
    // with another RSA public key, so only the signature check can fail.
    let (fake, credential, _clock) = setup(&certificate_and_key_pem(), false).await;
    let other_key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    fake.register_certificate(
        CLIENT_ID,
        aws_lc_rs::signature::KeyPair::public_key(&other_key).as_ref(),
        &thumbprint(&PKI.client.cert_der),
    );

    let error = credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap_err();

    assert!(
        matches!(&error, Error::Authentication { status: Some(401), error, description }
            if error == "invalid_client" && description.starts_with("AADSTS700027: Client assertion contains an invalid signature")),
        "{error:?}"
    );
}

#[test]
fn pem_without_key_or_certificate_or_with_a_mismatch_is_refused() {
    let cases = [
        (PKI.client.cert_pem.clone(), "no PRIVATE KEY"),
        (PKI.client.key_pem.clone(), "no CERTIFICATE"),
        (format!("{}{}", PKI.ca_pem, PKI.client.key_pem), "matches its private key"),
        (
            format!("{}{}{}", PKI.client.cert_pem, PKI.client.key_pem, PKI.client.key_pem),
            "more than one private key",
        ),
        (format!("{}{}", PKI.client.cert_pem, pem_block("EC PRIVATE KEY", b"x")), "only RSA"),
        ("not a pem".to_owned(), "no PRIVATE KEY"),
        (
            format!("{}{}", PKI.client.cert_pem, pem_block("ENCRYPTED PRIVATE KEY", b"x")),
            "encrypted private key",
        ),
    ];
    for (pem, fragment) in cases {
        let error = new_credential(pem.as_bytes()).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidConfig(message) if message.contains(fragment)),
            "{fragment}: {error:?}"
        );
    }
}

#[test]
fn debug_output_holds_no_key_material() {
    let credential = new_credential(certificate_and_key_pem().as_bytes()).unwrap();
    let debug = format!("{credential:?}");
    assert!(debug.contains(&thumbprint(&PKI.client.cert_der)), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");
    let key_body: String = PKI.client.key_pem.lines().nth(1).unwrap().chars().take(20).collect();
    assert!(!debug.contains(&key_body), "{debug}");
}

/// Extracts the PKCS#1 `RSAPrivateKey` from a PKCS#8 `PrivateKeyInfo`:
/// SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING privateKey }.
fn pkcs8_to_pkcs1(pkcs8: &[u8]) -> Vec<u8> {
    let (tag, info, _) = der_element(pkcs8);
    assert_eq!(tag, 0x30);
    let (_, _, rest) = der_element(info); // version
    let (_, _, rest) = der_element(rest); // algorithm
    let (tag, private_key, _) = der_element(rest);
    assert_eq!(tag, 0x04);
    private_key.to_vec()
}

/// One DER element: its tag, its contents and what follows it.
fn der_element(input: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = input[0];
    let (length, header) = match input[1] {
        short @ 0..0x80 => (usize::from(short), 2),
        long => {
            let count = usize::from(long & 0x7f);
            let length = input[2..2 + count].iter().fold(0, |acc, b| acc << 8 | usize::from(*b));
            (length, 2 + count)
        }
    };
    (tag, &input[header..header + length], &input[header + length..])
}

fn pem_block(label: &str, der: &[u8]) -> String {
    let base64 = STANDARD.encode(der);
    let lines: Vec<&str> =
        base64.as_bytes().chunks(64).map(|chunk| std::str::from_utf8(chunk).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

#[tokio::test]
async fn a_caller_can_take_the_assertion_and_send_the_request_itself() {
    // Goal: `client_assertion` signs the same assertion `get_token` would send, for the
    // credential's own token endpoint, fresh on each call. Method: decode two assertions.
    let (fake, credential, _clock) = setup(&certificate_and_key_pem(), false).await;
    let first = credential.client_assertion().unwrap();
    let second = credential.client_assertion().unwrap();
    let claims =
        |assertion: &crate::Secret| jwt_json(assertion.expose().split('.').nth(1).unwrap());
    let (first, second) = (claims(&first), claims(&second));
    assert_eq!(first["aud"], json!(format!("{}/{TENANT}/oauth2/v2.0/token", fake.authority)));
    assert_eq!(first["iss"], json!(CLIENT_ID));
    assert_eq!(first["sub"], json!(CLIENT_ID));
    assert_eq!(first["exp"].as_i64().unwrap() - first["iat"].as_i64().unwrap(), 600);
    assert_ne!(first["jti"], second["jti"]);
}
