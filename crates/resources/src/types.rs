//! The resource types Ambient knows: one table, not a module per type.

/// What a type is, for the lifecycle rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A compute resource that can hold identities and runs on a host.
    Compute,
    /// `Microsoft.ManagedIdentity/userAssignedIdentities`.
    UserAssignedIdentity,
    /// Its child `federatedIdentityCredentials`.
    FederatedCredential,
    /// `Microsoft.KeyVault/vaults`.
    Vault,
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
pub const VAULT: &str = "Microsoft.KeyVault/vaults";

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
];

/// The known type spelled `name` in any case.
pub fn lookup(name: &str) -> Option<ResourceType> {
    TYPES.iter().copied().find(|known| known.name.eq_ignore_ascii_case(name))
}

/// Every known type.
pub fn all() -> &'static [ResourceType] {
    TYPES
}

/// Checks a resource or group name: 1 to 90 characters of letters, digits, `-`, `_`, `.`,
/// `(` and `)`, not ending with `.`.
pub fn check_name(name: &str) -> Result<(), crate::Error> {
    let ok = !name.is_empty()
        && name.len() <= domain::limits::RESOURCE_NAME_CHARS_MAX
        && !name.ends_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'));
    if ok {
        Ok(())
    } else {
        Err(crate::Error::bad_request(
            "InvalidResourceName",
            format!(
                "The resource name '{name}' is invalid. Names are 1 to 90 characters of letters, digits, '-', '_', '.', '(' and ')', and do not end with '.'."
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
        assert!(lookup("Microsoft.Compute/disks").is_none());
    }

    #[test]
    fn names_follow_arm_rules() {
        assert!(check_name("stock-vm_1.a(b)").is_ok());
        for bad in ["", "ends.", "has space", "slash/", &"x".repeat(91)] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
