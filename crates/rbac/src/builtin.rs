//! The built-in roles, with Azure's GUIDs, names, descriptions and permissions.
//!
//! Copied from Azure's published definitions ("Azure built-in roles", `protocols/06-arm-rbac.md`
//! §5 and `protocols/05-keyvault.md` §6) so that scripts, templates and SDK calls written against
//! Azure name the same roles here. Each is assignable at `/` and has one permission block.
//! Azure's lists mention providers this platform does not serve (Microsoft.Support,
//! Microsoft.Insights/alertRules, Microsoft.RecoveryServices, ...); they are kept verbatim, since
//! a role definition read back should equal Azure's.
//!
//! The platform's compute types: Virtual Machine Contributor covers
//! `Microsoft.Compute/virtualMachines` and `Microsoft.Compute/virtualMachineScaleSets` (as on
//! Azure). The others, `Microsoft.Web/sites`, `Microsoft.ContainerInstance/containerGroups`,
//! `Microsoft.ContainerService/managedClusters`, `Microsoft.Logic/workflows` and
//! `Microsoft.Storage/storageAccounts`, are managed through Contributor or Owner; their own
//! Azure roles (Website Contributor and so on) are not built in.

use std::sync::LazyLock;

use domain::Guid;

use crate::role::{Permission, RoleDefinition, RoleType};

/// Every built-in role, in a fixed order (Owner first).
pub fn builtin_roles() -> &'static [RoleDefinition] {
    &BUILTIN_ROLES
}

/// The built-in role with this display name, compared case-insensitively (`"key vault secrets
/// user"` finds Key Vault Secrets User).
pub fn builtin_role_by_name(name: &str) -> Option<&'static RoleDefinition> {
    builtin_roles().iter().find(|role| role.role_name.eq_ignore_ascii_case(name))
}

/// The built-in role with this GUID.
pub fn builtin_role_by_id(id: &Guid) -> Option<&'static RoleDefinition> {
    builtin_roles().iter().find(|role| role.id == *id)
}

/// A built-in role as written down: a single permission block, assignable at `/`.
struct BuiltinSpec {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    actions: &'static [&'static str],
    not_actions: &'static [&'static str],
    data_actions: &'static [&'static str],
}

static BUILTIN_ROLES: LazyLock<Vec<RoleDefinition>> =
    LazyLock::new(|| BUILTIN_SPECS.iter().map(BuiltinSpec::definition).collect());

impl BuiltinSpec {
    fn definition(&self) -> RoleDefinition {
        let strings = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        RoleDefinition {
            id: self.id.parse().expect("built-in role GUIDs are valid literals"),
            role_name: self.name.to_owned(),
            role_type: RoleType::BuiltIn,
            description: self.description.to_owned(),
            assignable_scopes: vec!["/".to_owned()],
            permissions: vec![Permission {
                actions: strings(self.actions),
                not_actions: strings(self.not_actions),
                data_actions: strings(self.data_actions),
                not_data_actions: Vec::new(),
            }],
        }
    }
}

/// The control-plane actions the Key Vault data roles (Administrator, Secrets Officer, Reader)
/// carry so their holders can find the vault.
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

const BUILTIN_SPECS: &[BuiltinSpec] = &[
    BuiltinSpec {
        id: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        name: "Owner",
        description: "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
        actions: &["*"],
        not_actions: &[],
        data_actions: &[],
    },
    BuiltinSpec {
        id: "b24988ac-6180-42a0-ab88-20f7382dd24c",
        name: "Contributor",
        description: "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
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
    BuiltinSpec {
        id: "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        name: "Reader",
        description: "View all resources, but does not allow you to make any changes.",
        actions: &["*/read"],
        not_actions: &[],
        data_actions: &[],
    },
    BuiltinSpec {
        id: "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        name: "User Access Administrator",
        description: "Lets you manage user access to Azure resources.",
        actions: &["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"],
        not_actions: &[],
        data_actions: &[],
    },
    BuiltinSpec {
        id: "9980e02c-c2be-4d73-94e8-173b1dc7cf3c",
        name: "Virtual Machine Contributor",
        description: "Lets you manage virtual machines, but not access to them, and not the virtual network or storage account they're connected to.",
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
    BuiltinSpec {
        id: "f1a07417-d97a-45cb-824c-7a7467783830",
        name: "Managed Identity Operator",
        description: "Read and Assign User Assigned Identity",
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
    BuiltinSpec {
        id: "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59",
        name: "Managed Identity Contributor",
        description: "Create, Read, Update, and Delete User Assigned Identity",
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
    BuiltinSpec {
        id: "00482a5a-887f-4fb3-b363-3b7fe8e74483",
        name: "Key Vault Administrator",
        description: "Perform all data plane operations on a key vault and all objects in it, including certificates, keys, and secrets. Cannot manage key vault resources or manage role assignments. Only works for key vaults that use the 'Azure role-based access control' permission model.",
        actions: KEY_VAULT_DATA_ROLE_ACTIONS,
        not_actions: &[],
        data_actions: &["Microsoft.KeyVault/vaults/*"],
    },
    BuiltinSpec {
        id: "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        name: "Key Vault Secrets Officer",
        description: "Perform any action on the secrets of a key vault, except manage permissions. Only works for key vaults that use the 'Azure role-based access control' permission model.",
        actions: KEY_VAULT_DATA_ROLE_ACTIONS,
        not_actions: &[],
        data_actions: &["Microsoft.KeyVault/vaults/secrets/*"],
    },
    BuiltinSpec {
        id: "4633458b-17de-408a-b874-0445c86b69e6",
        name: "Key Vault Secrets User",
        description: "Read secret contents. Only works for key vaults that use the 'Azure role-based access control' permission model.",
        actions: &[],
        not_actions: &[],
        data_actions: &[
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
    },
    BuiltinSpec {
        id: "21090545-7ca7-4776-b22c-e363652d74d2",
        name: "Key Vault Reader",
        description: "Read metadata of key vaults and its certificates, keys, and secrets. Cannot read sensitive values such as secret contents or key material. Only works for key vaults that use the 'Azure role-based access control' permission model.",
        actions: KEY_VAULT_DATA_ROLE_ACTIONS,
        not_actions: &[],
        data_actions: &[
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
    },
    BuiltinSpec {
        id: "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
        name: "Storage Blob Data Reader",
        description: "Allows for read access to Azure Storage blob containers and data",
        actions: &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"],
    },
    BuiltinSpec {
        id: "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        name: "Storage Blob Data Contributor",
        description: "Allows for read, write and delete access to Azure Storage blob containers and data",
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use expect_test::expect;

    use crate::builtin::{builtin_role_by_id, builtin_role_by_name, builtin_roles};
    use crate::role::validate_shape;

    #[test]
    fn lists_the_built_in_roles_with_azure_guids() {
        let actual: String = builtin_roles()
            .iter()
            .map(|role| format!("{} {:?} {}\n", role.id, role.role_type, role.role_name))
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
            2a2b9908-6ea1-4ae2-8e65-a410df84e7d1 BuiltIn Storage Blob Data Reader
            ba92f5b4-2d11-453d-a403-e96b0029c9fe BuiltIn Storage Blob Data Contributor
        "#]]
        .assert_eq(&actual);
    }

    #[test]
    fn built_in_roles_are_well_formed_and_unique() {
        let mut ids = BTreeSet::new();
        let mut names = BTreeSet::new();
        for role in builtin_roles() {
            assert_eq!(validate_shape(role), Ok(()), "{}", role.role_name);
            assert_eq!(role.assignable_scopes, ["/"], "{}", role.role_name);
            assert!(ids.insert(role.id), "duplicate id {}", role.id);
            assert!(names.insert(role.role_name.to_ascii_lowercase()), "{}", role.role_name);
        }
    }

    #[test]
    fn finds_roles_by_name_and_id() {
        let user = builtin_role_by_name("key vault SECRETS user").unwrap();
        assert_eq!(user.id.to_string(), "4633458b-17de-408a-b874-0445c86b69e6");
        assert_eq!(builtin_role_by_id(&user.id).unwrap().role_name, "Key Vault Secrets User");
        assert!(builtin_role_by_name("Key Vault Contributor").is_none());
        assert!(
            builtin_role_by_id(&"00000000-0000-0000-0000-000000000000".parse().unwrap()).is_none()
        );
    }
}
