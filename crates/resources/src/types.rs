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

/// `id` with ARM's keywords spelled canonically (`subscriptions`, `resourceGroups`,
/// `providers`) and, for a known type, its namespace and type segments as ARM spells them.
/// Names keep the case they were given. Clients send the keywords in any case
/// (`/resourcegroups/`), ARM prints them one way.
pub fn canonical_id(id: &domain::ResourceId) -> domain::ResourceId {
    let segments: Vec<&str> = id.as_str().trim_start_matches('/').split('/').collect();
    let mut out: Vec<String> = Vec::with_capacity(segments.len());
    let mut index = 0;
    while index < segments.len() {
        let segment = segments[index];
        match segment.to_ascii_lowercase().as_str() {
            "subscriptions" if index == 0 => out.push("subscriptions".to_owned()),
            "resourcegroups" if index == 2 => out.push("resourceGroups".to_owned()),
            "providers" => {
                out.push("providers".to_owned());
                // The namespace and type segments that follow: `{ns}/{type}/{name}[/{child}/{name}]`.
                let rest = &segments[index + 1..];
                let type_segments: Vec<&str> = rest
                    .iter()
                    .enumerate()
                    .filter(|(at, _)| *at == 0 || at % 2 == 1)
                    .map(|(_, s)| *s)
                    .collect();
                let canonical = lookup(&type_segments.join("/")).map(|known| known.name);
                let names: Vec<&str> =
                    canonical.map(|name| name.split('/').collect()).unwrap_or_default();
                for (at, part) in rest.iter().enumerate() {
                    let type_index = if at == 0 {
                        Some(0)
                    } else if at % 2 == 1 {
                        Some(at / 2 + 1)
                    } else {
                        None
                    };
                    match type_index.and_then(|i| names.get(i)) {
                        Some(name) if name.eq_ignore_ascii_case(part) => {
                            out.push((*name).to_owned())
                        }
                        _ => out.push((*part).to_owned()),
                    }
                }
                break;
            }
            _ => out.push(segment.to_owned()),
        }
        index += 1;
    }
    domain::ResourceId::parse(&format!("/{}", out.join("/"))).unwrap_or_else(|_| id.clone())
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
    fn ids_get_arm_spelling() {
        let id = domain::ResourceId::parse(
            "/SUBSCRIPTIONS/s1/resourcegroups/MyGroup/providers/microsoft.compute/virtualmachines/MyVm",
        )
        .unwrap();
        assert_eq!(
            canonical_id(&id).as_str(),
            "/subscriptions/s1/resourceGroups/MyGroup/providers/Microsoft.Compute/virtualMachines/MyVm"
        );
        let child = domain::ResourceId::parse("/subscriptions/s1/resourcegroups/rg/providers/microsoft.managedidentity/userassignedidentities/id1/federatedidentitycredentials/gh").unwrap();
        assert_eq!(
            canonical_id(&child).as_str(),
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1/federatedIdentityCredentials/gh"
        );
        let group = domain::ResourceId::parse("/subscriptions/s1/resourcegroups/rg").unwrap();
        assert_eq!(canonical_id(&group).as_str(), "/subscriptions/s1/resourceGroups/rg");
    }

    #[test]
    fn names_follow_arm_rules() {
        assert!(check_name("stock-vm_1.a(b)").is_ok());
        for bad in ["", "ends.", "has space", "slash/", "-dash", ".dot", &"x".repeat(91)] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
