//! Every managed-identity flavour and the fault injection of issue 14, met by the real Python
//! SDK (azure-identity, azure-keyvault-secrets from PyPI) and the real JavaScript SDK
//! (@azure/identity, @azure/keyvault-secrets from npm, `tests/e2e/js`): under
//! `ambient run --flavour X` with nothing else set, ManagedIdentityCredential and
//! DefaultAzureCredential read a Key Vault secret; a federated token file is renewed before it expires; injected 429s are retried; the
//! Docker-Desktop 403 on the IMDS probe makes DefaultAzureCredential move on.
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
