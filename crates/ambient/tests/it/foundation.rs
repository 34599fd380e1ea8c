//! The foundation as a new user meets it: `ambient dev` on a fresh directory, restarts,
//! `ambient server` on PostgreSQL, and one clear error line for each kind of bad input.

use std::os::unix::fs::PermissionsExt as _;

use crate::{Ambient, run_ambient, tempdir};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn dev_serves_https_writes_env_and_stops_cleanly() {
    let dir = tempdir("dev");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    for name in [
        "AMBIENT_HOME",
        "AMBIENT_URL",
        "AMBIENT_TENANT_ID",
        "AMBIENT_SUBSCRIPTION_ID",
        "AMBIENT_CA_BUNDLE",
        "REQUESTS_CA_BUNDLE",
        "SSL_CERT_FILE",
        "NODE_EXTRA_CA_CERTS",
    ] {
        assert!(!ambient.var(name).is_empty(), "{name} empty");
    }
    assert!(ambient.url().starts_with("https://localhost:"));
    assert_ne!(ambient.url(), "https://localhost:0", "port 0 must be replaced by the real port");
    let env_sh = std::fs::read_to_string(dir.join("env.sh")).unwrap();
    assert!(
        env_sh.contains("127.0.0.1 login.localhost management.localhost vault.localhost"),
        "{env_sh}"
    );

    // Secrets are private to their owner; the CA's key is kept in the database, sealed under
    // the master key, and never written to the data directory.
    for file in ["master.key", "server.key", "admin.json", "profile.json"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    assert!(!dir.join("ca.key").exists());
    assert_eq!(mode(&dir), 0o700);

    let client = ambient.client();
    let health: serde_json::Value = client
        .get(format!("{}/healthz", ambient.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready = client.get(format!("{}/readyz", ambient.url())).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["detail"], "database: sqlite");

    // A client that does not trust the generated CA is refused.
    let untrusting = reqwest::Client::builder().tls_certs_only([]).build().unwrap();
    assert!(untrusting.get(format!("{}/healthz", ambient.url())).send().await.is_err());

    // The CLI finds the profile through AMBIENT_HOME.
    let (code, stdout, stderr) =
        run_ambient(&["account", "show"], &[("AMBIENT_HOME", dir.to_str().unwrap())]);
    assert_eq!(code, 0, "{stderr}");
    let account: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(account["tenantId"], ambient.var("AMBIENT_TENANT_ID"));

    let (status, banner) = ambient.stop_with("INT");
    assert!(status.success(), "Ctrl-C must shut down cleanly, got {status}");
    assert!(banner.contains("Ambient is running at https://localhost:"), "{banner}");
    assert!(banner.contains("export AMBIENT_URL="), "{banner}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn dev_started_again_reuses_tenant_ca_and_data() {
    let dir = tempdir("restart");
    let first = Ambient::start("dev", &dir, &[], &[]);
    let tenant = first.var("AMBIENT_TENANT_ID").to_owned();
    let subscription = first.var("AMBIENT_SUBSCRIPTION_ID").to_owned();
    let ca = std::fs::read(dir.join("ca.pem")).unwrap();
    let master = std::fs::read(dir.join("master.key")).unwrap();
    let (status, _) = first.stop_with("TERM");
    assert!(status.success());

    let second = Ambient::start("dev", &dir, &[], &[]);
    assert_eq!(second.var("AMBIENT_TENANT_ID"), tenant);
    assert_eq!(second.var("AMBIENT_SUBSCRIPTION_ID"), subscription);
    assert_eq!(std::fs::read(dir.join("ca.pem")).unwrap(), ca);
    assert_eq!(std::fs::read(dir.join("master.key")).unwrap(), master);
    let ready = second.client().get(format!("{}/readyz", second.url())).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    drop(second);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn server_on_postgres_shares_one_deployment_between_nodes() {
    let postgres = test_postgres::PostgresServer::start().expect("start throwaway PostgreSQL");
    let name = test_postgres::PostgresServer::unique_database_name("nodes");
    {
        use sqlx_free_create::create_database;
        create_database(&postgres.admin_url(), &name);
    }
    let url = postgres.database_url(&name);
    let key = "q2C1HnDYk8oZ8oVtD0xP2WbJ1J3g3Qbq0tQj5h2XbQk=";
    let env = [("AMBIENT_MASTER_KEY", key), ("AMBIENT_DATABASE_URL", url.as_str())];
    let (dir_a, dir_b) = (tempdir("node-a"), tempdir("node-b"));
    let node_a = Ambient::start("server", &dir_a, &[], &env);
    let node_b = Ambient::start("server", &dir_b, &[], &env);
    assert_eq!(node_a.var("AMBIENT_TENANT_ID"), node_b.var("AMBIENT_TENANT_ID"));
    for node in [&node_a, &node_b] {
        let ready: serde_json::Value = node
            .client()
            .get(format!("{}/readyz", node.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["detail"], "database: postgres");
        assert!(!node.data_dir.join("master.key").exists(), "the key came from the environment");
    }
    drop((node_a, node_b));
    std::fs::remove_dir_all(&dir_a).ok();
    std::fs::remove_dir_all(&dir_b).ok();
}

/// Creating a database needs a client; `psql` ships with the server binaries.
mod sqlx_free_create {
    pub fn create_database(admin_url: &str, name: &str) {
        let output = std::process::Command::new("psql")
            .arg(admin_url)
            .args(["-v", "ON_ERROR_STOP=1", "-c"])
            .arg(format!("CREATE DATABASE {name}"))
            .output()
            .expect("run psql");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
}

#[track_caller]
fn assert_one_error_line(code: i32, stderr: &str, expected: &str) {
    assert_ne!(code, 0);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(expected), "expected {expected:?} in {stderr}");
}

#[test]
fn a_port_in_use_is_one_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let parent = tempdir("busy");
    let dir = parent.join(".ambient");
    let (code, _, stderr) =
        run_ambient(&["dev", "--data-dir", dir.to_str().unwrap(), "--listen", &address], &[]);
    // Issue 15: the cause once, a way out, and no empty data directory left behind.
    assert_one_error_line(code, &stderr, &format!("listen on {address}: Address already in use"));
    assert_eq!(stderr.matches("Address already in use").count(), 1, "{stderr}");
    assert!(stderr.contains("pass --listen 127.0.0.1:0 for a free port"), "{stderr}");
    assert!(!dir.exists(), "the failed first start left {} behind", dir.display());
    std::fs::remove_dir_all(&parent).ok();
}

#[test]
fn completion_scripts_cover_the_commands() {
    // Goal (issue 15): `ambient completion SHELL` prints a script the shell accepts that knows
    // the CLI's groups; method: generate each, check bash's syntax with `bash -n`.
    for (shell, marker) in
        [("bash", "complete -F"), ("zsh", "#compdef ambient"), ("fish", "complete -c ambient")]
    {
        let (code, stdout, stderr) = run_ambient(&["completion", shell], &[]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains(marker), "{shell}: {stdout}");
        for word in ["keyvault", "federated-credential", "activity-log"] {
            assert!(stdout.contains(word), "{shell} completes {word}");
        }
    }
    let dir = tempdir("completion");
    let script = dir.join("ambient.bash");
    std::fs::write(&script, run_ambient(&["completion", "bash"], &[]).1).unwrap();
    let status = std::process::Command::new("bash").arg("-n").arg(&script).status().unwrap();
    assert!(status.success(), "bash -n refused the script");
    let (code, _, stderr) = run_ambient(&["completion", "tcsh"], &[]);
    assert_ne!(code, 0);
    assert!(stderr.contains("invalid value 'tcsh'"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_unusable_data_directory_is_one_clear_error() {
    let dir = tempdir("file");
    let file = dir.join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let (code, _, stderr) =
        run_ambient(&["dev", "--data-dir", file.to_str().unwrap(), "--listen", "127.0.0.1:0"], &[]);
    assert_one_error_line(code, &stderr, "data directory");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_postgres_url_that_does_not_answer_is_one_clear_error() {
    let dir = tempdir("nopg");
    let (code, _, stderr) = run_ambient(
        &[
            "server",
            "--data-dir",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "postgres://ambient:hunter2@127.0.0.1:1/ambient",
        ],
        &[],
    );
    assert_one_error_line(code, &stderr, "database unavailable");
    assert!(!stderr.contains("hunter2"), "password leaked: {stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_unknown_flag_is_refused_without_a_panic() {
    let (code, _, stderr) = run_ambient(&["dev", "--no-such-flag"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.starts_with("error: unexpected argument '--no-such-flag'"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn a_config_file_is_read_and_flags_win_over_it() {
    let dir = tempdir("config");
    let config = dir.join("ambient.toml");
    std::fs::write(&config, "dns-suffix = \"corp.test\"\nlisten = \"127.0.0.1:1\"\n").unwrap();
    // The file's listen address would fail; the flag Ambient::start passes must win.
    let ambient =
        Ambient::start("server", &dir.join("data"), &["--config", config.to_str().unwrap()], &[]);
    let env_sh = std::fs::read_to_string(ambient.data_dir.join("env.sh")).unwrap();
    assert!(env_sh.contains("vault.corp.test"), "{env_sh}");
    drop(ambient);

    std::fs::write(&config, "lisen = \"x\"\n").unwrap();
    let (code, _, stderr) = run_ambient(&["server", "--config", config.to_str().unwrap()], &[]);
    assert_one_error_line(code, &stderr, "unknown field `lisen`");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9_of_the_server() {
    // Method: acknowledged writes through the CLI (a group, a service principal with a secret),
    // then SIGKILL the server mid-flight, restart it on the same directory and find them all.
    let dir = tempdir("kill9");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let home = [("AMBIENT_HOME", dir.to_str().unwrap())];
    let mut groups = Vec::new();
    for index in 0..5 {
        let name = format!("kept-{index}");
        let (code, _, stderr) = run_ambient(&["group", "create", "-n", &name], &home);
        assert_eq!(code, 0, "{stderr}");
        groups.push(name);
    }
    let (code, stdout, stderr) =
        run_ambient(&["ad", "sp", "create-for-rbac", "-n", "survivor"], &home);
    assert_eq!(code, 0, "{stderr}");
    let sp: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let (status, _) = ambient.stop_with("KILL");
    assert!(!status.success(), "the server was killed, not stopped");

    let restarted = Ambient::start("dev", &dir, &[], &[]);
    for name in &groups {
        let (code, _, stderr) = run_ambient(&["group", "show", "-n", name], &home);
        assert_eq!(code, 0, "group {name} lost after kill -9: {stderr}");
    }
    // The secret acknowledged before the crash still signs in.
    let response = restarted
        .client()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            restarted.url(),
            restarted.var("AMBIENT_TENANT_ID")
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", sp["appId"].as_str().unwrap()),
            ("client_secret", sp["password"].as_str().unwrap()),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    std::fs::remove_dir_all(&dir).ok();
}
