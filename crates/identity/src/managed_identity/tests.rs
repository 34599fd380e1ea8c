//! Tests of [`ManagedIdentityCredential`] against [`FakeManagedIdentity`], a plain-HTTP fake of
//! IMDS, App Service, the legacy endpoint and Cloud Shell on loopback.
//!
//! Safety: no test may send a request to 169.254.169.254. Every credential here is built by
//! [`credential`], which always injects a loopback IMDS base, and environments name loopback
//! endpoints only.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::FakeClock;
use crate::env::Env;
use crate::managed_identity::{
    DEFAULT_IMDS_ENDPOINT, ImdsRetryOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, ManagedIdentityId, ManagedIdentitySource, detect_source,
    imds_base, retry_delay,
};
use crate::testing::{FakeManagedIdentity, closed_loopback_base};
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
    assert!(imds.starts_with("http://127.0.0.1:"), "tests use loopback only: {imds}");
    let options = ManagedIdentityCredentialOptions {
        imds_endpoint: Some(imds.to_owned()),
        retry: fast_retry(),
        probe_imds,
        ..ManagedIdentityCredentialOptions::default()
    };
    ManagedIdentityCredential::with_clock(env, id, &options, clock.clone())
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
    assert_eq!(detect_source(&Env::from_pairs(pairs.iter().copied())), expected, "{pairs:?}");
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
    assert_eq!(requests[6].query["api-version"], "2017-09-01");
    assert_eq!(requests[6].headers["secret"], SECRET);
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
async fn unsupported_sources_are_unavailable_without_a_request() {
    let (fake, clock) = setup().await;
    let endpoint = format!("{}/msi/token", fake.base);
    for (env, source, fragment) in [
        (
            Env::from_pairs([
                ("IDENTITY_ENDPOINT", endpoint.as_str()),
                ("IDENTITY_HEADER", SECRET),
                ("IDENTITY_SERVER_THUMBPRINT", "0123"),
            ]),
            ManagedIdentitySource::ServiceFabric,
            "Service Fabric",
        ),
        (
            Env::from_pairs([
                ("IDENTITY_ENDPOINT", endpoint.as_str()),
                ("IMDS_ENDPOINT", fake.base.as_str()),
            ]),
            ManagedIdentitySource::AzureArc,
            "Azure Arc",
        ),
    ] {
        let credential =
            new_credential(&env, ManagedIdentityId::System, &fake.base, true, &clock).unwrap();
        assert_eq!(credential.source(), source);
        let error = get(&credential, VAULT).await.unwrap_err();
        assert!(
            matches!(&error, Error::CredentialUnavailable(m) if m.contains(fragment) && m.contains("not supported")),
            "{error:?}"
        );
    }
    assert_eq!(fake.request_count(), 0);
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
    for (env, id) in [
        (&cloud_shell, ManagedIdentityId::ClientId("c".into())),
        (&legacy, ManagedIdentityId::ObjectId("o".into())),
        (&legacy, ManagedIdentityId::ResourceId("/r".into())),
        (&not_a_url, ManagedIdentityId::System),
        (&wrong_scheme, ManagedIdentityId::System),
        (&Env::default(), ManagedIdentityId::ClientId(" ".into())),
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
