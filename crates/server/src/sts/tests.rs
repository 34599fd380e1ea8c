//! Property tests of the token endpoint's client assertions (issue 17): arbitrary and mutated
//! assertions, for a service principal with a certificate (`check_assertion`) and for a
//! user-assigned identity with a federated credential (`federation::check`), never panic and
//! are always refused in Entra's OAuth error shape, never answered with a token.
//!
//! Method: one in-process server per test (`testing::Harness`), requests handed to the real
//! router; each test first shows that the unmutated assertion does get a token, so the
//! refusals are the mutations' doing.

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::sts::CLIENT_ASSERTION_TYPE;
use crate::testing::{Harness, json_value, run_cases, runtime};

/// Claim names the assertion checks read, so random claims often carry them.
const CLAIM_NAMES: &[&str] = &["iss", "sub", "aud", "exp", "nbf", "jti", "iat"];

/// Cases per property: enough to reach every refusal, few enough to stay under a few seconds.
const CASES: u32 = 96;

/// A service principal with a registered certificate, and the means to sign as it.
struct CertificateClient {
    app_id: String,
    key: crypto::jws::RsaSigningKey,
    x5t: String,
    audience: String,
}

impl CertificateClient {
    async fn create(harness: &Harness) -> CertificateClient {
        let graph = harness
            .token(
                &harness.admin_app_id,
                &harness.admin_secret,
                "https://graph.microsoft.com/.default",
            )
            .await;
        let body = json!({"displayName": "assertion-prop"}).to_string();
        let (status, principal) = harness
            .send(&graph, Method::POST, "/v1.0/servicePrincipals", Some(body.as_bytes()))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{principal}");
        let id = principal["id"].as_str().unwrap();
        let (status, certificate) = harness
            .send(
                &graph,
                Method::POST,
                &format!("/v1.0/servicePrincipals/{id}/ambient.createCertificate"),
                Some(b"{}"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{certificate}");
        let cert_der = pem_contents(certificate["certificatePem"].as_str().unwrap());
        let key_der = pem_contents(certificate["privateKeyPem"].as_str().unwrap());
        CertificateClient {
            app_id: principal["appId"].as_str().unwrap().to_owned(),
            key: crypto::jws::RsaSigningKey::from_pkcs8_der(&key_der).unwrap(),
            x5t: crypto::jws::x5t_sha1(&cert_der),
            audience: format!(
                "{}/{}/oauth2/v2.0/token",
                harness.state().base_url,
                harness.tenant_id()
            ),
        }
    }

    /// An assertion with this client's certificate in the header and `claims`, signed.
    fn sign(&self, claims: &Value) -> String {
        let mut header = crypto::jws::JwsHeader::new(crypto::jws::Algorithm::RS256);
        header.x5t = Some(self.x5t.clone());
        crypto::jws::encode(&header, claims, &self.key).unwrap()
    }

    /// Claims that pass every check, with a fresh `jti`.
    fn valid_claims(&self, harness: &Harness) -> Value {
        let now = harness.state().clock.now().secs();
        json!({
            "iss": self.app_id, "sub": self.app_id, "aud": self.audience,
            "exp": now + 600, "nbf": now - 10, "jti": domain::Guid::new_random().to_string(),
        })
    }
}

/// The DER inside one PEM block.
fn pem_contents(pem: &str) -> Vec<u8> {
    let base64: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    STANDARD.decode(base64).unwrap()
}

async fn present(harness: &Harness, client_id: &str, assertion: &str) -> (StatusCode, Value) {
    harness
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_assertion", assertion),
            ("scope", "https://vault.azure.net/.default"),
        ])
        .await
}

/// A refusal in Entra's OAuth error shape: a 4xx with `error`, `error_description` and
/// `error_codes`, and no token.
fn assert_refused(status: StatusCode, body: &Value) -> Result<(), TestCaseError> {
    prop_assert!(status.is_client_error(), "status {status}: {body}");
    prop_assert!(body["error"].as_str().is_some_and(|error| !error.is_empty()), "{body}");
    prop_assert!(body["error_description"].as_str().is_some(), "{body}");
    let codes = body["error_codes"].as_array();
    prop_assert!(codes.is_some_and(|codes| !codes.is_empty() && codes.iter().all(Value::is_u64)));
    prop_assert!(body.get("access_token").is_none(), "{body}");
    Ok(())
}

/// `text` with the byte at `index` (modulo its length) replaced by `byte`, when they differ.
fn mutate(text: &str, index: usize, byte: u8) -> Option<String> {
    let mut bytes = text.as_bytes().to_vec();
    let index = index % bytes.len();
    if bytes[index] == byte {
        return None;
    }
    bytes[index] = byte;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn base64url_segments() -> impl Strategy<Value = String> {
    proptest::collection::vec("[A-Za-z0-9_-]{0,80}", 1..5).prop_map(|segments| segments.join("."))
}

#[test]
fn issue_17_certificate_assertions_arbitrary_or_mutated_are_refused_in_oauth_shape() {
    let runtime = runtime();
    let harness = runtime.block_on(Harness::start());
    let client = runtime.block_on(CertificateClient::create(&harness));
    // The unmutated assertion gets a token.
    let valid = client.sign(&client.valid_claims(&harness));
    let (status, body) = runtime.block_on(present(&harness, &client.app_id, &valid));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string());
    let unknown = domain::Guid::new_random().to_string();
    let client_ids = [client.app_id.clone(), unknown];
    let refused = |client_id: &str, assertion: &str| {
        let (status, body) = runtime.block_on(present(&harness, client_id, assertion));
        assert_refused(status, &body)
    };

    run_cases(
        CASES,
        (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..400)),
        |(known, bytes)| refused(&client_ids[usize::from(known)], &String::from_utf8_lossy(&bytes)),
    );
    run_cases(CASES, (any::<bool>(), base64url_segments()), |(known, assertion)| {
        refused(&client_ids[usize::from(known)], &assertion)
    });
    // A header naming the registered certificate, random claims, signed with its key: past
    // the signature, into the claim checks. Random claims are never all valid.
    run_cases(CASES, json_value(CLAIM_NAMES), |claims| {
        refused(&client.app_id, &client.sign(&claims))
    });
    // The same header and random claims, with a random signature.
    run_cases(CASES, (json_value(CLAIM_NAMES), "[A-Za-z0-9_-]{0,400}"), |(claims, signature)| {
        let signed = client.sign(&claims);
        let (unsigned, _) = signed.rsplit_once('.').unwrap();
        refused(&client.app_id, &format!("{unsigned}.{signature}"))
    });
    // A real, unused assertion with one byte changed.
    let unused = client.sign(&client.valid_claims(&harness));
    run_cases(CASES * 2, (any::<usize>(), any::<u8>()), |(index, byte)| {
        match mutate(&unused, index, byte) {
            Some(mutated) => refused(&client.app_id, &mutated),
            None => Ok(()),
        }
    });
    // The unmutated one still gets a token: the mutations were refused for themselves.
    let (status, body) = runtime.block_on(present(&harness, &client.app_id, &unused));
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[test]
fn issue_17_federated_assertions_arbitrary_or_mutated_are_refused_in_oauth_shape() {
    let runtime = runtime();
    let harness = runtime.block_on(Harness::start());
    // A user-assigned identity trusting Ambient's own tokens for the admin, audience
    // `api://AzureADTokenExchange`; the admin's token for that audience is the real assertion.
    let (admin_app_id, admin_secret) = (&harness.admin_app_id, &harness.admin_secret);
    let assertion = runtime.block_on(harness.token(
        admin_app_id,
        admin_secret,
        "api://AzureADTokenExchange/.default",
    ));
    let (_, payload, _) = {
        let mut parts = assertion.split('.');
        (parts.next(), parts.next().unwrap(), parts.next())
    };
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let management = runtime.block_on(harness.token(
        admin_app_id,
        admin_secret,
        "https://management.azure.com/.default",
    ));
    let group = format!("/subscriptions/{}/resourceGroups/prop", harness.subscription_id());
    let identity =
        format!("{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/fed");
    let put = |path: &str, body: Value| {
        let (status, body) = runtime.block_on(harness.arm(
            &management,
            Method::PUT,
            path,
            Some(body.to_string().as_bytes()),
        ));
        assert!(status.is_success(), "{status}: {body}");
        body
    };
    put(&group, json!({"location": "westus"}));
    let created = put(&identity, json!({"location": "westus"}));
    put(
        &format!("{identity}/federatedIdentityCredentials/self"),
        json!({"properties": {
            "issuer": claims["iss"], "subject": claims["sub"],
            "audiences": ["api://AzureADTokenExchange"],
        }}),
    );
    let client_id = created["properties"]["clientId"].as_str().unwrap().to_owned();
    let (status, body) = runtime.block_on(present(&harness, &client_id, &assertion));
    assert_eq!(status, StatusCode::OK, "{body}");
    let refused = |assertion: &str| {
        let (status, body) = runtime.block_on(present(&harness, &client_id, assertion));
        assert_refused(status, &body)
    };

    run_cases(CASES, proptest::collection::vec(any::<u8>(), 0..400), |bytes| {
        refused(&String::from_utf8_lossy(&bytes))
    });
    run_cases(CASES, base64url_segments(), |assertion| refused(&assertion));
    // A header like Ambient's, random claims, a random signature.
    let header = assertion.split('.').next().unwrap().to_owned();
    run_cases(CASES, (json_value(CLAIM_NAMES), "[A-Za-z0-9_-]{0,400}"), |(claims, signature)| {
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        refused(&format!("{header}.{payload}.{signature}"))
    });
    // The real claims (so the federated credential matches) with a random signature.
    run_cases(CASES, "[A-Za-z0-9_-]{0,400}", |signature| {
        refused(&format!("{header}.{payload}.{signature}"))
    });
    run_cases(CASES * 2, (any::<usize>(), any::<u8>()), |(index, byte)| {
        match mutate(&assertion, index, byte) {
            Some(mutated) => refused(&mutated),
            None => Ok(()),
        }
    });
}

#[test]
fn issue_17_a_wrong_secret_costs_the_same_for_an_unknown_client_as_for_a_known_one() {
    // Goal: `check_secret` does the same work (one HMAC of the presented secret) whether the
    // client id is unknown or a known client with one secret, so the time a wrong secret takes
    // does not tell whether the client exists. Method: batches of attempts of both kinds,
    // interleaved (the order swapped each round) so machine noise hits both alike, with a
    // 4 KiB wrong secret so the HMAC outweighs the rest of the function; the medians of the
    // batch times must be within 1.5x of each other. Without the dummy work for unknown
    // clients the unknown batches are several times faster.
    const ROUNDS: usize = 301;
    const ATTEMPTS_PER_BATCH: usize = 40;
    let runtime = runtime();
    let harness = runtime.block_on(Harness::start());
    let state = harness.state();
    let known = runtime.block_on(state.directory.client(&harness.admin_app_id)).unwrap();
    let known = known.as_deref();
    assert_eq!(known.map(|entry| entry.secrets.len()), Some(1));
    let unknown_id = domain::Guid::new_random().to_string();
    let unknown = runtime.block_on(state.directory.client(&unknown_id)).unwrap();
    assert!(unknown.is_none());
    let wrong_secret = "w".repeat(4096);
    let now = state.clock.now();
    let batch = |entry: Option<&crate::directory::ClientEntry>, client_id: &str| {
        let started = std::time::Instant::now();
        for _ in 0..ATTEMPTS_PER_BATCH {
            let refused = super::check_secret(state, entry, client_id, &wrong_secret, now);
            assert_eq!(std::hint::black_box(refused).unwrap_err().code, 7000215);
        }
        started.elapsed()
    };
    let (mut known_times, mut unknown_times) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            known_times.push(batch(known, &harness.admin_app_id));
            unknown_times.push(batch(None, &unknown_id));
        } else {
            unknown_times.push(batch(None, &unknown_id));
            known_times.push(batch(known, &harness.admin_app_id));
        }
    }
    let median = |times: &mut Vec<std::time::Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (known_median, unknown_median) = (median(&mut known_times), median(&mut unknown_times));
    let (larger, smaller) = if known_median > unknown_median {
        (known_median, unknown_median)
    } else {
        (unknown_median, known_median)
    };
    assert!(
        larger.as_secs_f64() < 1.5 * smaller.as_secs_f64(),
        "median batch: known client {known_median:?}, unknown client {unknown_median:?}"
    );
}
