//! Issue 17, at the request level: the token endpoint's abuse bounds (bounded and aggregated
//! sign-in events, one client authentication method, the OAuth error for oversize bodies,
//! throttling with `Retry-After`), strict audiences per surface, refused writes in the activity
//! log with counts, and the flood bound on the database.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use test_support::TestServer;

use crate::{arm, group, server};

const MANAGEMENT: &str = "https://management.azure.com/.default";
const GRAPH: &str = "https://graph.microsoft.com/.default";
const VAULT: &str = "https://vault.azure.net/.default";

/// `POST /{tenant}/oauth2/v2.0/token` with `form`, answering (status, headers, JSON body).
async fn token_request(
    server: &TestServer,
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = server
        .http(&[])
        .unwrap()
        .post(format!("{}/{}/oauth2/v2.0/token", server.url(), server.tenant_id()))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap_or(Value::Null))
}

/// The sign-in log through the directory, oldest first, read with a Graph token (taken before
/// a test's failures get this address throttled).
async fn sign_ins(server: &TestServer, token: &str) -> Vec<Value> {
    let response = server
        .http(&[])
        .unwrap()
        .get(format!("{}/v1.0/auditLogs/signIns?$top=1000", server.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["value"].as_array().unwrap().clone()
}

/// The size of the SQLite database with its write-ahead log.
fn database_bytes(server: &TestServer) -> u64 {
    ["ambient.db", "ambient.db-wal"]
        .iter()
        .map(|name| std::fs::metadata(server.data_dir().join(name)).map_or(0, |meta| meta.len()))
        .sum()
}

#[tokio::test]
async fn a_client_id_that_is_not_a_guid_is_refused_and_logged_bounded() {
    let server = server().await;
    let graph = server.admin_token(GRAPH).await.unwrap();
    let huge = "A".repeat(50_000);
    let (status, _, body) = token_request(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &huge),
            ("client_secret", "x"),
            ("scope", MANAGEMENT),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "unauthorized_client");
    assert!(body["error_description"].as_str().unwrap().len() < 1000, "{body}");
    // The log has it as a marked preview, whatever the caller sent; the sign-in log is
    // written in the background within about a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let events = sign_ins(&server, &graph).await;
    let event = events.iter().find(|event| event["status"]["errorCode"] == 700016).unwrap();
    let app_id = event["appId"].as_str().unwrap();
    assert!(app_id.starts_with("AAAAAAAAAAAAAAAA…[not a GUID: 50000 chars, sha256 "), "{app_id}");
    assert!(event.to_string().len() < 2000, "{event}");
    server.stop().await;
}

#[tokio::test]
async fn a_request_may_use_one_client_authentication_method() {
    let server = server().await;
    let (app_id, secret) = server.admin_credentials();
    let (status, _, body) = token_request(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", app_id),
            ("client_secret", secret),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", "a.b.c"),
            ("scope", MANAGEMENT),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert!(body["error_description"].as_str().unwrap().contains("more than one client"));
    server.stop().await;
}

#[tokio::test]
async fn an_oversize_token_request_gets_the_oauth_json_error() {
    let server = server().await;
    let huge = "A".repeat(200_000);
    let response = server
        .http(&[])
        .unwrap()
        .post(format!("{}/{}/oauth2/v2.0/token", server.url(), server.tenant_id()))
        .form(&[("grant_type", "client_credentials"), ("client_id", &huge)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(body["error_codes"][0], 9002313);
    server.stop().await;
}

#[tokio::test]
async fn repeated_wrong_secrets_are_throttled_with_retry_after() {
    let server = server().await;
    let graph = server.admin_token(GRAPH).await.unwrap();
    let (app_id, secret) = server.admin_credentials();
    let wrong = [
        ("grant_type", "client_credentials"),
        ("client_id", app_id),
        ("client_secret", "wrong"),
        ("scope", MANAGEMENT),
    ];
    let limit = domain::limits::CLIENT_AUTH_FAILURES_PER_WINDOW_DEFAULT as usize;
    // The windows are fixed minutes of the real clock: at most one ends during the test, so a
    // 429 comes within 2 × limit + 1 requests, and never within the first `limit`.
    let mut statuses = Vec::new();
    let mut throttled = None;
    for _ in 0..2 * limit + 1 {
        let (status, headers, body) = token_request(&server, &wrong).await;
        statuses.push(status);
        if status == 429 {
            throttled = Some((headers, body));
            break;
        }
    }
    assert!(statuses.iter().take(limit).all(|status| *status == 401), "{statuses:?}");
    let (headers, body) = throttled.unwrap_or_else(|| panic!("never throttled: {statuses:?}"));
    let retry_after: i64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert_eq!(body["error_codes"][0], 50196, "{body}");
    if retry_after > 2 {
        // The right secret is refused too until the window ends.
        let right = [
            ("grant_type", "client_credentials"),
            ("client_id", app_id),
            ("client_secret", secret),
            ("scope", MANAGEMENT),
        ];
        assert_eq!(token_request(&server, &right).await.0, 429);
    }
    // The sign-in log counts the failures in a few events, not one row each.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let failed: Vec<Value> = sign_ins(&server, &graph)
        .await
        .into_iter()
        .filter(|event| event["status"]["errorCode"] != 0)
        .collect();
    let counted: i64 = failed.iter().map(|event| event["signInCount"].as_i64().unwrap()).sum();
    assert!(counted > limit as i64, "{failed:?}");
    assert!(failed.len() <= 6, "{failed:#?}");
    server.stop().await;
}

#[tokio::test]
async fn each_surface_accepts_only_its_own_audiences() {
    let server = server().await;
    let http = server.http(&[]).unwrap();
    let status = |request: reqwest::RequestBuilder| async move {
        request.send().await.unwrap().status().as_u16()
    };
    let subscriptions = format!("{}/subscriptions?api-version=2022-12-01", server.url());
    let directory = format!("{}/v1.0/servicePrincipals", server.url());
    let management = server.admin_token(MANAGEMENT).await.unwrap();
    let graph = server.admin_token(GRAPH).await.unwrap();
    let vault = server.admin_token(VAULT).await.unwrap();
    assert_eq!(status(http.get(&subscriptions).bearer_auth(&management)).await, 200);
    assert_eq!(status(http.get(&subscriptions).bearer_auth(&graph)).await, 401);
    assert_eq!(status(http.get(&subscriptions).bearer_auth(&vault)).await, 401);
    assert_eq!(status(http.get(&directory).bearer_auth(&graph)).await, 200);
    assert_eq!(status(http.get(&directory).bearer_auth(&management)).await, 401);
    assert_eq!(status(http.get(&directory).bearer_auth(&vault)).await, 401);
    server.stop().await;
}

#[tokio::test]
async fn refused_and_malformed_writes_are_counted_in_the_activity_log() {
    let server = server().await;
    let admin = server.admin().unwrap();
    let created = admin.create_service_principal("no-roles").await.unwrap();
    let secret = admin.add_password(created["id"].as_str().unwrap(), "test", None).await.unwrap();
    let nobody = server
        .client_for(created["appId"].as_str().unwrap(), secret["secretText"].as_str().unwrap())
        .unwrap();
    let rg = group(&server, "rg");
    arm(&server, Method::PUT, &rg, Some(json!({"location": "westus"}))).await;
    // A deployment is refused before `commit`; five refusals are one event with a count.
    let deployment =
        format!("{rg}/providers/Microsoft.Resources/deployments/d1?api-version=2024-11-01");
    for _ in 0..5 {
        let refused = nobody
            .put(&deployment, &json!({"properties": {"mode": "Incremental", "template": {}}}))
            .await;
        assert!(refused.is_err());
    }
    // A malformed body from the admin is a failed write too.
    let (status, _, _) = arm(
        &server,
        Method::PUT,
        &format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u1"),
        Some(json!("not an object")),
    )
    .await;
    assert_eq!(status, 400);
    let log = admin
        .get(&format!(
            "/subscriptions/{}/providers/microsoft.insights/eventtypes/management/values?api-version=2015-04-01",
            server.subscription_id()
        ))
        .await
        .unwrap();
    let failed: Vec<&Value> = log["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["status"]["value"] == "Failed")
        .collect();
    let refused: Vec<&&Value> =
        failed.iter().filter(|event| event["caller"] == created["appId"]).collect();
    assert!(!refused.is_empty(), "no refused deployment: {log}");
    for event in &refused {
        assert_eq!(event["authorization"]["action"], "Microsoft.Resources/deployments/write");
        assert_eq!(event["subStatus"]["value"], "Forbidden");
    }
    // One event counting five (two when a five-minute window happens to end between them).
    let counted: u64 = refused
        .iter()
        .map(|event| event["properties"]["eventCount"].as_str().map_or(1, |n| n.parse().unwrap()))
        .sum();
    assert_eq!(counted, 5, "{refused:?}");
    assert!(refused.len() <= 2, "{refused:?}");
    let malformed = failed
        .iter()
        .find(|event| {
            event["authorization"]["action"]
                == "Microsoft.ManagedIdentity/userAssignedIdentities/write"
        })
        .unwrap_or_else(|| panic!("no malformed write: {log}"));
    assert_eq!(malformed["subStatus"]["value"], "BadRequest");
    server.stop().await;
}

#[tokio::test]
async fn listing_a_group_without_access_is_403() {
    let server = server().await;
    let admin = server.admin().unwrap();
    let created = admin.create_service_principal("no-roles").await.unwrap();
    let secret = admin.add_password(created["id"].as_str().unwrap(), "test", None).await.unwrap();
    let nobody = server
        .client_for(created["appId"].as_str().unwrap(), secret["secretText"].as_str().unwrap())
        .unwrap();
    let rg = group(&server, "rg");
    arm(&server, Method::PUT, &rg, Some(json!({"location": "westus"}))).await;
    let listed = nobody.get(&format!("{rg}/resources?api-version=2024-11-01")).await;
    let error = listed.expect_err("a caller without access may not list the group");
    assert!(error.to_string().contains("AuthorizationFailed"), "{error}");
    server.stop().await;
}

#[tokio::test]
async fn ten_thousand_hostile_token_requests_add_under_a_megabyte() {
    // Goal: the flood of issue 17 (before: 200 requests grew the database by 120 MB). Method:
    // 10,000 requests with long or malformed client ids, resources and assertions from one
    // address, 16 at a time; the database (file and write-ahead log) is measured before and
    // after the sign-in log has written everything.
    let server = server().await;
    let graph = server.admin_token(GRAPH).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = database_bytes(&server);
    let http = server.http(&[]).unwrap();
    let url = format!("{}/{}/oauth2/v2.0/token", server.url(), server.tenant_id());
    let (app_id, _) = server.admin_credentials();
    let app_id = app_id.to_owned();
    let mut tasks = Vec::new();
    for worker in 0..16_usize {
        let (http, url, app_id) = (http.clone(), url.clone(), app_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
            for n in (worker..10_000).step_by(16) {
                let long = format!("{n}-{}", "x".repeat(4000 + n % 1000));
                let form: Vec<(&str, String)> = match n % 4 {
                    0 => vec![
                        ("grant_type", "client_credentials".to_owned()),
                        ("client_id", long),
                        ("client_secret", "s".to_owned()),
                        ("scope", MANAGEMENT.to_owned()),
                    ],
                    1 => vec![
                        ("grant_type", "client_credentials".to_owned()),
                        ("client_id", uuid::Uuid::new_v4().to_string()),
                        ("client_secret", long),
                        ("scope", format!("https://{n}.example/.default")),
                    ],
                    2 => vec![
                        ("grant_type", "client_credentials".to_owned()),
                        ("client_id", app_id.clone()),
                        ("client_secret", "wrong".to_owned()),
                        ("scope", format!("https://{long}/.default")),
                    ],
                    _ => vec![
                        ("grant_type", format!("{long}\n\u{0}")),
                        ("client_id", app_id.clone()),
                        (
                            "client_assertion_type",
                            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                        ),
                        ("client_assertion", format!("{long}.e30=.{n}==")),
                    ],
                };
                let response = http.post(&url).form(&form).send().await.unwrap();
                *statuses.entry(response.status().as_u16()).or_default() += 1;
            }
            statuses
        }));
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for task in tasks {
        for (status, count) in task.await.unwrap() {
            *statuses.entry(status).or_default() += count;
        }
    }
    assert!(statuses.keys().all(|status| (400..500).contains(status)), "{statuses:?}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let grown = database_bytes(&server).saturating_sub(before);
    eprintln!("10,000 hostile token requests ({statuses:?}): the database grew by {grown} bytes");
    assert!(grown < 1_000_000, "the database grew by {grown} bytes");
    // Every request is counted, in a few events.
    let counted: i64 = sign_ins(&server, &graph)
        .await
        .iter()
        .filter(|event| event["status"]["errorCode"] != 0)
        .map(|event| event["signInCount"].as_i64().unwrap())
        .sum();
    assert_eq!(counted, 10_000);
    server.stop().await;
}
