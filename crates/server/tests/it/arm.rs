//! The control plane's handlers: writes through the planner, RBAC refusals recorded in the
//! activity log, case-insensitive paths, api-version checks, cloud metadata.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{arm, group, server};

#[tokio::test]
async fn a_vm_with_identities_is_planned_stored_and_rendered() {
    let server = server().await;
    let rg = group(&server, "rg");
    let (status, _, _) = arm(
        &server,
        Method::PUT,
        &rg,
        Some(json!({"location": "westus", "tags": {"b": "2", "a": "1"}})),
    )
    .await;
    assert_eq!(status, 201);
    let uami = format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1");
    let (status, identity, _) =
        arm(&server, Method::PUT, &uami, Some(json!({"location": "westus"}))).await;
    assert_eq!(status, 201, "{identity}");
    let vm = format!("{rg}/providers/Microsoft.Compute/virtualMachines/vm1");
    let (status, body, _) = arm(
        &server,
        Method::PUT,
        &vm,
        Some(json!({"location": "westus", "identity": {"type": "SystemAssigned,UserAssigned", "userAssignedIdentities": {uami.clone(): {}}}})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["identity"]["type"], "SystemAssigned, UserAssigned");
    assert_eq!(
        body["identity"]["userAssignedIdentities"][&uami]["clientId"],
        identity["properties"]["clientId"]
    );
    // Key order as sent.
    let (_, group_body, _) = arm(&server, Method::GET, &rg, None).await;
    let keys: Vec<&String> = group_body["tags"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["b", "a"]);
    // Paths are case-insensitive, ids print as created.
    let (status, body, _) = arm(
        &server,
        Method::GET,
        &vm.to_uppercase()
            .replace("/SUBSCRIPTIONS/", "/Subscriptions/")
            .replace(&server.subscription_id().to_uppercase(), server.subscription_id()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], vm.as_str());
    // Deleting the identity detaches it.
    let (status, _, _) = arm(&server, Method::DELETE, &uami, None).await;
    assert_eq!(status, 200);
    let (_, body, _) = arm(&server, Method::GET, &vm, None).await;
    assert_eq!(body["identity"]["type"], "SystemAssigned", "{body}");
    server.stop().await;
}

#[tokio::test]
async fn api_versions_are_checked_and_errors_have_arm_shape() {
    let server = server().await;
    let path = format!("/subscriptions/{}?api-version=garbage", server.subscription_id());
    let (status, body, _) = arm(&server, Method::GET, &path, None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "InvalidApiVersionParameter");
    let path = format!("{}/providers/Microsoft.Sql/servers/s1", group(&server, "rg"));
    let (status, body, _) = arm(&server, Method::PUT, &path, Some(json!({}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("InvalidResourceType")));
    let (status, body, _) = arm(&server, Method::DELETE, &group(&server, "nope"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("ResourceGroupNotFound")));
    server.stop().await;
}

#[tokio::test]
async fn refused_writes_leave_a_failed_event_with_the_reason() {
    let server = server().await;
    let admin = server.admin().unwrap();
    let created = admin.create_service_principal("nobody").await.unwrap();
    let secret = admin.add_password(created["id"].as_str().unwrap(), "test", None).await.unwrap();
    let nobody = server
        .client_for(created["appId"].as_str().unwrap(), secret["secretText"].as_str().unwrap())
        .unwrap();
    let rg = group(&server, "rg");
    let refused =
        nobody.put(&format!("{rg}?api-version=2024-11-01"), &json!({"location": "westus"})).await;
    assert!(refused.is_err());
    let log = admin
        .get(&format!(
            "/subscriptions/{}/providers/microsoft.insights/eventtypes/management/values?api-version=2015-04-01",
            server.subscription_id()
        ))
        .await
        .unwrap();
    let events = log["value"].as_array().unwrap();
    let failed = events
        .iter()
        .find(|event| event["status"]["value"] == "Failed" && event["caller"] == created["appId"])
        .unwrap_or_else(|| panic!("no failed event: {log}"));
    assert_eq!(failed["subStatus"]["value"], "Forbidden");
    assert_eq!(
        failed["authorization"]["action"],
        "Microsoft.Resources/subscriptions/resourceGroups/write"
    );
    let message: Value =
        serde_json::from_str(failed["properties"]["statusMessage"].as_str().unwrap()).unwrap();
    assert_eq!(message["error"]["code"], "AuthorizationFailed");
    server.stop().await;
}

#[tokio::test]
async fn role_assignments_name_their_role_and_match_the_definition_ids() {
    let server = server().await;
    let admin = server.admin().unwrap();
    let created = admin.create_service_principal("reader").await.unwrap();
    let scope = format!("/subscriptions/{}", server.subscription_id());
    let reader = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
    let body = json!({"properties": {"roleDefinitionId": format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{reader}"), "principalId": created["id"]}});
    let name = "0b5f8c3e-9c7a-4f7e-9a4e-0c1d2e3f4a5b";
    let (status, assignment, _) = arm(&server, Method::PUT, &format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01"), Some(body)).await;
    assert_eq!(status, 201, "{assignment}");
    assert_eq!(assignment["properties"]["roleDefinitionName"], "Reader");
    let (_, definitions, _) = arm(&server, Method::GET, &format!("{scope}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-05-01-preview&$filter=roleName%20eq%20'reader'"), None).await;
    let listed = &definitions["value"][0];
    assert_eq!(listed["properties"]["roleName"], "Reader");
    assert_eq!(
        listed["id"], assignment["properties"]["roleDefinitionId"],
        "az matches names by id"
    );
    server.stop().await;
}

#[tokio::test]
async fn cloud_metadata_has_the_forms_clients_read() {
    let server = server().await;
    let http = server.http(&[]).unwrap();
    let one: Value = http
        .get(format!("{}/metadata/endpoints?api-version=2022-09-01", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["name"], "Ambient");
    assert_eq!(one["authentication"]["loginEndpoint"], server.url());
    assert_eq!(one["microsoftGraphResourceId"], format!("{}/", server.url()));
    assert!(one["suffixes"]["keyVaultDns"].as_str().unwrap().starts_with("vault.localhost:"));
    let alias_doc = one["vmImageAliasDoc"].as_str().unwrap();
    let aliases: Value = http.get(alias_doc).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        aliases["outputs"]["aliases"]["value"]["Linux"]["Ubuntu2204"]["publisher"],
        "Canonical"
    );
    let list: Value = http
        .get(format!("{}/metadata/endpoints?api-version=2019-05-01", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["name"], "Ambient");
    server.stop().await;
}
