//! How the per-request cost grows with the data: token issuance, a cached and an uncached
//! metadata-endpoint (IMDS) token, an ARM `GET` of one resource, an ARM list of a resource group
//! (its first page of ten, so every size answers the same amount), and a Key Vault `get` (which
//! also checks the caller's role assignments), each measured at several table sizes on SQLite
//! and on PostgreSQL, and reported as the ratio of each size's cost to the smallest size's cost
//! in the same run (goal: within 1.5x from 10 to 1,000,000 rows). Start-up to ready is reported
//! too.
//!
//! Method: for each backend and size, a fresh server and its local agent (in this process, on a
//! two-thread runtime, as `ambient dev` runs them) get one real principal, user-assigned
//! identity `probe` (attached to a VM on the agent's host), role assignment and secret through
//! the API; they are stopped, and the tables of principals, resources (all in the probe's
//! resource group), role assignments (all at the vault's scope) and secrets (all in the probe's
//! vault) are filled to the size with copies of those rows under new keys by one
//! `INSERT ... SELECT` each; server and agent start again on the same data and each operation
//! runs 300 times in sequence on one keep-alive connection after 30 warm-up requests. The IMDS
//! requests ask for `probe`'s token by its client id: the cached one for the same audience each
//! time (the agent answers from its cache), the uncached one for a new audience each time (the
//! agent asks the server, which checks placement and attachment and signs). The median and mean
//! latencies are printed.
//!
//! Run with `cargo bench -p ambient --bench growth`. `AMBIENT_GROWTH_SIZES` (default
//! `10,10000,1000000`) and `AMBIENT_GROWTH_BACKENDS` (default `sqlite,postgres`) narrow the run.
//! PostgreSQL comes from `test-postgres` (a throwaway server, or `AMBIENT_TEST_DATABASE_URL`).

// Each bench uses a part of what the benches share.
#[allow(dead_code)]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{client_credentials_token, endpoint_of, figure, labelled_figure};

const WARMUP: usize = 30;
const SAMPLES: usize = 300;
const MANAGEMENT: &str = "https://management.azure.com/.default";
const VAULT_SCOPE: &str = "https://vault.azure.net/.default";
const SECRETS_OFFICER: &str = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7";
const PROBE_ASSIGNMENT: &str = "0b3e3b2c-5a0e-4b5a-9a52-000000000001";
const API: &str = "api-version=2024-11-01";

fn main() {
    let sizes: Vec<u64> = std::env::var("AMBIENT_GROWTH_SIZES")
        .unwrap_or_else(|_| "10,10000,1000000".to_owned())
        .split(',')
        .map(|size| size.trim().parse().expect("AMBIENT_GROWTH_SIZES: numbers"))
        .collect();
    let backends =
        std::env::var("AMBIENT_GROWTH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let postgres = backends
        .contains("postgres")
        .then(|| test_postgres::PostgresServer::start().expect("start PostgreSQL"));
    for backend in backends.split(',').map(str::trim) {
        let mut rows: Vec<(u64, Measured)> = Vec::new();
        for &size in &sizes {
            let database = match backend {
                "sqlite" => None,
                "postgres" => {
                    let server = postgres.as_ref().expect("PostgreSQL started");
                    let name = test_postgres::PostgresServer::unique_database_name("growth");
                    Some(server.database_url(&name))
                }
                other => panic!("unknown backend {other}"),
            };
            if let (Some(server), Some(url)) = (postgres.as_ref(), database.as_ref()) {
                let name = url.rsplit('/').next().expect("database name").to_owned();
                runtime.block_on(async {
                    let admin = sqlx::PgPool::connect(&server.admin_url()).await.expect("admin");
                    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                        .execute(&admin)
                        .await
                        .expect("create database");
                    admin.close().await;
                });
            }
            let measured = runtime.block_on(measure(size, database));
            rows.push((size, measured));
        }
        report(backend, &rows);
    }
}

/// Median and mean latency of each operation, and the start-up time on the filled database.
struct Measured {
    start_up: Duration,
    fill: Duration,
    operations: Vec<(&'static str, Duration, Duration)>,
}

fn report(backend: &str, rows: &[(u64, Measured)]) {
    let Some((_, smallest)) = rows.first() else { return };
    println!(
        "\n{backend}: median latency per request, one connection (ratio to {} rows)",
        rows[0].0
    );
    print!("{:<28}", "operation");
    for (size, _) in rows {
        print!("{:>22}", format!("{size} rows"));
    }
    println!();
    for (index, (name, _, _)) in smallest.operations.iter().enumerate() {
        print!("{name:<28}");
        let base = smallest.operations[index].1.as_secs_f64();
        for (_, measured) in rows {
            let (_, median, _) = measured.operations[index];
            let cell = format!(
                "{:.0} us ({:.2}x)",
                median.as_secs_f64() * 1e6,
                median.as_secs_f64() / base
            );
            print!("{cell:>22}");
        }
        println!();
    }
    print!("{:<28}", "mean, token issuance");
    for (_, measured) in rows {
        print!("{:>22}", format!("{:.0} us", measured.operations[0].2.as_secs_f64() * 1e6));
    }
    println!();
    print!("{:<28}", "start-up to ready");
    for (_, measured) in rows {
        print!("{:>22}", format!("{:.0} ms", measured.start_up.as_secs_f64() * 1e3));
    }
    println!();
    print!("{:<28}", "fill time");
    for (_, measured) in rows {
        print!("{:>22}", format!("{:.1} s", measured.fill.as_secs_f64()));
    }
    println!();
    for (size, measured) in rows {
        for (label, median, _) in &measured.operations {
            let name = slug(label);
            let value = median.as_secs_f64() * 1e6;
            labelled_figure(&format!("growth.{backend}.{name}.{size}"), value, "us", label);
        }
        let start_up = measured.start_up.as_secs_f64() * 1e3;
        figure(&format!("growth.{backend}.start_up.{size}"), start_up, "ms");
        figure(&format!("growth.{backend}.fill.{size}"), measured.fill.as_secs_f64(), "s");
    }
}

/// A server and its local agent, as `ambient dev` runs them.
struct Running {
    server: server::RunningServer,
    agent: agent::RunningAgent,
}

impl Running {
    async fn shutdown(self) {
        self.agent.shutdown().await;
        self.server.shutdown().await;
    }
}

/// The server on `dir` and `database`, then the agent of host `local` enrolled with it; ready
/// when both are.
async fn start(dir: &Path, database: Option<&str>) -> Running {
    let settings = server::Settings {
        data_dir: Some(dir.to_owned()),
        listen: Some("127.0.0.1:0".to_owned()),
        database_url: database.map(str::to_owned),
        ..server::Settings::default()
    };
    let config =
        server::ServerConfig::resolve(server::Mode::Server, settings, None, dir).expect("config");
    let server = server::start(config).await.expect("start server");
    let token = server.join_token("local").await.expect("join token");
    let ca = std::fs::read(server.ca_cert_path()).expect("ca");
    let agent = agent::start(agent::AgentConfig {
        host: Some("local".to_owned()),
        join_token: Some(token.into()),
        rate_limit: agent::RateLimit {
            requests_per_second: 1_000_000,
            burst: 1_000_000,
            concurrent: 1024,
        },
        ..agent::AgentConfig::new(vec![server.local_url()], ca, dir.join("agent-local"))
    })
    .await
    .expect("start agent");
    Running { server, agent }
}

/// What one running server needs to be called.
struct Client {
    http: reqwest::Client,
    base: String,
    tenant: String,
    subscription: String,
    app_id: String,
    secret: String,
}

impl Client {
    fn new(running: &server::RunningServer, dir: &Path) -> Client {
        let admin: Value =
            serde_json::from_slice(&std::fs::read(dir.join("admin.json")).expect("admin.json"))
                .expect("admin json");
        let ca = std::fs::read(running.ca_cert_path()).expect("ca");
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("ca")])
            .resolve("localhost", running.local_addr())
            .resolve("growthkv.vault.localhost", running.local_addr())
            .pool_max_idle_per_host(1)
            .build()
            .expect("client");
        Client {
            http,
            base: running.base_url().to_owned(),
            tenant: running.deployment().tenant_id.clone(),
            subscription: running.deployment().subscription_id.clone(),
            app_id: admin["appId"].as_str().expect("appId").to_owned(),
            secret: admin["password"].as_str().expect("password").to_owned(),
        }
    }

    async fn token(&self, scope: &str) -> String {
        client_credentials_token(
            &self.http,
            &self.base,
            &self.tenant,
            &self.app_id,
            &self.secret,
            scope,
        )
        .await
    }

    fn group(&self) -> String {
        format!("/subscriptions/{}/resourceGroups/growth", self.subscription)
    }

    async fn arm(&self, token: &str, method: reqwest::Method, path: &str, body: Value) -> Value {
        let separator = if path.contains('?') { '&' } else { '?' };
        let response = self
            .http
            .request(method, format!("{}{path}{separator}{API}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("arm request");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }
}

/// One size on one backend: the probe rows through the API, the fill, then the measurements.
async fn measure(size: u64, database: Option<String>) -> Measured {
    let dir = std::env::temp_dir().join(format!(
        "ambient-growth-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("data dir");
    let running = start(&dir, database.as_deref()).await;
    let client = Client::new(&running.server, &dir);
    let token = client.token(MANAGEMENT).await;
    let group = client.group();
    client.arm(&token, reqwest::Method::PUT, &group, json!({"location": "westus"})).await;
    let probe = format!("{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/probe");
    let identity =
        client.arm(&token, reqwest::Method::PUT, &probe, json!({"location": "westus"})).await;
    let probe_client_id = identity["properties"]["clientId"].as_str().expect("clientId").to_owned();
    let vm = format!("{group}/providers/Microsoft.Compute/virtualMachines/growth-vm");
    client
        .arm(
            &token,
            reqwest::Method::PUT,
            &vm,
            json!({"location": "westus", "identity": {
                "type": "UserAssigned",
                "userAssignedIdentities": {probe.clone(): {}},
            }}),
        )
        .await;
    let vault_id = format!("{group}/providers/Microsoft.KeyVault/vaults/growthkv");
    client
        .arm(
            &token,
            reqwest::Method::PUT,
            &vault_id,
            json!({"location": "westus", "properties": {}}),
        )
        .await;
    let admin_object = admin_object_id(&client).await;
    let assignment = format!(
        "{vault_id}/providers/Microsoft.Authorization/roleAssignments/{PROBE_ASSIGNMENT}?api-version=2022-04-01"
    );
    let body = json!({"properties": {
        "roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{SECRETS_OFFICER}"),
        "principalId": admin_object,
    }});
    let response = client
        .http
        .put(format!("{}{assignment}", client.base))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .expect("role assignment");
    assert!(response.status().is_success(), "role assignment: {}", response.status());
    let vault = client.arm(&token, reqwest::Method::GET, &vault_id, Value::Null).await;
    let uri = vault["properties"]["vaultUri"].as_str().expect("vaultUri").to_owned();
    let vault_token = client.token(VAULT_SCOPE).await;
    let set = client
        .http
        .put(format!("{uri}secrets/probe?api-version=7.4"))
        .bearer_auth(&vault_token)
        .json(&json!({"value": "growth"}))
        .send()
        .await
        .expect("set secret");
    assert!(set.status().is_success(), "set secret: {}", set.status());
    running.shutdown().await;

    let fill_started = Instant::now();
    fill(&dir, database.as_deref(), size).await;
    let fill = fill_started.elapsed();

    let started = Instant::now();
    let running = start(&dir, database.as_deref()).await;
    let start_up = started.elapsed();
    let client = Client::new(&running.server, &dir);
    let token = client.token(MANAGEMENT).await;
    let vault = client.arm(&token, reqwest::Method::GET, &vault_id, Value::Null).await;
    let uri = vault["properties"]["vaultUri"].as_str().expect("vaultUri").to_owned();
    let vault_token = client.token(VAULT_SCOPE).await;
    let list =
        client.arm(&token, reqwest::Method::GET, &format!("{group}/resources"), Value::Null).await;
    assert!(list["value"].as_array().is_some_and(|page| !page.is_empty()), "{list}");
    if size > 200 {
        assert!(list.get("nextLink").is_some(), "a large group is paged");
    }

    let token_url = format!("{}/{}/oauth2/v2.0/token", client.base, client.tenant);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client.app_id.as_str()),
        ("client_secret", client.secret.as_str()),
        ("scope", MANAGEMENT),
    ];
    let endpoint = endpoint_of(&client.http, &client.base, &token, &vm).await;
    let plain =
        reqwest::Client::builder().no_proxy().pool_max_idle_per_host(1).build().expect("client");
    let imds = |resource: &str| {
        plain
            .get(format!("{endpoint}/metadata/identity/oauth2/token"))
            .query(&[
                ("api-version", "2018-02-01"),
                ("resource", resource),
                ("client_id", probe_client_id.as_str()),
            ])
            .header("Metadata", "true")
    };
    let mut operations = Vec::new();
    let issuance = time(|| client.http.post(&token_url).form(&form)).await;
    operations.push(("token issuance", issuance.0, issuance.1));
    let cached = time(|| imds("https://management.azure.com/")).await;
    operations.push(("IMDS cached token", cached.0, cached.1));
    let audiences = std::cell::Cell::new(0u32);
    let uncached = time(|| {
        audiences.set(audiences.get() + 1);
        imds(&format!("https://growth-{}.example", audiences.get()))
    })
    .await;
    operations.push(("IMDS uncached token", uncached.0, uncached.1));
    let get =
        time(|| client.http.get(format!("{}{probe}?{API}", client.base)).bearer_auth(&token)).await;
    operations.push(("ARM GET one resource", get.0, get.1));
    let list = time(|| {
        client
            .http
            .get(format!("{}{group}/resources?{API}&$top=10", client.base))
            .bearer_auth(&token)
    })
    .await;
    operations.push(("ARM list group, 10 a page", list.0, list.1));
    let secret = time(|| {
        client.http.get(format!("{uri}secrets/probe?api-version=7.4")).bearer_auth(&vault_token)
    })
    .await;
    operations.push(("Key Vault get + RBAC", secret.0, secret.1));
    running.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Measured { start_up, fill, operations }
}

async fn admin_object_id(client: &Client) -> String {
    let token = client.token("https://graph.microsoft.com/.default").await;
    let response = client
        .http
        .get(format!("{}/v1.0/servicePrincipals?$filter=appId eq '{}'", client.base, client.app_id))
        .bearer_auth(token)
        .send()
        .await
        .expect("service principal");
    let body: Value = response.json().await.expect("service principal body");
    body["value"][0]["id"].as_str().expect("admin object id").to_owned()
}

/// Median and mean of `SAMPLES` requests after `WARMUP`, each answered with a success.
async fn time(request: impl Fn() -> reqwest::RequestBuilder) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(SAMPLES);
    for n in 0..WARMUP + SAMPLES {
        let started = Instant::now();
        let response = request().send().await.expect("request");
        let status = response.status();
        response.bytes().await.expect("body");
        assert!(status.is_success(), "request failed: {status}");
        if n >= WARMUP {
            samples.push(started.elapsed());
        }
    }
    let mean = samples.iter().sum::<Duration>() / SAMPLES as u32;
    samples.sort();
    (samples[SAMPLES / 2], mean)
}

/// Copies of the probe rows under new keys until each table holds `size` rows of its kind.
async fn fill(dir: &Path, database: Option<&str>, size: u64) {
    let copies = size.saturating_sub(1) as i64;
    if copies == 0 {
        return;
    }
    match database {
        None => {
            let url = format!("sqlite://{}", dir.join("ambient.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await.expect("open SQLite");
            for statement in fill_statements(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) ",
                "n",
            ) {
                sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
                    .bind(copies)
                    .execute(&pool)
                    .await
                    .expect(&statement);
            }
            pool.close().await;
        }
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.expect("open PostgreSQL");
            for statement in fill_statements("", "generate_series(1, $1::bigint) AS n(i)") {
                sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
                    .bind(copies)
                    .execute(&pool)
                    .await
                    .expect(&statement);
                sqlx::query("ANALYZE").execute(&pool).await.expect("analyze");
            }
            pool.close().await;
        }
    }
}

/// One `INSERT ... SELECT` per table: `prefix` opens the statement (SQLite's counter CTE) and
/// `series` names the counter in `FROM` (`n` there, `generate_series` in PostgreSQL).
fn fill_statements(prefix: &str, series: &str) -> Vec<String> {
    let copy = |table: &str, columns: &[(&str, &str)], filter: &str| {
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        let values: Vec<String> =
            columns
                .iter()
                .map(|(name, expression)| {
                    if expression.is_empty() {
                        format!("t.{name}")
                    } else {
                        (*expression).to_owned()
                    }
                })
                .collect();
        format!(
            "{prefix}INSERT INTO {table} ({}) SELECT {} FROM {table} t, {series} WHERE {filter}",
            names.join(", "),
            values.join(", ")
        )
    };
    vec![
        copy(
            "principals",
            &[
                ("object_id", "t.object_id || '-f' || i"),
                ("tenant_id", ""),
                ("kind", ""),
                ("app_id", "t.app_id || '-f' || i"),
                ("display_name", "t.display_name || '-f' || i"),
                ("managed_by_key", ""),
                ("identity_kind", ""),
                ("enabled", ""),
                ("created_at", ""),
            ],
            "t.display_name = 'probe'",
        ),
        copy(
            "resources",
            &[
                ("key", "t.key || '-f' || i"),
                ("id", "t.id || '-f' || i"),
                ("subscription_id", ""),
                ("resource_group_key", ""),
                ("type_key", ""),
                ("name", "t.name || '-f' || i"),
                ("location", ""),
                ("tags", ""),
                ("properties", ""),
                ("identity", ""),
                ("host_id", ""),
                ("user_identity_keys", ""),
                ("version", ""),
                ("created_at", ""),
                ("updated_at", ""),
            ],
            "t.name = 'probe'",
        ),
        copy(
            "role_assignments",
            &[
                ("key", "t.key || '-f' || i"),
                ("id", "t.id || '-f' || i"),
                ("name", "t.name || '-f' || i"),
                ("scope", ""),
                ("scope_key", ""),
                ("role_definition_id", ""),
                ("principal_id", "t.principal_id || '-f' || i"),
                ("principal_type", ""),
                ("description", ""),
                ("created_by", ""),
                ("created_at", ""),
                ("updated_at", ""),
            ],
            &format!("t.name = '{PROBE_ASSIGNMENT}'"),
        ),
        copy(
            "vault_secrets",
            &[
                ("vault_key", ""),
                ("name_key", "t.name_key || '-f' || i"),
                ("name", "t.name || '-f' || i"),
                ("current_version", ""),
                ("deleted_at", ""),
                ("scheduled_purge_at", ""),
                ("created_at", ""),
                ("updated_at", ""),
            ],
            "t.name_key = 'probe'",
        ),
        copy(
            "vault_secret_versions",
            &[
                ("vault_key", ""),
                ("name_key", "t.name_key || '-f' || i"),
                ("version", ""),
                ("value", ""),
                ("content_type", ""),
                ("tags", ""),
                ("enabled", ""),
                ("not_before", ""),
                ("expires", ""),
                ("created_at", ""),
                ("updated_at", ""),
            ],
            "t.name_key = 'probe'",
        ),
    ]
}

/// An operation's name as a figure's name: lower case, words joined by `_`.
fn slug(label: &str) -> String {
    let words: Vec<String> = label
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect();
    words.join("_")
}
