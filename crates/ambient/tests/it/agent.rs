//! The host agent as workloads meet it (issue 5): tokens through IMDS and the App Service
//! endpoint with the unmodified azure-identity, SSRF defences, revocation within seconds, and a
//! second host enrolled with a join token.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::control_plane::Arm;
use crate::{Ambient, cli_json, run_python, tempdir};

/// The base URL of a resource's metadata listener and its App Service secret, once the agent
/// has reported it.
pub async fn endpoint_of(arm: &Arm, resource_id: &str) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) =
            arm.get(&format!("/hosting/endpoints?resourceId={}", urlencode(resource_id))).await;
        assert_eq!(status, 200, "{body}");
        if let Some(endpoint) = body["endpoint"].as_str() {
            return (endpoint.to_owned(), body["identityHeader"].as_str().unwrap().to_owned());
        }
        assert!(Instant::now() < deadline, "the agent did not report {resource_id} within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// A VM with a system identity and one user-assigned identity; returns (vm id, identity body).
async fn vm_with_identities(arm: &Arm, group: &str, vm: &str) -> (String, Value) {
    arm.put(&arm.group(group), json!({"location": "westus"})).await;
    let uami = arm.uami(group, &format!("{vm}-id"));
    let (_, identity) = arm.put(&uami, json!({"location": "westus"})).await;
    let vm_id = arm.vm(group, vm);
    let (status, body) = arm
        .put(&vm_id, json!({"location": "westus", "identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {uami: {}}}}))
        .await;
    assert_eq!(status, 201, "{body}");
    (vm_id, json!({"identity": identity, "vm": body}))
}

#[tokio::test]
async fn azure_identity_gets_managed_identity_tokens_through_imds_and_app_service() {
    let dir = tempdir("agent-sdk");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    let (vm_id, created) = vm_with_identities(&arm, "rg", "vm1").await;
    let (endpoint, header) = endpoint_of(&arm, &vm_id).await;
    let identity = &created["identity"];
    let uami_id = identity["id"].as_str().unwrap();
    let client_id = identity["properties"]["clientId"].as_str().unwrap();
    let object_id = identity["properties"]["principalId"].as_str().unwrap();
    let system_principal = created["vm"]["identity"]["principalId"].as_str().unwrap();
    let common = [("CLIENT_ID", client_id), ("OBJECT_ID", object_id), ("RESOURCE_ID", uami_id)];

    let imds = run_python(
        "mi_clients.py",
        &[&common[..], &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", endpoint.as_str())]].concat(),
    );
    let identity_endpoint = format!("{endpoint}/msi/token");
    let app_service = run_python(
        "mi_clients.py",
        &[
            &common[..],
            &[
                ("IDENTITY_ENDPOINT", identity_endpoint.as_str()),
                ("IDENTITY_HEADER", header.as_str()),
                // Another audience, so the agent's cache cannot answer from the IMDS run.
                ("SCOPE", "https://storage.azure.com/.default"),
            ],
        ]
        .concat(),
    );
    for (flavour, result, audience) in [
        ("imds", &imds, "https://vault.azure.net"),
        ("appService", &app_service, "https://storage.azure.com"),
    ] {
        assert_eq!(result["system"]["oid"], system_principal, "{flavour}: {result}");
        assert_eq!(result["system"]["xms_mirid"], vm_id.as_str(), "{flavour}");
        assert_eq!(result["system"]["aud"], audience, "{flavour}");
        assert_eq!(result["system"]["tid"], ambient.var("AMBIENT_TENANT_ID"), "{flavour}");
        for selector in ["by_client_id", "by_object_id", "by_resource_id"] {
            assert_eq!(result[selector]["oid"], object_id, "{flavour} {selector}: {result}");
            assert_eq!(result[selector]["appid"], client_id, "{flavour} {selector}");
            assert_eq!(result[selector]["xms_mirid"], uami_id, "{flavour} {selector}");
            assert_eq!(result[selector]["xms_az_rid"], vm_id.as_str(), "{flavour} {selector}");
        }
        assert_ne!(result["not_held"], "got a token", "{flavour}: {result}");
    }

    // Every issuance landed in the sign-in log with the host and the endpoint kind.
    let log = cli_json(&ambient, &["monitor", "sign-in-log", "list", "--principal", client_id]);
    let events = log.as_array().unwrap();
    assert!(
        events.iter().any(|event| event["endpoint"] == "imds" && event["hostId"] == "local"),
        "{log}"
    );
    assert!(events.iter().any(|event| event["endpoint"] == "appService"), "{log}");
}

#[tokio::test]
async fn the_metadata_endpoints_refuse_what_a_real_imds_refuses() {
    let dir = tempdir("agent-ssrf");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    let (vm1, _) = vm_with_identities(&arm, "rg", "vm1").await;
    let (vm2, _) = vm_with_identities(&arm, "rg", "vm2").await;
    let (endpoint, header) = endpoint_of(&arm, &vm1).await;
    let (_, other_header) = endpoint_of(&arm, &vm2).await;
    let http = reqwest::Client::new();
    let token_url = format!(
        "{endpoint}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"
    );

    let response = http.get(&token_url).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "bad_request_102");
    let probe =
        http.get(format!("{endpoint}/metadata/identity/oauth2/token")).send().await.unwrap();
    assert_eq!(probe.status(), 400, "the bare probe gets a fast answer");
    let forwarded = http
        .get(&token_url)
        .header("Metadata", "true")
        .header("X-Forwarded-For", "10.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), 400);
    let post = http.post(&token_url).header("Metadata", "true").send().await.unwrap();
    assert!(post.status() == 405 || post.status() == 400, "{}", post.status());
    let good = http.get(&token_url).header("Metadata", "true").send().await.unwrap();
    assert_eq!(good.status(), 200);
    let body: Value = good.json().await.unwrap();
    for field in [
        "access_token",
        "expires_in",
        "expires_on",
        "not_before",
        "resource",
        "token_type",
        "client_id",
    ] {
        assert!(body[field].is_string(), "{field} must be a string: {body}");
    }
    let trailing = http
        .get(token_url.replace("/token?", "/token/?"))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(trailing.status(), 200);

    let app_url =
        format!("{endpoint}/msi/token?api-version=2019-08-01&resource=https://vault.azure.net");
    assert_eq!(
        http.get(&app_url)
            .header("X-IDENTITY-HEADER", header.as_str())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(http.get(&app_url).send().await.unwrap().status().is_client_error());
    assert!(
        http.get(&app_url)
            .header("X-IDENTITY-HEADER", "wrong")
            .send()
            .await
            .unwrap()
            .status()
            .is_client_error()
    );
    let stolen =
        http.get(&app_url).header("X-IDENTITY-HEADER", other_header.as_str()).send().await.unwrap();
    assert!(
        stolen.status().is_client_error(),
        "another resource's secret must not work: {}",
        stolen.status()
    );
    let legacy = http
        .get(format!(
            "{endpoint}/msi/token?api-version=2017-09-01&resource=https://vault.azure.net"
        ))
        .header("secret", header.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(legacy.status(), 200);
}

#[tokio::test]
async fn detaching_an_identity_stops_its_tokens_within_seconds() {
    let dir = tempdir("agent-revoke");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    let (vm_id, created) = vm_with_identities(&arm, "rg", "vm1").await;
    let (endpoint, _) = endpoint_of(&arm, &vm_id).await;
    let client_id = created["identity"]["properties"]["clientId"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let url = format!(
        "{endpoint}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/&client_id={client_id}"
    );
    assert_eq!(http.get(&url).header("Metadata", "true").send().await.unwrap().status(), 200);

    let (status, _) = arm.patch(&vm_id, json!({"identity": {"type": "SystemAssigned"}})).await;
    assert_eq!(status, 200);
    let detached = Instant::now();
    loop {
        let response = http.get(&url).header("Metadata", "true").send().await.unwrap();
        if response.status() == 400 {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "invalid_request");
            assert_eq!(body["error_description"], "Identity not found");
            break;
        }
        assert!(
            detached.elapsed() < Duration::from_secs(5),
            "still served {} after 5 s",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_second_host_enrolls_with_a_join_token_and_revocation_stops_it() {
    let dir = tempdir("agent-remote");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    let host = cli_json(&ambient, &["host", "create", "-n", "edge-1"]);
    let token = host["joinToken"].as_str().unwrap().to_owned();
    let agent_dir = tempdir("edge-1");
    let mut agent = std::process::Command::new(crate::BINARY)
        .args(["agent", "--server", ambient.url(), "--join-token", &token, "--data-dir"])
        .arg(&agent_dir)
        .args(["--ca-bundle", ambient.var("AMBIENT_CA_BUNDLE")])
        .env("AMBIENT_LOG", "warn")
        .spawn()
        .unwrap();
    arm.put(&arm.group("edge"), json!({"location": "westus"})).await;
    let vm = arm.vm("edge", "kiosk");
    arm.put(&vm, json!({"location": "westus", "identity": {"type": "SystemAssigned"}, "properties": {"hostId": "edge-1"}})).await;
    let (endpoint, _) = endpoint_of(&arm, &vm).await;
    let http = reqwest::Client::new();
    let url = format!(
        "{endpoint}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"
    );
    assert_eq!(http.get(&url).header("Metadata", "true").send().await.unwrap().status(), 200);
    let key = agent_dir.join("agent.key");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions())
            & 0o777,
        0o600
    );

    // The join token worked once.
    let reuse = ambient
        .client()
        .post(format!("{}/hosting/enroll", ambient.url()))
        .json(&json!({"host": "edge-1", "joinToken": token, "csr": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reuse.status(), 401);

    // After revocation the host gets nothing more.
    let revoked = cli_json(&ambient, &["host", "revoke", "-n", "edge-1"]);
    assert_eq!(revoked["state"], "revoked");
    // Even cached tokens stop: the agent learns of the revocation from its watch.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = http
            .get(&url)
            .header("Metadata", "true")
            .send()
            .await
            .map(|response| response.status().as_u16())
            .unwrap_or(0);
        if status != 200 {
            break;
        }
        assert!(Instant::now() < deadline, "revoked host still served tokens after 5 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = agent.kill();
    let _ = agent.wait();
}
