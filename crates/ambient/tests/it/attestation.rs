//! Workload attestation on a shared host (issue 17): two VMs placed on the one dev host, each
//! with a `user` workload selector naming its own Unix user; a client running as each user
//! gets only its own VM's token, the other VM's listener answers 403, and the sign-in log
//! records the refusal with its reason. `ambient run --as` (as root) starts its command as the
//! selected user.
//!
//! Method: the test runs as root, creates two Unix users with unique names (removed on drop),
//! sets the selectors with the CLI (`vm create --workload-user` and `vm update --set`), and runs
//! `curl` as each user with `runuser`. Every request goes to the agent on loopback.

use std::process::Command;

use serde_json::Value;

use crate::agent::endpoint_of;
use crate::control_plane::Arm;
use crate::{Ambient, cli_json, run_ambient, tempdir};

/// A Unix user created for the test and deleted on drop.
struct UnixUser {
    name: String,
    uid: u32,
}

impl UnixUser {
    fn create(label: &str) -> UnixUser {
        let name = format!("amb{label}{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let output = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/bin/sh", &name])
            .output()
            .expect("run useradd");
        assert!(output.status.success(), "useradd: {}", String::from_utf8_lossy(&output.stderr));
        let id = Command::new("id").args(["-u", &name]).output().expect("run id");
        let uid = String::from_utf8_lossy(&id.stdout).trim().parse().expect("a uid");
        UnixUser { name, uid }
    }

    /// `curl` as this user: (HTTP status, body).
    fn curl(&self, url: &str, headers: &[&str]) -> (u16, Value) {
        let mut command = Command::new("runuser");
        command.args(["-u", &self.name, "--", "curl", "--silent", "--noproxy", "*"]);
        for header in headers {
            command.args(["-H", header]);
        }
        let output =
            command.args(["-w", "\n%{http_code}", url]).output().expect("run runuser curl");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let (body, status) = stdout.rsplit_once('\n').expect("curl printed the status");
        let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()));
        (status.trim().parse().expect("a status"), body)
    }
}

impl Drop for UnixUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// The payload of a JWT, unverified (the agent tests verify signatures; this one only reads
/// which resource the token is for).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let mut bytes = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in payload.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => continue,
        };
        buffer = buffer << 6 | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
        }
    }
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Waits until the sign-in log holds an event for `resource` whose text contains `expected`
/// (the log is written in the background).
async fn wait_for_sign_in(ambient: &Ambient, expected: &str, resource: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = cli_json(ambient, &["monitor", "sign-in-log", "list"]);
        let found = log.as_array().unwrap().iter().any(|event| {
            let text = event.to_string();
            text.contains(expected) && text.to_lowercase().contains(&resource.to_lowercase())
        });
        if found {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no sign-in {expected:?} for {resource}: {log}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn two_users_on_one_host_each_get_only_their_own_resources_token() {
    let alice = UnixUser::create("a");
    let bob = UnixUser::create("b");
    let dir = tempdir("attestation");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    arm.put(&arm.group("rg"), serde_json::json!({"location": "westus"})).await;

    // The selectors as a user sets them: on create, and later with az's generic --set.
    let vm_a = cli_json(
        &ambient,
        &[
            "vm",
            "create",
            "-g",
            "rg",
            "-n",
            "vm-a",
            "--assign-identity",
            "--workload-user",
            &alice.name,
        ],
    );
    assert_eq!(vm_a["properties"]["ambient"]["workloadSelectors"]["user"], alice.name.as_str());
    let vm_b = cli_json(&ambient, &["vm", "create", "-g", "rg", "-n", "vm-b", "--assign-identity"]);
    let set = format!("properties.ambient.workloadSelectors.user={}", bob.name);
    let updated = cli_json(&ambient, &["vm", "update", "-g", "rg", "-n", "vm-b", "--set", &set]);
    assert_eq!(updated["properties"]["ambient"]["workloadSelectors"]["user"], bob.name.as_str());
    assert_eq!(updated["properties"]["hostId"], "local", "{updated}");
    let (vm_a, vm_b) = (vm_a["id"].as_str().unwrap(), vm_b["id"].as_str().unwrap());

    let (endpoint_a, _) = endpoint_of(&arm, vm_a).await;
    let (endpoint_b, header_b) = endpoint_of(&arm, vm_b).await;
    let token = |endpoint: &str| {
        format!(
            "{endpoint}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"
        )
    };
    // The assignment watch may bring the selectors a moment after the listener.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while bob.curl(&token(&endpoint_a), &["Metadata: true"]).0 != 403 {
        assert!(std::time::Instant::now() < deadline, "vm-a's selectors never applied");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    for (user, own, own_id, other) in
        [(&alice, &endpoint_a, vm_a, &endpoint_b), (&bob, &endpoint_b, vm_b, &endpoint_a)]
    {
        let (status, body) = user.curl(&token(own), &["Metadata: true"]);
        assert_eq!(status, 200, "{} on its own VM: {body}", user.name);
        let claims = claims(body["access_token"].as_str().unwrap());
        assert_eq!(claims["xms_mirid"], own_id, "{}: {claims}", user.name);
        let (status, body) = user.curl(&token(other), &["Metadata: true"]);
        assert_eq!(status, 403, "{} on the other VM: {body}", user.name);
        assert_eq!(body["error"], "forbidden", "{body}");
        assert!(body.to_string().contains("workload selectors"), "{body}");
    }
    // The App Service protocol refuses in its own shape, even with the right secret.
    let app_service =
        format!("{endpoint_b}/msi/token?api-version=2019-08-01&resource=https://vault.azure.net");
    let (status, body) = alice.curl(&app_service, &[&format!("X-IDENTITY-HEADER: {header_b}")]);
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["statusCode"], 403, "{body}");
    // Root (this test process) is neither user.
    let response = reqwest::Client::new()
        .get(token(&endpoint_a))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // The refusals are failed sign-ins that say why.
    let expected = format!(
        "Workload attestation refused the caller: the caller runs as uid {}, not as user {}",
        alice.uid, bob.name
    );
    wait_for_sign_in(&ambient, &expected, vm_b).await;

    // An executable selector needs the process holding the connection (the /proc/*/fd scan):
    // alice's curl is refused while vm-a asks for another program, and served once it names
    // curl.
    let curl = std::fs::canonicalize("/usr/bin/curl").unwrap().display().to_string();
    let update = |flags: &[&str]| {
        let mut args = vec!["vm", "update", "-g", "rg", "-n", "vm-a"];
        args.extend_from_slice(flags);
        cli_json(&ambient, &args)
    };
    let wait_for = |status: u16, user: &UnixUser| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (got, body) = user.curl(&token(&endpoint_a), &["Metadata: true"]);
            if got == status {
                return body;
            }
            assert!(std::time::Instant::now() < deadline, "never {status}: {got} {body}");
            std::thread::park_timeout(std::time::Duration::from_millis(200));
        }
    };
    update(&["--workload-executable", "/usr/bin/env"]);
    wait_for(403, &alice);
    let updated = update(&["--workload-executable", &curl]);
    assert_eq!(updated["properties"]["ambient"]["workloadSelectors"]["user"], alice.name.as_str());
    let body = wait_for(200, &alice);
    assert_eq!(claims(body["access_token"].as_str().unwrap())["xms_mirid"], vm_a);
    wait_for_sign_in(&ambient, &format!("runs {curl}, not /usr/bin/env"), vm_a).await;

    // `ambient run --as` as root starts the command as the selected user, which matches.
    let home = ambient.data_dir.to_str().unwrap();
    let script = "id -un; curl --silent --noproxy '*' -H Metadata:true \"$AZURE_POD_IDENTITY_AUTHORITY_HOST/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net\"";
    let (code, stdout, stderr) = run_ambient(
        &["run", "--as", "vm-a", "-g", "rg", "--", "sh", "-c", script],
        &[("AMBIENT_HOME", home)],
    );
    assert_eq!(code, 0, "{stderr}");
    let (who, body) = stdout.split_once('\n').unwrap();
    assert_eq!(who, alice.name);
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{stdout}"));
    assert_eq!(claims(body["access_token"].as_str().unwrap())["xms_mirid"], vm_a);
    // Isolation would present ambient run itself to the agent: refused with a reason.
    let (code, _, stderr) = run_ambient(
        &["run", "--as", "vm-a", "-g", "rg", "--isolate", "--", "true"],
        &[("AMBIENT_HOME", home)],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("--isolate cannot be used"), "{stderr}");

    // Without selectors any local process is served again, root included.
    update(&["--clear-workload-selectors"]);
    wait_for(200, &bob);
}
