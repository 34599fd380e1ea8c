//! Template deployments through the same paths as direct writes.

use reqwest::Method;
use serde_json::json;

use crate::{arm, group, server};

/// A user-assigned identity, a VM using it, and a role assignment for the identity's principal
/// (`reference()`, `guid()`, `dependsOn`), with the seeds' identity block.
fn template() -> serde_json::Value {
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"identityName": {"type": "string", "defaultValue": "app-id"}, "vmName": {"type": "string"}},
        "variables": {"identityId": "[resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', parameters('identityName'))]"},
        "resources": [
            {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31", "name": "[parameters('identityName')]", "location": "[resourceGroup().location]"},
            {
                "type": "Microsoft.Compute/virtualMachines", "apiVersion": "2024-07-01", "name": "[parameters('vmName')]", "location": "[resourceGroup().location]",
                "dependsOn": ["[variables('identityId')]"],
                "identity": {"type": "UserAssigned", "userAssignedIdentities": {"[variables('identityId')]": {}}},
                "properties": {"hardwareProfile": {"vmSize": "Standard_B1s"}}
            },
            {
                "type": "Microsoft.Authorization/roleAssignments", "apiVersion": "2022-04-01",
                "name": "[guid(resourceGroup().id, parameters('identityName'), 'reader')]",
                "dependsOn": ["[variables('identityId')]"],
                "properties": {
                    "roleDefinitionId": "[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'acdd72a7-3385-48ef-bd42-f606fba81ae7')]",
                    "principalId": "[reference(variables('identityId')).principalId]",
                    "principalType": "ServicePrincipal"
                }
            }
        ],
        "outputs": {"principalId": {"type": "string", "value": "[reference(variables('identityId')).principalId]"}}
    })
}

#[tokio::test]
async fn a_template_deploys_identity_vm_and_role_assignment_in_order() {
    let server = server().await;
    let rg = group(&server, "rg");
    arm(&server, Method::PUT, &rg, Some(json!({"location": "westus"}))).await;
    let deployment =
        format!("{rg}/providers/Microsoft.Resources/deployments/d1?api-version=2025-04-01");
    let body = json!({"properties": {"mode": "Incremental", "template": template(), "parameters": {"vmName": {"value": "vm1"}}}});
    let (status, validated, _) = arm(
        &server,
        Method::POST,
        &format!(
            "{rg}/providers/Microsoft.Resources/deployments/d1/validate?api-version=2025-04-01"
        ),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 200, "{validated}");
    assert_eq!(validated["properties"]["validatedResources"].as_array().unwrap().len(), 3);
    let (status, result, _) = arm(&server, Method::PUT, &deployment, Some(body)).await;
    assert_eq!(status, 201, "{result}");
    assert_eq!(result["properties"]["provisioningState"], "Succeeded", "{result}");
    let (_, identity, _) = arm(
        &server,
        Method::GET,
        &format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-id"),
        None,
    )
    .await;
    let principal = identity["properties"]["principalId"].as_str().unwrap();
    assert_eq!(result["properties"]["outputs"]["principalId"]["value"], principal);
    let (_, vm, _) = arm(
        &server,
        Method::GET,
        &format!("{rg}/providers/Microsoft.Compute/virtualMachines/vm1"),
        None,
    )
    .await;
    assert_eq!(vm["identity"]["type"], "UserAssigned", "{vm}");
    let (_, assignments, _) = arm(&server, Method::GET, &format!("{rg}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=principalId%20eq%20'{principal}'"), None).await;
    assert_eq!(
        assignments["value"][0]["properties"]["roleDefinitionName"], "Reader",
        "{assignments}"
    );
    let (_, operations, _) = arm(
        &server,
        Method::GET,
        &format!(
            "{rg}/providers/Microsoft.Resources/deployments/d1/operations?api-version=2025-04-01"
        ),
        None,
    )
    .await;
    assert_eq!(operations["value"].as_array().unwrap().len(), 3, "{operations}");
    // Deployment records are not listed as resources.
    let (_, resources, _) = arm(&server, Method::GET, &format!("{rg}/resources"), None).await;
    assert!(
        resources["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["type"] != "Microsoft.Resources/deployments"),
        "{resources}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_failed_resource_fails_the_deployment_and_keeps_what_succeeded() {
    let server = server().await;
    let rg = group(&server, "rg");
    arm(&server, Method::PUT, &rg, Some(json!({"location": "westus"}))).await;
    let template = json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31", "name": "kept", "location": "westus"},
            {"type": "Microsoft.KeyVault/vaults", "apiVersion": "2023-07-01", "name": "bad--name", "location": "westus", "dependsOn": ["kept"], "properties": {}}
        ]
    });
    let deployment =
        format!("{rg}/providers/Microsoft.Resources/deployments/d2?api-version=2025-04-01");
    let (status, result, _) = arm(
        &server,
        Method::PUT,
        &deployment,
        Some(json!({"properties": {"mode": "Incremental", "template": template}})),
    )
    .await;
    assert!(status == 200 || status == 201, "{result}");
    assert_eq!(result["properties"]["provisioningState"], "Failed");
    assert_eq!(result["properties"]["error"]["code"], "DeploymentFailed");
    assert_eq!(
        result["properties"]["error"]["details"][0]["code"], "VaultNameNotValid",
        "{result}"
    );
    let (status, _, _) = arm(
        &server,
        Method::GET,
        &format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/kept"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    // A template that does not parse is refused before anything is written.
    let (status, error, _) = arm(&server, Method::PUT, &deployment, Some(json!({"properties": {"mode": "Incremental", "template": {"resources": [{"type": "x"}]}}}))).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["code"], "InvalidTemplate");
    server.stop().await;
}

#[tokio::test]
async fn a_subscription_deployment_creates_a_group_and_deploys_into_it() {
    let server = server().await;
    let subscription = format!("/subscriptions/{}", server.subscription_id());
    let template = json!({
        "$schema": "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"groupName": {"type": "string"}},
        "resources": [
            {"type": "Microsoft.Resources/resourceGroups", "apiVersion": "2022-09-01", "name": "[parameters('groupName')]", "location": "westus"},
            {
                "type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "inner",
                "resourceGroup": "[parameters('groupName')]",
                "dependsOn": ["[subscriptionResourceId('Microsoft.Resources/resourceGroups', parameters('groupName'))]"],
                "properties": {
                    "mode": "Incremental",
                    "template": {
                        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
                        "contentVersion": "1.0.0.0",
                        "resources": [{"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31", "name": "nested-id", "location": "westus"}]
                    }
                }
            }
        ]
    });
    let deployment = format!(
        "{subscription}/providers/Microsoft.Resources/deployments/sub1?api-version=2025-04-01"
    );
    let body = json!({"location": "westus", "properties": {"mode": "Incremental", "template": template, "parameters": {"groupName": {"value": "made-by-template"}}}});
    let (status, result, _) = arm(&server, Method::PUT, &deployment, Some(body)).await;
    assert_eq!(status, 201, "{result}");
    assert_eq!(result["properties"]["provisioningState"], "Succeeded", "{result}");
    let (status, identity, _) = arm(
        &server,
        Method::GET,
        &format!(
            "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nested-id",
            group(&server, "made-by-template")
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{identity}");
    // A subscription deployment needs a location.
    let (status, error, _) = arm(
        &server,
        Method::PUT,
        &deployment,
        Some(json!({"properties": {"mode": "Incremental", "template": {"resources": []}}})),
    )
    .await;
    assert_eq!((status, error["error"]["code"].as_str()), (400, Some("LocationRequired")));
    server.stop().await;
}
