//! The resource types Ambient knows: one table, not a module per type.

/// What a type is, for the lifecycle rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `Microsoft.Resources/resourceGroups`.
    ResourceGroup,
    /// A compute resource that can hold identities and runs on a host.
    Compute,
    /// `Microsoft.ManagedIdentity/userAssignedIdentities`.
    UserAssignedIdentity,
    /// Its child `federatedIdentityCredentials`.
    FederatedCredential,
    /// `Microsoft.KeyVault/vaults`.
    Vault,
    /// `Microsoft.Resources/deployments` and their operations: the record of a template
    /// deployment (the server writes them; clients cannot PUT them as resources).
    Deployment,
    /// A type Ambient stores and returns as sent, with no behaviour beyond its properties
    /// (networking, App Service plans, disks: what `az vm create`, `az webapp create` and
    /// templates create beside the resources that hold identities).
    Generic,
}

/// A known resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// Canonical spelling, as ARM prints it.
    pub name: &'static str,
    pub kind: Kind,
}

pub const USER_ASSIGNED_IDENTITY: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";
pub const FEDERATED_CREDENTIAL: &str =
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials";
pub const RESOURCE_GROUP: &str = "Microsoft.Resources/resourceGroups";
/// How groups are keyed in the store.
pub const RESOURCE_GROUP_TYPE_KEY: &str = "microsoft.resources/resourcegroups";
/// The RBAC namespace of group actions (`.../resourceGroups/write`).
pub const RESOURCE_GROUP_ACTIONS: &str = "Microsoft.Resources/subscriptions/resourceGroups";
pub const VAULT: &str = "Microsoft.KeyVault/vaults";
pub const DEPLOYMENT: &str = "Microsoft.Resources/deployments";
pub const DEPLOYMENT_OPERATION: &str = "Microsoft.Resources/deployments/operations";

const TYPES: &[ResourceType] = &[
    ResourceType { name: "Microsoft.Compute/virtualMachines", kind: Kind::Compute },
    ResourceType { name: "Microsoft.Compute/virtualMachineScaleSets", kind: Kind::Compute },
    ResourceType { name: "Microsoft.Web/sites", kind: Kind::Compute },
    ResourceType { name: "Microsoft.ContainerInstance/containerGroups", kind: Kind::Compute },
    ResourceType { name: "Microsoft.ContainerService/managedClusters", kind: Kind::Compute },
    ResourceType { name: "Microsoft.Logic/workflows", kind: Kind::Compute },
    ResourceType { name: "Microsoft.Storage/storageAccounts", kind: Kind::Compute },
    ResourceType { name: USER_ASSIGNED_IDENTITY, kind: Kind::UserAssignedIdentity },
    ResourceType { name: FEDERATED_CREDENTIAL, kind: Kind::FederatedCredential },
    ResourceType { name: VAULT, kind: Kind::Vault },
    ResourceType { name: DEPLOYMENT, kind: Kind::Deployment },
    ResourceType { name: DEPLOYMENT_OPERATION, kind: Kind::Deployment },
    ResourceType { name: "Microsoft.Network/virtualNetworks", kind: Kind::Generic },
    ResourceType { name: "Microsoft.Network/virtualNetworks/subnets", kind: Kind::Generic },
    ResourceType { name: "Microsoft.Network/publicIPAddresses", kind: Kind::Generic },
    ResourceType { name: "Microsoft.Network/networkSecurityGroups", kind: Kind::Generic },
    ResourceType { name: "Microsoft.Network/networkInterfaces", kind: Kind::Generic },
    ResourceType { name: "Microsoft.Web/serverfarms", kind: Kind::Generic },
    ResourceType { name: "Microsoft.Compute/disks", kind: Kind::Generic },
    ResourceType { name: "Microsoft.Compute/availabilitySets", kind: Kind::Generic },
];

/// The resource group type.
pub fn resource_group() -> ResourceType {
    ResourceType { name: RESOURCE_GROUP, kind: Kind::ResourceGroup }
}

/// The known type spelled `name` in any case.
pub fn lookup(name: &str) -> Option<ResourceType> {
    TYPES.iter().copied().find(|known| known.name.eq_ignore_ascii_case(name))
}

/// Every known type.
pub fn all() -> &'static [ResourceType] {
    TYPES
}

/// Checks a resource or group name: 1 to 90 characters of letters, digits, `-`, `_`, `.`,
/// `(` and `)`, not starting with `-` or `.` and not ending with `.`.
pub fn check_name(name: &str) -> Result<(), crate::Error> {
    let ok = !name.is_empty()
        && name.len() <= domain::limits::RESOURCE_NAME_CHARS_MAX
        && !name.ends_with('.')
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'));
    if ok {
        Ok(())
    } else {
        Err(crate::Error::bad_request(
            "InvalidResourceName",
            format!(
                "The resource name '{name}' is invalid. Names are 1 to 90 characters of letters, digits, '-', '_', '.', '(' and ')', do not start with '-' or '.', and do not end with '.'."
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_found_in_any_case() {
        assert_eq!(
            lookup("microsoft.compute/VIRTUALMACHINES").unwrap().name,
            "Microsoft.Compute/virtualMachines"
        );
        assert_eq!(lookup(USER_ASSIGNED_IDENTITY).unwrap().kind, Kind::UserAssignedIdentity);
        assert_eq!(lookup("microsoft.network/publicipaddresses").unwrap().kind, Kind::Generic);
        assert!(lookup("Microsoft.Sql/servers").is_none());
    }

    #[test]
    fn names_follow_arm_rules() {
        assert!(check_name("stock-vm_1.a(b)").is_ok());
        for bad in ["", "ends.", "has space", "slash/", "-dash", ".dot", &"x".repeat(91)] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
