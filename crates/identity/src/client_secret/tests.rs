//! Tests of [`ClientSecretCredential`] against the fake Entra token endpoint over HTTPS:
//! the wire form, errors, caching, single flight and the refresh rules end to end.

use std::sync::Arc;

use crate::clock::FakeClock;
use crate::testing::{FakeEntra, PKI};
use crate::{
    AccessToken, ClientOptions, ClientSecretCredential, Error, Secret, TokenCredential,
    TokenRequestOptions,
};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_ID: &str = "3f9c2a1e-0000-4000-8000-000000000001";
const SECRET: &str = "s3cr3t~value";
const VAULT: &str = "https://vault.azure.net/.default";
const START: i64 = FakeClock::START_UNIX_SECS;

/// A fake endpoint knowing one application with [`SECRET`], and a credential for it.
async fn setup() -> (FakeEntra, ClientSecretCredential, Arc<FakeClock>) {
    let clock = FakeClock::new();
    let fake = FakeEntra::start(clock.clone()).await;
    fake.register_secret(CLIENT_ID, SECRET);
    let credential = credential(&clock, SECRET, PKI.client_options(&fake.authority));
    (fake, credential, clock)
}

fn credential(
    clock: &Arc<FakeClock>,
    secret: &str,
    options: ClientOptions,
) -> ClientSecretCredential {
    ClientSecretCredential::with_clock(
        TENANT,
        CLIENT_ID,
        Secret::new(secret),
        &options,
        clock.clone(),
    )
    .unwrap()
}

async fn get(credential: &ClientSecretCredential, scope: &str) -> Result<AccessToken, Error> {
    credential.get_token(&[scope], &TokenRequestOptions::default()).await
}

#[tokio::test]
async fn gets_token_and_sends_the_client_credentials_form() {
    let (fake, credential, _clock) = setup().await;

    let token = get(&credential, VAULT).await.unwrap();

    assert_eq!(token.token.expose(), "fake-token-1");
    assert_eq!(token.expires_on, START + 3599);
    assert_eq!(token.refresh_on, Some(START + 3599 - 300));
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].tenant, TENANT);
    let form: Vec<(&str, &str)> =
        requests[0].form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        form,
        [
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
            ("grant_type", "client_credentials"),
            ("scope", VAULT),
        ]
    );
}

#[tokio::test]
async fn bare_resource_is_sent_with_default_suffix() {
    let (fake, credential, _clock) = setup().await;
    get(&credential, "https://vault.azure.net").await.unwrap();
    assert_eq!(fake.requests()[0].form["scope"], VAULT);
}

#[tokio::test]
async fn wrong_secret_is_an_authentication_error_with_the_aadsts_text() {
    let (fake, _credential, clock) = setup().await;
    let credential = credential(&clock, "wrong", PKI.client_options(&fake.authority));

    let error = get(&credential, VAULT).await.unwrap_err();

    let Error::Authentication { status, error, description } = error else {
        panic!("expected an authentication error, got {error:?}");
    };
    assert_eq!(status, Some(401));
    assert_eq!(error, "invalid_client");
    assert!(
        description.starts_with("AADSTS7000215: Invalid client secret provided."),
        "{description}"
    );
}

#[tokio::test]
async fn unknown_application_is_an_authentication_error() {
    let clock = FakeClock::new();
    let fake = FakeEntra::start(clock.clone()).await;
    let credential = credential(&clock, SECRET, PKI.client_options(&fake.authority));
    let error = get(&credential, VAULT).await.unwrap_err();
    assert!(
        matches!(&error, Error::Authentication { status: Some(400), error, description }
            if error == "unauthorized_client" && description.starts_with("AADSTS700016")),
        "{error:?}"
    );
}

#[tokio::test]
async fn server_certificate_from_an_untrusted_ca_is_refused() {
    // Goal: TLS is verified; the test CA is trusted only because the options add it.
    let (fake, _credential, clock) = setup().await;
    let options =
        ClientOptions { authority_host: fake.authority.clone(), ..ClientOptions::default() };
    let credential = credential(&clock, SECRET, options);
    let error = get(&credential, VAULT).await.unwrap_err();
    assert!(matches!(&error, Error::Http(message) if message.contains("certificate")), "{error:?}");
    assert_eq!(fake.request_count(), 0);
}

#[test]
fn http_authority_is_refused_at_construction() {
    let options = ClientOptions {
        authority_host: "http://127.0.0.1:1".to_owned(),
        ..ClientOptions::default()
    };
    let error = ClientSecretCredential::new(TENANT, CLIENT_ID, SECRET, options).unwrap_err();
    assert!(
        matches!(&error, Error::InvalidConfig(message) if message.contains("https")),
        "{error:?}"
    );
}

#[test]
fn bad_settings_are_refused_at_construction() {
    let new = |tenant: &str, client: &str, secret: &str, options: ClientOptions| {
        ClientSecretCredential::new(tenant, client, secret, options).unwrap_err()
    };
    for error in [
        new("bad/tenant", CLIENT_ID, SECRET, ClientOptions::default()),
        new(TENANT, "", SECRET, ClientOptions::default()),
        new(TENANT, CLIENT_ID, "", ClientOptions::default()),
        new(
            TENANT,
            CLIENT_ID,
            SECRET,
            ClientOptions {
                extra_root_certificates_pem: vec![b"not pem".to_vec()],
                ..ClientOptions::default()
            },
        ),
    ] {
        assert!(matches!(error, Error::InvalidConfig(_)), "{error:?}");
    }
}

#[tokio::test]
async fn invalid_scopes_are_refused_before_any_request() {
    let (fake, credential, _clock) = setup().await;
    let options = TokenRequestOptions::default();
    let error = credential.get_token(&[VAULT, VAULT], &options).await.unwrap_err();
    assert!(matches!(error, Error::InvalidScope(_)), "{error:?}");
    let error = credential.get_token(&[], &options).await.unwrap_err();
    assert!(matches!(error, Error::InvalidScope(_)), "{error:?}");
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn second_call_is_served_from_the_cache() {
    let (fake, credential, _clock) = setup().await;
    let first = get(&credential, VAULT).await.unwrap();
    let second = get(&credential.clone(), VAULT).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(fake.request_count(), 1);
    // Another scope is another cache entry.
    get(&credential, "https://management.azure.com/.default").await.unwrap();
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn a_thousand_concurrent_callers_cause_one_request() {
    // Goal: single flight across clones. Method: the fake holds the first request until every
    // caller has been started and has queued (current-thread runtime: the spawned tasks run
    // while this task awaits), then answers once.
    let (fake, credential, _clock) = setup().await;
    let release = fake.hold_requests();

    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let credential = credential.clone();
            tokio::spawn(async move { get(&credential, VAULT).await })
        })
        .collect();
    fake.request_arrived().await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    release.add_permits(1000);

    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().token.expose(), "fake-token-1");
    }
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn token_is_refreshed_at_refresh_time() {
    let (fake, credential, clock) = setup().await;
    fake.set_token_lifetime(86_399, Some(3_600));

    assert_eq!(get(&credential, VAULT).await.unwrap().refresh_on, Some(START + 3_600));
    clock.advance_secs(3_599);
    assert_eq!(get(&credential, VAULT).await.unwrap().token.expose(), "fake-token-1");
    clock.advance_secs(1);
    assert_eq!(get(&credential, VAULT).await.unwrap().token.expose(), "fake-token-2");
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn refresh_failure_keeps_serving_the_valid_token() {
    let (fake, credential, clock) = setup().await;
    get(&credential, VAULT).await.unwrap();
    fake.set_outage(true);
    clock.advance_secs(3_599 - 300);

    assert_eq!(get(&credential, VAULT).await.unwrap().token.expose(), "fake-token-1");
    assert_eq!(fake.request_count(), 2);

    clock.advance_secs(300);
    let error = get(&credential, VAULT).await.unwrap_err();
    assert!(
        matches!(&error, Error::Authentication { status: Some(500), error, .. } if error == "temporarily_unavailable"),
        "{error:?}"
    );
}

#[tokio::test]
async fn tenant_override_needs_an_allowed_tenant() {
    let (fake, credential, clock) = setup().await;
    let other = TokenRequestOptions { tenant_id: Some("other-tenant".to_owned()) };
    let error = credential.get_token(&[VAULT], &other).await.unwrap_err();
    assert!(matches!(&error, Error::InvalidConfig(m) if m.contains("other-tenant")), "{error:?}");
    // Naming the credential's own tenant is always fine.
    let own = TokenRequestOptions { tenant_id: Some(TENANT.to_uppercase()) };
    credential.get_token(&[VAULT], &own).await.unwrap();

    let options = ClientOptions {
        additionally_allowed_tenants: vec!["other-tenant".to_owned()],
        ..PKI.client_options(&fake.authority)
    };
    let credential = self::credential(&clock, SECRET, options);
    credential.get_token(&[VAULT], &other).await.unwrap();
    assert_eq!(fake.requests().last().unwrap().tenant, "other-tenant");
}

#[tokio::test]
async fn debug_output_holds_no_secret_or_token() {
    let (_fake, credential, _clock) = setup().await;
    let token = get(&credential, VAULT).await.unwrap();
    let debug = format!("{credential:?} {token:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(!debug.contains("fake-token"), "{debug}");
    assert!(debug.contains(CLIENT_ID), "{debug}");
}
