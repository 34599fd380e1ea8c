//! Every managed-identity flavour and the fault injection of issue 14, met by the real Python
//! SDK (azure-identity, azure-keyvault-secrets from PyPI) and the real JavaScript SDK
//! (@azure/identity, @azure/keyvault-secrets from npm, `tests/e2e/js`): under
//! `ambient run --flavour X` with nothing else set, ManagedIdentityCredential and
//! DefaultAzureCredential read a Key Vault secret, and so does the Rust `identity` crate (its
//! `read_secret` example); a federated token file is renewed before it expires; injected 429s
//! are retried; the Docker-Desktop 403 on the IMDS probe makes DefaultAzureCredential move on;
//! injected latency delays answers and "no answer" makes clients time out while the agent
//! serves its other resources; 60 s tokens, a clock offset and a signing-key rotation now show
//! in the answers clients get.
//!
//! Safety: every SDK process runs under `ambient run`, which points every flavour's variables
//! and `AZURE_POD_IDENTITY_AUTHORITY_HOST` at the agent on loopback; the one run with nothing
//! set at all runs in a network namespace (`--isolate`) where 169.254.169.254 is the agent.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::agent::endpoint_of;
use crate::control_plane::Arm;
use crate::{Ambient, cli_json, python, run_ambient, tempdir};

const SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";
const SECRETS_OFFICER: &str = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7";

/// `ambient run --as VM -g GROUP FLAGS... -- PYTHON SCRIPT ARGS...` → (code, stdout JSON,
/// stderr), with `extra_env` added to the CLI's environment.
fn run_as(
    ambient: &Ambient,
    vm: &str,
    flags: &[&str],
    script: &str,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> (i32, Value, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e").join(script);
    let python = python();
    let mut command = vec!["run", "--as", vm, "-g", "rg"];
    command.extend_from_slice(flags);
    command.push("--");
    command.push(python.to_str().unwrap());
    command.push(script.to_str().unwrap());
    command.extend_from_slice(args);
    let home = ambient.data_dir.to_str().unwrap();
    let (code, stdout, stderr) =
        run_ambient(&command, &[&[("AMBIENT_HOME", home)], extra_env].concat());
    let value = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (code, value, stderr)
}

/// A vault holding `db-password`, a VM with one user-assigned identity that may read it, and a
/// federated credential on that identity trusting the identity's own token-exchange tokens
/// (what `--flavour workload` writes). Returns (vault URL, VM id, identity principal id).
async fn setup(ambient: &Ambient, arm: &Arm) -> (String, String, String) {
    arm.put(&arm.group("rg"), json!({"location": "westus"})).await;
    let vault = cli_json(ambient, &["keyvault", "create", "-g", "rg", "-n", "flavours"]);
    let vault_id = vault["id"].as_str().unwrap();
    let admin = cli_json(ambient, &["ad", "sp", "list", "--display-name", "ambient-admin"]);
    arm.assign_role_id(SECRETS_OFFICER, admin[0]["id"].as_str().unwrap(), vault_id).await;
    cli_json(
        ambient,
        &[
            "keyvault",
            "secret",
            "set",
            "--vault-name",
            "flavours",
            "-n",
            "db-password",
            "--value",
            "s3cr3t",
        ],
    );
    let uami = arm.uami("rg", "app-id");
    let (_, identity) = arm.put(&uami, json!({"location": "westus"})).await;
    let principal = identity["properties"]["principalId"].as_str().unwrap().to_owned();
    arm.assign_role_id(SECRETS_USER, &principal, vault_id).await;
    let vm = arm.vm("rg", "vm1");
    let (status, body) = arm
        .put(&vm, json!({"location": "westus", "identity": {"type": "UserAssigned", "userAssignedIdentities": {uami.clone(): {}}}}))
        .await;
    assert_eq!(status, 201, "{body}");

    // The federated credential names the issuer and subject of the identity's own tokens.
    let (endpoint, _) = endpoint_of(arm, &vm).await;
    let answer: Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{endpoint}/metadata/identity/oauth2/token"))
        .query(&[("api-version", "2018-02-01"), ("resource", "api://AzureADTokenExchange")])
        .header("Metadata", "true")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = claims(answer["access_token"].as_str().unwrap());
    let (status, body) = arm
        .put(
            &format!("{uami}/federatedIdentityCredentials/self"),
            json!({"properties": {"issuer": claims["iss"], "subject": claims["sub"], "audiences": ["api://AzureADTokenExchange"]}}),
        )
        .await;
    assert!(status == 200 || status == 201, "{body}");
    (vault["properties"]["vaultUri"].as_str().unwrap().to_owned(), vm, principal)
}

fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn every_flavour_reads_a_secret_with_nothing_but_what_ambient_run_sets() {
    let dir = tempdir("flavours-all");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    let (vault_url, _, principal) = setup(&ambient, &arm).await;

    let safety_net = "AZURE_POD_IDENTITY_AUTHORITY_HOST";
    for (flavour, variables) in [
        ("imds", &[safety_net][..]),
        ("appservice", &[safety_net, "IDENTITY_ENDPOINT", "IDENTITY_HEADER"]),
        ("arc", &[safety_net, "IDENTITY_ENDPOINT", "IMDS_ENDPOINT"]),
        (
            "servicefabric",
            &[safety_net, "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT"],
        ),
        ("ml", &[safety_net, "MSI_ENDPOINT", "MSI_SECRET"]),
        ("cloudshell", &[safety_net, "MSI_ENDPOINT"]),
        (
            "workload",
            &[
                "AZURE_AUTHORITY_HOST",
                "AZURE_CLIENT_ID",
                "AZURE_FEDERATED_TOKEN_FILE",
                safety_net,
                "AZURE_TENANT_ID",
            ],
        ),
    ] {
        let (code, out, stderr) =
            run_as(&ambient, "vm1", &["--flavour", flavour], "flavour_read.py", &[&vault_url], &[]);
        assert_eq!(code, 0, "{flavour}: {out} {stderr}");
        let mut expected: Vec<&str> = variables.to_vec();
        expected.sort_unstable();
        assert_eq!(out["env"], json!(expected), "{flavour}");
        for credential in ["mi", "dac"] {
            assert_eq!(out[credential]["value"], "s3cr3t", "{flavour} {credential}: {out}");
            assert_eq!(out[credential]["oid"], principal.as_str(), "{flavour} {credential}");
        }
    }

    // The Arc key files were deleted once used.
    let left: Vec<_> = std::fs::read_dir("/var/opt/azcmagent/tokens")
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "key"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A wrong flavour name is refused by the CLI.
    let (code, _, stderr) =
        run_as(&ambient, "vm1", &["--flavour", "lambda"], "flavour_read.py", &[&vault_url], &[]);
    assert_ne!(code, 0);
    assert!(stderr.contains("imds, appservice, arc"), "{stderr}");
}

#[tokio::test]
async fn the_rust_identity_crate_reads_a_secret_under_each_flavour() {
    // The `identity` crate's example (`read_secret --json`) under `ambient run --flavour X`:
    // ManagedIdentityCredential must detect the platform's source from nothing but what
    // `ambient run` sets, and both it and DefaultAzureCredential read the secret as the VM's
    // one identity.
    let example = crate::keyvault::build_example();
    let dir = tempdir("flavours-rust");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    let (vault_url, _, principal) = setup(&ambient, &arm).await;
    let home = ambient.data_dir.to_str().unwrap();
    for (flavour, source) in [
        ("imds", "Imds"),
        ("appservice", "AppService"),
        ("arc", "AzureArc"),
        ("servicefabric", "ServiceFabric"),
        ("ml", "LegacyMsi"),
        ("cloudshell", "CloudShell"),
        ("workload", "WorkloadIdentity"),
    ] {
        for credential in ["managed-identity", "default"] {
            let (code, stdout, stderr) = run_ambient(
                &[
                    "run",
                    "--as",
                    "vm1",
                    "-g",
                    "rg",
                    "--flavour",
                    flavour,
                    "--",
                    example.to_str().unwrap(),
                    "--credential",
                    credential,
                    "--json",
                    &vault_url,
                    "db-password",
                ],
                &[("AMBIENT_HOME", home)],
            );
            assert_eq!(code, 0, "{flavour} {credential}: {stdout} {stderr}");
            let out: Value = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
            assert_eq!(out["value"], "s3cr3t", "{flavour} {credential}: {out}");
            assert_eq!(out["oid"], principal.as_str(), "{flavour} {credential}");
            if credential == "managed-identity" {
                assert_eq!(out["source"], source, "{flavour}");
            }
        }
    }
}

/// The directory holding `tests/e2e/js`'s packages (`npm ci`, rebuilt when the lock file
/// changes) and a copy of its scripts, under the target directory.
fn node_dir() -> std::path::PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/js");
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.join("e2e-js");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(tmp.join("e2e-js.lock")).unwrap();
    lock.lock().expect("lock the node packages");
    let wanted = std::fs::read_to_string(source.join("package-lock.json")).unwrap();
    let stamp = dir.join("lock.stamp");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        let _ = std::fs::remove_dir_all(dir.join("node_modules"));
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(source.join(file), dir.join(file)).unwrap();
        }
        let output = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .expect("run npm ci");
        assert!(
            output.status.success(),
            "npm ci failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(&stamp, &wanted).unwrap();
    }
    std::fs::copy(source.join("flavour_read.mjs"), dir.join("flavour_read.mjs")).unwrap();
    dir
}

#[tokio::test]
async fn the_javascript_sdk_reads_a_secret_under_each_managed_identity_flavour() {
    let node = node_dir();
    let dir = tempdir("flavours-js");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    let (vault_url, _, principal) = setup(&ambient, &arm).await;
    let script = node.join("flavour_read.mjs");
    let home = ambient.data_dir.to_str().unwrap();
    // Service Fabric: MSAL Node does not pin the thumbprint; Node trusts the agent's certificate
    // through its CA, which `ambient run` adds to NODE_EXTRA_CA_CERTS. Workload: the script
    // refuses to resolve any name that is not local and reports the attempts, which must be
    // none (MSAL Node's instance discovery would ask login.microsoftonline.com).
    for flavour in ["imds", "appservice", "arc", "servicefabric", "ml", "cloudshell", "workload"] {
        let (code, stdout, stderr) = run_ambient(
            &[
                "run",
                "--as",
                "vm1",
                "-g",
                "rg",
                "--flavour",
                flavour,
                "--",
                "node",
                script.to_str().unwrap(),
                &vault_url,
            ],
            &[("AMBIENT_HOME", home)],
        );
        assert_eq!(code, 0, "{flavour}: {stdout} {stderr}");
        let out: Value = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
        for credential in ["mi", "dac"] {
            assert_eq!(out[credential]["value"], "s3cr3t", "{flavour} {credential}: {out}");
            assert_eq!(out[credential]["oid"], principal.as_str(), "{flavour} {credential}");
        }
        assert_eq!(out["lookups"], json!([]), "{flavour}: names outside loopback");
    }
}

#[tokio::test]
async fn a_federated_token_file_is_renewed_before_it_expires() {
    let dir = tempdir("flavours-renew");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    let (vault_url, vm, principal) = setup(&ambient, &arm).await;
    // Tokens of 60 s: the file is rewritten about every 30 s.
    let set =
        cli_json(&ambient, &["host", "fault", "set", "--resource", &vm, "--token-lifetime", "60"]);
    assert_eq!(set["tokenLifetimeSecs"], 60);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (code, out, stderr) = run_as(
        &ambient,
        "vm1",
        &["--flavour", "workload"],
        "flavour_read.py",
        &[&vault_url, "3"],
        &[],
    );
    assert_eq!(code, 0, "{out} {stderr}");
    let files = &out["files"];
    let (first, later, now) = (
        files["first_exp"].as_i64().unwrap(),
        files["later_exp"].as_i64().unwrap(),
        files["now"].as_i64().unwrap(),
    );
    assert!(first < now, "the first file had expired when read again: {out}");
    assert!(later > now, "the file was renewed before it expired: {out}");
    assert_eq!(out["later"]["value"], "s3cr3t", "{out}");
    assert_eq!(out["later"]["oid"], principal.as_str());
}

#[tokio::test]
async fn injected_429s_are_retried_by_the_sdk_and_logged() {
    let dir = tempdir("flavours-429");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    arm.put(&arm.group("rg"), json!({"location": "westus"})).await;
    let vm = arm.vm("rg", "vm1");
    let (status, body) =
        arm.put(&vm, json!({"location": "westus", "identity": {"type": "SystemAssigned"}})).await;
    assert_eq!(status, 201, "{body}");
    endpoint_of(&arm, &vm).await;
    cli_json(
        &ambient,
        &["host", "fault", "set", "--resource", &vm, "--error", "429:30", "--retry-after", "1"],
    );
    let shown = cli_json(&ambient, &["host", "fault", "show", "--resource", &vm]);
    assert_eq!(shown["errors"], json!([{"status": 429, "percent": 30}]), "{shown}");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (code, out, stderr) =
        run_as(&ambient, "vm1", &["--flavour", "imds"], "mi_retries.py", &["6"], &[]);
    assert_eq!(code, 0, "{out} {stderr}");
    assert_eq!(out["ok"], 6, "{out}");

    // The agent's log shows the injected answers (its warnings reach `AMBIENT_LOG=warn`).
    let log = ["stdout.log", "stderr.log"]
        .map(|name| std::fs::read_to_string(ambient.data_dir.join(name)).unwrap_or_default())
        .concat();
    let injected = log.lines().filter(|line| line.contains("fault injected: error answer")).count();
    assert!(injected >= 1, "no injected 429 in the log:\n{log}");
    assert!(log.contains("status=429"), "{log}");
}

#[tokio::test]
async fn the_probe_s_docker_desktop_403_makes_default_credential_move_on() {
    if !crate::keyvault::is_root() {
        panic!("this test needs root: it runs the workload in a network namespace");
    }
    let dir = tempdir("flavours-403");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    arm.put(&arm.group("rg"), json!({"location": "westus"})).await;
    let vm = arm.vm("rg", "vm1");
    let (status, body) =
        arm.put(&vm, json!({"location": "westus", "identity": {"type": "SystemAssigned"}})).await;
    assert_eq!(status, 201, "{body}");
    endpoint_of(&arm, &vm).await;
    cli_json(&ambient, &["host", "fault", "set", "--resource", &vm, "--imds-unreachable"]);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The next credential in the chain: an `az` that answers with a recognizable token.
    let bin = tempdir("flavours-403-bin");
    let az = bin.join("az");
    std::fs::write(
        &az,
        "#!/bin/sh\necho '{\"accessToken\": \"token-from-az\", \"expiresOn\": \"2099-01-01 00:00:00.000000\", \"expires_on\": 4070908800, \"tokenType\": \"Bearer\"}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&az, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());

    // Nothing set at all: DefaultAzureCredential probes 169.254.169.254, here the agent.
    let (code, out, stderr) =
        run_as(&ambient, "vm1", &["--isolate"], "dac_moves_on.py", &[], &[("PATH", &path)]);
    assert_eq!(code, 0, "{out} {stderr}");
    assert_eq!(out["token"], "token-from-az", "{out}");
    assert!(
        out["log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|line| line.as_str().unwrap().contains("unreachable")),
        "{out}"
    );
}

/// A resource group with two VMs with system identities, served by the dev agent; returns the
/// VMs' ids and metadata endpoints.
async fn two_vms(arm: &Arm) -> [(String, String); 2] {
    arm.put(&arm.group("rg"), json!({"location": "westus"})).await;
    let mut vms = Vec::new();
    for name in ["vm1", "vm2"] {
        let vm = arm.vm("rg", name);
        let (status, body) = arm
            .put(&vm, json!({"location": "westus", "identity": {"type": "SystemAssigned"}}))
            .await;
        assert_eq!(status, 201, "{body}");
        let (endpoint, _) = endpoint_of(arm, &vm).await;
        vms.push((vm, endpoint));
    }
    vms.try_into().unwrap()
}

/// One IMDS token request for `resource` with `timeout`: the answer's status and body, and how
/// long it took.
async fn timed_imds(
    endpoint: &str,
    resource: &str,
    timeout: Duration,
) -> (Result<(u16, Value), reqwest::Error>, Duration) {
    let client = reqwest::Client::builder().no_proxy().timeout(timeout).build().unwrap();
    let started = std::time::Instant::now();
    let answer = async {
        let response = client
            .get(format!("{endpoint}/metadata/identity/oauth2/token"))
            .query(&[("api-version", "2018-02-01"), ("resource", resource)])
            .header("Metadata", "true")
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
    }
    .await;
    (answer, started.elapsed())
}

/// Waits until the agent applies the faults just set: `ready` holds for an answer of `endpoint`
/// (polled for a fresh audience each time, so no cached token hides the change).
async fn until_applied(endpoint: &str, ready: impl Fn(&Value) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    for round in 0.. {
        let resource = format!("api://poll-{round}");
        if let (Ok((200, body)), _) = timed_imds(endpoint, &resource, Duration::from_secs(5)).await
            && ready(&body)
        {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the agent did not apply the faults");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn injected_latency_delays_answers_and_no_answer_makes_clients_time_out() {
    // Latency: the same request with and without the fault, timed in this test; the faulty one
    // takes at least the injected time more. No answer: a client's own timeout fires (reqwest's
    // and the identity crate's), while the agent keeps answering the host's other resource.
    let dir = tempdir("flavours-latency");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    let [(vm1, endpoint1), (_, endpoint2)] = two_vms(&arm).await;
    let second = Duration::from_secs(5);

    let (answer, plain) = timed_imds(&endpoint1, "https://vault.azure.net", second).await;
    assert_eq!(answer.unwrap().0, 200);
    let latency = Duration::from_millis(1500);
    cli_json(&ambient, &["host", "fault", "set", "--resource", &vm1, "--latency-ms", "1500"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let slow = loop {
        let (answer, took) = timed_imds(&endpoint1, "https://vault.azure.net", second).await;
        assert_eq!(answer.unwrap().0, 200);
        if took >= latency || std::time::Instant::now() > deadline {
            break took;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(plain < latency, "the answer without the fault took {plain:?}");
    assert!(slow >= latency, "the answer with {latency:?} of latency took {slow:?}");
    assert!(slow >= plain + latency / 2, "{slow:?} is not {latency:?} slower than {plain:?}");
    // The other resource has no fault.
    let (answer, other) = timed_imds(&endpoint2, "https://vault.azure.net", second).await;
    assert_eq!(answer.unwrap().0, 200);
    assert!(other < latency, "{other:?}");

    cli_json(&ambient, &["host", "fault", "set", "--resource", &vm1, "--no-answer"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (answer, _) =
            timed_imds(&endpoint1, "https://vault.azure.net", Duration::from_secs(1)).await;
        match answer {
            Err(error) if error.is_timeout() => break,
            other => assert!(std::time::Instant::now() < deadline, "still answering: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // While a request to vm1 hangs, vm2 answers at once.
    let hanging = tokio::spawn({
        let endpoint1 = endpoint1.clone();
        async move { timed_imds(&endpoint1, "https://storage.azure.com", Duration::from_secs(3)).await }
    });
    let (answer, other) = timed_imds(&endpoint2, "https://storage.azure.com", second).await;
    assert_eq!(answer.unwrap().0, 200);
    assert!(other < Duration::from_secs(2), "{other:?}");
    let (answer, took) = hanging.await.unwrap();
    assert!(answer.as_ref().is_err_and(reqwest::Error::is_timeout), "{answer:?}");
    assert!(took >= Duration::from_secs(3), "{took:?}");
    // The identity crate's timeout fires too, and says so.
    let options = identity::ManagedIdentityCredentialOptions {
        imds_endpoint: Some(endpoint1.clone()),
        http_timeout: Duration::from_secs(2),
        ..identity::ManagedIdentityCredentialOptions::default()
    };
    let credential = identity::ManagedIdentityCredential::from_env(
        &identity::Env::default(),
        identity::ManagedIdentityId::System,
        options,
    )
    .unwrap();
    let started = std::time::Instant::now();
    let error = identity::TokenCredential::get_token(
        &credential,
        &["https://management.azure.com/.default"],
        &identity::TokenRequestOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(error.to_string().contains("timed out"), "{error}");

    // Cleared, vm1 answers again.
    let home = ambient.data_dir.to_str().unwrap();
    let (code, _, stderr) =
        run_ambient(&["host", "fault", "clear", "--resource", &vm1], &[("AMBIENT_HOME", home)]);
    assert_eq!(code, 0, "{stderr}");
    until_applied(&endpoint1, |_| true).await;

    // The agent logged each fault it applied.
    let log = ["stdout.log", "stderr.log"]
        .map(|name| std::fs::read_to_string(ambient.data_dir.join(name)).unwrap_or_default())
        .concat();
    assert!(log.contains("fault injected: latency"), "{log}");
    assert!(log.contains("fault injected: no answer"), "{log}");
}

#[tokio::test]
async fn short_lifetimes_a_rotation_now_and_a_clock_offset_reach_clients() {
    // Each fault as a client sees it in the token answer: a 60 s token, `expires_on` and
    // `not_before` moved by the offset while `expires_in` and the token are not, and after
    // `token-keys rotate --activate-in 0` new tokens signed with the new key, which Key Vault
    // accepts (the Rust example reads the secret with one).
    let example = crate::keyvault::build_example();
    let dir = tempdir("flavours-lifetime");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    let (vault_url, vm1, _) = setup(&ambient, &arm).await;
    let (endpoint1, _) = endpoint_of(&arm, &vm1).await;

    let set = cli_json(
        &ambient,
        &[
            "host",
            "fault",
            "set",
            "--resource",
            &vm1,
            "--token-lifetime",
            "60",
            "--clock-offset",
            "-300",
        ],
    );
    assert_eq!(set["tokenLifetimeSecs"], 60, "{set}");
    assert_eq!(set["clockOffsetSecs"], -300, "{set}");
    until_applied(&endpoint1, |body| expires_in(body).is_some_and(|secs| secs <= 60)).await;
    let (answer, _) =
        timed_imds(&endpoint1, "https://vault.azure.net", Duration::from_secs(5)).await;
    let (status, body) = answer.unwrap();
    assert_eq!(status, 200, "{body}");
    let number = |field: &str| body[field].as_str().unwrap().parse::<i64>().unwrap();
    let token = claims(body["access_token"].as_str().unwrap());
    let (iat, exp) = (token["iat"].as_i64().unwrap(), token["exp"].as_i64().unwrap());
    assert!(exp - iat <= 60, "a 60 s token: {token}");
    assert!(number("expires_in") <= 60, "{body}");
    assert!(number("expires_in") >= 55, "{body}");
    // The answer's times are 300 s behind the token's own, as if the service's clock were.
    assert_eq!(number("expires_on"), exp - 300, "{body} {token}");
    assert!((number("not_before") - (unix_now() - 300)).abs() <= 5, "{body}");

    // A rotation now: the next token is signed with the new key.
    let before = header(body["access_token"].as_str().unwrap())["kid"].clone();
    let rotated = cli_json(&ambient, &["token-keys", "rotate", "--activate-in", "0"]);
    let kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(json!(kid), before, "{rotated}");
    let (answer, _) =
        timed_imds(&endpoint1, "https://storage.azure.com", Duration::from_secs(5)).await;
    let (status, body) = answer.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(body["access_token"].as_str().unwrap())["kid"], kid.as_str(), "{body}");
    // The old key is still published, so tokens signed before the rotation still verify.
    let keys = cli_json(&ambient, &["token-keys", "list"]);
    assert!(keys.as_array().unwrap().iter().any(|key| key["kid"] == before), "{keys}");

    // Changed faults drop the agent's cached tokens, so the workload's Key Vault token is a new
    // one, signed with the new key; the vault accepts it.
    cli_json(&ambient, &["host", "fault", "set", "--resource", &vm1, "--token-lifetime", "120"]);
    until_applied(&endpoint1, |body| expires_in(body).is_some_and(|secs| secs > 60)).await;
    let (code, stdout, stderr) = run_ambient(
        &[
            "run",
            "--as",
            "vm1",
            "-g",
            "rg",
            "--flavour",
            "imds",
            "--",
            example.to_str().unwrap(),
            "--credential",
            "managed-identity",
            &vault_url,
            "db-password",
        ],
        &[("AMBIENT_HOME", ambient.data_dir.to_str().unwrap())],
    );
    assert_eq!(code, 0, "{stdout} {stderr}");
    assert_eq!(stdout.trim(), "s3cr3t");
    let (answer, _) =
        timed_imds(&endpoint1, "https://vault.azure.net", Duration::from_secs(5)).await;
    let (status, body) = answer.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(body["access_token"].as_str().unwrap())["kid"], kid.as_str(), "{body}");
}

/// `expires_in` of an IMDS answer (a string of seconds).
fn expires_in(body: &Value) -> Option<i64> {
    body["expires_in"].as_str().and_then(|secs| secs.parse().ok())
}

/// The JOSE header of a JWT.
fn header(token: &str) -> Value {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap(),
    )
    .unwrap()
}

/// Seconds since the epoch, from the system clock (the server's, on this machine).
fn unix_now() -> i64 {
    #[allow(clippy::disallowed_methods)] // The test compares with the server's wall clock.
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}
