//! What the `ambient` benches share: an `ambient dev` pinned to one core, with a VM holding a
//! system-assigned identity, a vault with one secret the admin may read, and the tokens and
//! addresses the load generators need.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// Keep-alive connections each load generator keeps busy.
pub const CONNECTIONS: usize = 16;

/// A running `ambient dev`; killed (by its pid) and its data directory removed on drop, unless
/// [`Dev::stop`] stopped it first.
pub struct Dev {
    child: Child,
    dir: std::path::PathBuf,
    /// Whether drop removes the data directory.
    owns_dir: bool,
    pub url: String,
    pub tenant: String,
    pub subscription: String,
    /// Trusts the dev CA and resolves `benchvault.vault.localhost` to the server.
    pub https: reqwest::Client,
    admin: Value,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The bench's resources once created: the VM's metadata endpoint, the vault and tokens.
pub struct Scene {
    pub vm_id: String,
    pub group: String,
    /// The VM's metadata listener (`http://127.0.0.1:PORT`).
    pub endpoint: String,
    pub vault_uri: String,
    pub vault_token: String,
    pub arm_token: String,
    pub admin_app_id: String,
    pub admin_secret: String,
}

impl Dev {
    /// Starts `binary dev` pinned to `cores` (a `taskset -c` list) and waits until it is ready.
    pub fn start(binary: &str, cores: &str, name: &str) -> Dev {
        let dir = std::env::temp_dir().join(format!("ambient-bench-{name}-{}", std::process::id()));
        let mut dev = Dev::start_in(binary, cores, &dir, None);
        dev.owns_dir = true;
        dev
    }

    /// Starts `binary dev` on the data directory `dir` (kept on drop; created when missing) and
    /// the database `database` (`None`: SQLite in `dir`), pinned to `cores`.
    pub fn start_in(
        binary: &str,
        cores: &str,
        dir: &std::path::Path,
        database: Option<&str>,
    ) -> Dev {
        let dir = dir.to_owned();
        let mut command = Command::new("taskset");
        if let Some(url) = database {
            command.env("AMBIENT_DATABASE_URL", url);
        }
        let mut child = command
            .args([
                "-c",
                cores,
                binary,
                "dev",
                "--listen",
                "127.0.0.1:0",
                "--imds-rate-limit",
                "1000000000",
                "--data-dir",
            ])
            .arg(&dir)
            .env("AMBIENT_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start ambient dev");
        let stdout = child.stdout.take().expect("stdout");
        for line in std::io::BufReader::new(stdout).lines() {
            if line.expect("banner").starts_with("Press Ctrl-C") {
                break;
            }
        }
        let env: Vec<(String, String)> = std::fs::read_to_string(dir.join("env.sh"))
            .expect("env.sh")
            .lines()
            .filter_map(|line| line.strip_prefix("export "))
            .filter_map(|line| line.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.trim_matches('\'').to_owned()))
            .collect();
        let var = |name: &str| {
            env.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone()).expect(name)
        };
        let url = var("AMBIENT_URL");
        let ca = std::fs::read(var("AMBIENT_CA_BUNDLE")).expect("ca");
        let port: u16 = url.rsplit(':').next().expect("port").parse().expect("port");
        let https = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("ca")])
            .resolve(
                "benchvault.vault.localhost",
                std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            )
            .pool_max_idle_per_host(CONNECTIONS)
            .build()
            .expect("client");
        let admin: Value =
            serde_json::from_slice(&std::fs::read(dir.join("admin.json")).expect("admin.json"))
                .expect("admin");
        Dev {
            child,
            dir,
            owns_dir: false,
            url,
            tenant: var("AMBIENT_TENANT_ID"),
            subscription: var("AMBIENT_SUBSCRIPTION_ID"),
            https,
            admin,
        }
    }

    /// The size of the dev server's SQLite database (with its write-ahead log), in bytes.
    pub fn database_bytes(&self) -> u64 {
        ["ambient.db", "ambient.db-wal"]
            .iter()
            .filter_map(|name| std::fs::metadata(self.dir.join(name)).ok())
            .map(|metadata| metadata.len())
            .sum()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server as Ctrl-C would (SIGINT by its pid) and waits for it, keeping its data.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill -INT");
        assert!(status.success(), "kill -INT {}", self.child.id());
        let _ = self.child.wait();
        self.owns_dir = false;
    }

    /// The port of the server's HTTPS listener.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().expect("port").parse().expect("port")
    }

    /// A client-credential token of the bootstrap admin for `scope`.
    pub async fn token(&self, scope: &str) -> String {
        client_credentials_token(
            &self.https,
            &self.url,
            &self.tenant,
            self.admin["appId"].as_str().expect("appId"),
            self.admin["password"].as_str().expect("password"),
            scope,
        )
        .await
    }

    /// `PUT {path}` on the control plane; panics unless it succeeds.
    pub async fn put(&self, arm_token: &str, path: &str, body: Value) -> Value {
        let response = self
            .https
            .put(format!("{}{path}?api-version=2024-07-01", self.url))
            .bearer_auth(arm_token)
            .json(&body)
            .send()
            .await
            .expect("put");
        assert!(response.status().is_success(), "PUT {path}: {}", response.status());
        response.json::<Value>().await.expect("json")
    }

    /// A group `bench` with a VM (system-assigned identity) and a vault holding `db-password`,
    /// which the admin may read; waits for the VM's metadata listener.
    pub async fn scene(&self) -> Scene {
        let arm_token = self.token("https://management.azure.com/.default").await;
        let group = format!("/subscriptions/{}/resourceGroups/bench", self.subscription);
        self.put(&arm_token, &group, json!({"location": "local"})).await;
        let vm = self
            .put(
                &arm_token,
                &format!("{group}/providers/Microsoft.Compute/virtualMachines/bench-vm"),
                json!({"location": "local", "identity": {"type": "SystemAssigned"}}),
            )
            .await;
        let vault = self
            .put(
                &arm_token,
                &format!("{group}/providers/Microsoft.KeyVault/vaults/benchvault"),
                json!({"location": "local"}),
            )
            .await;
        let graph = self.token("https://graph.microsoft.com/.default").await;
        let list: Value = self
            .https
            .get(format!(
                "{}/v1.0/servicePrincipals?$filter=displayName%20eq%20%27ambient-admin%27",
                self.url
            ))
            .bearer_auth(graph)
            .send()
            .await
            .expect("sp")
            .json()
            .await
            .expect("json");
        let admin_oid = list["value"][0]["id"].as_str().expect("admin oid").to_owned();
        self.put(
            &arm_token,
            &format!(
                "{}/providers/Microsoft.Authorization/roleAssignments/{}",
                vault["id"].as_str().expect("id"),
                uuid::Uuid::new_v4()
            ),
            json!({"properties": {"roleDefinitionId": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "principalId": admin_oid}}),
        )
        .await;
        let vault_uri = vault["properties"]["vaultUri"].as_str().expect("vaultUri").to_owned();
        let vault_token =
            self.token(&format!("https://vault.localhost:{}/.default", self.port())).await;
        let response = self
            .https
            .put(format!("{vault_uri}secrets/db-password?api-version=7.5"))
            .bearer_auth(&vault_token)
            .json(&json!({"value": "s3cr3t"}))
            .send()
            .await
            .expect("set secret");
        assert!(response.status().is_success(), "set secret: {}", response.status());
        let vm_id = vm["id"].as_str().expect("id").to_owned();
        let endpoint = self.endpoint_of(&arm_token, &vm_id).await;
        Scene {
            vm_id,
            group,
            endpoint,
            vault_uri,
            vault_token,
            arm_token,
            admin_app_id: self.admin["appId"].as_str().expect("appId").to_owned(),
            admin_secret: self.admin["password"].as_str().expect("password").to_owned(),
        }
    }

    /// The metadata listener of compute resource `resource_id`, once its agent reports it.
    pub async fn endpoint_of(&self, arm_token: &str, resource_id: &str) -> String {
        endpoint_of(&self.https, &self.url, arm_token, resource_id).await
    }
}

/// A client-credential token for `scope` from the server at `url`; panics unless it is issued.
pub async fn client_credentials_token(
    https: &reqwest::Client,
    url: &str,
    tenant: &str,
    app_id: &str,
    secret: &str,
    scope: &str,
) -> String {
    let response = https
        .post(format!("{url}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", app_id),
            ("client_secret", secret),
            ("scope", scope),
        ])
        .send()
        .await
        .expect("token request");
    assert!(response.status().is_success(), "token: {}", response.status());
    let body: Value = response.json().await.expect("token json");
    body["access_token"].as_str().expect("access_token").to_owned()
}

/// The metadata listener of compute resource `resource_id`, once its agent reports it to the
/// server at `url` (within 60 s).
pub async fn endpoint_of(
    https: &reqwest::Client,
    url: &str,
    arm_token: &str,
    resource_id: &str,
) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let answer: Value = https
            .get(format!("{url}/hosting/endpoints"))
            .query(&[("resourceId", resource_id)])
            .bearer_auth(arm_token)
            .send()
            .await
            .expect("endpoints")
            .json()
            .await
            .expect("endpoints json");
        if let Some(endpoint) = answer["endpoint"].as_str() {
            return endpoint.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no metadata endpoint for {resource_id}: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Pins this bench to `core` by running it again under `taskset` (once; the child sees
/// `AMBIENT_BENCH_PINNED`), and exits with the child's status.
pub fn pin_self(core: &str) {
    if std::env::var_os("AMBIENT_BENCH_PINNED").is_none() {
        let me = std::env::current_exe().expect("own path");
        let status = Command::new("taskset")
            .args(["-c", core])
            .arg(me)
            .args(std::env::args_os().skip(1))
            .env("AMBIENT_BENCH_PINNED", "1")
            .status()
            .expect("taskset");
        std::process::exit(status.code().unwrap_or(1));
    }
}

/// The resident set size of process `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    status_bytes(pid, "VmRSS")
}

/// A size field of `/proc/PID/status` (`VmRSS`, `RssAnon`, ...) in bytes; 0 when the process or
/// the field is gone.
pub fn status_bytes(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(field)?
                    .strip_prefix(':')?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
        .map_or(0, |kib| kib * 1024)
}

/// One machine-readable line per figure, which `cargo xtask bench` reads.
pub fn figure(name: &str, value: f64, unit: &str) {
    println!("BENCH {name}={value} unit={unit}");
}

/// [`figure`] with a name for people, which the report shows.
pub fn labelled_figure(name: &str, value: f64, unit: &str, label: &str) {
    println!("BENCH {name}={value} unit={unit} label={label}");
}
