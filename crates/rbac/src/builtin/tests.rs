//! Tests of the built-in role table: its size and uniqueness, the roles the platform depends
//! on, the old hand-written list against Azure's data, and how ABAC conditions fail closed.

use std::collections::BTreeSet;

use expect_test::{Expect, expect};

use crate::builtin::{
    builtin_role_by_id, builtin_role_by_name, builtin_roles, guarded_actions, roles,
};
use crate::decision::ActionKind::{Control, Data};
use crate::role::{Permission, RoleDefinition, validate_shape};

fn role(name: &str) -> &'static RoleDefinition {
    builtin_role_by_name(name).unwrap_or_else(|| panic!("no built-in role {name:?}"))
}

/// Prints a role's id, name and permission blocks, one pattern per line, empty lists left out.
#[track_caller]
fn check_role(name: &str, expect: Expect) {
    let role = role(name);
    let mut text = format!("{} {}\n", role.id, role.role_name);
    for (index, block) in role.permissions.iter().enumerate() {
        for (label, list) in [
            ("actions", &block.actions),
            ("notActions", &block.not_actions),
            ("dataActions", &block.data_actions),
            ("notDataActions", &block.not_data_actions),
        ] {
            if !list.is_empty() {
                text.push_str(&format!("[{index}] {label}:\n"));
                for pattern in list {
                    text.push_str(&format!("    {pattern}\n"));
                }
            }
        }
    }
    expect.assert_eq(&text);
}

#[test]
fn holds_every_built_in_role_once() {
    let roles = builtin_roles();
    // Azure had 730 built-in roles in August 2025; the table only grows when regenerated.
    assert!(roles.len() >= 700, "only {} built-in roles", roles.len());
    let mut ids = BTreeSet::new();
    let mut names = BTreeSet::new();
    for role in roles {
        assert_eq!(validate_shape(role), Ok(()), "{}", role.role_name);
        assert_eq!(role.assignable_scopes, ["/"], "{}", role.role_name);
        assert!(ids.insert(role.id), "duplicate id {}", role.id);
        assert!(names.insert(role.role_name.to_ascii_lowercase()), "{}", role.role_name);
    }
}

#[test]
fn roles_are_sorted_by_name() {
    let names: Vec<String> =
        builtin_roles().iter().map(|role| role.role_name.to_lowercase()).collect();
    assert!(names.is_sorted(), "built-in roles are not sorted by name");
}

#[test]
fn lists_the_roles_the_platform_depends_on_with_azure_guids() {
    let names = [
        "Owner",
        "Contributor",
        "Reader",
        "User Access Administrator",
        "Virtual Machine Contributor",
        "Managed Identity Operator",
        "Managed Identity Contributor",
        "Key Vault Administrator",
        "Key Vault Secrets Officer",
        "Key Vault Secrets User",
        "Key Vault Reader",
        "Key Vault Contributor",
        "Key Vault Crypto User",
        "Storage Blob Data Reader",
        "Storage Blob Data Contributor",
        "Storage Blob Data Owner",
        "App Configuration Data Reader",
    ];
    let actual: String = names
        .iter()
        .map(|name| {
            let role = role(name);
            format!("{} {:?} {}\n", role.id, role.role_type, role.role_name)
        })
        .collect();
    expect![[r#"
        8e3af657-a8ff-443c-a75c-2fe8c4bcb635 BuiltIn Owner
        b24988ac-6180-42a0-ab88-20f7382dd24c BuiltIn Contributor
        acdd72a7-3385-48ef-bd42-f606fba81ae7 BuiltIn Reader
        18d7d88d-d35e-4fb5-a5c3-7773c20a72d9 BuiltIn User Access Administrator
        9980e02c-c2be-4d73-94e8-173b1dc7cf3c BuiltIn Virtual Machine Contributor
        f1a07417-d97a-45cb-824c-7a7467783830 BuiltIn Managed Identity Operator
        e40ec5ca-96e0-45a2-b4ff-59039f2c2b59 BuiltIn Managed Identity Contributor
        00482a5a-887f-4fb3-b363-3b7fe8e74483 BuiltIn Key Vault Administrator
        b86a8fe4-44ce-4948-aee5-eccb2c155cd7 BuiltIn Key Vault Secrets Officer
        4633458b-17de-408a-b874-0445c86b69e6 BuiltIn Key Vault Secrets User
        21090545-7ca7-4776-b22c-e363652d74d2 BuiltIn Key Vault Reader
        f25e0fa2-a7c8-4377-a976-54943a77a395 BuiltIn Key Vault Contributor
        12338af0-0e69-4776-bea7-57ae8d297424 BuiltIn Key Vault Crypto User
        2a2b9908-6ea1-4ae2-8e65-a410df84e7d1 BuiltIn Storage Blob Data Reader
        ba92f5b4-2d11-453d-a403-e96b0029c9fe BuiltIn Storage Blob Data Contributor
        b7e6dc6d-f1e8-4753-8033-0f276bb0955b BuiltIn Storage Blob Data Owner
        516239f1-63e1-4d78-a4de-a74fb236a071 BuiltIn App Configuration Data Reader
    "#]]
    .assert_eq(&actual);
}

#[test]
fn storage_blob_data_owner_owns_containers_and_blobs() {
    check_role(
        "Storage Blob Data Owner",
        expect![[r#"
        b7e6dc6d-f1e8-4753-8033-0f276bb0955b Storage Blob Data Owner
        [0] actions:
            Microsoft.Storage/storageAccounts/blobServices/containers/*
            Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action
        [0] dataActions:
            Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*
    "#]],
    );
}

#[test]
fn app_configuration_data_reader_reads_key_values() {
    check_role(
        "App Configuration Data Reader",
        expect![[r#"
        516239f1-63e1-4d78-a4de-a74fb236a071 App Configuration Data Reader
        [0] dataActions:
            Microsoft.AppConfiguration/configurationStores/*/read
    "#]],
    );
}

#[test]
fn key_vault_crypto_user_uses_keys() {
    check_role(
        "Key Vault Crypto User",
        expect![[r#"
        12338af0-0e69-4776-bea7-57ae8d297424 Key Vault Crypto User
        [0] dataActions:
            Microsoft.KeyVault/vaults/keys/read
            Microsoft.KeyVault/vaults/keys/update/action
            Microsoft.KeyVault/vaults/keys/backup/action
            Microsoft.KeyVault/vaults/keys/encrypt/action
            Microsoft.KeyVault/vaults/keys/decrypt/action
            Microsoft.KeyVault/vaults/keys/wrap/action
            Microsoft.KeyVault/vaults/keys/unwrap/action
            Microsoft.KeyVault/vaults/keys/sign/action
            Microsoft.KeyVault/vaults/keys/verify/action
    "#]],
    );
}

#[test]
fn finds_roles_by_name_and_id() {
    let user = builtin_role_by_name("key vault SECRETS user").unwrap();
    assert_eq!(user.id.to_string(), "4633458b-17de-408a-b874-0445c86b69e6");
    assert_eq!(builtin_role_by_id(&user.id).unwrap().role_name, "Key Vault Secrets User");
    let owner = builtin_role_by_id(&"8e3af657-a8ff-443c-a75c-2fe8c4bcb635".parse().unwrap());
    assert_eq!(owner.unwrap().role_name, "Owner");
    assert!(builtin_role_by_name("Key Vault Secrets").is_none());
    assert!(builtin_role_by_name("").is_none());
    assert!(builtin_role_by_id(&"00000000-0000-0000-0000-000000000000".parse().unwrap()).is_none());
}

// The permissions below were written by hand before the table was generated from Azure's
// export. The test lists where Azure's current definitions differ from them, so that a
// difference that matters to the platform shows up in review.
#[test]
fn azure_data_against_the_old_hand_written_list() {
    let mut report = String::new();
    for old in HAND_WRITTEN {
        let new = builtin_role_by_id(&old.id.parse().unwrap())
            .unwrap_or_else(|| panic!("{} {} is gone", old.id, old.name));
        assert_eq!(new.role_name, old.name);
        assert_eq!(new.permissions.len(), 1, "{}", old.name);
        let block = &new.permissions[0];
        assert!(block.not_data_actions.is_empty(), "{}", old.name);
        let mut differences = Vec::new();
        for (label, old_list, new_list) in [
            ("actions", old.actions, &block.actions),
            ("notActions", old.not_actions, &block.not_actions),
            ("dataActions", old.data_actions, &block.data_actions),
        ] {
            let old_set: BTreeSet<&str> = old_list.iter().copied().collect();
            let new_set: BTreeSet<&str> = new_list.iter().map(String::as_str).collect();
            for added in new_set.difference(&old_set) {
                differences.push(format!("  {label} +{added}"));
            }
            for removed in old_set.difference(&new_set) {
                differences.push(format!("  {label} -{removed}"));
            }
        }
        if differences.is_empty() {
            report.push_str(&format!("{}: same\n", old.name));
        } else {
            report.push_str(&format!("{}:\n{}\n", old.name, differences.join("\n")));
        }
    }
    expect![[r#"
        Owner: same
        Contributor: same
        Reader: same
        User Access Administrator: same
        Virtual Machine Contributor:
          actions +Microsoft.Compute/hostgroups/hosts/write
          actions +Microsoft.Compute/hostgroups/write
        Managed Identity Operator: same
        Managed Identity Contributor: same
        Key Vault Administrator: same
        Key Vault Secrets Officer: same
        Key Vault Secrets User: same
        Key Vault Reader: same
        Storage Blob Data Reader: same
        Storage Blob Data Contributor: same
    "#]]
    .assert_eq(&report);
}

#[test]
fn a_guarded_role_assignment_write_is_subtracted_and_the_rest_kept() {
    // Key Vault Data Access Administrator may assign only the Key Vault data roles; without
    // condition evaluation it may assign none, but keeps its other actions.
    let role = role("Key Vault Data Access Administrator");
    assert!(!role.allows("Microsoft.Authorization/roleAssignments/write", Control));
    assert!(!role.allows("Microsoft.Authorization/roleAssignments/delete", Control));
    assert!(role.allows("Microsoft.Authorization/roleAssignments/read", Control));
    assert!(role.allows("Microsoft.KeyVault/vaults/read", Control));
    check_role(
        "Key Vault Data Access Administrator",
        expect![[r#"
        8b54135c-b56d-4d72-a534-26097cfdc8d8 Key Vault Data Access Administrator
        [0] actions:
            Microsoft.Authorization/roleAssignments/write
            Microsoft.Authorization/roleAssignments/delete
            Microsoft.Authorization/*/read
            Microsoft.Resources/deployments/*
            Microsoft.Resources/subscriptions/resourceGroups/read
            Microsoft.Resources/subscriptions/read
            Microsoft.Management/managementGroups/read
            Microsoft.Resources/deployments/*
            Microsoft.Support/*
            Microsoft.KeyVault/vaults/*/read
        [0] notActions:
            Microsoft.Authorization/roleAssignments/write
            Microsoft.Authorization/roleAssignments/delete
    "#]],
    );
}

#[test]
fn a_block_with_an_unguarded_condition_is_dropped() {
    // Azure Sphere Owner's second and third blocks grant role assignment writes and deletes
    // under a bare condition; they are dropped, its first block stays.
    let role = role("Azure Sphere Owner");
    assert_eq!(role.permissions.len(), 1);
    assert!(!role.allows("Microsoft.Authorization/roleAssignments/write", Control));
    assert!(!role.allows("Microsoft.Authorization/roleAssignments/delete", Control));
    assert!(role.allows("Microsoft.AzureSphere/catalogs/write", Control));
}

// Goal: a condition never lets a role do more than its unconditioned blocks allow, for the
// actions conditions restrict. Method: for every role with a conditioned block in the table,
// compare the built role with the role's unconditioned blocks alone, on the role assignment
// actions and on every action a condition names in `ActionMatches{..}`.
#[test]
fn conditions_never_grant_what_they_restrict() {
    let mut checked = 0;
    for spec in roles::BUILTIN_SPECS {
        let conditions: Vec<&str> =
            spec.permissions.iter().filter_map(|block| block.condition).collect();
        if conditions.is_empty() {
            continue;
        }
        let mut probes = vec![
            "Microsoft.Authorization/roleAssignments/write",
            "Microsoft.Authorization/roleAssignments/delete",
        ];
        for condition in &conditions {
            for piece in condition.split("ActionMatches{'").skip(1) {
                probes.push(piece.split('\'').next().unwrap());
            }
        }
        let built = builtin_role_by_name(spec.name).unwrap();
        let unconditioned: Vec<Permission> = spec
            .permissions
            .iter()
            .filter(|block| block.condition.is_none())
            .map(|block| block.fail_closed().unwrap())
            .collect();
        for probe in probes {
            for kind in [Control, Data] {
                let plain = unconditioned.iter().any(|block| block.allows(probe, kind));
                assert_eq!(built.allows(probe, kind), plain, "{} {probe} {kind:?}", spec.name);
            }
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} roles with conditions");
}

#[track_caller]
fn check_guards(condition: &str, expect: Expect) {
    expect.assert_eq(&format!("{:?}", guarded_actions(condition)));
}

#[test]
fn guards_are_read_from_action_matches_terms() {
    check_guards(
        "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals{00482a5a-887f-4fb3-b363-3b7fe8e74483})) AND ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals{00482a5a-887f-4fb3-b363-3b7fe8e74483}))",
        expect![[
            r#"Some(["Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete"])"#
        ]],
    );
    check_guards(
        "(!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals{49fc33c1886f4b21a00e1d9993234734}",
        expect![[r#"Some(["Microsoft.Authorization/roleAssignments/delete"])"#]],
    );
    check_guards(
        "(!(ActionMatches{'a/write'} or ActionMatches{'a/delete'})) or (@Request[x] StringEquals 'y (z) AND w')",
        expect![[r#"Some(["a/write", "a/delete"])"#]],
    );
}

#[test]
fn other_conditions_have_no_guards() {
    // A bare condition applies to every action of the block.
    check_guards(
        "@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals{8b9dfcab4b774632a6df94bd07820648}",
        expect![[r#"None"#]],
    );
    // Further terms OR-ed after the guard do not change the action it guards.
    check_guards(
        "(!(ActionMatches{'a/write'})) OR (x) OR (!(ActionMatches{'b'}))",
        expect![[r#"Some(["a/write"])"#]],
    );
    // Shapes not listed in the module doc drop the block, even where a finer reading could
    // keep part of it.
    check_guards("((!(ActionMatches{'a/write'})) OR (x)) OR (y)", expect![[r#"None"#]]);
    check_guards(
        "(!(ActionMatches{'a/write'} AND SubOperationMatches{'s'})) OR (x)",
        expect![[r#"None"#]],
    );
    check_guards("(!(ActionMatches{'a/write'})) || (x)", expect![[r#"None"#]]);
    check_guards("(NOT ActionMatches{'a/write'}) OR (x)", expect![[r#"None"#]]);
    check_guards("(!(ActionMatches{'a/write'}) OR (x)", expect![[r#"None"#]]);
    check_guards("", expect![[r#"None"#]]);
}

/// A role as it was written by hand before the table was generated.
struct HandWritten {
    id: &'static str,
    name: &'static str,
    actions: &'static [&'static str],
    not_actions: &'static [&'static str],
    data_actions: &'static [&'static str],
}

const KEY_VAULT_DATA_ROLE_ACTIONS: &[&str] = &[
    "Microsoft.Authorization/*/read",
    "Microsoft.Insights/alertRules/*",
    "Microsoft.Resources/deployments/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Support/*",
    "Microsoft.KeyVault/checkNameAvailability/read",
    "Microsoft.KeyVault/deletedVaults/read",
    "Microsoft.KeyVault/locations/*/read",
    "Microsoft.KeyVault/vaults/*/read",
    "Microsoft.KeyVault/operations/read",
];

const HAND_WRITTEN: &[HandWritten] = &[
    HandWritten {
        id: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        name: "Owner",
        actions: &["*"],
        not_actions: &[],
        data_actions: &[],
    },
    HandWritten {
        id: "b24988ac-6180-42a0-ab88-20f7382dd24c",
        name: "Contributor",
        actions: &["*"],
        not_actions: &[
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Blueprint/blueprintAssignments/write",
            "Microsoft.Blueprint/blueprintAssignments/delete",
            "Microsoft.Compute/galleries/share/action",
            "Microsoft.Purview/consents/write",
            "Microsoft.Purview/consents/delete",
            "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
            "Microsoft.Subscription/cancel/action",
            "Microsoft.Subscription/enable/action",
        ],
        data_actions: &[],
    },
    HandWritten {
        id: "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        name: "Reader",
        actions: &["*/read"],
        not_actions: &[],
        data_actions: &[],
    },
    HandWritten {
        id: "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        name: "User Access Administrator",
        actions: &["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"],
        not_actions: &[],
        data_actions: &[],
    },
    HandWritten {
        id: "9980e02c-c2be-4d73-94e8-173b1dc7cf3c",
        name: "Virtual Machine Contributor",
        // Deliberately no Microsoft.ManagedIdentity action: attaching a user-assigned identity
        // to a VM also needs Managed Identity Operator on the identity.
        actions: &[
            "Microsoft.Authorization/*/read",
            "Microsoft.Compute/availabilitySets/*",
            "Microsoft.Compute/locations/*",
            "Microsoft.Compute/virtualMachines/*",
            "Microsoft.Compute/virtualMachineScaleSets/*",
            "Microsoft.Compute/cloudServices/*",
            "Microsoft.Compute/disks/write",
            "Microsoft.Compute/disks/read",
            "Microsoft.Compute/disks/delete",
            "Microsoft.DevTestLab/schedules/*",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Network/applicationGateways/backendAddressPools/join/action",
            "Microsoft.Network/loadBalancers/backendAddressPools/join/action",
            "Microsoft.Network/loadBalancers/inboundNatPools/join/action",
            "Microsoft.Network/loadBalancers/inboundNatRules/join/action",
            "Microsoft.Network/loadBalancers/probes/join/action",
            "Microsoft.Network/loadBalancers/read",
            "Microsoft.Network/locations/*",
            "Microsoft.Network/networkInterfaces/*",
            "Microsoft.Network/networkSecurityGroups/join/action",
            "Microsoft.Network/networkSecurityGroups/read",
            "Microsoft.Network/publicIPAddresses/join/action",
            "Microsoft.Network/publicIPAddresses/read",
            "Microsoft.Network/virtualNetworks/read",
            "Microsoft.Network/virtualNetworks/subnets/join/action",
            "Microsoft.RecoveryServices/locations/*",
            "Microsoft.RecoveryServices/Vaults/backupFabrics/backupProtectionIntent/write",
            "Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/*/read",
            "Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/read",
            "Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/write",
            "Microsoft.RecoveryServices/Vaults/backupPolicies/read",
            "Microsoft.RecoveryServices/Vaults/backupPolicies/write",
            "Microsoft.RecoveryServices/Vaults/read",
            "Microsoft.RecoveryServices/Vaults/usages/read",
            "Microsoft.RecoveryServices/Vaults/write",
            "Microsoft.ResourceHealth/availabilityStatuses/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.SerialConsole/serialPorts/connect/action",
            "Microsoft.SqlVirtualMachine/*",
            "Microsoft.Storage/storageAccounts/listKeys/action",
            "Microsoft.Storage/storageAccounts/read",
            "Microsoft.Support/*",
        ],
        not_actions: &[],
        data_actions: &[],
    },
    HandWritten {
        id: "f1a07417-d97a-45cb-824c-7a7467783830",
        name: "Managed Identity Operator",
        actions: &[
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Support/*",
        ],
        not_actions: &[],
        data_actions: &[],
    },
    HandWritten {
        id: "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59",
        name: "Managed Identity Contributor",
        // No assign action: creating an identity does not entitle one to attach it.
        actions: &[
            "Microsoft.ManagedIdentity/userAssignedIdentities/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/write",
            "Microsoft.ManagedIdentity/userAssignedIdentities/delete",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete",
            "Microsoft.ManagedIdentity/userAssignedIdentities/revokeTokens/action",
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Support/*",
        ],
        not_actions: &[],
        data_actions: &[],
    },
    HandWritten {
        id: "00482a5a-887f-4fb3-b363-3b7fe8e74483",
        name: "Key Vault Administrator",
        actions: KEY_VAULT_DATA_ROLE_ACTIONS,
        not_actions: &[],
        data_actions: &["Microsoft.KeyVault/vaults/*"],
    },
    HandWritten {
        id: "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        name: "Key Vault Secrets Officer",
        actions: KEY_VAULT_DATA_ROLE_ACTIONS,
        not_actions: &[],
        data_actions: &["Microsoft.KeyVault/vaults/secrets/*"],
    },
    HandWritten {
        id: "4633458b-17de-408a-b874-0445c86b69e6",
        name: "Key Vault Secrets User",
        actions: &[],
        not_actions: &[],
        data_actions: &[
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
    },
    HandWritten {
        id: "21090545-7ca7-4776-b22c-e363652d74d2",
        name: "Key Vault Reader",
        actions: KEY_VAULT_DATA_ROLE_ACTIONS,
        not_actions: &[],
        data_actions: &[
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
    },
    HandWritten {
        id: "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
        name: "Storage Blob Data Reader",
        actions: &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"],
    },
    HandWritten {
        id: "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        name: "Storage Blob Data Contributor",
        actions: &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/write",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        not_actions: &[],
        data_actions: &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action",
        ],
    },
];
