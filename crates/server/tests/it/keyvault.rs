//! The Key Vault router: the challenge before anything else, api-versions, secrets.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{arm, group, server};

#[tokio::test]
async fn the_vault_router_challenges_checks_versions_and_serves_secrets() {
    let server = server().await;
    let rg = group(&server, "rg");
    arm(&server, Method::PUT, &rg, Some(json!({"location": "westus"}))).await;
    let (status, vault, _) = arm(
        &server,
        Method::PUT,
        &format!("{rg}/providers/Microsoft.KeyVault/vaults/kv1"),
        Some(json!({"location": "westus", "properties": {}})),
    )
    .await;
    assert_eq!(status, 201, "{vault}");
    let uri = vault["properties"]["vaultUri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("https://kv1.vault.localhost:"), "{uri}");
    let admin = server.admin().unwrap();
    let me = admin.list_service_principals(Some("ambient-admin")).await.unwrap();
    let admin_id = me[0]["id"].as_str().unwrap();
    let officer = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7";
    let name = "1a2b3c4d-0000-4000-8000-000000000001";
    let vault_id = vault["id"].as_str().unwrap();
    let (status, _, _) = arm(&server, Method::PUT, &format!("{vault_id}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01"), Some(json!({"properties": {"roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{officer}"), "principalId": admin_id}}))).await;
    assert_eq!(status, 201);

    let http = server.http(&["kv1.vault.localhost"]).unwrap();
    let anonymous = http.put(format!("{uri}secrets/s1?api-version=7.4")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let challenge = anonymous.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("resource=\"https://vault.localhost:"), "{challenge}");
    assert!(
        anonymous.headers().contains_key("x-ms-request-id"),
        "the shared layers apply to Key Vault"
    );
    let token = server.admin_token("https://vault.azure.net/.default").await.unwrap();
    let bad = http
        .get(format!("{uri}secrets?api-version=garbage"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["error"]["code"], "BadParameter");
    let set = http
        .put(format!("{uri}secrets/s1?api-version=7.4"))
        .bearer_auth(&token)
        .json(&json!({"value": "v1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let got: Value = http
        .get(format!("{uri}secrets/s1/?api-version=7.4"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["value"], "v1");
    assert!(got["id"].as_str().unwrap().starts_with(&format!("{uri}secrets/s1/")), "{got}");
    let unknown =
        http.get(format!("{uri}keys?api-version=7.4")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(unknown.status(), 400);
    server.stop().await;
}
