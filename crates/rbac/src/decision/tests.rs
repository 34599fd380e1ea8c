//! Tests of [`authorize`]: built-in roles against the scenarios the platform relies on, scope
//! inheritance, `notActions` semantics, and a property test against a brute-force model.

use domain::ResourceId;
use expect_test::{Expect, expect};
use proptest::prelude::*;

use crate::builtin::builtin_role_by_name;
use crate::decision::ActionKind::{Control, Data};
use crate::decision::{ActionKind, Decision, Grant, authorize};
use crate::reference::{reference_matches, reference_scope_contains};
use crate::role::{Permission, RoleDefinition, RoleType};

const SUBSCRIPTION: &str = "/subscriptions/s1";
const GROUP: &str = "/subscriptions/s1/resourceGroups/rg";
const SIBLING_GROUP: &str = "/subscriptions/s1/resourceGroups/rg2";
const VM: &str =
    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1";
const IDENTITY: &str = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1";
const VAULT: &str = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v1";
const SECRET: &str =
    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v1/secrets/db";

const VM_READ: &str = "Microsoft.Compute/virtualMachines/read";
const VM_WRITE: &str = "Microsoft.Compute/virtualMachines/write";
const ROLE_ASSIGNMENT_WRITE: &str = "Microsoft.Authorization/roleAssignments/write";
const IDENTITY_ASSIGN: &str = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action";
const GET_SECRET: &str = "Microsoft.KeyVault/vaults/secrets/getSecret/action";
const SET_SECRET: &str = "Microsoft.KeyVault/vaults/secrets/setSecret/action";
const READ_SECRET_METADATA: &str = "Microsoft.KeyVault/vaults/secrets/readMetadata/action";

fn role(name: &str) -> &'static RoleDefinition {
    builtin_role_by_name(name).unwrap()
}

/// Authorizes `action` on `target` for a caller holding `grants` (role, scope) and compares
/// the decision's `Debug` form.
#[track_caller]
fn check(
    grants: &[(&RoleDefinition, &str)],
    action: &str,
    kind: ActionKind,
    target: &str,
    expect: Expect,
) {
    let scopes: Vec<ResourceId> =
        grants.iter().map(|(_, scope)| ResourceId::parse(scope).unwrap()).collect();
    let grants: Vec<Grant<'_>> =
        grants.iter().zip(&scopes).map(|((role, _), scope)| Grant { scope, role }).collect();
    let decision = authorize(&grants, action, kind, &ResourceId::parse(target).unwrap());
    expect.assert_eq(&format!("{decision:?}"));
}

#[test]
fn no_grants_deny() {
    check(&[], VM_READ, Control, VM, expect![[r#"Denied"#]]);
}

#[test]
fn reader_can_read_but_not_write() {
    let reader = role("Reader");
    check(
        &[(reader, SUBSCRIPTION)],
        VM_READ,
        Control,
        VM,
        expect![[
            r#"Allowed { role: acdd72a7-3385-48ef-bd42-f606fba81ae7, scope: "/subscriptions/s1" }"#
        ]],
    );
    check(&[(reader, SUBSCRIPTION)], VM_WRITE, Control, VM, expect![[r#"Denied"#]]);
}

#[test]
fn contributor_can_write_vms_but_not_role_assignments() {
    let contributor = role("Contributor");
    check(
        &[(contributor, GROUP)],
        VM_WRITE,
        Control,
        VM,
        expect![[
            r#"Allowed { role: b24988ac-6180-42a0-ab88-20f7382dd24c, scope: "/subscriptions/s1/resourceGroups/rg" }"#
        ]],
    );
    check(&[(contributor, GROUP)], ROLE_ASSIGNMENT_WRITE, Control, VM, expect![[r#"Denied"#]]);
    check(
        &[(contributor, GROUP)],
        "Microsoft.Authorization/roleAssignments/delete",
        Control,
        VM,
        expect![[r#"Denied"#]],
    );
}

#[test]
fn owner_can_write_role_assignments() {
    check(
        &[(role("Owner"), SUBSCRIPTION)],
        ROLE_ASSIGNMENT_WRITE,
        Control,
        VM,
        expect![[
            r#"Allowed { role: 8e3af657-a8ff-443c-a75c-2fe8c4bcb635, scope: "/subscriptions/s1" }"#
        ]],
    );
}

#[test]
fn user_access_administrator_can_write_role_assignments_but_not_vms() {
    let administrator = role("User Access Administrator");
    check(
        &[(administrator, SUBSCRIPTION)],
        ROLE_ASSIGNMENT_WRITE,
        Control,
        VM,
        expect![[
            r#"Allowed { role: 18d7d88d-d35e-4fb5-a5c3-7773c20a72d9, scope: "/subscriptions/s1" }"#
        ]],
    );
    check(&[(administrator, SUBSCRIPTION)], VM_WRITE, Control, VM, expect![[r#"Denied"#]]);
}

#[test]
fn virtual_machine_contributor_can_create_a_vm_but_not_assign_an_identity() {
    let vm_contributor = role("Virtual Machine Contributor");
    check(
        &[(vm_contributor, GROUP)],
        VM_WRITE,
        Control,
        VM,
        expect![[
            r#"Allowed { role: 9980e02c-c2be-4d73-94e8-173b1dc7cf3c, scope: "/subscriptions/s1/resourceGroups/rg" }"#
        ]],
    );
    check(&[(vm_contributor, GROUP)], IDENTITY_ASSIGN, Control, IDENTITY, expect![[r#"Denied"#]]);
}

#[test]
fn managed_identity_operator_can_assign_and_read_but_not_write_an_identity() {
    // Goal: the operator's `userAssignedIdentities/*/assign/action` and `.../*/read` patterns
    // cover the real actions, which have no segment in place of the `*`.
    let operator = role("Managed Identity Operator");
    check(
        &[(operator, IDENTITY)],
        IDENTITY_ASSIGN,
        Control,
        IDENTITY,
        expect![[
            r#"Allowed { role: f1a07417-d97a-45cb-824c-7a7467783830, scope: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1" }"#
        ]],
    );
    check(
        &[(operator, IDENTITY)],
        "Microsoft.ManagedIdentity/userAssignedIdentities/read",
        Control,
        IDENTITY,
        expect![[
            r#"Allowed { role: f1a07417-d97a-45cb-824c-7a7467783830, scope: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1" }"#
        ]],
    );
    check(
        &[(operator, IDENTITY)],
        "Microsoft.ManagedIdentity/userAssignedIdentities/write",
        Control,
        IDENTITY,
        expect![[r#"Denied"#]],
    );
}

#[test]
fn managed_identity_contributor_manages_identities_but_cannot_assign_them() {
    let contributor = role("Managed Identity Contributor");
    check(
        &[(contributor, GROUP)],
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
        Control,
        &format!("{IDENTITY}/federatedIdentityCredentials/fic1"),
        expect![[
            r#"Allowed { role: e40ec5ca-96e0-45a2-b4ff-59039f2c2b59, scope: "/subscriptions/s1/resourceGroups/rg" }"#
        ]],
    );
    check(&[(contributor, GROUP)], IDENTITY_ASSIGN, Control, IDENTITY, expect![[r#"Denied"#]]);
}

#[test]
fn attaching_an_identity_needs_both_roles() {
    // Goal: the seed flow's "VM Contributor on the VM plus Managed Identity Operator on the
    // identity": each action is allowed by a different grant.
    let grants =
        [(role("Virtual Machine Contributor"), VM), (role("Managed Identity Operator"), IDENTITY)];
    check(
        &grants,
        VM_WRITE,
        Control,
        VM,
        expect![[
            r#"Allowed { role: 9980e02c-c2be-4d73-94e8-173b1dc7cf3c, scope: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1" }"#
        ]],
    );
    check(
        &grants,
        IDENTITY_ASSIGN,
        Control,
        IDENTITY,
        expect![[
            r#"Allowed { role: f1a07417-d97a-45cb-824c-7a7467783830, scope: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1" }"#
        ]],
    );
}

#[test]
fn secrets_user_can_get_a_secret_but_not_set_one() {
    let user = role("Key Vault Secrets User");
    check(
        &[(user, VAULT)],
        GET_SECRET,
        Data,
        SECRET,
        expect![[
            r#"Allowed { role: 4633458b-17de-408a-b874-0445c86b69e6, scope: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v1" }"#
        ]],
    );
    check(&[(user, VAULT)], SET_SECRET, Data, SECRET, expect![[r#"Denied"#]]);
}

#[test]
fn secrets_officer_can_set_a_secret() {
    check(
        &[(role("Key Vault Secrets Officer"), GROUP)],
        SET_SECRET,
        Data,
        SECRET,
        expect![[
            r#"Allowed { role: b86a8fe4-44ce-4948-aee5-eccb2c155cd7, scope: "/subscriptions/s1/resourceGroups/rg" }"#
        ]],
    );
}

#[test]
fn key_vault_reader_reads_metadata_but_not_values() {
    let reader = role("Key Vault Reader");
    check(
        &[(reader, VAULT)],
        READ_SECRET_METADATA,
        Data,
        SECRET,
        expect![[
            r#"Allowed { role: 21090545-7ca7-4776-b22c-e363652d74d2, scope: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v1" }"#
        ]],
    );
    check(&[(reader, VAULT)], GET_SECRET, Data, SECRET, expect![[r#"Denied"#]]);
    check(
        &[(reader, VAULT)],
        "Microsoft.KeyVault/vaults/read",
        Control,
        VAULT,
        expect![[
            r#"Allowed { role: 21090545-7ca7-4776-b22c-e363652d74d2, scope: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v1" }"#
        ]],
    );
}

const STORAGE_ACCOUNT: &str =
    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa1";
const CONTAINER: &str = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa1/blobServices/default/containers/c1";
const BLOB_READ: &str = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read";
const BLOB_WRITE: &str = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write";

#[test]
fn storage_blob_data_owner_reads_and_writes_blobs_as_data_actions() {
    let owner = role("Storage Blob Data Owner");
    check(
        &[(owner, STORAGE_ACCOUNT)],
        BLOB_READ,
        Data,
        CONTAINER,
        expect![[
            r#"Allowed { role: b7e6dc6d-f1e8-4753-8033-0f276bb0955b, scope: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa1" }"#
        ]],
    );
    check(
        &[(owner, STORAGE_ACCOUNT)],
        BLOB_WRITE,
        Data,
        CONTAINER,
        expect![[
            r#"Allowed { role: b7e6dc6d-f1e8-4753-8033-0f276bb0955b, scope: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa1" }"#
        ]],
    );
    // The account's keys are a control action it does not hold, and an Owner of the account
    // holds no data action at all.
    check(&[(role("Owner"), STORAGE_ACCOUNT)], BLOB_READ, Data, CONTAINER, expect!["Denied"]);
    check(
        &[(owner, STORAGE_ACCOUNT)],
        "Microsoft.Storage/storageAccounts/listKeys/action",
        Control,
        STORAGE_ACCOUNT,
        expect!["Denied"],
    );
    let reader = role("Storage Blob Data Reader");
    check(&[(reader, STORAGE_ACCOUNT)], BLOB_WRITE, Data, CONTAINER, expect!["Denied"]);
}

#[test]
fn app_configuration_data_reader_reads_but_does_not_write_key_values() {
    let store = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.AppConfiguration/configurationStores/cs1";
    let reader = role("App Configuration Data Reader");
    check(
        &[(reader, GROUP)],
        "Microsoft.AppConfiguration/configurationStores/keyValues/read",
        Data,
        store,
        expect![[
            r#"Allowed { role: 516239f1-63e1-4d78-a4de-a74fb236a071, scope: "/subscriptions/s1/resourceGroups/rg" }"#
        ]],
    );
    check(
        &[(reader, GROUP)],
        "Microsoft.AppConfiguration/configurationStores/keyValues/write",
        Data,
        store,
        expect!["Denied"],
    );
}

#[test]
fn key_vault_crypto_user_signs_with_keys_but_reads_no_secret() {
    let key = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v1/keys/k1";
    let user = role("Key Vault Crypto User");
    check(
        &[(user, VAULT)],
        "Microsoft.KeyVault/vaults/keys/sign/action",
        Data,
        key,
        expect![[
            r#"Allowed { role: 12338af0-0e69-4776-bea7-57ae8d297424, scope: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v1" }"#
        ]],
    );
    check(&[(user, VAULT)], GET_SECRET, Data, SECRET, expect!["Denied"]);
}

#[test]
fn owner_and_contributor_get_no_data_action() {
    let grants = [(role("Owner"), SUBSCRIPTION), (role("Contributor"), SUBSCRIPTION)];
    check(&grants, GET_SECRET, Data, SECRET, expect![[r#"Denied"#]]);
    check(
        &grants,
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
        Data,
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa",
        expect![[r#"Denied"#]],
    );
}

#[test]
fn data_action_patterns_grant_no_control_action() {
    // Key Vault Administrator's `dataActions: Microsoft.KeyVault/vaults/*` would cover a vault
    // write if the namespaces were mixed up.
    check(
        &[(role("Key Vault Administrator"), VAULT)],
        "Microsoft.KeyVault/vaults/write",
        Control,
        VAULT,
        expect![[r#"Denied"#]],
    );
    check(
        &[(role("Storage Blob Data Reader"), GROUP)],
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
        Control,
        GROUP,
        expect![[r#"Denied"#]],
    );
}

#[test]
fn group_assignment_applies_inside_the_group_but_not_to_a_sibling() {
    let contributor = role("Contributor");
    check(
        &[(contributor, GROUP)],
        VM_WRITE,
        Control,
        VM,
        expect![[
            r#"Allowed { role: b24988ac-6180-42a0-ab88-20f7382dd24c, scope: "/subscriptions/s1/resourceGroups/rg" }"#
        ]],
    );
    check(
        &[(contributor, GROUP)],
        VM_WRITE,
        Control,
        "/subscriptions/s1/resourceGroups/rg2/providers/Microsoft.Compute/virtualMachines/vm1",
        expect![[r#"Denied"#]],
    );
    check(&[(contributor, SIBLING_GROUP)], VM_WRITE, Control, VM, expect![[r#"Denied"#]]);
    // A group whose name extends another's is a sibling, not a child.
    check(
        &[(contributor, GROUP)],
        VM_WRITE,
        Control,
        "/subscriptions/s1/resourceGroups/rg-extra/providers/Microsoft.Compute/virtualMachines/vm1",
        expect![[r#"Denied"#]],
    );
}

#[test]
fn resource_assignment_does_not_apply_to_its_group() {
    let owner = role("Owner");
    check(
        &[(owner, VM)],
        "Microsoft.Resources/subscriptions/resourceGroups/read",
        Control,
        GROUP,
        expect![[r#"Denied"#]],
    );
    check(
        &[(owner, VM)],
        "Microsoft.Compute/virtualMachines/delete",
        Control,
        VM,
        expect![[
            r#"Allowed { role: 8e3af657-a8ff-443c-a75c-2fe8c4bcb635, scope: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1" }"#
        ]],
    );
}

#[test]
fn scopes_compare_case_insensitively_and_root_covers_everything() {
    check(
        &[(role("Reader"), "/SUBSCRIPTIONS/S1/resourcegroups/RG")],
        VM_READ,
        Control,
        VM,
        expect![[
            r#"Allowed { role: acdd72a7-3385-48ef-bd42-f606fba81ae7, scope: "/SUBSCRIPTIONS/S1/resourcegroups/RG" }"#
        ]],
    );
    check(
        &[(role("Reader"), "/")],
        VM_READ,
        Control,
        VM,
        expect![[r#"Allowed { role: acdd72a7-3385-48ef-bd42-f606fba81ae7, scope: "/" }"#]],
    );
}

#[test]
fn not_actions_subtract_only_within_their_own_block() {
    // Contributor's notActions remove role assignment writes from Contributor alone; a second
    // role that grants them still allows.
    check(
        &[(role("Contributor"), SUBSCRIPTION), (role("User Access Administrator"), GROUP)],
        ROLE_ASSIGNMENT_WRITE,
        Control,
        VM,
        expect![[
            r#"Allowed { role: 18d7d88d-d35e-4fb5-a5c3-7773c20a72d9, scope: "/subscriptions/s1/resourceGroups/rg" }"#
        ]],
    );
    // The same holds between two blocks of one role.
    let two_blocks = RoleDefinition {
        id: "11111111-1111-1111-1111-111111111111".parse().unwrap(),
        role_name: "Two blocks".to_owned(),
        role_type: RoleType::Custom,
        description: String::new(),
        assignable_scopes: vec!["/".to_owned()],
        permissions: vec![
            Permission {
                actions: vec!["*".to_owned()],
                not_actions: vec!["Microsoft.Compute/*".to_owned()],
                ..Permission::default()
            },
            Permission { actions: vec![VM_READ.to_owned()], ..Permission::default() },
        ],
    };
    check(
        &[(&two_blocks, GROUP)],
        VM_READ,
        Control,
        VM,
        expect![[
            r#"Allowed { role: 11111111-1111-1111-1111-111111111111, scope: "/subscriptions/s1/resourceGroups/rg" }"#
        ]],
    );
    check(&[(&two_blocks, GROUP)], VM_WRITE, Control, VM, expect![[r#"Denied"#]]);
    check(
        &[(&two_blocks, GROUP)],
        "Microsoft.Network/networkInterfaces/write",
        Control,
        GROUP,
        expect![[
            r#"Allowed { role: 11111111-1111-1111-1111-111111111111, scope: "/subscriptions/s1/resourceGroups/rg" }"#
        ]],
    );
}

#[test]
fn the_first_allowing_grant_is_reported() {
    let reader = role("Reader");
    let owner = role("Owner");
    check(
        &[(reader, SUBSCRIPTION), (owner, GROUP)],
        VM_READ,
        Control,
        VM,
        expect![[
            r#"Allowed { role: acdd72a7-3385-48ef-bd42-f606fba81ae7, scope: "/subscriptions/s1" }"#
        ]],
    );
    check(
        &[(owner, GROUP), (reader, SUBSCRIPTION)],
        VM_READ,
        Control,
        VM,
        expect![[
            r#"Allowed { role: 8e3af657-a8ff-443c-a75c-2fe8c4bcb635, scope: "/subscriptions/s1/resourceGroups/rg" }"#
        ]],
    );
    // A grant that does not allow the action is skipped even when it comes first.
    check(
        &[(reader, SUBSCRIPTION), (owner, GROUP)],
        VM_WRITE,
        Control,
        VM,
        expect![[
            r#"Allowed { role: 8e3af657-a8ff-443c-a75c-2fe8c4bcb635, scope: "/subscriptions/s1/resourceGroups/rg" }"#
        ]],
    );
}

// Property test: `authorize` agrees with a brute-force model that checks scopes by splitting
// them into segments and patterns with a recursive glob (`crate::reference`), over random
// grants drawn from small pools of scopes, patterns and actions chosen to contain traps
// (segment prefixes, case differences, data/control mix-ups, `/*/` patterns).

const SCOPE_POOL: &[&str] = &[
    "/",
    "/subscriptions/s1",
    "/subscriptions/s2",
    "/subscriptions/S1/resourceGroups/rg",
    "/subscriptions/s1/resourcegroups/rg-2",
    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm2",
    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v",
    "/subscriptions/s1/resourceGroups/RG/providers/Microsoft.KeyVault/vaults/v/secrets/db",
    "/subscriptions/s1/resourceGroups/rg-2/providers/Microsoft.KeyVault/vaults/v",
];

const PATTERN_POOL: &[&str] = &[
    "*",
    "*/read",
    "*/write",
    "Microsoft.Compute/*",
    "microsoft.compute/virtualmachines/*",
    "Microsoft.Compute/virtualMachines/*/action",
    "Microsoft.Compute/virtualMachines/*/read",
    "Microsoft.KeyVault/vaults/*",
    "Microsoft.KeyVault/vaults/*/read",
    "Microsoft.KeyVault/vaults/secrets/*",
    "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    "Microsoft.Authorization/*",
    "Microsoft.Authorization/*/Write",
    "Microsoft.*/delete",
];

const ACTION_POOL: &[&str] = &[
    "Microsoft.Compute/virtualMachines/read",
    "Microsoft.Compute/virtualMachines/write",
    "Microsoft.Compute/virtualMachines/start/action",
    "Microsoft.Compute/virtualMachines/delete",
    "Microsoft.KeyVault/vaults/read",
    "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    "microsoft.keyvault/vaults/secrets/setsecret/action",
    "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "Microsoft.Authorization/roleAssignments/write",
    "Microsoft.Authorization/write",
];

fn patterns() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop::sample::select(PATTERN_POOL).prop_map(str::to_owned), 0..3)
}

fn permission() -> impl Strategy<Value = Permission> {
    (patterns(), patterns(), patterns(), patterns()).prop_map(
        |(actions, not_actions, data_actions, not_data_actions)| Permission {
            actions,
            not_actions,
            data_actions,
            not_data_actions,
        },
    )
}

/// Grants as (scope text, role), each role with a distinct id.
fn grants() -> impl Strategy<Value = Vec<(&'static str, RoleDefinition)>> {
    prop::collection::vec(
        (prop::sample::select(SCOPE_POOL), prop::collection::vec(permission(), 1..3)),
        0..5,
    )
    .prop_map(|grants| {
        grants
            .into_iter()
            .enumerate()
            .map(|(index, (scope, permissions))| {
                let role = RoleDefinition {
                    id: format!("00000000-0000-0000-0000-{index:012}").parse().unwrap(),
                    role_name: format!("role {index}"),
                    role_type: RoleType::Custom,
                    description: String::new(),
                    assignable_scopes: vec!["/".to_owned()],
                    permissions,
                };
                (scope, role)
            })
            .collect()
    })
}

fn reference_authorize(
    grants: &[(&str, RoleDefinition)],
    action: &str,
    kind: ActionKind,
    target: &str,
) -> Decision {
    for (scope, role) in grants {
        if !reference_scope_contains(scope, target) {
            continue;
        }
        for permission in &role.permissions {
            let (granted, subtracted) = match kind {
                ActionKind::Control => (&permission.actions, &permission.not_actions),
                ActionKind::Data => (&permission.data_actions, &permission.not_data_actions),
            };
            let granted = granted.iter().any(|pattern| reference_matches(pattern, action));
            let subtracted = subtracted.iter().any(|pattern| reference_matches(pattern, action));
            if granted && !subtracted {
                return Decision::Allowed { role: role.id, scope: (*scope).to_owned() };
            }
        }
    }
    Decision::Denied
}

proptest! {
    #[test]
    fn authorize_matches_the_reference_model(
        grants in grants(),
        target in prop::sample::select(SCOPE_POOL),
        action in prop::sample::select(ACTION_POOL),
        is_data in any::<bool>(),
    ) {
        let kind = if is_data { ActionKind::Data } else { ActionKind::Control };
        let scopes: Vec<ResourceId> =
            grants.iter().map(|(scope, _)| ResourceId::parse(scope).unwrap()).collect();
        let views: Vec<Grant<'_>> = grants
            .iter()
            .zip(&scopes)
            .map(|((_, role), scope)| Grant { scope, role })
            .collect();
        let decision = authorize(&views, action, kind, &ResourceId::parse(target).unwrap());
        prop_assert_eq!(decision, reference_authorize(&grants, action, kind, target));
    }
}
