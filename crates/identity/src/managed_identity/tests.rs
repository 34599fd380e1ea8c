//! Tests of [`ManagedIdentityCredential`] against [`FakeManagedIdentity`], a fake of IMDS, App
//! Service, Azure Arc, the legacy endpoint and Cloud Shell over plain HTTP, and of Service Fabric
//! over HTTPS with a self-signed certificate, on loopback.
//!
//! Safety: no test may send a request to 169.254.169.254. Every credential here is built by
//! [`new_credential`] or [`credential_with`], which always inject a loopback IMDS base, and
//! environments name loopback endpoints only. Detection is told that no Azure Arc agent is
//! installed unless a test says otherwise, so the machine running the tests does not matter.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::FakeClock;
use crate::env::Env;
use crate::managed_identity::{
    Context, DEFAULT_ARC_KEY_DIRECTORY, DEFAULT_IMDS_ENDPOINT, ImdsRetryOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, ManagedIdentityId,
    ManagedIdentitySource, detect_source, imds_base, retry_delay,
};
use crate::testing::{FakeManagedIdentity, PKI, closed_loopback_base, hex};
use crate::{AccessToken, Error, TokenCredential, TokenRequestOptions};

const VAULT: &str = "https://vault.azure.net/.default";
const START: i64 = FakeClock::START_UNIX_SECS;
const SECRET: &str = FakeManagedIdentity::SECRET;

/// Retries that wait a millisecond instead of seconds.
fn fast_retry() -> ImdsRetryOptions {
    ImdsRetryOptions {
        max_retries: 5,
        backoff_factor: Duration::from_millis(1),
        gone_backoff_factor: Duration::from_millis(1),
        total_delay_max: Duration::from_secs(5),
    }
}

/// A credential whose IMDS base is always the loopback `imds` (never the default address).
fn new_credential(
    env: &Env,
    id: ManagedIdentityId,
    imds: &str,
    probe_imds: bool,
    clock: &Arc<FakeClock>,
) -> Result<ManagedIdentityCredential, Error> {
    let options = ManagedIdentityCredentialOptions {
        imds_endpoint: Some(imds.to_owned()),
        retry: fast_retry(),
        probe_imds,
        ..ManagedIdentityCredentialOptions::default()
    };
    credential_with(env, id, options, Context::default(), clock)
}

/// A credential built with `options` (whose IMDS base must be loopback) and `context`.
fn credential_with(
    env: &Env,
    id: ManagedIdentityId,
    options: ManagedIdentityCredentialOptions,
    context: Context,
    clock: &Arc<FakeClock>,
) -> Result<ManagedIdentityCredential, Error> {
    let imds = options.imds_endpoint.as_deref().expect("tests name the IMDS base");
    assert!(imds.starts_with("http://127.0.0.1:"), "tests use loopback only: {imds}");
    ManagedIdentityCredential::with_context(env, id, &options, clock.clone(), context)
}

async fn get(credential: &ManagedIdentityCredential, scope: &str) -> Result<AccessToken, Error> {
    credential.get_token(&[scope], &TokenRequestOptions::default()).await
}

async fn setup() -> (FakeManagedIdentity, Arc<FakeClock>) {
    let clock = FakeClock::new();
    (FakeManagedIdentity::start(clock.clone()).await, clock)
}

#[track_caller]
fn check_source(pairs: &[(&str, &str)], expected: ManagedIdentitySource) {
    let env = Env::from_pairs(pairs.iter().copied());
    assert_eq!(detect_source(&env, Context::default()), expected, "{pairs:?}");
}

#[test]
fn source_detection_follows_the_sdk_order() {
    use ManagedIdentitySource::*;
    let e = ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token");
    let h = ("IDENTITY_HEADER", "h");
    let t = ("IDENTITY_SERVER_THUMBPRINT", "AB");
    let i = ("IMDS_ENDPOINT", "http://127.0.0.1:2");
    let m = ("MSI_ENDPOINT", "http://127.0.0.1:3/msi");
    let s = ("MSI_SECRET", "s");
    check_source(&[e, h, t, i, m, s], ServiceFabric);
    check_source(&[e, h, i, m, s], AppService);
    check_source(&[e, i, m, s], AzureArc);
    check_source(&[e, m, s], LegacyMsi);
    check_source(&[m, s], LegacyMsi);
    check_source(&[m], CloudShell);
    check_source(&[s], Imds);
    check_source(&[h, t], Imds);
    check_source(&[], Imds);
    // Empty values count as unset.
    check_source(&[("IDENTITY_ENDPOINT", ""), h, m], CloudShell);
    // Workload identity needs its three variables, and comes after the endpoint variables.
    let a = ("AZURE_AUTHORITY_HOST", "https://127.0.0.1:4");
    let tenant = ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47");
    let f = ("AZURE_FEDERATED_TOKEN_FILE", "/tmp/token");
    check_source(&[a, tenant, f], WorkloadIdentity);
    check_source(&[tenant, f], Imds);
    check_source(&[a, f], Imds);
    check_source(&[a, tenant], Imds);
    check_source(&[m, a, tenant, f], CloudShell);
    check_source(&[e, h, a, tenant, f], AppService);
    // A default chain without its workload identity credential leaves it out here too.
    let excluded = Context { exclude_workload_identity: true, ..Context::default() };
    assert_eq!(detect_source(&Env::from_pairs([a, tenant, f]), excluded), Imds);

    // An installed Azure Arc agent comes after every variable and before IMDS.
    let with_agent = |pairs: &[(&str, &str)]| {
        let context = Context { arc_agent_installed: true, ..Context::default() };
        detect_source(&Env::from_pairs(pairs.iter().copied()), context)
    };
    assert_eq!(with_agent(&[]), AzureArc);
    assert_eq!(with_agent(&[a, tenant, f]), WorkloadIdentity);
    assert_eq!(with_agent(&[s]), AzureArc);
    assert_eq!(with_agent(&[m]), CloudShell);
    assert_eq!(with_agent(&[m, s]), LegacyMsi);
    assert_eq!(with_agent(&[e, h]), AppService);
    assert_eq!(with_agent(&[e, h, t]), ServiceFabric);
}

#[test]
fn imds_base_is_the_option_then_the_variable_then_the_default() {
    // Pure function: nothing is sent, so naming the default address is safe here.
    let pod = Env::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:50342")]);
    assert_eq!(imds_base(&pod, Some("http://127.0.0.1:9")), "http://127.0.0.1:9");
    assert_eq!(imds_base(&pod, None), "http://127.0.0.1:50342");
    assert_eq!(imds_base(&Env::default(), None), DEFAULT_IMDS_ENDPOINT);
    assert_eq!(DEFAULT_IMDS_ENDPOINT, "http://169.254.169.254");
}

#[tokio::test]
async fn imds_request_has_the_sdk_shape_and_string_fields_parse() {
    let (fake, clock) = setup().await;
    let credential =
        new_credential(&Env::default(), ManagedIdentityId::System, &fake.base, false, &clock)
            .unwrap();
    assert_eq!(credential.source(), ManagedIdentitySource::Imds);

    let token = get(&credential, VAULT).await.unwrap();

    assert_eq!(token.token.expose(), "mi-token-1");
    assert_eq!(token.expires_on, START + 86_399);
    // A day-long token is refreshed at half-life.
    assert_eq!(token.refresh_on, Some(START + 86_399 / 2));
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/metadata/identity/oauth2/token");
    assert_eq!(requests[0].headers["metadata"], "true");
    let query: Vec<(&str, &str)> =
        requests[0].query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(query, [("api-version", "2018-02-01"), ("resource", "https://vault.azure.net")]);
}

#[tokio::test]
async fn imds_number_fields_and_trailing_slash_resources_work_too() {
    let (fake, clock) = setup().await;
    fake.script(
        200,
        &format!(r#"{{"access_token":"n","expires_in":3600,"expires_on":{}}}"#, START + 3600),
    );
    let credential =
        new_credential(&Env::default(), ManagedIdentityId::System, &fake.base, false, &clock)
            .unwrap();
    let token = get(&credential, "https://management.azure.com//.default").await.unwrap();
    assert_eq!(token.expires_on, START + 3600);
    assert_eq!(token.refresh_on, Some(START + 3600 - 300));
    assert_eq!(fake.requests()[0].query["resource"], "https://management.azure.com/");
}

#[tokio::test]
async fn each_source_sends_its_selector_and_secret() {
    // Goal: user-assigned selection is spelled as each protocol expects. Method: one request per
    // (source, selector) against the fake, which refuses a missing or wrong secret header.
    let (fake, clock) = setup().await;
    let app_service = Env::from_pairs([
        ("IDENTITY_ENDPOINT", format!("{}/msi/token", fake.base)),
        ("IDENTITY_HEADER", SECRET.to_owned()),
    ]);
    let legacy = Env::from_pairs([
        ("MSI_ENDPOINT", format!("{}/msi/token", fake.base)),
        ("MSI_SECRET", SECRET.to_owned()),
    ]);
    let cases = [
        (Env::default(), ManagedIdentityId::ClientId("c1".into()), "client_id", "c1"),
        (Env::default(), ManagedIdentityId::ObjectId("o1".into()), "object_id", "o1"),
        (Env::default(), ManagedIdentityId::ResourceId("/r/1".into()), "msi_res_id", "/r/1"),
        (app_service.clone(), ManagedIdentityId::ClientId("c2".into()), "client_id", "c2"),
        (app_service.clone(), ManagedIdentityId::ObjectId("o2".into()), "object_id", "o2"),
        (app_service.clone(), ManagedIdentityId::ResourceId("/r/2".into()), "mi_res_id", "/r/2"),
        (legacy.clone(), ManagedIdentityId::ClientId("c3".into()), "clientid", "c3"),
    ];
    for (env, id, name, value) in cases {
        let credential = new_credential(&env, id.clone(), &fake.base, false, &clock).unwrap();
        get(&credential, VAULT).await.unwrap_or_else(|error| panic!("{id:?}: {error}"));
        let request = fake.requests().pop().unwrap();
        assert_eq!(request.query.get(name).map(String::as_str), Some(value), "{id:?}");
        assert_eq!(request.query["resource"], "https://vault.azure.net", "{id:?}");
    }
    let requests = fake.requests();
    assert_eq!(requests[3].query["api-version"], "2019-08-01");
    assert_eq!(requests[3].headers["x-identity-header"], SECRET);
    // MSAL Python adds it for Azure Automation; App Service ignores it.
    assert_eq!(requests[3].headers["metadata"], "true");
    assert_eq!(requests[6].query["api-version"], "2017-09-01");
    assert_eq!(requests[6].headers["secret"], SECRET);
    assert!(!requests[6].headers.contains_key("metadata"), "{:?}", requests[6]);
    assert!(requests.iter().all(|request| request.query.len() == 3), "{requests:?}");

    // System identity: no selector at all.
    let credential =
        new_credential(&app_service, ManagedIdentityId::System, &fake.base, false, &clock).unwrap();
    assert_eq!(credential.source(), ManagedIdentitySource::AppService);
    get(&credential, VAULT).await.unwrap();
    assert_eq!(fake.requests().pop().unwrap().query.len(), 2);
}

#[tokio::test]
async fn cloud_shell_posts_the_resource_as_a_form() {
    let (fake, clock) = setup().await;
    let env = Env::from_pairs([("MSI_ENDPOINT", format!("{}/cloudshell", fake.base))]);
    let credential =
        new_credential(&env, ManagedIdentityId::System, &fake.base, false, &clock).unwrap();
    assert_eq!(credential.source(), ManagedIdentitySource::CloudShell);
    get(&credential, VAULT).await.unwrap();
    let request = fake.requests().pop().unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.form["resource"], "https://vault.azure.net");
    assert_eq!(request.headers["metadata"], "true");
}

#[tokio::test]
async fn app_service_sample_and_legacy_date_responses_parse() {
    let (fake, clock) = setup().await;
    let app_service = Env::from_pairs([
        ("IDENTITY_ENDPOINT", format!("{}/msi/token", fake.base)),
        ("IDENTITY_HEADER", SECRET.to_owned()),
    ]);
    // The App Service documentation's sample: no expires_in, expires_on an epoch string.
    fake.script(
        200,
        &format!(
            r#"{{"access_token":"a","expires_on":"{}","resource":"https://vault.azure.net","token_type":"Bearer","client_id":"5E29463D-71DA-4FE0-8E69-999B57DB23B0"}}"#,
            START + 7200
        ),
    );
    let credential =
        new_credential(&app_service, ManagedIdentityId::System, &fake.base, false, &clock).unwrap();
    assert_eq!(get(&credential, VAULT).await.unwrap().expires_on, START + 7200);

    // The legacy endpoint's date strings, Linux and Windows flavours: 2024-01-01T06:00:00Z.
    let legacy = Env::from_pairs([
        ("MSI_ENDPOINT", format!("{}/msi/token", fake.base)),
        ("MSI_SECRET", SECRET.to_owned()),
    ]);
    for (scope, expires_on) in [
        ("https://a/.default", "01/01/2024 06:00:00 +00:00"),
        ("https://b/.default", "1/1/2024 6:00:00 AM +00:00"),
    ] {
        fake.script(
            200,
            &format!(r#"{{"access_token":"l","expires_on":"{expires_on}","token_type":"Bearer"}}"#),
        );
        let credential =
            new_credential(&legacy, ManagedIdentityId::System, &fake.base, false, &clock).unwrap();
        assert_eq!(get(&credential, scope).await.unwrap().expires_on, START + 6 * 3600);
    }
}

#[test]
fn retry_schedule_is_azure_identity_s() {
    let options = ImdsRetryOptions::default();
    let schedule = |status: u16| -> Vec<Duration> {
        (1..=options.max_retries).map(|n| retry_delay(&options, n, status, None)).collect()
    };
    let millis =
        |values: &[u64]| values.iter().map(|&ms| Duration::from_millis(ms)).collect::<Vec<_>>();
    assert_eq!(schedule(500), millis(&[0, 1_600, 3_200, 6_400, 12_800]));
    assert_eq!(schedule(404), schedule(429));
    assert_eq!(schedule(410), millis(&[0, 5_000, 10_000, 20_000, 40_000]));
    // IMDS promises to be back within 70 s after a 410; the retries cover that.
    assert!(schedule(410).iter().sum::<Duration>() >= Duration::from_secs(70));
    assert!(schedule(410).iter().sum::<Duration>() <= options.total_delay_max);
    // Retry-After lengthens a wait, never shortens it.
    assert_eq!(retry_delay(&options, 2, 429, Some(Duration::from_secs(3))), Duration::from_secs(3));
    assert_eq!(
        retry_delay(&options, 3, 429, Some(Duration::from_secs(1))),
        Duration::from_millis(3_200)
    );
}

#[tokio::test]
async fn imds_500_is_retried_then_succeeds() {
    let (fake, clock) = setup().await;
    fake.script(500, r#"{"error":"unknown","error_description":"Failed to retrieve token from the Active directory"}"#);
    fake.script(410, "");
    let credential =
        new_credential(&Env::default(), ManagedIdentityId::System, &fake.base, false, &clock)
            .unwrap();
    assert_eq!(get(&credential, VAULT).await.unwrap().token.expose(), "mi-token-3");
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn imds_retries_are_bounded() {
    let (fake, clock) = setup().await;
    for _ in 0..10 {
        fake.script(503, r#"{"error":"service_unavailable","error_description":"busy"}"#);
    }
    let credential =
        new_credential(&Env::default(), ManagedIdentityId::System, &fake.base, false, &clock)
            .unwrap();
    let error = get(&credential, VAULT).await.unwrap_err();
    assert!(
        matches!(&error, Error::Authentication { status: Some(503), error, .. } if error == "service_unavailable"),
        "{error:?}"
    );
    assert_eq!(fake.request_count(), 6, "one request and five retries");
}

#[tokio::test]
async fn imds_retries_stop_at_the_total_delay() {
    let (fake, clock) = setup().await;
    for _ in 0..10 {
        fake.script(500, "");
    }
    let options = ManagedIdentityCredentialOptions {
        imds_endpoint: Some(fake.base.clone()),
        retry: ImdsRetryOptions {
            // Waits 0, 20, 40... ms: only the first fits in 15 ms.
            backoff_factor: Duration::from_millis(10),
            total_delay_max: Duration::from_millis(15),
            ..fast_retry()
        },
        ..ManagedIdentityCredentialOptions::default()
    };
    let credential = ManagedIdentityCredential::with_clock(
        &Env::default(),
        ManagedIdentityId::System,
        &options,
        clock.clone(),
    )
    .unwrap();
    let error = get(&credential, VAULT).await.unwrap_err();
    assert!(matches!(&error, Error::Http(message) if message.contains("500")), "{error:?}");
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn imds_400_means_no_such_identity_and_is_not_retried() {
    let (fake, clock) = setup().await;
    fake.script(400, r#"{"error":"invalid_request","error_description":"Identity not found"}"#);
    let credential = new_credential(
        &Env::default(),
        ManagedIdentityId::ClientId("nope".into()),
        &fake.base,
        false,
        &clock,
    )
    .unwrap();
    let error = get(&credential, VAULT).await.unwrap_err();
    let Error::CredentialUnavailable(message) = &error else { panic!("{error:?}") };
    assert!(message.contains("has not been assigned"), "{message}");
    assert!(message.contains("invalid_request: Identity not found"), "{message}");
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn imds_answer_that_is_not_json_means_this_is_not_imds() {
    let (fake, clock) = setup().await;
    fake.script(200, "<html>captive portal</html>");
    let credential =
        new_credential(&Env::default(), ManagedIdentityId::System, &fake.base, false, &clock)
            .unwrap();
    let error = get(&credential, VAULT).await.unwrap_err();
    assert!(
        matches!(&error, Error::CredentialUnavailable(m) if m.contains("not JSON")),
        "{error:?}"
    );
}

#[tokio::test]
async fn probe_without_an_endpoint_is_unavailable_but_a_plain_request_is_an_http_error() {
    let clock = FakeClock::new();
    let closed = closed_loopback_base().await;
    let probed =
        new_credential(&Env::default(), ManagedIdentityId::System, &closed, true, &clock).unwrap();
    let error = get(&probed, VAULT).await.unwrap_err();
    assert!(
        matches!(&error, Error::CredentialUnavailable(m) if m.contains("no response from the IMDS endpoint")),
        "{error:?}"
    );
    let plain =
        new_credential(&Env::default(), ManagedIdentityId::System, &closed, false, &clock).unwrap();
    let error = get(&plain, VAULT).await.unwrap_err();
    assert!(matches!(&error, Error::Http(_)), "{error:?}");
}

#[tokio::test]
async fn probe_treats_403_unreachable_as_unavailable() {
    let (fake, clock) = setup().await;
    fake.script(
        403,
        "connecting to 169.254.169.254:80: connecting to 169.254.169.254:80: dial tcp 169.254.169.254:80: connectex: A socket operation was attempted to an unreachable network.",
    );
    let credential =
        new_credential(&Env::default(), ManagedIdentityId::System, &fake.base, true, &clock)
            .unwrap();
    let error = get(&credential, VAULT).await.unwrap_err();
    assert!(
        matches!(&error, Error::CredentialUnavailable(m) if m.contains("unreachable")),
        "{error:?}"
    );
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn probe_answered_at_all_shows_the_endpoint_and_normal_requests_follow() {
    // Goal: any HTTP answer to the probe counts as "IMDS is here". Method: the probe gets a 500
    // (retryable), after which the normal request with retries gets a token; a later request
    // for another resource is sent without a probe.
    let (fake, clock) = setup().await;
    fake.script(500, "");
    let credential =
        new_credential(&Env::default(), ManagedIdentityId::System, &fake.base, true, &clock)
            .unwrap();
    assert_eq!(get(&credential, VAULT).await.unwrap().token.expose(), "mi-token-2");
    assert_eq!(fake.request_count(), 2);
    assert!(format!("{credential:?}").contains("imds_available: true"));

    // The probe's own token is used when it gets one.
    let credential =
        new_credential(&Env::default(), ManagedIdentityId::System, &fake.base, true, &clock)
            .unwrap();
    assert_eq!(get(&credential, VAULT).await.unwrap().token.expose(), "mi-token-3");
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn probe_is_skipped_when_the_pod_identity_variable_names_the_endpoint() {
    // As azure-identity: AZURE_POD_IDENTITY_AUTHORITY_HOST is explicit configuration, so even
    // inside a chain a dead endpoint is an error, not "unavailable".
    let clock = FakeClock::new();
    let closed = closed_loopback_base().await;
    let env = Env::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", closed.as_str())]);
    let options = ManagedIdentityCredentialOptions {
        probe_imds: true,
        retry: fast_retry(),
        ..ManagedIdentityCredentialOptions::default()
    };
    let credential = ManagedIdentityCredential::with_clock(
        &env,
        ManagedIdentityId::System,
        &options,
        clock.clone(),
    )
    .unwrap();
    assert!(format!("{credential:?}").contains(&closed), "{credential:?}");
    let error = get(&credential, VAULT).await.unwrap_err();
    assert!(matches!(&error, Error::Http(_)), "{error:?}");
}

#[tokio::test]
async fn impossible_configurations_are_refused_at_construction() {
    let (fake, clock) = setup().await;
    let cloud_shell = Env::from_pairs([("MSI_ENDPOINT", format!("{}/cloudshell", fake.base))]);
    let legacy = Env::from_pairs([
        ("MSI_ENDPOINT", format!("{}/msi/token", fake.base)),
        ("MSI_SECRET", SECRET.to_owned()),
    ]);
    let not_a_url = Env::from_pairs([
        ("IDENTITY_ENDPOINT", "localhost:42356/msi/token"),
        ("IDENTITY_HEADER", "h"),
    ]);
    let wrong_scheme = Env::from_pairs([("MSI_ENDPOINT", "ftp://127.0.0.1/x")]);
    let thumbprint = "0123456789abcdef0123456789abcdef01234567";
    let service_fabric = |endpoint: &str, thumbprint: &str| {
        Env::from_pairs([
            ("IDENTITY_ENDPOINT", endpoint),
            ("IDENTITY_HEADER", "h"),
            ("IDENTITY_SERVER_THUMBPRINT", thumbprint),
        ])
    };
    let arc_not_a_url =
        Env::from_pairs([("IDENTITY_ENDPOINT", "localhost:40342"), ("IMDS_ENDPOINT", "x")]);
    for (env, id) in [
        (&cloud_shell, ManagedIdentityId::ClientId("c".into())),
        (&legacy, ManagedIdentityId::ObjectId("o".into())),
        (&legacy, ManagedIdentityId::ResourceId("/r".into())),
        (&not_a_url, ManagedIdentityId::System),
        (&wrong_scheme, ManagedIdentityId::System),
        (&Env::default(), ManagedIdentityId::ClientId(" ".into())),
        // MSAL Python: Service Fabric over https only, with a SHA-1 thumbprint.
        (&service_fabric("http://127.0.0.1:2377/t", thumbprint), ManagedIdentityId::System),
        (&service_fabric("https://127.0.0.1:2377/t", "not hex"), ManagedIdentityId::System),
        (&service_fabric("https://127.0.0.1:2377/t", &thumbprint[1..]), ManagedIdentityId::System),
        (&arc_not_a_url, ManagedIdentityId::System),
    ] {
        let error = new_credential(env, id.clone(), &fake.base, false, &clock).unwrap_err();
        assert!(matches!(error, Error::InvalidConfig(_)), "{env:?} {id:?}: {error:?}");
    }
}

#[tokio::test]
async fn tokens_are_cached_per_resource_and_refreshed_at_half_life() {
    let (fake, clock) = setup().await;
    let credential =
        new_credential(&Env::default(), ManagedIdentityId::System, &fake.base, false, &clock)
            .unwrap();
    let first = get(&credential, VAULT).await.unwrap();
    assert_eq!(get(&credential.clone(), VAULT).await.unwrap(), first);
    assert_eq!(fake.request_count(), 1);
    get(&credential, "https://storage.azure.com/.default").await.unwrap();
    assert_eq!(fake.request_count(), 2);

    clock.advance_secs(86_399 / 2);
    assert_eq!(get(&credential, VAULT).await.unwrap().token.expose(), "mi-token-3");

    // A failed refresh keeps serving the still-valid token.
    clock.advance_secs(86_399 / 2);
    fake.script(400, r#"{"error":"invalid_request","error_description":"Identity not found"}"#);
    assert_eq!(get(&credential, VAULT).await.unwrap().token.expose(), "mi-token-3");
    assert_eq!(fake.request_count(), 4);
}

#[tokio::test]
async fn a_thousand_concurrent_callers_cause_one_request() {
    // Goal: single flight across clones. Method: the fake holds the first request until every
    // caller has been started and has queued (current-thread runtime: the spawned tasks run
    // while this task awaits), then answers once.
    let (fake, clock) = setup().await;
    let credential =
        new_credential(&Env::default(), ManagedIdentityId::System, &fake.base, true, &clock)
            .unwrap();
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
        assert_eq!(task.await.unwrap().unwrap().token.expose(), "mi-token-1");
    }
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn debug_output_holds_no_secret_or_token() {
    let (fake, clock) = setup().await;
    let env = Env::from_pairs([
        ("IDENTITY_ENDPOINT", format!("{}/msi/token", fake.base)),
        ("IDENTITY_HEADER", SECRET.to_owned()),
    ]);
    let credential =
        new_credential(&env, ManagedIdentityId::System, &fake.base, false, &clock).unwrap();
    let token = get(&credential, VAULT).await.unwrap();
    let debug = format!("{credential:?} {token:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(!debug.contains("mi-token"), "{debug}");
    assert!(debug.contains("AppService"), "{debug}");
}

/// A fresh directory under the system's temporary directory.
fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An Azure Arc test bed: the fake endpoint, a key directory holding one valid key file that the
/// fake's challenge names, and the variables of an Arc machine.
struct ArcBed {
    fake: FakeManagedIdentity,
    clock: Arc<FakeClock>,
    key_directory: PathBuf,
    key_file: PathBuf,
    env: Env,
}

const ARC_KEY: &str = "arc-key-0123456789";

async fn arc_bed() -> ArcBed {
    let (fake, clock) = setup().await;
    let key_directory = temp_dir("identity-arc-tokens");
    let key_file = key_directory.join(format!("{}.key", uuid::Uuid::new_v4().simple()));
    std::fs::write(&key_file, ARC_KEY).unwrap();
    fake.arc_challenge(key_file.to_str().unwrap(), ARC_KEY);
    let env = Env::from_pairs([
        ("IDENTITY_ENDPOINT", format!("{}/metadata/identity/oauth2/token", fake.base)),
        ("IMDS_ENDPOINT", fake.base.clone()),
    ]);
    ArcBed { fake, clock, key_directory, key_file, env }
}

impl ArcBed {
    fn credential(&self, id: ManagedIdentityId) -> ManagedIdentityCredential {
        let options = ManagedIdentityCredentialOptions {
            imds_endpoint: Some(self.fake.base.clone()),
            arc_key_directory: self.key_directory.clone(),
            ..ManagedIdentityCredentialOptions::default()
        };
        credential_with(&self.env, id, options, Context::default(), &self.clock).unwrap()
    }
}

#[tokio::test]
async fn arc_answers_the_challenge_with_the_key_file() {
    // Goal: the two requests of the Arc flow are exactly the SDKs'. Method: the fake answers the
    // first with 401 naming the key file and accepts only `Basic <contents>` on the second.
    let bed = arc_bed().await;
    let credential = bed.credential(ManagedIdentityId::System);
    assert_eq!(credential.source(), ManagedIdentitySource::AzureArc);

    let token = get(&credential, VAULT).await.unwrap();

    assert_eq!(token.token.expose(), "mi-token-2");
    assert_eq!(token.expires_on, START + 86_399);
    let requests = bed.fake.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/metadata/identity/oauth2/token");
        let query: Vec<(&str, &str)> =
            request.query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(query, [("api-version", "2020-06-01"), ("resource", "https://vault.azure.net")]);
        assert_eq!(request.headers["metadata"], "true");
    }
    assert!(!requests[0].headers.contains_key("authorization"), "{:?}", requests[0]);
    assert_eq!(requests[1].headers["authorization"], format!("Basic {ARC_KEY}"));

    // The next resource goes through the challenge again (a key file is good for one request).
    get(&credential, "https://storage.azure.com/.default").await.unwrap();
    assert_eq!(bed.fake.request_count(), 4);
}

#[tokio::test]
async fn arc_key_directory_defaults_to_the_linux_agent_s_and_the_agent_alone_selects_arc() {
    assert_eq!(DEFAULT_ARC_KEY_DIRECTORY, "/var/opt/azcmagent/tokens");
    assert_eq!(
        ManagedIdentityCredentialOptions::default().arc_key_directory,
        Path::new("/var/opt/azcmagent/tokens")
    );
    // With the agent installed and no variables, the SDKs' fixed endpoint is used (no request
    // is sent here).
    let clock = FakeClock::new();
    let closed = closed_loopback_base().await;
    let options = ManagedIdentityCredentialOptions {
        imds_endpoint: Some(closed),
        ..ManagedIdentityCredentialOptions::default()
    };
    let context = Context { arc_agent_installed: true, ..Context::default() };
    let credential =
        credential_with(&Env::default(), ManagedIdentityId::System, options, context, &clock)
            .unwrap();
    assert_eq!(credential.source(), ManagedIdentitySource::AzureArc);
    let debug = format!("{credential:?}");
    assert!(debug.contains("\"http://localhost:40342/metadata/identity/oauth2/token\""), "{debug}");
}

#[tokio::test]
async fn arc_refuses_key_files_it_must_not_read() {
    // Goal: the credential reads only a `.key` file of at most 4096 bytes directly inside the
    // key directory, whatever the endpoint names. Method: the fake's challenge names each bad
    // path in turn; the credential must fail without a second request (so nothing was sent).
    let bed = arc_bed().await;
    let outside = temp_dir("identity-arc-outside");
    let outside_key = outside.join("stolen.key");
    std::fs::write(&outside_key, "not for you").unwrap();
    let wrong_extension = bed.key_directory.join("token.txt");
    std::fs::write(&wrong_extension, ARC_KEY).unwrap();
    let too_large = bed.key_directory.join("large.key");
    std::fs::write(&too_large, "k".repeat(4097)).unwrap();
    let link = bed.key_directory.join("link.key");
    std::os::unix::fs::symlink(&outside_key, &link).unwrap();
    let sub_directory = bed.key_directory.join("sub");
    std::fs::create_dir(&sub_directory).unwrap();
    std::fs::write(sub_directory.join("nested.key"), ARC_KEY).unwrap();
    let dot_dot = format!("{}/../{}/stolen.key", bed.key_directory.display(), {
        outside.file_name().unwrap().to_str().unwrap()
    });
    let directory = bed.key_directory.display().to_string();

    let cases: Vec<(String, &str)> = vec![
        (outside_key.display().to_string(), "is not in"),
        (dot_dot, "is not in"),
        (sub_directory.join("nested.key").display().to_string(), "is not in"),
        (format!("{}.key", uuid::Uuid::new_v4().simple()), "is not in"),
        (wrong_extension.display().to_string(), "does not have the .key extension"),
        (format!("{directory}/.key"), "does not have the .key extension"),
        (too_large.display().to_string(), "is larger than 4096 bytes"),
        (link.display().to_string(), "outside"),
        (format!("{directory}/missing.key"), "does not exist"),
    ];
    let credential = bed.credential(ManagedIdentityId::System);
    for (number, (realm, reason)) in cases.iter().enumerate() {
        bed.fake.arc_challenge(realm, ARC_KEY);
        let scope = format!("https://resource-{number}/.default");
        let error = get(&credential, &scope).await.unwrap_err();
        assert!(
            matches!(&error, Error::Http(m) if m.contains(reason) && m.contains("key file")),
            "{realm}: {error:?}"
        );
        let requests = bed.fake.requests();
        assert_eq!(requests.len(), number + 1, "{realm}: a second request was sent");
    }

    // At the limit exactly, the key is read and sent.
    let at_limit = bed.key_directory.join("limit.key");
    let key = "k".repeat(4096);
    std::fs::write(&at_limit, &key).unwrap();
    bed.fake.arc_challenge(at_limit.to_str().unwrap(), &key);
    get(&credential, VAULT).await.unwrap();
    assert_eq!(bed.fake.requests().pop().unwrap().headers["authorization"], format!("Basic {key}"));
}

#[tokio::test]
async fn arc_challenge_must_come_first_and_be_well_formed() {
    let bed = arc_bed().await;
    let credential = bed.credential(ManagedIdentityId::System);
    let token_body = format!(
        r#"{{"access_token":"a","expires_in":"3600","expires_on":"{}","token_type":"Bearer"}}"#,
        START + 3600
    );
    // A token without the challenge is refused (MSAL Python), and so is any other answer.
    bed.fake.script(200, &token_body);
    let error = get(&credential, "https://a/.default").await.unwrap_err();
    assert!(
        matches!(&error, Error::Http(m) if m.contains("without the 401 challenge")),
        "{error:?}"
    );
    bed.fake.script(500, r#"{"error":"server_error","error_description":"busy"}"#);
    let error = get(&credential, "https://b/.default").await.unwrap_err();
    assert!(
        matches!(&error, Error::Authentication { status: Some(500), error, .. } if error == "server_error"),
        "{error:?}"
    );
    // A 401 without a usable challenge.
    bed.fake.script(401, "");
    let error = get(&credential, "https://c/.default").await.unwrap_err();
    assert!(
        matches!(&error, Error::Http(m) if m.contains("without WWW-Authenticate")),
        "{error:?}"
    );
    let realm = bed.key_file.display().to_string();
    for challenge in [format!("Bearer realm={realm}"), "Basic realm=".to_owned(), realm.clone()] {
        bed.fake.script_with_headers(401, &[("www-authenticate", &challenge)], "");
        let error = get(&credential, "https://d/.default").await.unwrap_err();
        assert!(matches!(&error, Error::Http(m) if m.contains("not Basic realm")), "{error:?}");
    }
    // Case does not matter in the scheme and parameter name (MSAL Python).
    bed.fake.script_with_headers(401, &[("www-authenticate", &format!("BASIC Realm={realm}"))], "");
    get(&credential, "https://e/.default").await.unwrap();
    assert_eq!(bed.fake.request_count(), 8);
}

#[tokio::test]
async fn arc_user_assigned_identity_is_sent_and_must_be_echoed() {
    // Goal: as azure-identity 1.27, MSAL Python and MSAL Node: the selector is sent with the
    // IMDS spelling and a token that does not name the requested identity is refused.
    let bed = arc_bed().await;
    for (id, name, value) in [
        (ManagedIdentityId::ClientId("C1".into()), "client_id", "C1"),
        (ManagedIdentityId::ObjectId("o1".into()), "object_id", "o1"),
        (ManagedIdentityId::ResourceId("/r/1".into()), "msi_res_id", "/r/1"),
    ] {
        let credential = bed.credential(id.clone());
        get(&credential, VAULT).await.unwrap_or_else(|error| panic!("{id:?}: {error}"));
        let requests = bed.fake.requests();
        for request in &requests[requests.len() - 2..] {
            assert_eq!(request.query.get(name).map(String::as_str), Some(value), "{id:?}");
            assert_eq!(request.query.len(), 3, "{id:?}");
        }
    }

    // An older agent ignores the selector: its token names the system identity, or nobody.
    let credential = bed.credential(ManagedIdentityId::ClientId("c2".into()));
    for echo in [r#""client_id":"00000000-0000-0000-0000-00000000c11e","#, ""] {
        let realm = bed.key_file.display().to_string();
        bed.fake.script_with_headers(
            401,
            &[("www-authenticate", &format!("Basic realm={realm}"))],
            "",
        );
        bed.fake.script(
            200,
            &format!(
                r#"{{{echo}"access_token":"system","expires_in":"3600","expires_on":"{}","token_type":"Bearer"}}"#,
                START + 3600
            ),
        );
        let error = get(&credential, VAULT).await.unwrap_err();
        assert!(
            matches!(&error, Error::Http(m) if m.contains("did not confirm the requested user-assigned identity")),
            "{echo}: {error:?}"
        );
    }
    // The echo is compared without regard to case.
    let credential = bed.credential(ManagedIdentityId::ClientId("c2".into()));
    let realm = bed.key_file.display().to_string();
    bed.fake.script_with_headers(401, &[("www-authenticate", &format!("Basic realm={realm}"))], "");
    bed.fake.script(
        200,
        &format!(
            r#"{{"client_id":"C2","access_token":"ok","expires_in":"3600","expires_on":"{}"}}"#,
            START + 3600
        ),
    );
    assert_eq!(get(&credential, VAULT).await.unwrap().token.expose(), "ok");
}

/// The variables of a Service Fabric application whose endpoint is `fake`'s.
fn service_fabric_env(fake: &FakeManagedIdentity, header: &str, thumbprint: &str) -> Env {
    Env::from_pairs([
        ("IDENTITY_ENDPOINT", format!("{}/metadata/identity/oauth2/token", fake.base)),
        ("IDENTITY_HEADER", header.to_owned()),
        ("IDENTITY_SERVER_THUMBPRINT", thumbprint.to_owned()),
    ])
}

async fn service_fabric_setup()
-> (FakeManagedIdentity, Arc<FakeClock>, ManagedIdentityCredentialOptions) {
    let clock = FakeClock::new();
    let fake = FakeManagedIdentity::start_service_fabric(clock.clone()).await;
    let imds = closed_loopback_base().await;
    let options = ManagedIdentityCredentialOptions {
        imds_endpoint: Some(imds),
        ..ManagedIdentityCredentialOptions::default()
    };
    (fake, clock, options)
}

#[tokio::test]
async fn service_fabric_pins_the_thumbprint_and_sends_the_secret() {
    // Goal: the request is MSAL Python's, over TLS trusted only by the thumbprint. Method: the
    // fake serves a self-signed certificate for another host name; the thumbprint is given in
    // upper case with colons, which MSAL Python accepts.
    let (fake, clock, options) = service_fabric_setup().await;
    let thumbprint = fake.thumbprint.clone().unwrap();
    let spelled = thumbprint
        .as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).unwrap().to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(":");
    let env = service_fabric_env(&fake, SECRET, &spelled);
    let credential =
        credential_with(&env, ManagedIdentityId::System, options, Context::default(), &clock)
            .unwrap();
    assert_eq!(credential.source(), ManagedIdentitySource::ServiceFabric);

    let token = get(&credential, VAULT).await.unwrap();

    assert_eq!(token.token.expose(), "mi-token-1");
    // `expires_on` arrives as a number here.
    assert_eq!(token.expires_on, START + 86_399);
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/metadata/identity/oauth2/token");
    let query: Vec<(&str, &str)> =
        requests[0].query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        query,
        [("api-version", "2019-07-01-preview"), ("resource", "https://vault.azure.net")]
    );
    assert_eq!(requests[0].headers["secret"], SECRET);
    assert!(!requests[0].headers.contains_key("metadata"), "{:?}", requests[0]);

    // `expires_on` as a string works too.
    fake.script(
        200,
        &format!(
            r#"{{"token_type":"Bearer","access_token":"s","expires_on":"{}","resource":"https://b"}}"#,
            START + 600
        ),
    );
    assert_eq!(get(&credential, "https://b/.default").await.unwrap().expires_on, START + 600);
}

#[tokio::test]
async fn service_fabric_refuses_a_server_with_another_certificate() {
    // Goal: neither another self-signed certificate nor one a trusted CA issued passes; the
    // secret is never sent. Method: the thumbprint names a different certificate (the test
    // CA's); the fake must not receive any request.
    let (fake, clock, options) = service_fabric_setup().await;
    let other =
        hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &PKI.ca_der)
            .as_ref());
    assert_ne!(Some(&other), fake.thumbprint.as_ref());
    let env = service_fabric_env(&fake, SECRET, &other);
    let credential =
        credential_with(&env, ManagedIdentityId::System, options, Context::default(), &clock)
            .unwrap();
    let error = get(&credential, VAULT).await.unwrap_err();
    assert!(
        matches!(&error, Error::Http(m) if m.contains("not the one in IDENTITY_SERVER_THUMBPRINT")),
        "{error:?}"
    );
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn service_fabric_refuses_a_copied_certificate_without_its_key() {
    // Goal: pinning checks the handshake signature too, so presenting the pinned certificate is
    // not enough. Method: an impostor serves the real endpoint's certificate but signs with a
    // key of its own.
    let (real, clock, options) = service_fabric_setup().await;
    let impostor = FakeManagedIdentity::start_service_fabric_impostor(
        clock.clone(),
        real.certificate_der.clone().unwrap(),
    )
    .await;
    assert_eq!(impostor.thumbprint, real.thumbprint);
    let env = service_fabric_env(&impostor, SECRET, real.thumbprint.as_deref().unwrap());
    let credential =
        credential_with(&env, ManagedIdentityId::System, options, Context::default(), &clock)
            .unwrap();
    let error = get(&credential, VAULT).await.unwrap_err();
    assert!(matches!(&error, Error::Http(m) if m.contains("BadSignature")), "{error:?}");
    assert_eq!(impostor.request_count(), 0);
}

#[tokio::test]
async fn service_fabric_refuses_user_assigned_identities_at_the_request() {
    // As azure-identity 1.27: the identity is the cluster's choice. Refused when a token is
    // asked for, not when the credential is built, so a default chain still builds.
    let (fake, clock, options) = service_fabric_setup().await;
    let env = service_fabric_env(&fake, SECRET, fake.thumbprint.as_deref().unwrap());
    for id in [
        ManagedIdentityId::ClientId("c".into()),
        ManagedIdentityId::ObjectId("o".into()),
        ManagedIdentityId::ResourceId("/r".into()),
    ] {
        let credential =
            credential_with(&env, id.clone(), options.clone(), Context::default(), &clock).unwrap();
        let error = get(&credential, VAULT).await.unwrap_err();
        assert!(
            matches!(&error, Error::InvalidConfig(m) if m.contains("cannot be selected on Service Fabric")),
            "{id:?}: {error:?}"
        );
    }
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn service_fabric_errors_and_incomplete_tokens() {
    let (fake, clock, options) = service_fabric_setup().await;
    let thumbprint = fake.thumbprint.clone().unwrap();
    // A wrong secret: the fake answers as Service Fabric does, mapped as MSAL Python maps it.
    let env = service_fabric_env(&fake, "wrong", &thumbprint);
    let credential = credential_with(
        &env,
        ManagedIdentityId::System,
        options.clone(),
        Context::default(),
        &clock,
    )
    .unwrap();
    let error = get(&credential, VAULT).await.unwrap_err();
    assert_eq!(
        error,
        Error::Authentication {
            status: Some(401),
            error: "unauthorized_client".to_owned(),
            description: "SecretHeaderNotFound: Secret is not found in the request headers."
                .to_owned(),
        }
    );
    // MSAL Python needs `expires_on` and `token_type`.
    let env = service_fabric_env(&fake, SECRET, &thumbprint);
    let credential =
        credential_with(&env, ManagedIdentityId::System, options, Context::default(), &clock)
            .unwrap();
    for (scope, body, missing) in [
        (
            "https://a/.default",
            r#"{"access_token":"a","expires_in":3600,"token_type":"Bearer"}"#,
            "expires_on",
        ),
        ("https://b/.default", r#"{"access_token":"a","expires_on":1999999999}"#, "token_type"),
    ] {
        fake.script(200, body);
        let error = get(&credential, scope).await.unwrap_err();
        assert!(
            matches!(&error, Error::Http(m) if m.contains(&format!("has no {missing}"))),
            "{body}: {error:?}"
        );
    }
}

#[tokio::test]
async fn cloud_shell_inside_the_default_chain_passes_the_client_id_on() {
    // azure-identity skips Cloud Shell's refusal of a client id inside DefaultAzureCredential
    // and puts it in the form.
    let (fake, clock) = setup().await;
    let env = Env::from_pairs([("MSI_ENDPOINT", format!("{}/cloudshell", fake.base))]);
    let options = ManagedIdentityCredentialOptions {
        imds_endpoint: Some(fake.base.clone()),
        ..ManagedIdentityCredentialOptions::default()
    };
    let context = Context { within_default_chain: true, ..Context::default() };
    let credential = credential_with(
        &env,
        ManagedIdentityId::ClientId("c1".into()),
        options.clone(),
        context,
        &clock,
    )
    .unwrap();
    get(&credential, VAULT).await.unwrap();
    let request = fake.requests().pop().unwrap();
    assert_eq!(request.form["resource"], "https://vault.azure.net");
    assert_eq!(request.form["client_id"], "c1");
    assert_eq!(request.form.len(), 2);
    // Other selectors stay refused: the default chain passes a client id only.
    let error =
        credential_with(&env, ManagedIdentityId::ObjectId("o".into()), options, context, &clock)
            .unwrap_err();
    assert!(matches!(error, Error::InvalidConfig(_)), "{error:?}");
}

#[tokio::test]
async fn a_federated_token_file_is_exchanged_as_azure_identity_does() {
    // azure-identity's ManagedIdentityCredential hands a pod's federated token file (what Azure
    // Workload Identity's webhook sets) to a WorkloadIdentityCredential for AZURE_CLIENT_ID.
    let clock = FakeClock::new();
    let entra = crate::testing::FakeEntra::start(clock.clone()).await;
    let client_id = "3f9c2a1e-0000-4000-8000-000000000031";
    entra.register_federated(client_id, "header.claims.signature");
    let directory =
        std::env::temp_dir().join(format!("identity-mi-wi-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&directory).unwrap();
    let file = directory.join("token");
    std::fs::write(&file, "header.claims.signature\n").unwrap();
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let pairs = [
        ("AZURE_AUTHORITY_HOST", entra.authority.as_str()),
        ("AZURE_TENANT_ID", tenant),
        ("AZURE_FEDERATED_TOKEN_FILE", file.to_str().unwrap()),
    ];
    let options = ManagedIdentityCredentialOptions {
        imds_endpoint: Some(closed_loopback_base().await),
        client_options: PKI.client_options("https://authority.invalid"),
        ..ManagedIdentityCredentialOptions::default()
    };
    let build = |pairs: &[(&str, &str)], id: ManagedIdentityId| {
        credential_with(
            &Env::from_pairs(pairs.iter().copied()),
            id,
            options.clone(),
            Context::default(),
            &clock,
        )
    };

    // The application is AZURE_CLIENT_ID ...
    let with_client = [&pairs[..], &[("AZURE_CLIENT_ID", client_id)]].concat();
    let credential = build(&with_client, ManagedIdentityId::System).unwrap();
    assert_eq!(credential.source(), ManagedIdentitySource::WorkloadIdentity);
    let token = get(&credential, VAULT).await.unwrap();
    assert_eq!(token.token.expose(), "fake-token-1");
    let request = entra.requests().pop().unwrap();
    assert_eq!(request.tenant, tenant);
    assert_eq!(request.form["client_id"], client_id);
    assert_eq!(request.form["client_assertion"], "header.claims.signature");
    assert_eq!(request.form["scope"], VAULT);
    // ... or the client id asked for.
    let credential = build(&pairs, ManagedIdentityId::ClientId(client_id.into())).unwrap();
    get(&credential, VAULT).await.unwrap();
    assert_eq!(entra.requests().pop().unwrap().form["client_id"], client_id);

    // Without a client id, or with another kind of id, it cannot name the application.
    for id in [
        ManagedIdentityId::System,
        ManagedIdentityId::ObjectId("o".into()),
        ManagedIdentityId::ResourceId("/r".into()),
    ] {
        let error = build(&pairs, id.clone()).unwrap_err();
        assert!(matches!(error, Error::InvalidConfig(_)), "{id:?}: {error:?}");
    }
    std::fs::remove_dir_all(&directory).unwrap();
}
