//! Tests of the chains: moving on after "unavailable", stopping on other errors, remembering
//! the credential that worked, the combined error message, and `AZURE_TOKEN_CREDENTIALS`.
//!
//! Safety: every [`DefaultAzureCredential`] here is built by [`default_credential`], which
//! points IMDS at a loopback address the test controls and the CLI at a path that does not
//! exist, so no test can reach 169.254.169.254 or run a real CLI.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::chain::{
    ChainedTokenCredential, DefaultAzureCredential, DefaultAzureCredentialOptions, Kind, Selection,
};
use crate::clock::FakeClock;
use crate::env::Env;
use crate::managed_identity::{ImdsRetryOptions, ManagedIdentityCredentialOptions};
use crate::testing::{FakeEntra, FakeManagedIdentity, PKI, closed_loopback_base};
use crate::{
    AccessToken, CliCredentialOptions, Error, Result, Secret, TokenCredential, TokenRequestOptions,
};

const VAULT: &str = "https://vault.azure.net/.default";
const START: i64 = FakeClock::START_UNIX_SECS;

/// A credential that returns scripted outcomes in order and counts its calls.
#[derive(Debug, Default)]
struct Scripted {
    outcomes: Mutex<VecDeque<Result<AccessToken>>>,
    calls: AtomicUsize,
}

impl Scripted {
    fn new(outcomes: Vec<Result<AccessToken>>) -> Arc<Scripted> {
        Arc::new(Scripted { outcomes: Mutex::new(outcomes.into()), calls: AtomicUsize::new(0) })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenCredential for Scripted {
    async fn get_token(&self, _: &[&str], _: &TokenRequestOptions) -> Result<AccessToken> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.outcomes.lock().unwrap().pop_front().expect("an outcome is scripted")
    }
}

fn token(text: &str) -> Result<AccessToken> {
    Ok(AccessToken { token: Secret::new(text), expires_on: START + 3600, refresh_on: None })
}

fn unavailable(why: &str) -> Result<AccessToken> {
    Err(Error::CredentialUnavailable(why.to_owned()))
}

async fn get(credential: &dyn TokenCredential) -> Result<AccessToken> {
    credential.get_token(&[VAULT], &TokenRequestOptions::default()).await
}

#[tokio::test]
async fn unavailable_moves_on_and_the_winner_is_remembered() {
    let first = Scripted::new(vec![unavailable("not here")]);
    let second = Scripted::new(vec![token("t1"), token("t2")]);
    let third = Scripted::new(vec![]);
    let chain =
        ChainedTokenCredential::new(vec![first.clone(), second.clone(), third.clone()]).unwrap();

    assert_eq!(get(&chain).await.unwrap().token.expose(), "t1");
    // Afterwards the chain asks the credential that worked, and only it.
    assert_eq!(get(&chain.clone()).await.unwrap().token.expose(), "t2");
    assert_eq!((first.calls(), second.calls(), third.calls()), (1, 2, 0));
}

#[tokio::test]
async fn another_error_stops_the_chain_and_keeps_its_kind() {
    let first = Scripted::new(vec![unavailable("not here")]);
    let second = Scripted::new(vec![Err(Error::Authentication {
        status: Some(401),
        error: "invalid_client".to_owned(),
        description: "AADSTS7000215: Invalid client secret provided.".to_owned(),
    })]);
    let third = Scripted::new(vec![token("never")]);
    let chain =
        ChainedTokenCredential::new(vec![first.clone(), second.clone(), third.clone()]).unwrap();

    let error = get(&chain).await.unwrap_err();

    let Error::Authentication { status, error, description } = error else { panic!() };
    assert_eq!((status, error.as_str()), (Some(401), "invalid_client"));
    assert_eq!(
        description,
        "ChainedTokenCredential failed to retrieve a token from the included credentials; attempted credentials:\n\
         \tScripted: not here\n\
         \tScripted: authentication failed: invalid_client: AADSTS7000215: Invalid client secret provided."
    );
    assert_eq!(third.calls(), 0);
}

#[test]
fn an_empty_chain_is_refused() {
    assert!(matches!(ChainedTokenCredential::new(Vec::new()), Err(Error::InvalidConfig(_))));
}

/// Options that keep the chain on loopback: IMDS at `imds`, the CLI at a missing path.
fn options(imds: &str) -> DefaultAzureCredentialOptions {
    assert!(imds.starts_with("http://127.0.0.1:"), "tests use loopback only: {imds}");
    DefaultAzureCredentialOptions {
        client_options: PKI.client_options("https://authority.invalid"),
        managed_identity: ManagedIdentityCredentialOptions {
            imds_endpoint: Some(imds.to_owned()),
            retry: ImdsRetryOptions {
                backoff_factor: Duration::from_millis(1),
                gone_backoff_factor: Duration::from_millis(1),
                ..ImdsRetryOptions::default()
            },
            ..ManagedIdentityCredentialOptions::default()
        },
        cli: CliCredentialOptions {
            executable: Some("/nonexistent/ambient".into()),
            ..CliCredentialOptions::default()
        },
        ..DefaultAzureCredentialOptions::default()
    }
}

fn default_credential(env: &Env, imds: &str) -> Result<DefaultAzureCredential> {
    DefaultAzureCredential::with_clock(env, options(imds), FakeClock::new())
}

#[tokio::test]
async fn with_nothing_configured_every_failure_is_listed_and_imds_is_only_probed_on_loopback() {
    // Goal: an empty environment sends the IMDS probe to the address the test controls (never
    // 169.254.169.254), and the final error names each credential and why it failed.
    let fake = FakeManagedIdentity::start(FakeClock::new()).await;
    fake.script(400, r#"{"error":"invalid_request","error_description":"Identity not found"}"#);
    let credential = default_credential(&Env::default(), &fake.base).unwrap();

    let error = get(&credential).await.unwrap_err();

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/metadata/identity/oauth2/token");
    let Error::CredentialUnavailable(message) = error else { panic!("{error:?}") };
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(
        lines,
        [
            "DefaultAzureCredential failed to retrieve a token from the included credentials; attempted credentials:",
            "\tEnvironmentCredential: EnvironmentCredential authentication unavailable: environment variables are not fully configured: missing AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH",
            "\tWorkloadIdentityCredential: WorkloadIdentityCredential authentication unavailable: environment variables are not fully configured: missing AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE",
            "\tManagedIdentityCredential: ManagedIdentityCredential authentication unavailable: the requested identity has not been assigned to this resource: invalid_request: Identity not found",
            "\tCliCredential: CliCredential authentication unavailable: could not run /nonexistent/ambient: No such file or directory (os error 2)",
        ]
    );
}

#[tokio::test]
async fn without_imds_the_probe_fails_fast_and_the_chain_moves_on() {
    let closed = closed_loopback_base().await;
    let credential = default_credential(&Env::default(), &closed).unwrap();
    let error = get(&credential).await.unwrap_err();
    let Error::CredentialUnavailable(message) = error else { panic!("{error:?}") };
    assert!(message.contains("ManagedIdentityCredential: ManagedIdentityCredential authentication unavailable: no response from the IMDS endpoint"), "{message}");
    assert!(message.contains("\tCliCredential: "), "{message}");
}

#[tokio::test]
async fn app_service_variables_give_the_identity_s_token() {
    let fake = FakeManagedIdentity::start(FakeClock::new()).await;
    let env = Env::from_pairs([
        ("IDENTITY_ENDPOINT", format!("{}/msi/token", fake.base)),
        ("IDENTITY_HEADER", FakeManagedIdentity::SECRET.to_owned()),
    ]);
    let credential = default_credential(&env, &closed_loopback_base().await).unwrap();
    assert_eq!(get(&credential).await.unwrap().token.expose(), "mi-token-1");
    assert_eq!(get(&credential).await.unwrap().token.expose(), "mi-token-1");
    assert_eq!(fake.request_count(), 1);
    assert_eq!(fake.requests()[0].path, "/msi/token");
}

#[tokio::test]
async fn azure_client_id_selects_the_managed_identity() {
    let fake = FakeManagedIdentity::start(FakeClock::new()).await;
    let env = Env::from_pairs([("AZURE_CLIENT_ID", "c-123")]);
    let credential = default_credential(&env, &fake.base).unwrap();
    get(&credential).await.unwrap();
    assert_eq!(fake.requests()[0].query["client_id"], "c-123");
}

#[tokio::test]
async fn azure_client_id_does_not_break_the_chain_on_cloud_shell_or_service_fabric() {
    // Goal: as in azure-identity, `AZURE_CLIENT_ID` (passed to the managed identity) neither
    // keeps the chain from being built on Cloud Shell, which forwards it in its form, nor on
    // Service Fabric, which refuses it only when asked for a token (and stops the chain).
    let fake = FakeManagedIdentity::start(FakeClock::new()).await;
    let env = Env::from_pairs([
        ("MSI_ENDPOINT", format!("{}/cloudshell", fake.base)),
        ("AZURE_CLIENT_ID", "c-123".to_owned()),
    ]);
    let credential = default_credential(&env, &closed_loopback_base().await).unwrap();
    assert_eq!(get(&credential).await.unwrap().token.expose(), "mi-token-1");
    assert_eq!(fake.requests()[0].form["client_id"], "c-123");

    let service_fabric = FakeManagedIdentity::start_service_fabric(FakeClock::new()).await;
    let env = Env::from_pairs([
        ("IDENTITY_ENDPOINT", format!("{}/metadata/identity/oauth2/token", service_fabric.base)),
        ("IDENTITY_HEADER", FakeManagedIdentity::SECRET.to_owned()),
        ("IDENTITY_SERVER_THUMBPRINT", service_fabric.thumbprint.clone().unwrap()),
        ("AZURE_CLIENT_ID", "c-123".to_owned()),
    ]);
    let credential = default_credential(&env, &closed_loopback_base().await).unwrap();
    let error = get(&credential).await.unwrap_err();
    assert!(
        matches!(&error, Error::InvalidConfig(m) if m.contains("cannot be selected on Service Fabric") && !m.contains("CliCredential")),
        "{error:?}"
    );
    assert_eq!(service_fabric.request_count(), 0);

    // Without AZURE_CLIENT_ID the chain gets Service Fabric's token.
    let env = Env::from_pairs([
        ("IDENTITY_ENDPOINT", format!("{}/metadata/identity/oauth2/token", service_fabric.base)),
        ("IDENTITY_HEADER", FakeManagedIdentity::SECRET.to_owned()),
        ("IDENTITY_SERVER_THUMBPRINT", service_fabric.thumbprint.clone().unwrap()),
    ]);
    let credential = default_credential(&env, &closed_loopback_base().await).unwrap();
    assert_eq!(get(&credential).await.unwrap().token.expose(), "mi-token-1");
}

#[tokio::test]
async fn environment_credential_failure_stops_the_chain() {
    let clock = FakeClock::new();
    let entra = FakeEntra::start(clock.clone()).await;
    entra.register_secret("app", "right");
    let imds = FakeManagedIdentity::start(clock.clone()).await;
    let env = Env::from_pairs([
        ("AZURE_TENANT_ID", "tenant"),
        ("AZURE_CLIENT_ID", "app"),
        ("AZURE_CLIENT_SECRET", "wrong"),
        ("AZURE_AUTHORITY_HOST", entra.authority.as_str()),
    ]);
    let credential = DefaultAzureCredential::with_clock(&env, options(&imds.base), clock).unwrap();
    let error = get(&credential).await.unwrap_err();
    assert!(
        matches!(&error, Error::Authentication { status: Some(401), description, .. }
            if description.contains("\tEnvironmentCredential: authentication failed: invalid_client: AADSTS7000215")),
        "{error:?}"
    );
    assert_eq!(imds.request_count(), 0, "the chain stopped before managed identity");
}

#[test]
fn azure_token_credentials_values() {
    let parse = |value: &str| Selection::parse(Some(value));
    assert_eq!(Selection::parse(None).unwrap(), Selection::All);
    assert_eq!(parse("").unwrap(), Selection::All);
    assert_eq!(parse("dev").unwrap(), Selection::Dev);
    assert_eq!(parse(" PROD ").unwrap(), Selection::Prod);
    assert_eq!(parse("EnvironmentCredential").unwrap(), Selection::Only(Kind::Environment));
    assert_eq!(
        parse("workloadidentitycredential").unwrap(),
        Selection::Only(Kind::WorkloadIdentity)
    );
    assert_eq!(parse("ManagedIdentityCredential").unwrap(), Selection::Only(Kind::ManagedIdentity));
    assert_eq!(parse("AzureCliCredential").unwrap(), Selection::Only(Kind::Cli));
    assert_eq!(parse("CliCredential").unwrap(), Selection::Only(Kind::Cli));
    for bad in ["production", "VisualStudioCodeCredential", "dev,prod"] {
        assert!(matches!(parse(bad), Err(Error::InvalidConfig(m)) if m.contains(bad)), "{bad}");
    }
}

#[tokio::test]
async fn azure_token_credentials_narrows_the_chain() {
    let closed = closed_loopback_base().await;
    let names = |value: &str| {
        let env = Env::from_pairs([("AZURE_TOKEN_CREDENTIALS", value)]);
        default_credential(&env, &closed).map(|credential| credential.source_names())
    };
    let all = [
        "EnvironmentCredential",
        "WorkloadIdentityCredential",
        "ManagedIdentityCredential",
        "CliCredential",
    ];
    assert_eq!(names("").unwrap(), all);
    assert_eq!(names("dev").unwrap(), ["CliCredential"]);
    assert_eq!(names("prod").unwrap(), all[..3]);
    assert_eq!(names("WorkloadIdentityCredential").unwrap(), ["WorkloadIdentityCredential"]);
    assert_eq!(names("AzureCliCredential").unwrap(), ["CliCredential"]);
    assert!(matches!(names("nonsense"), Err(Error::InvalidConfig(_))));
}

#[tokio::test]
async fn managed_identity_named_alone_is_not_probed() {
    // Probed (whole chain): a dead endpoint is "unavailable". Named alone: it is an error of its
    // own, as azure-identity does, since the user said this is where tokens come from.
    let closed = closed_loopback_base().await;
    let env = Env::from_pairs([("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")]);
    let credential = default_credential(&env, &closed).unwrap();
    let error = get(&credential).await.unwrap_err();
    assert!(
        matches!(&error, Error::Http(m) if m.contains("\tManagedIdentityCredential: http: ")),
        "{error:?}"
    );
}
