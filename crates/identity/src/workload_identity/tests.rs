//! Tests of [`WorkloadIdentityCredential`]: the request form, the file read again at every
//! token request (trailing newline tolerated), and the variables it needs.

use std::sync::Arc;

use crate::clock::FakeClock;
use crate::entra::JWT_BEARER_ASSERTION_TYPE;
use crate::env::Env;
use crate::testing::{FakeEntra, PKI};
use crate::workload_identity::WorkloadIdentityCredential;
use crate::{Error, TokenCredential, TokenRequestOptions};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_ID: &str = "3f9c2a1e-0000-4000-8000-000000000021";
const VAULT: &str = "https://vault.azure.net/.default";

fn token_file(contents: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("identity-wi-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("token");
    std::fs::write(&path, contents).unwrap();
    path
}

async fn setup() -> (FakeEntra, Arc<FakeClock>) {
    let clock = FakeClock::new();
    (FakeEntra::start(clock.clone()).await, clock)
}

fn from_env(fake: &FakeEntra, clock: &Arc<FakeClock>, path: &str) -> WorkloadIdentityCredential {
    let env = Env::from_pairs([
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT_ID),
        ("AZURE_FEDERATED_TOKEN_FILE", path),
        ("AZURE_AUTHORITY_HOST", fake.authority.as_str()),
    ]);
    WorkloadIdentityCredential::from_env_with_clock(
        &env,
        PKI.client_options("https://authority.invalid"),
        clock.clone(),
    )
    .unwrap()
}

#[tokio::test]
async fn posts_the_file_as_a_client_assertion() {
    let (fake, clock) = setup().await;
    fake.register_federated(CLIENT_ID, "header.claims.signature");
    let path = token_file("header.claims.signature\n");
    let credential = from_env(&fake, &clock, path.to_str().unwrap());

    let token = credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap();

    assert_eq!(token.token.expose(), "fake-token-1");
    let requests = fake.requests();
    assert_eq!(requests[0].tenant, TENANT);
    let form: Vec<(&str, &str)> =
        requests[0].form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        form,
        [
            ("client_assertion", "header.claims.signature"),
            ("client_assertion_type", JWT_BEARER_ASSERTION_TYPE),
            ("client_id", CLIENT_ID),
            ("grant_type", "client_credentials"),
            ("scope", VAULT),
        ]
    );
}

#[tokio::test]
async fn the_file_is_read_again_for_every_token_request() {
    let (fake, clock) = setup().await;
    let path = token_file("first");
    let credential = from_env(&fake, &clock, path.to_str().unwrap());
    fake.register_federated(CLIENT_ID, "first");
    credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap();

    // The platform rotates the file; the next request (another scope) presents the new token.
    std::fs::write(&path, "second\r\n").unwrap();
    fake.register_federated(CLIENT_ID, "second");
    credential
        .get_token(&["https://storage.azure.com/.default"], &TokenRequestOptions::default())
        .await
        .unwrap();
    assert_eq!(fake.requests()[1].form["client_assertion"], "second");

    // A refused assertion is Entra's error, unchanged.
    std::fs::write(&path, "stale").unwrap();
    let error = credential
        .get_token(&["https://management.azure.com/.default"], &TokenRequestOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Authentication { description, .. } if description.starts_with("AADSTS70021")),
        "{error:?}"
    );
}

#[tokio::test]
async fn missing_or_empty_file_is_a_configuration_error() {
    let (fake, clock) = setup().await;
    let credential = from_env(&fake, &clock, "/nonexistent/token");
    let error = credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap_err();
    assert!(
        matches!(&error, Error::InvalidConfig(m) if m.contains("/nonexistent/token")),
        "{error:?}"
    );

    let empty = token_file("\n");
    let credential = from_env(&fake, &clock, empty.to_str().unwrap());
    let error = credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap_err();
    assert!(matches!(&error, Error::InvalidConfig(m) if m.contains("empty")), "{error:?}");
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn missing_variables_make_it_unavailable() {
    let env = Env::from_pairs([("AZURE_CLIENT_ID", CLIENT_ID)]);
    let credential =
        WorkloadIdentityCredential::from_env(&env, crate::ClientOptions::default()).unwrap();
    let error = credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap_err();
    let Error::CredentialUnavailable(message) = &error else { panic!("{error:?}") };
    assert!(message.ends_with("missing AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE"), "{message}");
}

#[test]
fn explicit_construction_checks_its_arguments() {
    let new = |tenant: &str, path: &str| {
        WorkloadIdentityCredential::new(tenant, CLIENT_ID, path, crate::ClientOptions::default())
    };
    assert!(matches!(new("bad/tenant", "/t"), Err(Error::InvalidConfig(_))));
    assert!(matches!(new(TENANT, ""), Err(Error::InvalidConfig(_))));
    assert!(new(TENANT, "/t").is_ok());
}
