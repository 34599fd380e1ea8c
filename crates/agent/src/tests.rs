//! End-to-end tests of the agent over loopback: a fake of the server's hosting API over TLS
//! (`fake`), the real agent started with `crate::start`, and plain HTTP requests to its
//! listeners shaped as the Azure SDKs send them.

mod fake;
mod query_props;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use api_types::hosting::{HostedResource, IdentityRef};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::tests::fake::{FakeServer, HOST, JOIN_TOKEN, TENANT};
use crate::{AgentConfig, Error, RateLimit, RunningAgent};

const WAIT: Duration = Duration::from_secs(10);
/// `https://vault.azure.net`, URL-encoded.
const VAULT: &str = "https%3A%2F%2Fvault.azure.net";
const SUBSCRIPTION: &str = "11111111-1111-1111-1111-111111111111";

/// A directory under the system temporary directory, removed on drop. Not created here: the
/// agent creates its data directory itself.
struct TempDir(PathBuf);

/// A fake server, an agent enrolled with it, and the first resource's endpoint.
struct Setup {
    fake: FakeServer,
    agent: RunningAgent,
    /// `http://127.0.0.1:PORT` of `vm1`.
    base: String,
    _dir: TempDir,
}

/// An HTTP answer from the agent.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        TempDir(std::env::temp_dir().join(format!("ambient-agent-{}-{n}", std::process::id())))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not json: {}", self.text))
    }

    #[track_caller]
    fn assert_imds_error(&self, status: u16, error: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(self.json()["error"], error, "{}", self.text);
    }

    #[track_caller]
    fn assert_app_service_error(&self, status: u16) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(self.json()["statusCode"], status, "{}", self.text);
        assert!(self.json()["message"].is_string());
    }
}

fn config(fake: &FakeServer, dir: &Path) -> AgentConfig {
    let mut config =
        AgentConfig::new(vec![fake.url.clone()], fake.ca_pem.clone().into_bytes(), dir.to_owned());
    config.host = Some(HOST.to_owned());
    config.join_token = Some(domain::Secret::new(JOIN_TOKEN.to_owned()));
    config
}

fn resource_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/{name}"
    )
}

fn key(name: &str) -> String {
    resource_id(name).to_ascii_lowercase()
}

fn user_identity(n: usize) -> IdentityRef {
    IdentityRef {
        principal_id: format!("00000000-0000-0000-0000-0000000001{n:02}"),
        client_id: format!("00000000-0000-0000-0000-0000000002{n:02}"),
        resource_id: Some(format!(
            "/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id{n}"
        )),
    }
}

fn system_identity(name: &str) -> IdentityRef {
    let n = name.len();
    IdentityRef {
        principal_id: format!("00000000-0000-0000-0000-0000000003{n:02}"),
        client_id: format!("00000000-0000-0000-0000-0000000004{n:02}"),
        resource_id: None,
    }
}

fn vm(name: &str, system: bool, users: &[usize]) -> HostedResource {
    HostedResource {
        resource_id: resource_id(name),
        resource_key: key(name),
        name: name.to_owned(),
        resource_type: "Microsoft.Compute/virtualMachines".to_owned(),
        subscription_id: SUBSCRIPTION.to_owned(),
        resource_group: "rg".to_owned(),
        location: "westeurope".to_owned(),
        vm_id: Some(format!("vm-id-{name}")),
        identity_header: format!("header-{name}"),
        system: system.then(|| system_identity(name)),
        user: users.iter().map(|n| user_identity(*n)).collect(),
        identity_flavour: None,
        workload_selectors: None,
        faults: None,
    }
}

async fn setup() -> Setup {
    setup_with(|_| {}, vec![vm("vm1", true, &[1, 2])]).await
}

async fn setup_with(
    adjust: impl FnOnce(&mut AgentConfig),
    resources: Vec<HostedResource>,
) -> Setup {
    let fake = FakeServer::start(3600).await;
    let dir = TempDir::new();
    let version = fake.set_resources(resources);
    let mut config = config(&fake, dir.path());
    adjust(&mut config);
    let agent = crate::start(config).await.unwrap();
    fake.wait_reported(version).await;
    let base = agent.endpoints().values().next().cloned().unwrap_or_default();
    Setup { fake, agent, base, _dir: dir }
}

async fn call(method: Method, url: &str, headers: &[(&str, &str)]) -> Answer {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client.request(method, url).timeout(WAIT);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    Answer { status, headers, text: response.text().await.unwrap() }
}

/// An IMDS token request with `Metadata: true`.
async fn imds(base: &str, query: &str) -> Answer {
    let url = format!("{base}/metadata/identity/oauth2/token?api-version=2018-02-01&{query}");
    call(Method::GET, &url, &[("Metadata", "true")]).await
}

/// An App Service (2019-08-01) token request with the given identity header.
async fn app_service(base: &str, query: &str, identity_header: Option<&str>) -> Answer {
    let url = format!("{base}/msi/token?api-version=2019-08-01&{query}");
    let headers: Vec<(&str, &str)> =
        identity_header.map(|value| ("X-IDENTITY-HEADER", value)).into_iter().collect();
    call(Method::GET, &url, &headers).await
}

/// Retries `check` until it holds or `WAIT` passes.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// Enrollment and restart.

#[tokio::test]
async fn enrollment_stores_a_private_key_and_a_restart_reuses_it() {
    let fake = FakeServer::start(3600).await;
    let dir = TempDir::new();
    let agent = crate::start(config(&fake, dir.path())).await.unwrap();
    assert_eq!(agent.host(), HOST);
    agent.shutdown().await;

    assert_eq!(mode(dir.path()), 0o700);
    assert_eq!(mode(&dir.path().join("agent.key")), 0o600);
    let key = std::fs::read_to_string(dir.path().join("agent.key")).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    let cert = std::fs::read_to_string(dir.path().join("agent.pem")).unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    let state: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("agent.json")).unwrap()).unwrap();
    assert_eq!(state["host"], HOST);

    // Restart with no host name and no join token: the stored certificate must work.
    let mut again = config(&fake, dir.path());
    again.host = None;
    again.join_token = None;
    let agent = crate::start(again).await.unwrap();
    assert_eq!(agent.host(), HOST);
    fake.set_resources(vec![vm("vm1", true, &[])]);
    // The id in its original case finds the lower-cased key.
    assert!(agent.wait_for_resource(&resource_id("vm1"), WAIT).await.is_some());
    assert_eq!(fake.with(|calls| calls.enrollments), 1);
    assert_eq!(std::fs::read_to_string(dir.path().join("agent.key")).unwrap(), key);
    agent.shutdown().await;
}

#[tokio::test]
async fn starting_without_credentials_or_join_token_fails() {
    let fake = FakeServer::start(3600).await;
    let dir = TempDir::new();
    let mut config = config(&fake, dir.path());
    config.join_token = None;
    assert!(matches!(crate::start(config).await, Err(Error::NotEnrolled)));
}

#[tokio::test]
async fn a_wrong_join_token_is_refused() {
    let fake = FakeServer::start(3600).await;
    let dir = TempDir::new();
    let mut config = config(&fake, dir.path());
    config.join_token = Some(domain::Secret::new("wrong".to_owned()));
    let result = crate::start(config).await;
    assert!(matches!(result, Err(Error::EnrollmentRefused { status: 401 })), "{result:?}");
    assert!(!dir.path().join("agent.key").exists());
}

// The watch and the per-resource listeners.

#[tokio::test]
async fn watch_opens_a_listener_per_resource_and_closes_it_when_the_resource_leaves() {
    let setup = setup().await;
    let fake = &setup.fake;
    let version = fake.set_resources(vec![vm("vm1", true, &[]), vm("vm2", true, &[])]);
    fake.wait_reported(version).await;
    let endpoints = setup.agent.endpoints();
    assert_eq!(endpoints.keys().cloned().collect::<Vec<_>>(), [key("vm1"), key("vm2")]);
    let reported = fake.with(|calls| calls.statuses.last().cloned().unwrap());
    assert_eq!(reported.endpoints, endpoints);
    assert_eq!(reported.imds, None);

    let version = fake.set_resources(vec![vm("vm2", true, &[])]);
    fake.wait_reported(version).await;
    assert!(!setup.agent.endpoints().contains_key(&key("vm1")));
    let address = setup.base.trim_start_matches("http://").to_owned();
    eventually("the listener to close", async || {
        tokio::net::TcpStream::connect(&address).await.is_err()
    })
    .await;
    let vm2 = &setup.agent.endpoints()[&key("vm2")];
    assert_eq!(imds(vm2, &format!("resource={VAULT}")).await.status, 200);
}

// IMDS.

#[tokio::test]
async fn imds_refuses_requests_without_the_metadata_header_including_the_bare_probe() {
    let setup = setup().await;
    let url = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={VAULT}",
        setup.base
    );
    let answer = call(Method::GET, &url, &[]).await;
    answer.assert_imds_error(400, "bad_request_102");
    assert_eq!(answer.json()["error_description"], "Required metadata header not specified");

    // The JS availability probe: no query string, no header, answered at once.
    let probe =
        call(Method::GET, &format!("{}/metadata/identity/oauth2/token", setup.base), &[]).await;
    probe.assert_imds_error(400, "bad_request_102");
    let wrong = call(Method::GET, &url, &[("Metadata", "false")]).await;
    wrong.assert_imds_error(400, "bad_request_102");
    assert_eq!(setup.fake.token_request_count(), 0);
}

#[tokio::test]
async fn imds_refuses_proxied_requests_and_methods_other_than_get() {
    let setup = setup().await;
    let url = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={VAULT}",
        setup.base
    );
    let proxied =
        call(Method::GET, &url, &[("Metadata", "true"), ("X-Forwarded-For", "10.0.0.1")]).await;
    proxied.assert_imds_error(400, "bad_request");
    let posted = call(Method::POST, &url, &[("Metadata", "true")]).await;
    posted.assert_imds_error(405, "method_not_allowed");
    assert_eq!(posted.headers["allow"], "GET");
    let trailing_slash = format!(
        "{}/metadata/identity/oauth2/token/?api-version=2018-02-01&resource={VAULT}",
        setup.base
    );
    assert_eq!(call(Method::GET, &trailing_slash, &[("Metadata", "true")]).await.status, 200);
}

#[tokio::test]
async fn imds_refuses_every_proxy_header() {
    // Issue 17: `Forwarded`, `X-Real-IP` and `Via` were accepted; any proxy header is refused.
    let setup = setup().await;
    let url = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={VAULT}",
        setup.base
    );
    for (name, value) in [
        ("Forwarded", "for=10.0.0.1"),
        ("X-Real-IP", "10.0.0.1"),
        ("Via", "1.1 proxy"),
        ("X-Forwarded-Host", "example.com"),
        ("True-Client-IP", "10.0.0.1"),
    ] {
        let proxied = call(Method::GET, &url, &[("Metadata", "true"), (name, value)]).await;
        proxied.assert_imds_error(400, "bad_request");
    }
    assert_eq!(setup.fake.token_request_count(), 0);
    assert_eq!(call(Method::GET, &url, &[("Metadata", "true")]).await.status, 200);
}

#[tokio::test]
async fn imds_and_app_service_refuse_malformed_api_versions() {
    // Issue 17: `api-version=garbage` was accepted. Every version the SDKs send still works.
    let setup = setup().await;
    // Percent-encoded as sent: "2018-02-01-a b" and "ééééé" (ten bytes) among them.
    for version in [
        "garbage",
        "2018-02",
        "2018-02-01x",
        "2018-02-01-",
        "2018-02-01-a%20b",
        "%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9",
    ] {
        let url = format!(
            "{}/metadata/identity/oauth2/token?api-version={version}&resource={VAULT}",
            setup.base
        );
        let answer = call(Method::GET, &url, &[("Metadata", "true")]).await;
        answer.assert_imds_error(400, "bad_request");
        assert!(answer.text.contains("api-version is invalid"), "{}", answer.text);
    }
    for version in ["2018-02-01", "2019-08-01", "2021-12-13-preview", "2025-04-07"] {
        let url = format!(
            "{}/metadata/identity/oauth2/token?api-version={version}&resource={VAULT}",
            setup.base
        );
        assert_eq!(call(Method::GET, &url, &[("Metadata", "true")]).await.status, 200, "{version}");
    }
    let garbage = format!("{}/msi/token?api-version=garbage&resource={VAULT}", setup.base);
    call(Method::GET, &garbage, &[("X-IDENTITY-HEADER", "header-vm1")])
        .await
        .assert_app_service_error(400);
    let current = format!("{}/msi/token?api-version=2019-08-01&resource={VAULT}", setup.base);
    assert_eq!(
        call(Method::GET, &current, &[("X-IDENTITY-HEADER", "header-vm1")]).await.status,
        200
    );
}

#[tokio::test]
async fn imds_requires_resource_and_at_most_one_selector() {
    let setup = setup().await;
    imds(&setup.base, "").await.assert_imds_error(400, "invalid_request");
    let both = format!(
        "resource={VAULT}&client_id={}&object_id={}",
        user_identity(1).client_id,
        user_identity(1).principal_id
    );
    imds(&setup.base, &both).await.assert_imds_error(400, "invalid_request");
    assert_eq!(setup.fake.token_request_count(), 0);
}

#[tokio::test]
async fn imds_token_has_every_field_as_a_string() {
    let setup = setup().await;
    let answer = imds(&setup.base, &format!("resource={VAULT}")).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(answer.headers["content-type"].to_str().unwrap().starts_with("application/json"));
    let body = answer.json();
    let fields = body.as_object().unwrap();
    for (name, value) in fields {
        assert!(value.is_string(), "{name} is not a string: {value}");
    }
    for name in
        ["access_token", "client_id", "expires_in", "expires_on", "ext_expires_in", "not_before"]
    {
        assert!(!fields[name].as_str().unwrap().is_empty(), "{name} is empty");
    }
    assert_eq!(body["refresh_token"], "");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["resource"], "https://vault.azure.net");
    assert_eq!(body["client_id"], system_identity("vm1").client_id);
    let expires_in: i64 = body["expires_in"].as_str().unwrap().parse().unwrap();
    let expires_on: i64 = body["expires_on"].as_str().unwrap().parse().unwrap();
    let not_before: i64 = body["not_before"].as_str().unwrap().parse().unwrap();
    assert!((3590..=3600).contains(&expires_in), "{expires_in}");
    assert_eq!(expires_on - not_before, 3600);

    let sent = setup.fake.with(|calls| calls.token_requests[0].clone());
    assert_eq!(sent.resource_id, key("vm1"));
    assert_eq!(sent.audience, "https://vault.azure.net");
    assert_eq!(sent.endpoint, "imds");
    assert_eq!(sent.client_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!((sent.client_id, sent.object_id, sent.identity_resource_id), (None, None, None));
}

#[tokio::test]
async fn imds_selects_user_identities_by_each_selector() {
    let setup = setup().await;
    let one = user_identity(1);
    let two = user_identity(2);
    let id_two = two.resource_id.clone().unwrap();
    let cases = [
        (format!("client_id={}", one.client_id), &one, None),
        (format!("msi_res_id={id_two}"), &two, Some(("msi_res_id", id_two.clone()))),
        (
            format!("object_id={}", two.principal_id),
            &two,
            Some(("object_id", two.principal_id.clone())),
        ),
        (format!("mi_res_id={id_two}"), &two, Some(("mi_res_id", id_two.clone()))),
    ];
    for (selector, expected, echo) in cases {
        let answer = imds(&setup.base, &format!("resource={VAULT}&{selector}")).await;
        assert_eq!(answer.status, 200, "{selector}: {}", answer.text);
        let body = answer.json();
        assert_eq!(body["client_id"], expected.client_id, "{selector}");
        if let Some((name, value)) = echo {
            assert_eq!(body[name], value, "{selector}");
        }
    }
    let sent = setup.fake.with(|calls| calls.token_requests.clone());
    assert_eq!(sent[0].client_id.as_deref(), Some(one.client_id.as_str()));
    assert_eq!(sent[1].identity_resource_id.as_deref(), Some(id_two.as_str()));
    // The same identity and audience through another selector comes from the cache.
    assert_eq!(sent.len(), 2);
}

#[tokio::test]
async fn imds_refuses_an_identity_the_resource_does_not_hold_without_asking_the_server() {
    let setup = setup().await;
    for selector in [
        format!("client_id={}", user_identity(7).client_id),
        format!("object_id={}", user_identity(7).principal_id),
        format!("msi_res_id={}", user_identity(7).resource_id.unwrap()),
    ] {
        let answer = imds(&setup.base, &format!("resource={VAULT}&{selector}")).await;
        answer.assert_imds_error(400, "invalid_request");
        assert_eq!(answer.json()["error_description"], "Identity not found");
    }
    assert_eq!(setup.fake.token_request_count(), 0);
}

#[tokio::test]
async fn imds_without_selector_uses_the_only_user_identity_when_there_is_no_system_one() {
    let setup = setup_with(|_| {}, vec![vm("vm1", false, &[3])]).await;
    let answer = imds(&setup.base, &format!("resource={VAULT}")).await;
    assert_eq!(answer.json()["client_id"], user_identity(3).client_id);
    let version = setup.fake.set_resources(vec![vm("vm1", false, &[3, 4])]);
    setup.fake.wait_reported(version).await;
    let answer = imds(&setup.base, &format!("resource={VAULT}")).await;
    answer.assert_imds_error(400, "invalid_request");
}

#[tokio::test]
async fn server_refusals_and_failures_map_to_imds_errors() {
    let setup = setup().await;
    let cases = [
        (StatusCode::BAD_REQUEST, 400, "invalid_request"),
        (StatusCode::FORBIDDEN, 403, "forbidden"),
        (StatusCode::INTERNAL_SERVER_ERROR, 500, "unknown"),
        (StatusCode::SERVICE_UNAVAILABLE, 500, "unknown"),
    ];
    for (n, (failure, status, error)) in cases.into_iter().enumerate() {
        setup.fake.with(|calls| calls.token_failure = Some(failure));
        let answer = imds(&setup.base, &format!("resource=api%3A%2F%2Fcase{n}")).await;
        answer.assert_imds_error(status, error);
        if status == 500 {
            let description = "Failed to retrieve token from the Active directory";
            assert_eq!(answer.json()["error_description"], description);
        }
    }
}

#[tokio::test]
async fn identity_info_and_instance_metadata() {
    let setup = setup().await;
    let info_url = format!("{}/metadata/identity/info?api-version=2018-10-01", setup.base);
    call(Method::GET, &info_url, &[]).await.assert_imds_error(400, "bad_request_102");
    let info = call(Method::GET, &info_url, &[("Metadata", "true")]).await;
    assert_eq!(info.status, 200, "{}", info.text);
    assert_eq!(info.json(), serde_json::json!({ "tenantId": TENANT }));
    let sent = setup.fake.with(|calls| calls.token_requests.clone());
    assert!(
        sent.is_empty(),
        "the tenant comes from the assignments, no token is fetched: {sent:?}"
    );

    let instance_url = format!("{}/metadata/instance?api-version=2021-02-01", setup.base);
    call(Method::GET, &instance_url, &[]).await.assert_imds_error(400, "bad_request_102");
    let instance = call(Method::GET, &instance_url, &[("Metadata", "true")]).await.json();
    let compute = instance["compute"].as_object().unwrap();
    assert!(compute.values().all(Value::is_string), "{compute:?}");
    assert_eq!(compute["name"], "vm1");
    assert_eq!(compute["resourceId"], resource_id("vm1"));
    assert_eq!(compute["subscriptionId"], SUBSCRIPTION);
    assert_eq!(compute["resourceGroupName"], "rg");
    assert_eq!(compute["location"], "westeurope");
    assert_eq!(compute["vmId"], "vm-id-vm1");
    assert_eq!(compute["azEnvironment"], "Ambient");
    assert_eq!(instance["network"], serde_json::json!({ "interface": [] }));

    let location_url = format!(
        "{}/metadata/instance/compute/location?format=text&api-version=2021-02-01",
        setup.base
    );
    let location = call(Method::GET, &location_url, &[("Metadata", "true")]).await;
    assert_eq!(location.status, 200);
    assert_eq!(location.text, "westeurope");
    assert!(location.headers["content-type"].to_str().unwrap().starts_with("text/plain"));

    // Without an api-version (or with a malformed one) these paths answer IMDS's 400; the
    // instance paths in their own shape, with the newest versions.
    let metadata = [("Metadata", "true")];
    let info_url = format!("{}/metadata/identity/info", setup.base);
    let info = call(Method::GET, &info_url, &metadata).await;
    info.assert_imds_error(400, "bad_request");
    assert_eq!(
        info.json()["error_description"],
        "Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds"
    );
    let bad = format!("{}/metadata/identity/info?api-version=latest", setup.base);
    call(Method::GET, &bad, &metadata).await.assert_imds_error(400, "bad_request");
    for path in ["/metadata/instance", "/metadata/instance/compute/location?format=text"] {
        let answer = call(Method::GET, &format!("{}{path}", setup.base), &metadata).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.text);
        assert_eq!(
            answer.json(),
            serde_json::json!({
                "error": "Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds",
                "newest-versions": ["2020-10-01", "2020-09-01", "2020-07-15"],
            }),
            "{path}"
        );
    }
    let bad = format!("{}/metadata/instance?api-version=2021-02", setup.base);
    let answer = call(Method::GET, &bad, &metadata).await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert!(answer.json()["error"].as_str().unwrap().contains("api-version is invalid"));
    // Every version the SDKs send is accepted (MSAL's region detection sends 2021-01-01).
    for version in ["2017-08-01", "2018-02-01", "2021-01-01", "2021-12-13-preview"] {
        let url = format!("{}/metadata/instance?api-version={version}", setup.base);
        assert_eq!(call(Method::GET, &url, &metadata).await.status, 200, "{version}");
    }
}

// App Service.

#[tokio::test]
async fn app_service_token_with_the_right_header() {
    let setup = setup().await;
    let answer = app_service(&setup.base, &format!("resource={VAULT}"), Some("header-vm1")).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["resource"], "https://vault.azure.net");
    assert_eq!(body["client_id"], system_identity("vm1").client_id);
    assert!(body["access_token"].as_str().is_some_and(|token| !token.is_empty()));
    assert!(body["expires_on"].as_str().unwrap().parse::<i64>().is_ok());
    assert!(body["expires_in"].as_str().unwrap().parse::<i64>().is_ok());
    assert_eq!(setup.fake.with(|calls| calls.token_requests[0].endpoint.clone()), "appService");

    for (selector, identity) in [
        (format!("client_id={}", user_identity(1).client_id), user_identity(1)),
        (format!("principal_id={}", user_identity(2).principal_id), user_identity(2)),
        (format!("object_id={}", user_identity(2).principal_id), user_identity(2)),
        (format!("mi_res_id={}", user_identity(1).resource_id.unwrap()), user_identity(1)),
    ] {
        let query = format!("resource={VAULT}&{selector}");
        let answer = app_service(&setup.base, &query, Some("header-vm1")).await;
        assert_eq!(answer.json()["client_id"], identity.client_id, "{selector}");
    }
}

#[tokio::test]
async fn app_service_refuses_a_missing_wrong_or_foreign_identity_header() {
    let setup = setup_with(|_| {}, vec![vm("vm1", true, &[]), vm("vm2", true, &[])]).await;
    let vm1 = &setup.agent.endpoints()[&key("vm1")];
    let query = format!("resource={VAULT}");
    app_service(vm1, &query, None).await.assert_app_service_error(400);
    app_service(vm1, &query, Some("nope")).await.assert_app_service_error(401);
    app_service(vm1, &query, Some("header-vm2")).await.assert_app_service_error(401);
    let url = format!("{vm1}/msi/token?api-version=2019-08-01&{query}");
    let proxied = call(
        Method::GET,
        &url,
        &[("X-IDENTITY-HEADER", "header-vm1"), ("X-Forwarded-For", "10.0.0.1")],
    )
    .await;
    proxied.assert_app_service_error(400);
    let posted = call(Method::POST, &url, &[("X-IDENTITY-HEADER", "header-vm1")]).await;
    posted.assert_app_service_error(405);
    assert_eq!(setup.fake.token_request_count(), 0);
    let unknown = format!("{query}&client_id={}", user_identity(9).client_id);
    app_service(vm1, &unknown, Some("header-vm1")).await.assert_app_service_error(400);
    assert_eq!(setup.fake.token_request_count(), 0);
}

#[tokio::test]
async fn app_service_legacy_2017_form() {
    let setup = setup().await;
    let one = user_identity(1);
    let url = format!(
        "{}/msi/token?api-version=2017-09-01&resource={VAULT}&clientid={}",
        setup.base, one.client_id
    );
    let answer = call(Method::GET, &url, &[("secret", "header-vm1")]).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["client_id"], one.client_id);
    assert!(body["expires_on"].as_str().unwrap().parse::<i64>().is_ok());
    let with_new_header = call(Method::GET, &url, &[("X-IDENTITY-HEADER", "header-vm1")]).await;
    with_new_header.assert_app_service_error(400);
    call(Method::GET, &url, &[("secret", "nope")]).await.assert_app_service_error(401);
}

// The token cache.

#[tokio::test]
async fn a_second_request_is_served_from_the_cache() {
    let setup = setup().await;
    let first = imds(&setup.base, &format!("resource={VAULT}")).await.json();
    let second = imds(&setup.base, &format!("resource={VAULT}")).await.json();
    assert_eq!(first["access_token"], second["access_token"]);
    assert_eq!(setup.fake.token_request_count(), 1);
    let other_audience = imds(&setup.base, "resource=https%3A%2F%2Fstorage.azure.com%2F").await;
    assert_eq!(other_audience.status, 200);
    assert_eq!(setup.fake.token_request_count(), 2);
}

#[tokio::test]
async fn concurrent_requests_share_one_token_request() {
    let setup = setup().await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let base = setup.base.clone();
            tokio::spawn(async move { imds(&base, "resource=https%3A%2F%2Fconcurrent").await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().status, 200);
    }
    assert_eq!(setup.fake.token_request_count(), 1);
}

#[tokio::test]
async fn detaching_an_identity_drops_its_cached_token_at_once() {
    // Goal: after the watch delivers a detach, the identity's token is gone (not served, and
    // re-attaching needs a new token), while other identities' tokens stay cached.
    let setup = setup().await;
    let (fake, base) = (&setup.fake, &setup.base);
    let one = format!("resource={VAULT}&client_id={}", user_identity(1).client_id);
    let system = format!("resource={VAULT}");
    assert_eq!(imds(base, &one).await.status, 200);
    assert_eq!(imds(base, &system).await.status, 200);
    assert_eq!(fake.token_request_count(), 2);

    let version = fake.set_resources(vec![vm("vm1", true, &[2])]);
    fake.wait_reported(version).await;
    let answer = imds(base, &one).await;
    answer.assert_imds_error(400, "invalid_request");
    assert_eq!(answer.json()["error_description"], "Identity not found");
    assert_eq!(imds(base, &system).await.status, 200);
    assert_eq!(fake.token_request_count(), 2);

    let version = fake.set_resources(vec![vm("vm1", true, &[1, 2])]);
    fake.wait_reported(version).await;
    assert_eq!(imds(base, &one).await.status, 200);
    assert_eq!(fake.token_request_count(), 3);
}

// Rate limiting.

#[tokio::test]
async fn the_azure_rate_limit_answers_429_with_retry_after() {
    let setup =
        setup_with(|config| config.rate_limit = RateLimit::azure(), vec![vm("vm1", true, &[])])
            .await;
    let probe = format!("{}/metadata/identity/oauth2/token", setup.base);
    // Sixty requests at once: at most the burst of 20 (plus what refills while they arrive, and
    // within 5 at a time) get through, however slow the machine is.
    let calls: Vec<_> = (0..60)
        .map(|_| {
            let probe = probe.clone();
            tokio::spawn(async move { call(Method::GET, &probe, &[]).await })
        })
        .collect();
    let mut limited = None;
    for task in calls {
        let answer = task.await.unwrap();
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(answer);
        } else {
            answer.assert_imds_error(400, "bad_request_102");
        }
    }
    let limited = limited.expect("no request was limited");
    limited.assert_imds_error(429, "too_many_requests");
    let retry_after: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
}

// The shared IMDS listener.

#[tokio::test]
async fn the_shared_imds_listener_serves_the_only_resource_and_refuses_with_several() {
    let local =
        |config: &mut AgentConfig| config.imds_listen = Some("127.0.0.1:0".parse().unwrap());
    let setup = setup_with(local, vec![vm("vm1", true, &[])]).await;
    let shared = format!("http://{}", setup.agent.imds_address().unwrap());
    let answer = imds(&shared, &format!("resource={VAULT}")).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        setup.fake.with(|calls| calls.statuses.last().unwrap().imds.clone()),
        Some(shared.clone())
    );

    let version = setup.fake.set_resources(vec![vm("vm1", true, &[]), vm("vm2", true, &[])]);
    setup.fake.wait_reported(version).await;
    let answer = imds(&shared, &format!("resource={VAULT}")).await;
    answer.assert_imds_error(400, "invalid_request");
    let description = "this host runs several resources; use the resource's own endpoint";
    assert_eq!(answer.json()["error_description"], description);
    let probe = call(Method::GET, &format!("{shared}/metadata/identity/oauth2/token"), &[]).await;
    probe.assert_imds_error(400, "bad_request_102");
}

// Revocation and renewal.

#[tokio::test]
async fn a_revoked_host_stops_serving_tokens_but_answers_the_probe() {
    let setup = setup().await;
    assert_eq!(imds(&setup.base, &format!("resource={VAULT}")).await.status, 200);
    setup.fake.revoke();
    eventually("the agent to notice the revocation", async || {
        imds(&setup.base, &format!("resource={VAULT}")).await.status == StatusCode::FORBIDDEN
    })
    .await;
    let answer = imds(&setup.base, &format!("resource={VAULT}")).await;
    answer.assert_imds_error(403, "forbidden");
    let probe =
        call(Method::GET, &format!("{}/metadata/identity/oauth2/token", setup.base), &[]).await;
    probe.assert_imds_error(400, "bad_request_102");
}

#[tokio::test]
async fn renewal_swaps_the_certificate_before_it_expires() {
    // Goal: with 4-second certificates the agent renews every ~2 s with a new key, writes the
    // files, and keeps fetching tokens with the new certificate after the first one expired.
    let fake = FakeServer::start(4).await;
    let dir = TempDir::new();
    let version = fake.set_resources(vec![vm("vm1", true, &[])]);
    let agent = crate::start(config(&fake, dir.path())).await.unwrap();
    fake.wait_reported(version).await;
    let base = agent.endpoints()[&key("vm1")].clone();
    let first_key = std::fs::read_to_string(dir.path().join("agent.key")).unwrap();

    eventually("two renewals", async || fake.with(|calls| calls.renewals >= 2)).await;
    // The enrollment certificate has expired by now (4 s, renewed at 2 s and ~4 s).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let answer = imds(&base, "resource=https%3A%2F%2Fafter-renewal").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let (issued, used) = fake.with(|calls| {
        (
            calls.issued_certificates.clone(),
            calls.token_request_certificates.last().cloned().unwrap(),
        )
    });
    assert_ne!(used, issued[0], "the token request used the enrollment certificate");
    assert!(issued.contains(&used));
    assert_ne!(std::fs::read_to_string(dir.path().join("agent.key")).unwrap(), first_key);
    assert_eq!(mode(&dir.path().join("agent.key")), 0o600);
    agent.shutdown().await;
}

// Flavours and faults (docs/flavours.md).

fn with_faults(faults: api_types::hosting::Faults) -> HostedResource {
    HostedResource { faults: Some(faults), ..vm("vm1", true, &[]) }
}

#[tokio::test]
async fn faults_shorten_lifetimes_move_clocks_and_replace_answers() {
    use api_types::hosting::{Faults, InjectedError};
    let setup = setup_with(
        |_| {},
        vec![with_faults(Faults {
            token_lifetime_secs: Some(120),
            clock_offset_secs: 1000,
            ..Faults::default()
        })],
    )
    .await;
    let answer = imds(&setup.base, &format!("resource={VAULT}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let body = answer.json();
    // The fake issues for an hour whatever is asked; the request carried the shorter lifetime.
    assert_eq!(setup.fake.with(|calls| calls.token_requests[0].lifetime_secs), Some(120));
    let expires_on: i64 = body["expires_on"].as_str().unwrap().parse().unwrap();
    let not_before: i64 = body["not_before"].as_str().unwrap().parse().unwrap();
    let expires_in: i64 = body["expires_in"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires_on - not_before, 3600, "{body}");
    assert!((3598..=3600).contains(&expires_in), "expires_in is not moved: {body}");
    let now = domain::Clock::now(&domain::SystemClock).secs();
    assert!((not_before - 1000 - now).abs() <= 5, "the times are 1000 s ahead: {body}");

    // Every token request answered 429 with Retry-After; other paths untouched.
    let version = setup.fake.set_resources(vec![with_faults(Faults {
        errors: vec![InjectedError { status: 429, percent: 100 }],
        retry_after_secs: Some(2),
        ..Faults::default()
    })]);
    setup.fake.wait_reported(version).await;
    let answer = imds(&setup.base, &format!("resource={VAULT}")).await;
    answer.assert_imds_error(429, "too_many_requests");
    assert_eq!(answer.headers["retry-after"], "2");
    let info = call(
        Method::GET,
        &format!("{}/metadata/identity/info?api-version=2018-10-01", setup.base),
        &[("Metadata", "true")],
    )
    .await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text);

    // Docker Desktop's 403 on IMDS paths; the App Service path still answers.
    let version = setup
        .fake
        .set_resources(vec![with_faults(Faults { imds_unreachable: true, ..Faults::default() })]);
    setup.fake.wait_reported(version).await;
    let answer = imds(&setup.base, &format!("resource={VAULT}")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.text.contains("unreachable network"), "{}", answer.text);
    let answer = app_service(&setup.base, &format!("resource={VAULT}"), Some("header-vm1")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    setup.agent.shutdown().await;
}

#[tokio::test]
async fn cloud_shell_posts_a_form_and_service_fabric_answers_over_https() {
    let setup = setup().await;
    let url = format!("{}/cloudshell/token", setup.base);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let answer = client
        .post(&url)
        .header("Metadata", "true")
        .form(&[("resource", "https://vault.azure.net")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["resource"], "https://vault.azure.net");
    assert!(body["expires_on"].is_string(), "{body}");
    let refused = call(Method::GET, &url, &[("Metadata", "true")]).await;
    refused.assert_imds_error(405, "method_not_allowed");

    // The reported thumbprint is the certificate's; HTTPS and plain HTTP share the port.
    let thumbprint = setup
        .fake
        .with(|calls| {
            calls.statuses.last().and_then(|status| status.service_fabric_thumbprint.clone())
        })
        .unwrap();
    assert_eq!(thumbprint.len(), 40);
    let https = setup.base.replacen("http://", "https://", 1);
    let insecure = reqwest::Client::builder()
        .no_proxy()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let query = "api-version=2019-07-01-preview&resource=https://vault.azure.net";
    let answer = insecure
        .get(format!("{https}/servicefabric/token?{query}"))
        .header("Secret", "header-vm1")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    assert!(body["expires_on"].is_i64(), "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let wrong = insecure
        .get(format!("{https}/servicefabric/token?{query}"))
        .header("Secret", "header-vm2")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    // The reported CA issued the certificate for the listener's address: a client that trusts
    // that CA alone, with full chain and name checks (as Node does), connects.
    let ca = setup
        .fake
        .with(|calls| calls.statuses.last().and_then(|status| status.service_fabric_ca_pem.clone()))
        .unwrap();
    let verifying = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let answer = verifying
        .get(format!("{https}/servicefabric/token?{query}"))
        .header("Secret", "header-vm1")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    setup.agent.shutdown().await;
}

#[tokio::test]
async fn an_arc_key_file_works_once_or_the_agent_says_it_needs_root() {
    let setup = setup().await;
    let url = format!(
        "{}/arc/metadata/identity/oauth2/token?api-version=2020-06-01&resource={VAULT}",
        setup.base
    );
    let challenge = call(Method::GET, &url, &[("Metadata", "true")]).await;
    let root = std::fs::metadata("/proc/self")
        .map(|metadata| std::os::unix::fs::MetadataExt::uid(&metadata) == 0)
        .unwrap();
    if !root {
        challenge.assert_imds_error(500, "unknown");
        assert!(challenge.text.contains("needs the agent to run as root"), "{}", challenge.text);
        return;
    }
    assert_eq!(challenge.status, StatusCode::UNAUTHORIZED, "{}", challenge.text);
    let realm = challenge.headers["www-authenticate"].to_str().unwrap().to_owned();
    let path = PathBuf::from(realm.strip_prefix("Basic realm=").unwrap());
    assert_eq!(path.parent().unwrap(), Path::new("/var/opt/azcmagent/tokens"));
    assert_eq!(path.extension().unwrap(), "key");
    assert_eq!(mode(&path), 0o640);
    let key = std::fs::read_to_string(&path).unwrap();
    let authorization = format!("Basic {key}");
    let headers = [("Metadata", "true"), ("Authorization", authorization.as_str())];
    let answer = call(Method::GET, &url, &headers).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert!(answer.json()["expires_in"].is_string());
    assert!(!path.exists(), "the key file is deleted once used");
    let again = call(Method::GET, &url, &headers).await;
    again.assert_imds_error(401, "unauthorized_client");
    setup.agent.shutdown().await;
}
