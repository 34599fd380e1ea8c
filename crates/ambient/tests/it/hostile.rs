//! Hostile input against the real binary (issue 17): a flood of malformed and over-long token
//! requests and refused writes leaves the database and the process's memory bounded and the
//! server healthy, and the CLI exits quietly when its reader goes away.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::{Ambient, BINARY, tempdir};

/// The size of one file of the data directory (0 when it does not exist).
fn file_bytes(dir: &std::path::Path, name: &str) -> u64 {
    std::fs::metadata(dir.join(name)).map_or(0, |meta| meta.len())
}

/// The resident set of a process, from `/proc/{pid}/status`.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test]
async fn a_flood_of_hostile_requests_leaves_the_database_and_memory_bounded() {
    // Goal: issue 17's flood (200 requests with a 200,000-character client id grew the database
    // by 120 MB and the RSS to 179 MB). Method: `ambient dev` with throttling off, so only the
    // log bounds stand in the way; 10,000 requests, 16 at a time: token requests with long or
    // malformed client ids, secrets, resources, grant types and padded assertions, and refused
    // ARM writes with long names. The database is measured before (the file alone, so the
    // growth is over-estimated by whatever the write-ahead log held then) and after a clean stop
    // (which folds the write-ahead log into the file); the RSS during and after. In between,
    // the write-ahead log is bounded by SQLite's automatic checkpoint (1000 pages, about 4 MB).
    let dir = tempdir("hostile");
    let ambient = Ambient::start("dev", &dir, &["--sign-in-failures-per-minute", "0"], &[]);
    let client = ambient.client();
    let tenant = ambient.var("AMBIENT_TENANT_ID").to_owned();
    let token_url = format!("{}/{tenant}/oauth2/v2.0/token", ambient.url());
    let admin: Value =
        serde_json::from_slice(&std::fs::read(dir.join("admin.json")).unwrap()).unwrap();
    let admin_id = admin["appId"].as_str().unwrap().to_owned();
    let admin_secret = admin["password"].as_str().unwrap().to_owned();
    let token = |scope: &'static str| {
        let (client, url, id, secret) =
            (client.clone(), token_url.clone(), admin_id.clone(), admin_secret.clone());
        async move {
            let response = client
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", id.as_str()),
                    ("client_secret", secret.as_str()),
                    ("scope", scope),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
        }
    };
    let management = token("https://management.azure.com/.default").await;
    let group = format!(
        "{}/subscriptions/{}/resourceGroups/flood",
        ambient.url(),
        ambient.var("AMBIENT_SUBSCRIPTION_ID")
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = file_bytes(&dir, "ambient.db");
    let rss_before = rss_bytes(ambient.pid());

    let mut tasks = Vec::new();
    for worker in 0..16_usize {
        let (client, url, admin_id, management, group) = (
            client.clone(),
            token_url.clone(),
            admin_id.clone(),
            management.clone(),
            group.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
            for n in (worker..10_000).step_by(16) {
                let long = format!("{n}-{}", "x".repeat(20_000 + n % 1000));
                let form = |pairs: Vec<(&'static str, String)>| client.post(&url).form(&pairs);
                let request = match n % 5 {
                    0 => form(vec![
                        ("grant_type", "client_credentials".to_owned()),
                        ("client_id", long),
                        ("client_secret", "s".to_owned()),
                        ("scope", "https://management.azure.com/.default".to_owned()),
                    ]),
                    1 => form(vec![
                        ("grant_type", "client_credentials".to_owned()),
                        ("client_id", uuid::Uuid::new_v4().to_string()),
                        ("client_secret", long),
                        ("scope", format!("https://{n}.example/.default")),
                    ]),
                    2 => form(vec![
                        ("grant_type", "client_credentials".to_owned()),
                        ("client_id", admin_id.clone()),
                        ("client_secret", "wrong".to_owned()),
                        ("scope", format!("https://{long}/.default")),
                    ]),
                    3 => form(vec![
                        ("grant_type", format!("{long}\n\u{0}")),
                        ("client_id", admin_id.clone()),
                        (
                            "client_assertion_type",
                            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                        ),
                        ("client_assertion", format!("{long}.e30=.{n}==")),
                    ]),
                    _ => client
                        .put(format!(
                            "{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/-{n}{}?api-version=2024-11-01",
                            "y".repeat(n % 200)
                        ))
                        .bearer_auth(&management)
                        .json(&json!({"location": "westus", "tags": {"t": "z".repeat(n % 500)}})),
                };
                let response = request.send().await.unwrap();
                *statuses.entry(response.status().as_u16()).or_default() += 1;
            }
            statuses
        }));
    }
    let mut rss_peak = rss_before;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for task in tasks {
        while !task.is_finished() {
            rss_peak = rss_peak.max(rss_bytes(ambient.pid()));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for (status, count) in task.await.unwrap() {
            *statuses.entry(status).or_default() += count;
        }
    }
    rss_peak = rss_peak.max(rss_bytes(ambient.pid()));
    eprintln!(
        "10,000 hostile requests ({statuses:?}): RSS {} MB before, {} MB at most; write-ahead log {} bytes",
        rss_before / 1_000_000,
        rss_peak / 1_000_000,
        file_bytes(&dir, "ambient.db-wal"),
    );
    assert_eq!(statuses.values().sum::<usize>(), 10_000);
    assert!(statuses.keys().all(|status| (400..500).contains(status)), "{statuses:?}");
    assert!(rss_peak < 64 * 1024 * 1024, "the RSS reached {rss_peak} bytes");

    // Healthy after: the admin signs in and reads the sign-in log, which counts every failure
    // in a few events.
    let graph = token("https://graph.microsoft.com/.default").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log: Value = client
        .get(format!("{}/v1.0/auditLogs/signIns?$top=1000", ambient.url()))
        .bearer_auth(&graph)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let failed: Vec<&Value> = log["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["status"]["errorCode"] != 0)
        .collect();
    let counted: i64 = failed.iter().map(|event| event["signInCount"].as_i64().unwrap()).sum();
    assert_eq!(counted, 8000, "{log}");
    assert!(failed.len() <= 100, "{} failed events", failed.len());

    // A clean stop checkpoints the write-ahead log (what the flood added is in the file then);
    // whatever is left of the log is counted too.
    let (status, _) = ambient.stop_with("TERM");
    assert!(status.success(), "{status}");
    let after = file_bytes(&dir, "ambient.db") + file_bytes(&dir, "ambient.db-wal");
    let grown = after.saturating_sub(before);
    eprintln!("the database: {before} bytes before, {after} after a clean stop (+{grown})");
    assert!(grown < 1_000_000, "the database grew by {grown} bytes");
}

#[tokio::test]
async fn the_cli_exits_quietly_when_its_reader_is_gone() {
    // Issue 17: `ambient ... | head -c 10` panicked on the broken pipe. The read end is closed
    // before the command writes, so the write always fails.
    let dir = tempdir("broken-pipe");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let mut child = Command::new(BINARY)
        .args(["group", "list"])
        .env("AMBIENT_HOME", &dir)
        .env("AMBIENT_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    drop(ambient);
}
