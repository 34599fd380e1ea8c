//! Ambient as a deployment (issue 10): one public URL in front of the listeners, restarts on
//! another port, two servers on one PostgreSQL with an agent that fails over, and a database
//! outage under load. Every process is the real binary; the "load balancer" is a small TCP
//! proxy in this file, as any TCP proxy in front of Ambient would be.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::agent::endpoint_of;
use crate::control_plane::{Arm, rbac_id};
use crate::{Ambient, BINARY, cli_json, python, run_ambient, tempdir};

/// A TCP proxy on 127.0.0.1: each connection goes to the next backend that accepts it, round
/// robin. It runs on a thread of its own, so tests may block while clients go through it.
pub struct Proxy {
    port: u16,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    pub fn start() -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let backends: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = backends.clone();
        let thread = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let next = Arc::new(AtomicUsize::new(0));
                let accept = async {
                    loop {
                        let Ok((mut inbound, _)) = listener.accept().await else { continue };
                        let (backends, next) = (shared.clone(), next.clone());
                        tokio::spawn(async move {
                            let candidates = backends.lock().unwrap().clone();
                            let start = next.fetch_add(1, Ordering::Relaxed);
                            for offset in 0..candidates.len() {
                                let backend = candidates[(start + offset) % candidates.len()];
                                if let Ok(mut outbound) =
                                    tokio::net::TcpStream::connect(backend).await
                                {
                                    let _ =
                                        tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                            .await;
                                    return;
                                }
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
        });
        Proxy { port, backends, stop: Some(stop), thread: Some(thread) }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn public_url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    pub fn set_backends(&self, backends: &[SocketAddr]) {
        *self.backends.lock().unwrap() = backends.to_vec();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A client that trusts `ca` and sends every name to `address` (as DNS pointing at a load
/// balancer would).
fn client_via(ca: &Path, address: SocketAddr, names: &[&str]) -> reqwest::Client {
    let ca = std::fs::read(ca).unwrap();
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .timeout(Duration::from_secs(20));
    for name in names {
        builder = builder.resolve(name, address);
    }
    builder.build().unwrap()
}

/// A client-credential token for the admin of the deployment in `data_dir`, from `base`.
async fn admin_token(
    client: &reqwest::Client,
    base: &str,
    data_dir: &Path,
    tenant: &str,
) -> String {
    let admin: Value =
        serde_json::from_slice(&std::fs::read(data_dir.join("admin.json")).unwrap()).unwrap();
    let response = client
        .post(format!("{base}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", admin["appId"].as_str().unwrap()),
            ("client_secret", admin["password"].as_str().unwrap()),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

async fn get_json(client: &reqwest::Client, url: &str, token: &str) -> (u16, Value) {
    let response = client.get(url).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A long-running `ambient run --as VM -- python mi_workload.py DIR` (see that script).
struct Workload {
    child: std::process::Child,
    dir: PathBuf,
    next: usize,
}

impl Workload {
    fn start(ambient: &Ambient, group: &str, vm: &str) -> Workload {
        let dir = tempdir("workload");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/mi_workload.py");
        let child = std::process::Command::new(BINARY)
            .args(["run", "--as", vm, "-g", group, "--"])
            .arg(python())
            .arg(script)
            .arg(&dir)
            .env("AMBIENT_HOME", &ambient.data_dir)
            .env("AMBIENT_LOG", "warn")
            .spawn()
            .expect("start ambient run");
        Workload { child, dir, next: 1 }
    }

    /// Asks the workload for one fresh token and returns what it got.
    fn fresh_token(&mut self) -> Value {
        let n = self.next;
        self.next += 1;
        std::fs::write(self.dir.join(format!("go-{n}")), b"").unwrap();
        let out = self.dir.join(format!("out-{n}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !out.exists() {
            assert!(Instant::now() < deadline, "the workload did not answer trigger {n}");
            std::thread::park_timeout(Duration::from_millis(50));
        }
        serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("stop"), b"");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::park_timeout(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_another_port_behind_one_public_url_keeps_tokens_vaults_and_endpoints() {
    // Goal: the deployment's identity is its public URL, not the listener. Method: a proxy is
    // the public URL; Ambient restarts on a different port behind it; tokens, the CLI profile,
    // vault URIs and a workload started before the restart keep working.
    let proxy = Proxy::start();
    let public = proxy.public_url();
    let dir = tempdir("restart");
    let first = Ambient::start("dev", &dir, &["--public-url", &public], &[]);
    proxy.set_backends(&[first.listen_addr()]);
    assert_eq!(first.url(), public, "env.sh names the public URL");
    let tenant = first.var("AMBIENT_TENANT_ID").to_owned();
    let subscription = first.var("AMBIENT_SUBSCRIPTION_ID").to_owned();

    // The seeds' set-up, through the CLI (its profile names the public URL).
    cli_json(&first, &["group", "create", "-n", "stock"]);
    let vault = cli_json(&first, &["keyvault", "create", "-g", "stock", "-n", "stockvault"]);
    let vault_uri = format!("https://stockvault.vault.localhost:{}/", proxy.port());
    assert_eq!(vault["properties"]["vaultUri"], vault_uri.as_str(), "{vault}");
    let vm =
        cli_json(&first, &["vm", "create", "-g", "stock", "-n", "stock-vm", "--assign-identity"]);
    let vm_principal = vm["identity"]["principalId"].as_str().unwrap().to_owned();
    let vault_id = vault["id"].as_str().unwrap().to_owned();
    let admin = cli_json(&first, &["ad", "sp", "list", "--display-name", "ambient-admin"]);
    let admin_id = admin[0]["id"].as_str().unwrap().to_owned();
    for (principal, role) in [
        (admin_id.as_str(), "Key Vault Secrets Officer"),
        (vm_principal.as_str(), "Key Vault Secrets User"),
    ] {
        cli_json(
            &first,
            &[
                "role",
                "assignment",
                "create",
                "--assignee",
                principal,
                "--role",
                role,
                "--scope",
                &vault_id,
            ],
        );
    }
    cli_json(
        &first,
        &[
            "keyvault",
            "secret",
            "set",
            "--vault-name",
            "stockvault",
            "-n",
            "db-password",
            "--value",
            "s3cr3t",
        ],
    );

    // Tokens issued before the restart: a client-credential token, and the VM's managed
    // identity token for Key Vault from its metadata endpoint.
    let ca = dir.join("ca.pem");
    let through_proxy = client_via(
        &ca,
        SocketAddr::from(([127, 0, 0, 1], proxy.port())),
        &["localhost", "stockvault.vault.localhost"],
    );
    let arm_token = admin_token(&through_proxy, &public, &dir, &tenant).await;
    let arm = Arm::admin(&first).await;
    let vm_id = vm["id"].as_str().unwrap().to_owned();
    let (endpoint, header) = endpoint_of(&arm, &vm_id).await;
    let response = reqwest::Client::new()
        .get(format!(
            "{endpoint}/msi/token?api-version=2019-08-01&resource=https://vault.azure.net"
        ))
        .header("X-IDENTITY-HEADER", &header)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let vault_token =
        response.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let mut workload = Workload::start(&first, "stock", "stock-vm");
    let before = workload.fresh_token();
    assert_eq!(before["ok"], true, "{before}");
    assert_eq!(before["oid"], vm_principal.as_str());

    // Restart on another port; the proxy now forwards there.
    let (status, _) = first.stop_with("TERM");
    assert!(status.success());
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let second = Ambient::start("dev", &dir, &["--public-url", &public, "--listen", &listen], &[]);
    proxy.set_backends(&[SocketAddr::from(([127, 0, 0, 1], port))]);
    assert_eq!(second.url(), public);

    let (status, body) = get_json(
        &through_proxy,
        &format!("{public}/subscriptions/{subscription}?api-version=2022-12-01"),
        &arm_token,
    )
    .await;
    assert_eq!(status, 200, "the pre-restart ARM token is accepted: {body}");
    let (status, body) = get_json(
        &through_proxy,
        &format!("{vault_uri}secrets/db-password?api-version=7.4"),
        &vault_token,
    )
    .await;
    assert_eq!(status, 200, "the pre-restart managed-identity token reads the vault: {body}");
    assert_eq!(body["value"], "s3cr3t");
    let shown = cli_json(
        &second,
        &["keyvault", "secret", "show", "--vault-name", "stockvault", "-n", "db-password"],
    );
    assert_eq!(shown["value"], "s3cr3t", "{shown}");
    let (endpoint_after, _) = endpoint_of(&Arm::admin(&second).await, &vm_id).await;
    assert_eq!(endpoint_after, endpoint, "the resource's metadata endpoint kept its port");
    let after = workload.fresh_token();
    assert_eq!(
        after["ok"], true,
        "the workload started before the restart still gets tokens: {after}"
    );
    assert_eq!(after["oid"], vm_principal.as_str());
    assert_eq!(after["iss"], before["iss"]);
    drop(workload);
    drop(second);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn dev_on_port_zero_keeps_its_port_and_says_so_when_it_is_taken() {
    let dir = tempdir("port-zero");
    let first = Ambient::start("dev", &dir, &[], &[]);
    let url = first.url().to_owned();
    let address = first.listen_addr();
    drop(first);
    let second = Ambient::start("dev", &dir, &[], &[]);
    assert_eq!(second.url(), url, "the same URL after a restart on --listen 127.0.0.1:0");
    drop(second);
    // Something else holds the port now: a clear refusal, unless a public URL is given.
    let holder = std::net::TcpListener::bind(address).unwrap();
    let (code, _, stderr) =
        run_ambient(&["dev", "--data-dir", dir.to_str().unwrap(), "--listen", "127.0.0.1:0"], &[]);
    assert_ne!(code, 0);
    assert!(stderr.contains(&format!("port {} is in use", address.port())), "{stderr}");
    assert!(stderr.contains("--public-url"), "{stderr}");
    let proxy = Proxy::start();
    let third = Ambient::start("dev", &dir, &["--public-url", &proxy.public_url()], &[]);
    assert_eq!(third.url(), proxy.public_url());
    drop((third, holder));
    std::fs::remove_dir_all(&dir).ok();
}

/// Creates database `name` on `postgres`.
fn create_database(postgres: &test_postgres::PostgresServer, name: &str) -> String {
    let output = std::process::Command::new("psql")
        .arg(postgres.admin_url())
        .args(["-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("run psql");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    postgres.database_url(name)
}

const MASTER_KEY: &str = "q2C1HnDYk8oZ8oVtD0xP2WbJ1J3g3Qbq0tQj5h2XbQk=";

/// The key ids a node publishes.
async fn jwks_kids(client: &reqwest::Client, base: &str, tenant: &str) -> Vec<String> {
    let jwks: Value = client
        .get(format!("{base}/{tenant}/discovery/v2.0/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// `/readyz` of the listener at `address`: (status, leader).
async fn readiness(client: &reqwest::Client, address: SocketAddr) -> (u16, Option<bool>) {
    match client.get(format!("https://localhost:{}/readyz", address.port())).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body["leader"].as_bool())
        }
        Err(_) => (0, None),
    }
}

/// Polls `check` every 100 ms until it holds; panics with `what` after `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what} did not happen within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_are_one_deployment_and_the_agent_fails_over() {
    // Goal: issue 10's multi-node proof. Method: two `ambient server` processes with one public
    // URL, one PostgreSQL and one master key; an agent that knows both; kill -9 of the node the
    // agent talks to while a workload asks for fresh and cached tokens 20 times a second.
    let postgres = test_postgres::PostgresServer::start().expect("start throwaway PostgreSQL");
    let database =
        create_database(&postgres, &test_postgres::PostgresServer::unique_database_name("two"));
    let env = [("AMBIENT_MASTER_KEY", MASTER_KEY), ("AMBIENT_DATABASE_URL", database.as_str())];
    let proxy = Proxy::start();
    let public = proxy.public_url();
    let (dir_a, dir_b) = (tempdir("node-a"), tempdir("node-b"));
    let node_a = Ambient::start("server", &dir_a, &["--public-url", &public], &env);
    let node_b = Ambient::start("server", &dir_b, &["--public-url", &public], &env);
    let (addr_a, addr_b) = (node_a.listen_addr(), node_b.listen_addr());
    proxy.set_backends(&[addr_a, addr_b]);
    assert_eq!(
        std::fs::read(dir_a.join("ca.pem")).unwrap(),
        std::fs::read(dir_b.join("ca.pem")).unwrap(),
        "every node serves certificates of the deployment's one CA"
    );
    let tenant = node_a.var("AMBIENT_TENANT_ID").to_owned();
    let subscription = node_a.var("AMBIENT_SUBSCRIPTION_ID").to_owned();
    let ca = dir_a.join("ca.pem");
    let to_a = client_via(&ca, addr_a, &["localhost"]);
    let to_b = client_via(&ca, addr_b, &["localhost"]);
    let base_a = format!("https://localhost:{}", addr_a.port());
    let base_b = format!("https://localhost:{}", addr_b.port());

    // A token from node A works on node B: both are the issuer the public URL names.
    let token = admin_token(&to_a, &base_a, &dir_a, &tenant).await;
    let (status, body) = get_json(
        &to_b,
        &format!("{base_b}/subscriptions/{subscription}?api-version=2022-12-01"),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // A role assignment written on A is enforced on B within the caches' bound.
    let arm_a = Arm::admin(&node_a).await;
    arm_a.put(&arm_a.group("shared"), json!({"location": "westus"})).await;
    let created: Value = to_a
        .post(format!("{base_a}/v1.0/servicePrincipals"))
        .bearer_auth(&token)
        .json(&json!({"displayName": "reader-app"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sp_id = created["id"].as_str().unwrap().to_owned();
    let app_id = created["appId"].as_str().unwrap().to_owned();
    let password: Value = to_a
        .post(format!("{base_a}/v1.0/servicePrincipals/{sp_id}/addPassword"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = password["secretText"].as_str().unwrap().to_owned();
    let reader_token: Value = to_b
        .post(format!("{base_b}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", app_id.as_str()),
            ("client_secret", secret.as_str()),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reader_token = reader_token["access_token"].as_str().unwrap().to_owned();
    let group_on_b = format!(
        "{base_b}/subscriptions/{subscription}/resourceGroups/shared?api-version=2024-11-01"
    );
    let (status, _) = get_json(&to_b, &group_on_b, &reader_token).await;
    assert_eq!(status, 403);
    arm_a.assign_role_id(rbac_id("Reader"), &sp_id, &arm_a.group("shared")).await;
    let took = eventually(
        Duration::from_secs(5),
        "the assignment made on A allowing the read on B",
        || async { get_json(&to_b, &group_on_b, &reader_token).await.0 == 200 },
    )
    .await;
    eprintln!("an assignment written on node A was enforced on node B after {took:?}");

    // A key rotated on A is published by B within 5 s.
    let before = jwks_kids(&to_b, &base_b, &tenant).await;
    let rotated = to_a
        .post(format!("{base_a}/v1.0/ambient/signingKeys/rotate"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(rotated.status().is_success(), "{}", rotated.text().await.unwrap());
    let after_a = jwks_kids(&to_a, &base_a, &tenant).await;
    assert!(after_a.len() > before.len(), "A publishes the new key at once");
    eventually(Duration::from_secs(5), "node B publishing the key rotated on node A", || {
        let (to_b, base_b, after_a, tenant) =
            (to_b.clone(), base_b.clone(), after_a.clone(), tenant.clone());
        async move {
            let mut on_b = jwks_kids(&to_b, &base_b, &tenant).await;
            let mut expected = after_a;
            on_b.sort();
            expected.sort();
            on_b == expected
        }
    })
    .await;

    // Exactly one node runs the background jobs.
    let probe = client_via(&ca, addr_a, &[]);
    eventually(Duration::from_secs(15), "one leader", || async {
        let a = readiness(&probe, addr_a).await.1;
        let b = readiness(&probe, addr_b).await.1;
        matches!((a, b), (Some(true), Some(false)) | (Some(false), Some(true)))
    })
    .await;

    // An agent on host edge-1 that knows both servers, A first.
    let created: Value = to_a
        .put(format!("{base_a}/hosting/hosts/edge-1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let join_token = created["joinToken"].as_str().unwrap().to_owned();
    let agent_dir = tempdir("agent-two");
    let mut agent = std::process::Command::new(BINARY)
        .args(["agent", "--server", &base_a, "--server", &base_b, "--join-token", &join_token])
        .arg("--data-dir")
        .arg(&agent_dir)
        .arg("--ca-bundle")
        .arg(&ca)
        .env("AMBIENT_LOG", "warn")
        .spawn()
        .expect("start ambient agent");
    let vm_id = arm_a.vm("shared", "edge-vm");
    let (status, body) = arm_a
        .put(&vm_id, json!({"location": "westus", "identity": {"type": "SystemAssigned"}, "properties": {"hostId": "edge-1"}}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (endpoint, _) = endpoint_of(&arm_a, &vm_id).await;

    // 20 requests a second for 30 s, alternating fresh audiences and a cached one; node A dies
    // after 5 s.
    let workload = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut killed = None;
    let mut leader_b = tokio::spawn(async { None });
    let mut node_a = Some(node_a);
    for n in 0..600usize {
        let due = started + Duration::from_millis(50 * n as u64);
        tokio::time::sleep_until(due.into()).await;
        if killed.is_none() && started.elapsed() >= Duration::from_secs(5) {
            let a = node_a.take().unwrap();
            let (status, _) = a.stop_with("KILL");
            assert!(!status.success());
            killed = Some(Instant::now());
            // From now on, watch for node B taking over the jobs.
            let probe = probe.clone();
            leader_b = tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(25);
                while Instant::now() < deadline {
                    if readiness(&probe, addr_b).await.1 == Some(true) {
                        return Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                None
            });
        }
        let resource = if n % 2 == 0 {
            format!("https://fresh-{n}.example")
        } else {
            "https://vault.azure.net".to_owned()
        };
        let (client, endpoint, failures) = (workload.clone(), endpoint.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let outcome = client
                .get(format!("{endpoint}/metadata/identity/oauth2/token"))
                .query(&[("api-version", "2018-02-01"), ("resource", resource.as_str())])
                .header("Metadata", "true")
                .send()
                .await;
            let failure = match outcome {
                Ok(response) if response.status() == 200 => None,
                Ok(response) => Some(format!(
                    "{n}: http {} {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                )),
                Err(error) => Some(format!("{n}: {error}")),
            };
            if let Some(failure) = failure {
                failures.lock().unwrap().push(format!("{failure} after {:?}", sent.elapsed()));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "{} of 600 requests failed: {failures:?}", failures.len());

    // B took over the background jobs once A's lease lapsed.
    let led_at =
        leader_b.await.unwrap().expect("node B ran the background jobs within 25 s of the kill");
    eprintln!(
        "node B ran the background jobs {:?} after node A was killed",
        led_at.duration_since(killed.unwrap())
    );
    // The surviving node reports when the agent last called (either node may have written it).
    let host: Value = to_b
        .get(format!("{base_b}/hosting/hosts/edge-1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(host["lastContact"].as_str().is_some_and(|at| at.ends_with('Z')), "{host}");
    let _ = agent.kill();
    let _ = agent.wait();
    drop(node_b);
    for dir in [dir_a, dir_b, agent_dir] {
        std::fs::remove_dir_all(dir).ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_with_retry_after_and_heals_by_itself() {
    // Goal: with PostgreSQL stopped for 10 s under load, every request either succeeds or gets
    // 503 with Retry-After in its protocol's shape, none takes more than 5 s, and once the
    // database is back every request succeeds without restarting Ambient.
    let postgres = test_postgres::PostgresServer::start().expect("start throwaway PostgreSQL");
    let database =
        create_database(&postgres, &test_postgres::PostgresServer::unique_database_name("outage"));
    let env = [("AMBIENT_MASTER_KEY", MASTER_KEY), ("AMBIENT_DATABASE_URL", database.as_str())];
    let dir = tempdir("outage");
    let node = Ambient::start("server", &dir, &[], &env);
    let tenant = node.var("AMBIENT_TENANT_ID").to_owned();
    let subscription = node.var("AMBIENT_SUBSCRIPTION_ID").to_owned();
    let arm = Arm::admin(&node).await;
    arm.put(&arm.group("rg"), json!({"location": "westus"})).await;
    let vault_id = format!(
        "/subscriptions/{subscription}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/outagevault"
    );
    let (status, vault) = arm.put(&vault_id, json!({"location": "westus", "properties": {"tenantId": tenant, "sku": {"family": "A", "name": "standard"}}})).await;
    assert_eq!(status, 201, "{vault}");
    let admin: Value =
        serde_json::from_slice(&std::fs::read(dir.join("admin.json")).unwrap()).unwrap();
    let admin_id =
        cli_json(&node, &["ad", "sp", "list", "--display-name", "ambient-admin"])[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    arm.assign_role_id(rbac_id("Key Vault Secrets Officer"), &admin_id, &vault_id).await;
    let port = node.listen_addr().port();
    let client = client_via(
        &dir.join("ca.pem"),
        node.listen_addr(),
        &["localhost", "outagevault.vault.localhost"],
    );
    let base = format!("https://localhost:{port}");
    let vault_token: Value = client
        .post(format!("{base}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", admin["appId"].as_str().unwrap()),
            ("client_secret", admin["password"].as_str().unwrap()),
            ("scope", "https://vault.azure.net/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let vault_token = vault_token["access_token"].as_str().unwrap().to_owned();
    let secret_url =
        format!("https://outagevault.vault.localhost:{port}/secrets/s?api-version=7.4");
    let set = client
        .put(&secret_url)
        .bearer_auth(&vault_token)
        .json(&json!({"value": "v"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200, "{}", set.text().await.unwrap());

    #[derive(Debug, Clone)]
    struct Outcome {
        kind: &'static str,
        sent_at: Duration,
        took: Duration,
        status: u16,
        retry_after: bool,
        shape_ok: bool,
    }
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let started = Instant::now();
    let load = {
        let (client, outcomes, base, tenant, subscription, arm_token, vault_token, secret_url) = (
            reqwest::Client::builder()
                .tls_certs_only([reqwest::Certificate::from_pem(
                    &std::fs::read(dir.join("ca.pem")).unwrap(),
                )
                .unwrap()])
                .resolve("localhost", node.listen_addr())
                .resolve("outagevault.vault.localhost", node.listen_addr())
                .timeout(Duration::from_secs(6))
                .build()
                .unwrap(),
            outcomes.clone(),
            base.clone(),
            tenant.clone(),
            subscription.clone(),
            arm.token().to_owned(),
            vault_token.clone(),
            secret_url.clone(),
        );
        let (app_id, password) = (
            admin["appId"].as_str().unwrap().to_owned(),
            admin["password"].as_str().unwrap().to_owned(),
        );
        // One worker per kind of request, each sending the next as soon as the last answered.
        let workers: Vec<_> = ["token", "arm", "vault"].into_iter().map(|kind| {
        let (client, outcomes, base, tenant, subscription, arm_token, vault_token, secret_url, app_id, password) = (
            client.clone(), outcomes.clone(), base.clone(), tenant.clone(), subscription.clone(),
            arm_token.clone(), vault_token.clone(), secret_url.clone(), app_id.clone(), password.clone(),
        );
        tokio::spawn(async move {
            while started.elapsed() < Duration::from_secs(32) {
                let request = match kind {
                    "token" => client.post(format!("{base}/{tenant}/oauth2/v2.0/token")).form(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", app_id.as_str()),
                        ("client_secret", password.as_str()),
                        ("scope", "https://management.azure.com/.default"),
                    ]),
                    "arm" => client
                        .get(format!("{base}/subscriptions/{subscription}/resourceGroups/rg?api-version=2024-11-01"))
                        .bearer_auth(&arm_token),
                    _ => client.get(&secret_url).bearer_auth(&vault_token),
                };
                let sent_at = started.elapsed();
                let sent = Instant::now();
                let outcome = match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let retry_after = response.headers().contains_key("retry-after");
                        let body: Value = response.json().await.unwrap_or(Value::Null);
                        let shape_ok = match (status, kind) {
                            (200, _) => true,
                            (_, "token") => body["error"] == "temporarily_unavailable",
                            _ => body["error"]["code"].is_string(),
                        };
                        Outcome {
                            kind,
                            sent_at,
                            took: sent.elapsed(),
                            status,
                            retry_after,
                            shape_ok,
                        }
                    }
                    Err(_) => Outcome {
                        kind,
                        sent_at,
                        took: sent.elapsed(),
                        status: 0,
                        retry_after: false,
                        shape_ok: false,
                    },
                };
                outcomes.lock().unwrap().push(outcome);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        }).collect();
        workers
    };
    tokio::time::sleep(Duration::from_secs(6)).await;
    let stopped_at = started.elapsed();
    tokio::task::block_in_place(|| postgres.stop()).expect("stop PostgreSQL");
    let probe = client_via(&dir.join("ca.pem"), node.listen_addr(), &["localhost"]);
    eventually(Duration::from_secs(5), "/readyz saying not ready", || async {
        readiness(&probe, node.listen_addr()).await.0 == 503
    })
    .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    tokio::task::block_in_place(|| postgres.start_again()).expect("start PostgreSQL again");
    let back_at = started.elapsed();
    eventually(Duration::from_secs(5), "/readyz saying ready again", || async {
        readiness(&probe, node.listen_addr()).await.0 == 200
    })
    .await;
    for worker in load {
        worker.await.unwrap();
    }

    let outcomes = outcomes.lock().unwrap().clone();
    let during: Vec<&Outcome> =
        outcomes.iter().filter(|o| o.sent_at > stopped_at && o.sent_at < back_at).collect();
    let unavailable = during.iter().filter(|o| o.status == 503).count();
    eprintln!(
        "{} requests, {} during the outage ({} answered 503), stopped at {stopped_at:?}, back at {back_at:?}",
        outcomes.len(),
        during.len(),
        unavailable
    );
    for kind in ["token", "arm", "vault"] {
        let of_kind = during.iter().filter(|o| o.kind == kind).count();
        let refused = during.iter().filter(|o| o.kind == kind && o.status == 503).count();
        eprintln!("  {kind}: {refused} of {of_kind} answered 503 during the outage");
    }
    assert!(unavailable > 0, "the outage was seen by some requests");
    for outcome in &outcomes {
        assert!(
            outcome.took < Duration::from_secs(5),
            "a request took {:?}: {outcome:?}",
            outcome.took
        );
        match outcome.status {
            200 => {}
            503 => {
                assert!(outcome.retry_after, "503 without Retry-After: {outcome:?}");
                assert!(outcome.shape_ok, "503 not in the protocol's error shape: {outcome:?}");
            }
            _ => panic!("neither success nor 503: {outcome:?}"),
        }
    }
    let after: Vec<&Outcome> = outcomes.iter().filter(|o| o.sent_at > back_at).collect();
    assert!(after.len() > 30, "the load went on after the database came back");
    for outcome in &after {
        assert_eq!(outcome.status, 200, "after the database came back: {outcome:?}");
    }
    drop(node);
    std::fs::remove_dir_all(&dir).ok();
}
