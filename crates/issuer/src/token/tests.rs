//! Tests for issuing, publishing, validating and rotating: claim snapshots with a fake clock and
//! a fixed key (random members masked), `jsonwebtoken` as an independent verifier, one negative
//! test per rejection, and the key schedule over a real SQLite store.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use crypto::envelope::MasterKey;
use crypto::jws::{Algorithm, JwsHeader, RsaSigningKey};
use domain::limits::CLOCK_LEEWAY_SECS;
use domain::{Clock, UnixTime};
use expect_test::{Expect, expect};
use serde_json::{Value, json};

use crate::test_support::{AUTHORITY, Fixture, TENANT, TempStore, config, fixed_key_pkcs8};
use crate::{
    CredentialKind, Error, Issuer, IssuerConfig, TokenRequest, TokenVersion, ValidationOptions,
};

const MI_OBJECT_ID: &str = "9f1a4c6e-0000-4000-8000-000000000001";
const MI_CLIENT_ID: &str = "be5947ed-3560-4afe-9504-59967a63f810";
const MI_RESOURCE_ID: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1";
const VM_RESOURCE_ID: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1";
const VAULT: &str = "https://vault.azure.net";

fn mi_request() -> TokenRequest {
    TokenRequest {
        object_id: MI_OBJECT_ID.to_owned(),
        app_id: MI_CLIENT_ID.to_owned(),
        audience: VAULT.to_owned(),
        version: TokenVersion::V1,
        credential: CredentialKind::ManagedIdentity,
        managed_identity_resource_id: Some(MI_RESOURCE_ID.to_owned()),
        compute_resource_id: Some(VM_RESOURCE_ID.to_owned()),
        lifetime_secs: None,
    }
}

fn app_request() -> TokenRequest {
    TokenRequest {
        object_id: "11111111-2222-4333-8444-555555555555".to_owned(),
        app_id: "66666666-7777-4888-8999-aaaaaaaaaaaa".to_owned(),
        audience: "https://management.azure.com/".to_owned(),
        version: TokenVersion::V2,
        credential: CredentialKind::ClientSecret,
        managed_identity_resource_id: None,
        compute_resource_id: None,
        lifetime_secs: None,
    }
}

/// Validation options with owned lists, lent out by [`Options::get`].
struct Options {
    audiences: Vec<String>,
    issuers: Vec<String>,
    leeway_secs: i64,
    algorithms: Vec<Algorithm>,
}

impl Options {
    fn new(issuer: &Issuer) -> Options {
        Options {
            audiences: vec![VAULT.to_owned(), "https://management.azure.com/".to_owned()],
            issuers: vec![issuer.issuer_v1(), issuer.issuer_v2()],
            leeway_secs: CLOCK_LEEWAY_SECS,
            algorithms: vec![Algorithm::RS256],
        }
    }

    fn get(&self) -> ValidationOptions<'_> {
        ValidationOptions {
            audiences: &self.audiences,
            issuers: &self.issuers,
            leeway_secs: self.leeway_secs,
            algorithms: &self.algorithms,
        }
    }
}

/// Validates `token` with `options` and shows the outcome in one line.
#[track_caller]
fn check_with(issuer: &Issuer, token: &str, options: &Options, expect: Expect) {
    let shown = match issuer.validate(token, &options.get()) {
        Ok(claims) => format!("ok: oid={} aud={} ver={}", claims.oid, claims.aud, claims.ver),
        Err(error) => format!("{}: {error}", error.code()),
    };
    expect.assert_eq(&shown);
}

#[track_caller]
fn check(issuer: &Issuer, token: &str, expect: Expect) {
    check_with(issuer, token, &Options::new(issuer), expect);
}

fn decode_segment(segment: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

/// Header and payload of a token, with the random members replaced by placeholders after
/// checking their shape.
fn masked_parts(token: &str) -> Value {
    let segments: Vec<&str> = token.split('.').collect();
    assert_eq!(segments.len(), 3);
    let mut header = decode_segment(segments[0]);
    let mut payload = decode_segment(segments[1]);
    assert_eq!(header["kid"], header["x5t"]);
    header["kid"] = json!("<kid>");
    header["x5t"] = json!("<kid>");
    assert_eq!(payload["uti"].as_str().unwrap().len(), 22, "uti is 16 bytes in base64url");
    assert!(payload["rh"].as_str().unwrap().starts_with("0."));
    assert!(payload["aio"].as_str().unwrap().len() >= 32);
    for member in ["aio", "rh", "uti"] {
        payload[member] = json!(format!("<{member}>"));
    }
    json!({"header": header, "payload": payload})
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with any header and payload, signed by `key` with `alg`.
fn forge(header: &Value, payload: &Value, key: &RsaSigningKey, alg: Algorithm) -> String {
    let signing_input =
        format!("{}.{}", b64(header.to_string().as_bytes()), b64(payload.to_string().as_bytes()));
    let signature = key.sign(alg, signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", b64(&signature))
}

fn now_secs(fixture: &Fixture) -> i64 {
    fixture.clock.now().secs()
}

/// A payload like ours, valid now, for forged tokens.
fn valid_payload(fixture: &Fixture) -> Value {
    let now = now_secs(fixture);
    json!({
        "aud": VAULT, "iss": fixture.issuer.issuer_v1(), "iat": now, "nbf": now,
        "exp": now + 3600, "appid": MI_CLIENT_ID, "oid": MI_OBJECT_ID, "sub": MI_OBJECT_ID,
        "tid": TENANT, "ver": "1.0",
    })
}

fn header_for(kid: &str) -> Value {
    json!({"typ": "JWT", "alg": "RS256", "x5t": kid, "kid": kid})
}

fn kids(jwks: &crypto::jws::Jwks) -> Vec<String> {
    jwks.keys.iter().map(|jwk| jwk.kid.clone().unwrap()).collect()
}

#[tokio::test]
async fn v1_managed_identity_claims() {
    // Goal: the v1 claim set of 04-token-claims.md, with the MI lifetime of 24 hours.
    let fixture = Fixture::new().await;
    let token = fixture.issuer.issue(&mi_request()).unwrap();
    assert_eq!(token.expires_in, 24 * 3600);
    assert_eq!(token.issued_at, 1_704_067_200);
    assert_eq!(token.not_before, token.issued_at);
    assert_eq!(token.expires_on, token.issued_at + token.expires_in);
    assert_eq!(token.kid, kids(&fixture.issuer.jwks(false))[0]);
    let parts = masked_parts(&token.access_token);
    assert_eq!(parts["payload"]["exp"], json!(token.expires_on));
    expect![[r#"
        {
          "header": {
            "typ": "JWT",
            "alg": "RS256",
            "x5t": "<kid>",
            "kid": "<kid>"
          },
          "payload": {
            "aud": "https://vault.azure.net",
            "iss": "https://localhost:8443/72f988bf-86f1-41af-91ab-2d7cd011db47/",
            "iat": 1704067200,
            "nbf": 1704067200,
            "exp": 1704153600,
            "aio": "<aio>",
            "appid": "be5947ed-3560-4afe-9504-59967a63f810",
            "appidacr": "2",
            "idp": "https://localhost:8443/72f988bf-86f1-41af-91ab-2d7cd011db47/",
            "idtyp": "app",
            "oid": "9f1a4c6e-0000-4000-8000-000000000001",
            "rh": "<rh>",
            "sub": "9f1a4c6e-0000-4000-8000-000000000001",
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "uti": "<uti>",
            "ver": "1.0",
            "xms_az_rid": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1",
            "xms_mirid": "/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"
          }
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&parts).unwrap());
}

#[tokio::test]
async fn v2_client_secret_claims() {
    // Goal: v2 swaps issuer, `azp`/`azpacr` for `appid`/`appidacr` and `ver`; secret is acr 1.
    let fixture = Fixture::new().await;
    let token = fixture.issuer.issue(&app_request()).unwrap();
    assert_eq!(token.expires_in, 3600);
    expect![[r#"
        {
          "header": {
            "typ": "JWT",
            "alg": "RS256",
            "x5t": "<kid>",
            "kid": "<kid>"
          },
          "payload": {
            "aud": "https://management.azure.com/",
            "iss": "https://localhost:8443/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
            "iat": 1704067200,
            "nbf": 1704067200,
            "exp": 1704070800,
            "aio": "<aio>",
            "azp": "66666666-7777-4888-8999-aaaaaaaaaaaa",
            "azpacr": "1",
            "idp": "https://localhost:8443/72f988bf-86f1-41af-91ab-2d7cd011db47/",
            "idtyp": "app",
            "oid": "11111111-2222-4333-8444-555555555555",
            "rh": "<rh>",
            "sub": "11111111-2222-4333-8444-555555555555",
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "uti": "<uti>",
            "ver": "2.0"
          }
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&masked_parts(&token.access_token)).unwrap());
}

#[tokio::test]
async fn lifetimes_follow_the_credential_and_are_capped() {
    let fixture = Fixture::new().await;
    let lifetime = |credential, lifetime_secs| {
        let request = TokenRequest { credential, lifetime_secs, ..app_request() };
        fixture.issuer.issue(&request).map(|token| token.expires_in)
    };
    assert_eq!(lifetime(CredentialKind::ManagedIdentity, None).unwrap(), 24 * 3600);
    assert_eq!(lifetime(CredentialKind::ClientSecret, None).unwrap(), 3600);
    assert_eq!(lifetime(CredentialKind::ClientCertificate, None).unwrap(), 3600);
    assert_eq!(lifetime(CredentialKind::FederatedAssertion, None).unwrap(), 3600);
    assert_eq!(lifetime(CredentialKind::ClientSecret, Some(600)).unwrap(), 600);
    // Capped at the longest configured lifetime, so the key outlives every token it signs.
    assert_eq!(lifetime(CredentialKind::ClientSecret, Some(72 * 3600)).unwrap(), 24 * 3600);
    assert!(matches!(
        lifetime(CredentialKind::ClientSecret, Some(0)),
        Err(Error::InvalidRequest("token lifetime must be positive"))
    ));
    // Certificates and assertions are acr 2, like managed identities.
    let request = TokenRequest { credential: CredentialKind::ClientCertificate, ..app_request() };
    let token = fixture.issuer.issue(&request).unwrap();
    assert_eq!(masked_parts(&token.access_token)["payload"]["azpacr"], "2");
}

#[tokio::test]
async fn configured_lifetimes_apply() {
    let config = IssuerConfig {
        client_credential_lifetime_secs: 1800,
        managed_identity_lifetime_secs: 7200,
        ..config()
    };
    let fixture = Fixture::with_config(config).await;
    assert_eq!(fixture.issuer.issue(&mi_request()).unwrap().expires_in, 7200);
    assert_eq!(fixture.issuer.issue(&app_request()).unwrap().expires_in, 1800);
}

#[tokio::test]
async fn jwks_has_entras_shape() {
    let fixture = Fixture::new().await;
    let mask = |v2| {
        let mut jwks = serde_json::to_value(fixture.issuer.jwks(v2)).unwrap();
        let key = &mut jwks["keys"][0];
        assert_eq!(key["kid"], key["x5t"]);
        let cert = STANDARD.decode(key["x5c"][0].as_str().unwrap()).unwrap();
        assert_eq!(key["kid"], json!(crypto::jws::x5t_sha1(&cert)));
        key["kid"] = json!("<kid>");
        key["x5t"] = json!("<kid>");
        key["x5c"] = json!(["<certificate>"]);
        serde_json::to_string_pretty(&jwks).unwrap()
    };
    // The fixed key makes `n` stable.
    expect![[r#"
        {
          "keys": [
            {
              "kty": "RSA",
              "use": "sig",
              "kid": "<kid>",
              "x5t": "<kid>",
              "n": "qHRCiqxhfBpZZaZJ_K4RtscPbFgMcwFFkXTMOzIAOncBhWyg6XuAFeqDq6toXMQRbLrYnklcreaPZ2FBOps7PRHmzIgY4dxMnotCJy6k0pq09l-wGa-G5tS5B1p40JTvQoMErD6rCDn67eSeM5plkwZR83sLUqhJc-h_VlTdiSpsR5O_uxkoiysgMee3F9k92GU6T2Sok6Mef5UmIi_0v-bYyovivNQrQzfvm1GYL-mAMtBgazwPqKnw38cJmBexioRNb1nB_4zAtxXISX50eBpE6jFksb6k2bzo6o17S9DDiPUbJ6E3-FpBitiaqJpf9dyIFRBClusY68We8F29iQ",
              "e": "AQAB",
              "x5c": [
                "<certificate>"
              ]
            }
          ]
        }"#]]
    .assert_eq(&mask(false));
    let v2: Value = serde_json::from_str(&mask(true)).unwrap();
    assert_eq!(
        v2["keys"][0]["issuer"],
        "https://localhost:8443/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
    );
}

#[tokio::test]
async fn jsonwebtoken_verifies_issued_tokens_with_the_jwks() {
    // Goal: an independent implementation accepts our tokens given only the published n and e,
    // and checks audience and issuer itself.
    let fixture = Fixture::new().await;
    let token = fixture.issuer.issue(&mi_request()).unwrap();
    let header = jsonwebtoken::decode_header(&token.access_token).unwrap();
    let jwks = fixture.issuer.jwks(false);
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk.n.as_deref().unwrap(),
        jwk.e.as_deref().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    // The fake clock is in 2024; jsonwebtoken reads the real clock, so it cannot check times.
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    validation.set_audience(&[VAULT]);
    validation.set_issuer(&[fixture.issuer.issuer_v1()]);
    let decoded = jsonwebtoken::decode::<Value>(&token.access_token, &key, &validation).unwrap();
    assert_eq!(decoded.claims["oid"], MI_OBJECT_ID);
    assert_eq!(decoded.header.x5t.as_deref(), Some(token.kid.as_str()));

    validation.set_audience(&["https://management.azure.com/"]);
    assert!(jsonwebtoken::decode::<Value>(&token.access_token, &key, &validation).is_err());
}

#[tokio::test]
async fn issued_tokens_validate() {
    let fixture = Fixture::new().await;
    let v1 = fixture.issuer.issue(&mi_request()).unwrap();
    let claims = fixture.issuer.validate(&v1.access_token, &Options::new(&fixture.issuer).get());
    expect![[r#"
        Ok(
            Claims {
                aud: "https://vault.azure.net",
                iss: "https://localhost:8443/72f988bf-86f1-41af-91ab-2d7cd011db47/",
                oid: "9f1a4c6e-0000-4000-8000-000000000001",
                sub: "9f1a4c6e-0000-4000-8000-000000000001",
                tid: "72f988bf-86f1-41af-91ab-2d7cd011db47",
                app_id: "be5947ed-3560-4afe-9504-59967a63f810",
                idtyp: Some(
                    "app",
                ),
                xms_mirid: Some(
                    "/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
                ),
                ver: "1.0",
                iat: 1704067200,
                nbf: 1704067200,
                exp: 1704153600,
                uti: Some(
                    "<uti>",
                ),
            },
        )
    "#]]
    .assert_debug_eq(&claims.map(|claims| crate::Claims {
        uti: claims.uti.map(|_| "<uti>".to_owned()),
        ..claims
    }));
    let v2 = fixture.issuer.issue(&app_request()).unwrap();
    check(
        &fixture.issuer,
        &v2.access_token,
        expect![
            "ok: oid=11111111-2222-4333-8444-555555555555 aud=https://management.azure.com/ ver=2.0"
        ],
    );
}

#[tokio::test]
async fn audiences_are_compared_exactly() {
    // Issue 17: no slash is added or trimmed; a resource server lists each spelling it accepts.
    let fixture = Fixture::new().await;
    let mut options = Options::new(&fixture.issuer);
    let token = fixture.issuer.issue(&mi_request()).unwrap().access_token;
    for refused in
        ["https://vault.azure.net/", "https://vault.azure.net//", "https://VAULT.azure.net"]
    {
        options.audiences = vec![refused.to_owned()];
        check_with(
            &fixture.issuer,
            &token,
            &options,
            expect!["token.wrong_audience: token audience is not accepted"],
        );
    }
    options.audiences = vec!["https://vault.azure.net/".to_owned(), VAULT.to_owned()];
    check_with(
        &fixture.issuer,
        &token,
        &options,
        expect!["ok: oid=9f1a4c6e-0000-4000-8000-000000000001 aud=https://vault.azure.net ver=1.0"],
    );
}

#[tokio::test]
async fn alg_none_is_unsupported() {
    let fixture = Fixture::new().await;
    let kid = &fixture.issuer.issue(&mi_request()).unwrap().kid;
    let header = json!({"typ": "JWT", "alg": "none", "kid": kid});
    let token = format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(valid_payload(&fixture).to_string().as_bytes())
    );
    check(
        &fixture.issuer,
        &token,
        expect!["token.unsupported_algorithm: token algorithm is not supported"],
    );
}

#[tokio::test]
async fn hs256_with_the_public_key_as_secret_is_unsupported() {
    // Goal: the classic key-confusion attack, an HMAC keyed with the published RSA key, fails.
    let fixture = Fixture::new().await;
    let jwks = fixture.issuer.jwks(false);
    let jwk = &jwks.keys[0];
    let certificate = STANDARD.decode(&jwk.x5c[0]).unwrap();
    for secret in [URL_SAFE_NO_PAD.decode(jwk.n.as_deref().unwrap()).unwrap(), certificate] {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = jwk.kid.clone();
        let token = jsonwebtoken::encode(
            &header,
            &valid_payload(&fixture),
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap();
        check(
            &fixture.issuer,
            &token,
            expect!["token.unsupported_algorithm: token algorithm is not supported"],
        );
    }
}

#[tokio::test]
async fn algorithm_outside_the_allow_list_is_refused() {
    let fixture = Fixture::new().await;
    let token = fixture.issuer.issue(&mi_request()).unwrap().access_token;
    let mut options = Options::new(&fixture.issuer);
    options.algorithms = vec![Algorithm::PS256];
    check_with(
        &fixture.issuer,
        &token,
        &options,
        expect!["token.algorithm_not_allowed: token algorithm is not allowed"],
    );
    options.algorithms = Vec::new();
    check_with(
        &fixture.issuer,
        &token,
        &options,
        expect!["token.algorithm_not_allowed: token algorithm is not allowed"],
    );
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let fixture = Fixture::new().await;
    let other = RsaSigningKey::generate_2048().unwrap();
    let token =
        forge(&header_for("not-our-kid"), &valid_payload(&fixture), &other, Algorithm::RS256);
    check(&fixture.issuer, &token, expect!["token.unknown_key: token signing key is unknown"]);
    // No kid and no x5t at all names no key either.
    let token = crypto::jws::encode(
        &JwsHeader::new(Algorithm::RS256),
        &valid_payload(&fixture),
        &crate::test_support::fixed_key(),
    )
    .unwrap();
    check(&fixture.issuer, &token, expect!["token.unknown_key: token signing key is unknown"]);
}

#[tokio::test]
async fn key_found_by_x5t_alone() {
    let fixture = Fixture::new().await;
    let kid = fixture.issuer.issue(&mi_request()).unwrap().kid;
    // MSAL pads x5t; the match ignores padding.
    let header = json!({"typ": "JWT", "alg": "RS256", "x5t": format!("{kid}=")});
    let token = forge(
        &header,
        &valid_payload(&fixture),
        &crate::test_support::fixed_key(),
        Algorithm::RS256,
    );
    check(
        &fixture.issuer,
        &token,
        expect!["ok: oid=9f1a4c6e-0000-4000-8000-000000000001 aud=https://vault.azure.net ver=1.0"],
    );
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let fixture = Fixture::new().await;
    let token = fixture.issuer.issue(&mi_request()).unwrap().access_token;
    let segments: Vec<&str> = token.split('.').collect();
    let mut payload = decode_segment(segments[1]);
    payload["oid"] = json!("00000000-0000-0000-0000-000000000000");
    let tampered =
        format!("{}.{}.{}", segments[0], b64(payload.to_string().as_bytes()), segments[2]);
    check(&fixture.issuer, &tampered, expect!["token.bad_signature: token signature is invalid"]);
}

#[tokio::test]
async fn tampered_signature_is_refused() {
    let fixture = Fixture::new().await;
    let token = fixture.issuer.issue(&mi_request()).unwrap().access_token;
    let signature_start = token.rfind('.').unwrap() + 1;
    let mut bytes = token.into_bytes();
    // Change the first signature character; it carries six full bits, so the result stays
    // canonical base64url.
    bytes[signature_start] = if bytes[signature_start] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    check(&fixture.issuer, &tampered, expect!["token.bad_signature: token signature is invalid"]);
}

#[tokio::test]
async fn malformed_tokens_are_refused() {
    let fixture = Fixture::new().await;
    for token in ["", "abc", "a.b", "a.b.c.d", "!!!.e30.sig"] {
        check(&fixture.issuer, token, expect!["token.malformed: token is malformed"]);
    }
    // A validly signed payload that is not a claims object.
    let kid = fixture.issuer.issue(&mi_request()).unwrap().kid;
    let token = forge(
        &header_for(&kid),
        &json!([1, 2]),
        &crate::test_support::fixed_key(),
        Algorithm::RS256,
    );
    check(&fixture.issuer, &token, expect!["token.malformed: token is malformed"]);
}

#[tokio::test]
async fn missing_claims_are_named() {
    let fixture = Fixture::new().await;
    let kid = fixture.issuer.issue(&mi_request()).unwrap().kid;
    let key = crate::test_support::fixed_key();
    let without = |claim: &str| {
        let mut payload = valid_payload(&fixture);
        payload.as_object_mut().unwrap().remove(claim);
        forge(&header_for(&kid), &payload, &key, Algorithm::RS256)
    };
    check(
        &fixture.issuer,
        &without("exp"),
        expect!["token.missing_claim: token lacks the exp claim"],
    );
    check(
        &fixture.issuer,
        &without("oid"),
        expect!["token.missing_claim: token lacks the oid claim"],
    );
    check(
        &fixture.issuer,
        &without("appid"),
        expect!["token.missing_claim: token lacks the appid claim"],
    );
}

#[tokio::test]
async fn expiry_honours_the_leeway() {
    let fixture = Fixture::new().await;
    let token = fixture.issuer.issue(&app_request()).unwrap();
    fixture.clock.set(UnixTime::from_secs(token.expires_on + CLOCK_LEEWAY_SECS - 1));
    check(
        &fixture.issuer,
        &token.access_token,
        expect![
            "ok: oid=11111111-2222-4333-8444-555555555555 aud=https://management.azure.com/ ver=2.0"
        ],
    );
    fixture.clock.set(UnixTime::from_secs(token.expires_on + CLOCK_LEEWAY_SECS));
    check(&fixture.issuer, &token.access_token, expect!["token.expired: token has expired"]);
    // Without leeway the token is expired from `exp` on.
    let mut options = Options::new(&fixture.issuer);
    options.leeway_secs = 0;
    fixture.clock.set(UnixTime::from_secs(token.expires_on));
    check_with(
        &fixture.issuer,
        &token.access_token,
        &options,
        expect!["token.expired: token has expired"],
    );
}

#[tokio::test]
async fn not_before_honours_the_leeway() {
    let fixture = Fixture::new().await;
    let token = fixture.issuer.issue(&app_request()).unwrap();
    fixture.clock.set(UnixTime::from_secs(token.not_before - CLOCK_LEEWAY_SECS));
    check(
        &fixture.issuer,
        &token.access_token,
        expect![
            "ok: oid=11111111-2222-4333-8444-555555555555 aud=https://management.azure.com/ ver=2.0"
        ],
    );
    fixture.clock.set(UnixTime::from_secs(token.not_before - CLOCK_LEEWAY_SECS - 1));
    check(
        &fixture.issuer,
        &token.access_token,
        expect!["token.not_yet_valid: token is not yet valid"],
    );
}

#[tokio::test]
async fn wrong_audience_and_issuer_are_refused() {
    let fixture = Fixture::new().await;
    let token = fixture.issuer.issue(&mi_request()).unwrap().access_token;
    let mut options = Options::new(&fixture.issuer);
    options.audiences = vec!["https://management.azure.com/".to_owned()];
    check_with(
        &fixture.issuer,
        &token,
        &options,
        expect!["token.wrong_audience: token audience is not accepted"],
    );
    let mut options = Options::new(&fixture.issuer);
    options.issuers = vec![fixture.issuer.issuer_v2()];
    check_with(
        &fixture.issuer,
        &token,
        &options,
        expect!["token.wrong_issuer: token issuer is not accepted"],
    );
    options.issuers = vec![format!("https://sts.windows.net/{TENANT}/")];
    check_with(
        &fixture.issuer,
        &token,
        &options,
        expect!["token.wrong_issuer: token issuer is not accepted"],
    );
}

#[tokio::test]
async fn rotation_publishes_first_then_switches_then_retires() {
    // Goal: the whole life of a rotation with a fake clock: the new key is published at once,
    // signs only from its activation, and the old key stays published until its last token
    // (and the leeway) ran out.
    let fixture = Fixture::new().await;
    let issuer = &fixture.issuer;
    let old = issuer.issue(&mi_request()).unwrap();
    let rotated = issuer.rotate(300).await.unwrap();
    assert_ne!(rotated.kid, old.kid);
    assert_eq!(rotated.signs_from, fixture.clock.now().plus_secs(300));
    assert_eq!(kids(&issuer.jwks(false)), [old.kid.clone(), rotated.kid.clone()]);

    fixture.clock.advance_secs(299);
    let last_old = issuer.issue(&mi_request()).unwrap();
    assert_eq!(last_old.kid, old.kid);
    fixture.clock.advance_secs(1);
    let first_new = issuer.issue(&mi_request()).unwrap();
    assert_eq!(first_new.kid, rotated.kid);
    check(
        issuer,
        &last_old.access_token,
        expect!["ok: oid=9f1a4c6e-0000-4000-8000-000000000001 aud=https://vault.azure.net ver=1.0"],
    );

    // The old key's last token lives 24 h from just before activation; the key stays published
    // for 24 h plus the leeway after activation.
    let published_until = rotated.signs_from.plus_secs(24 * 3600 + CLOCK_LEEWAY_SECS);
    fixture.clock.set(published_until.minus_secs(1));
    assert_eq!(kids(&issuer.jwks(false)), [old.kid.clone(), rotated.kid.clone()]);
    check(issuer, &last_old.access_token, expect!["token.expired: token has expired"]);
    fixture.clock.set(published_until);
    assert_eq!(kids(&issuer.jwks(false)), [rotated.kid.as_str()]);
    check(
        issuer,
        &last_old.access_token,
        expect!["token.unknown_key: token signing key is unknown"],
    );

    // The stored schedule says the same.
    let records = fixture.temp.store.list_signing_keys(TENANT).await.unwrap();
    let old_record = records.iter().find(|record| record.kid == old.kid).unwrap();
    assert_eq!(old_record.signs_until, Some(rotated.signs_from.millis()));
    assert_eq!(old_record.published_until, Some(published_until.millis()));
    let new_record = records.iter().find(|record| record.kid == rotated.kid).unwrap();
    assert_eq!(new_record.signs_from, rotated.signs_from.millis());
    assert_eq!(new_record.signs_until, None);
}

#[tokio::test]
async fn rotation_rejects_a_bad_activation() {
    let fixture = Fixture::new().await;
    assert!(matches!(fixture.issuer.rotate(-1).await, Err(Error::InvalidRequest(_))));
    assert!(matches!(
        fixture.issuer.rotate(config().key_rotation_secs + 1).await,
        Err(Error::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn a_second_issuer_sees_the_same_keys() {
    // Goal: a restart or a second node over the same store loads the same keys, validates the
    // first node's tokens, and picks up a rotation by the first node on reload.
    let fixture = Fixture::new().await;
    let token = fixture.issuer.issue(&mi_request()).unwrap();
    let second = fixture.second_issuer().await;
    assert_eq!(second.jwks(true), fixture.issuer.jwks(true));
    check(
        &second,
        &token.access_token,
        expect!["ok: oid=9f1a4c6e-0000-4000-8000-000000000001 aud=https://vault.azure.net ver=1.0"],
    );
    assert_eq!(second.issue(&mi_request()).unwrap().kid, token.kid);

    let rotated = fixture.issuer.rotate(0).await.unwrap();
    assert_eq!(kids(&second.jwks(false)), [token.kid.as_str()]);
    second.reload().await.unwrap();
    assert_eq!(second.jwks(false), fixture.issuer.jwks(false));
    assert_eq!(second.issue(&mi_request()).unwrap().kid, rotated.kid);
    let from_second = second.issue(&app_request()).unwrap();
    check(
        &fixture.issuer,
        &from_second.access_token,
        expect![
            "ok: oid=11111111-2222-4333-8444-555555555555 aud=https://management.azure.com/ ver=2.0"
        ],
    );
}

#[tokio::test]
async fn a_wrong_master_key_cannot_load_the_keys() {
    let fixture = Fixture::new().await;
    let error = Issuer::load(
        fixture.temp.store.clone(),
        Arc::new(MasterKey::generate()),
        Arc::new(fixture.clock.clone()),
        config(),
    )
    .await
    .unwrap_err();
    assert!(matches!(
        error,
        Error::UnusableKey { reason: "does not open under the master key", .. }
    ));
}

#[tokio::test]
async fn scheduled_rotation_runs_on_time_and_other_nodes_pick_it_up() {
    // Goal: with a 10-day rotation and a 1-day lead, nothing happens for 9 days; then the node
    // running the schedule pre-publishes a key that signs a day later, and a second node that
    // only reloads picks the key up; later the second node runs the schedule on its own.
    let config = IssuerConfig {
        key_rotation_secs: 10 * 24 * 3600,
        key_publish_lead_secs: 24 * 3600,
        ..config()
    };
    let fixture = Fixture::with_config(config.clone()).await;
    let other = Issuer::load(
        fixture.temp.store.clone(),
        fixture.master_key.clone(),
        Arc::new(fixture.clock.clone()),
        config,
    )
    .await
    .unwrap();
    let first_kid = fixture.issuer.issue(&mi_request()).unwrap().kid;
    const DAY: i64 = 24 * 3600;

    assert!(!fixture.issuer.rotate_if_due().await.unwrap());
    fixture.clock.advance_secs(9 * DAY - 60);
    assert!(!fixture.issuer.rotate_if_due().await.unwrap(), "not due yet");
    fixture.clock.advance_secs(60);
    assert!(fixture.issuer.rotate_if_due().await.unwrap());
    assert!(!fixture.issuer.rotate_if_due().await.unwrap(), "a next key is pending");

    let jwks = fixture.issuer.jwks(false);
    assert_eq!(jwks.keys.len(), 2);
    let next_kid = kids(&jwks)[1].clone();
    assert_eq!(fixture.issuer.issue(&mi_request()).unwrap().kid, first_kid);

    // The other node sees the pending key on its next reload.
    other.reload().await.unwrap();
    assert_eq!(other.jwks(false), jwks);

    fixture.clock.advance_secs(DAY);
    assert_eq!(fixture.issuer.issue(&mi_request()).unwrap().kid, next_kid);
    assert_eq!(other.issue(&mi_request()).unwrap().kid, next_kid);

    // node-a stops; node-b takes over the schedule.
    fixture.clock.advance_secs(DAY + CLOCK_LEEWAY_SECS);
    assert!(!other.rotate_if_due().await.unwrap(), "not due yet");
    assert_eq!(kids(&other.jwks(false)), [next_kid.as_str()], "the retired key was dropped");
    fixture.clock.advance_secs(8 * DAY);
    assert!(other.rotate_if_due().await.unwrap());
}

#[tokio::test]
async fn private_keys_are_sealed_at_rest() {
    let fixture = Fixture::new().await;
    let records = fixture.temp.store.list_signing_keys(TENANT).await.unwrap();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    let pkcs8 = fixed_key_pkcs8();
    assert!(!record.private_key.windows(32).any(|window| pkcs8.windows(32).any(|p| p == window)));
    assert_eq!(record.algorithm, "RS256");
    assert_eq!(record.tenant_id, TENANT);
    assert_eq!(record.created_at, fixture.clock.now().millis());
    // It opens with the master key only under its own kid.
    let aad = format!("signing-key/{}", record.kid);
    assert_eq!(*fixture.master_key.open(&record.private_key, aad.as_bytes()).unwrap(), pkcs8);
    assert!(fixture.master_key.open(&record.private_key, b"signing-key/other").is_err());
    // The certificate is the one published, and names the key.
    let jwks = fixture.issuer.jwks(false);
    assert_eq!(STANDARD.decode(&jwks.keys[0].x5c[0]).unwrap(), record.certificate_der);
}

#[tokio::test]
async fn debug_output_never_shows_key_material() {
    let fixture = Fixture::new().await;
    fixture.issuer.rotate(60).await.unwrap();
    let token = fixture.issuer.issue(&mi_request()).unwrap();
    let pkcs8 = fixed_key_pkcs8();
    let records = fixture.temp.store.list_signing_keys(TENANT).await.unwrap();
    let shown = format!("{:?} {:?} {:?} {:#?}", fixture.issuer, token, records, fixture.issuer);
    for secret in [STANDARD.encode(&pkcs8), b64(&pkcs8), format!("{:?}", &pkcs8[..16])] {
        assert!(!shown.contains(&secret[..24]), "{shown}");
    }
    assert!(!shown.contains(&token.access_token[..40]), "{shown}");
    assert!(!shown.contains(&format!("{:?}", &records[0].private_key[..16])), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
    assert!(shown.contains(&token.kid));
}

#[tokio::test]
async fn invalid_configuration_is_refused() {
    let temp = TempStore::new().await;
    let load = |config: IssuerConfig| {
        Issuer::load(
            temp.store.clone(),
            Arc::new(MasterKey::generate()),
            Arc::new(domain::FakeClock::default()),
            config,
        )
    };
    let message = |result: crate::Result<Issuer>| result.unwrap_err().to_string();
    expect!["invalid issuer configuration: managed_identity_lifetime_secs is 0, not between 1 and 172800"]
        .assert_eq(&message(load(IssuerConfig { managed_identity_lifetime_secs: 0, ..config() }).await));
    expect!["invalid issuer configuration: key_rotation_secs must exceed key_publish_lead_secs"]
        .assert_eq(&message(
            load(IssuerConfig { key_rotation_secs: 3600, key_publish_lead_secs: 3600, ..config() })
                .await,
        ));
    expect!["invalid issuer configuration: key_rotation_secs must exceed every token lifetime"]
        .assert_eq(&message(
            load(IssuerConfig { key_rotation_secs: 7200, key_publish_lead_secs: 60, ..config() })
                .await,
        ));
    expect![[r#"invalid issuer configuration: tenant id "a/b" is not a path segment"#]]
        .assert_eq(&message(load(IssuerConfig { tenant_id: "a/b".to_owned(), ..config() }).await));
    // A trailing slash on the authority is dropped.
    let issuer =
        load(IssuerConfig { authority: format!("{AUTHORITY}/"), ..config() }).await.unwrap();
    assert_eq!(issuer.issuer_v1(), format!("{AUTHORITY}/{TENANT}/"));
    assert_eq!(issuer.issuer_v2(), format!("{AUTHORITY}/{TENANT}/v2.0"));
}
