//! Tests of Check access: role definitions and assignments as the API returns them, evaluated
//! with the server's decision function.

use domain::ResourceId;
use expect_test::{Expect, expect};
use serde_json::{Value, json};

use crate::access::{
    assignments_from_json, contributions, decide, roles_from_json, typical_actions,
};

const SUB: &str = "/subscriptions/s1";
const VAULT: &str = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1";
const SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";
const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";

fn role(id: &str, name: &str, actions: &[&str], data_actions: &[&str]) -> Value {
    json!({
        "id": format!("{SUB}/providers/Microsoft.Authorization/roleDefinitions/{id}"),
        "name": id,
        "properties": {
            "roleName": name, "type": "BuiltInRole", "description": "", "assignableScopes": ["/"],
            "permissions": [{"actions": actions, "notActions": [], "dataActions": data_actions, "notDataActions": []}],
        },
    })
}

fn assignment(scope: &str, role: &str, principal: &str) -> Value {
    json!({
        "id": format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{principal}-{role}"),
        "properties": {
            "roleDefinitionId": format!("{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}"),
            "principalId": principal, "principalType": "ServicePrincipal", "scope": scope,
        },
    })
}

#[track_caller]
fn check(target: &str, principal: &str, expect: Expect) {
    let roles = roles_from_json(&[
        role(
            SECRETS_USER,
            "Key Vault Secrets User",
            &[],
            &[
                "Microsoft.KeyVault/vaults/secrets/getSecret/action",
                "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            ],
        ),
        role(READER, "Reader", &["*/read"], &[]),
        json!({"name": "not a role"}),
    ]);
    let assignments = assignments_from_json(&[
        assignment(VAULT, SECRETS_USER, "vm"),
        assignment(SUB, READER, "vm"),
        assignment(SUB, READER, "other"),
        json!({"id": "broken"}),
    ]);
    let target = ResourceId::parse(target).unwrap();
    let found = contributions(principal, &target, &assignments, &roles);
    let mut lines: Vec<String> = found
        .iter()
        .map(|c| {
            format!(
                "{} at {}{}",
                c.role.definition.role_name,
                c.assignment.scope,
                if c.inherited { " (inherited)" } else { "" }
            )
        })
        .collect();
    for (action, kind) in typical_actions(&target) {
        lines.push(format!("{action} [{kind:?}] -> {:?}", decide(&found, &action, kind, &target)));
    }
    expect.assert_eq(&lines.join("\n"));
}

#[test]
fn a_vm_with_secrets_user_on_the_vault_may_read_secrets_there_only() {
    check(
        VAULT,
        "VM",
        expect![[r#"
            Reader at /subscriptions/s1 (inherited)
            Key Vault Secrets User at /subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1
            Microsoft.KeyVault/vaults/read [Control] -> Allowed { role: acdd72a7-3385-48ef-bd42-f606fba81ae7, scope: "/subscriptions/s1" }
            Microsoft.KeyVault/vaults/write [Control] -> Denied
            Microsoft.KeyVault/vaults/delete [Control] -> Denied
            Microsoft.Authorization/roleAssignments/write [Control] -> Denied
            Microsoft.KeyVault/vaults/secrets/readMetadata/action [Data] -> Allowed { role: 4633458b-17de-408a-b874-0445c86b69e6, scope: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1" }
            Microsoft.KeyVault/vaults/secrets/getSecret/action [Data] -> Allowed { role: 4633458b-17de-408a-b874-0445c86b69e6, scope: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1" }
            Microsoft.KeyVault/vaults/secrets/setSecret/action [Data] -> Denied
            Microsoft.KeyVault/vaults/secrets/delete [Data] -> Denied"#]],
    );
    check(
        SUB,
        "vm",
        expect![[r#"
            Reader at /subscriptions/s1
            Microsoft.Resources/subscriptions/read [Control] -> Allowed { role: acdd72a7-3385-48ef-bd42-f606fba81ae7, scope: "/subscriptions/s1" }
            Microsoft.Resources/subscriptions/write [Control] -> Denied
            Microsoft.Resources/subscriptions/delete [Control] -> Denied
            Microsoft.Authorization/roleAssignments/write [Control] -> Denied
            Microsoft.KeyVault/vaults/secrets/readMetadata/action [Data] -> Denied
            Microsoft.KeyVault/vaults/secrets/getSecret/action [Data] -> Denied
            Microsoft.KeyVault/vaults/secrets/setSecret/action [Data] -> Denied
            Microsoft.KeyVault/vaults/secrets/delete [Data] -> Denied"#]],
    );
}

#[test]
fn a_principal_without_assignments_is_denied_everything() {
    check(
        VAULT,
        "nobody",
        expect![[r#"
        Microsoft.KeyVault/vaults/read [Control] -> Denied
        Microsoft.KeyVault/vaults/write [Control] -> Denied
        Microsoft.KeyVault/vaults/delete [Control] -> Denied
        Microsoft.Authorization/roleAssignments/write [Control] -> Denied
        Microsoft.KeyVault/vaults/secrets/readMetadata/action [Data] -> Denied
        Microsoft.KeyVault/vaults/secrets/getSecret/action [Data] -> Denied
        Microsoft.KeyVault/vaults/secrets/setSecret/action [Data] -> Denied
        Microsoft.KeyVault/vaults/secrets/delete [Data] -> Denied"#]],
    );
}

#[test]
fn typical_actions_fit_the_scope() {
    let identity = ResourceId::parse("/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1").unwrap();
    let actions: Vec<String> = typical_actions(&identity)
        .into_iter()
        .map(|(action, kind)| format!("{action} [{kind:?}]"))
        .collect();
    expect![[r#"
        [
            "Microsoft.ManagedIdentity/userAssignedIdentities/read [Control]",
            "Microsoft.ManagedIdentity/userAssignedIdentities/write [Control]",
            "Microsoft.ManagedIdentity/userAssignedIdentities/delete [Control]",
            "Microsoft.Authorization/roleAssignments/write [Control]",
            "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action [Control]",
        ]
    "#]]
    .assert_debug_eq(&actions);
}
