//! Which of a resource's managed identities a request means, decided from the assignment data
//! alone, so a request for an identity the resource does not hold fails without asking the
//! server (which checks again when it issues the token).

use api_types::hosting::{HostedResource, IdentityRef};

/// The identity selector a request carried. Values are compared case-insensitively: they are
/// GUIDs and ARM ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Selector {
    /// None given: the system identity, or the only user identity when there is no system one.
    Default,
    /// `client_id` (`clientid` in the 2017 App Service protocol).
    ClientId(String),
    /// `object_id` (`principal_id` in App Service).
    ObjectId(String),
    /// `msi_res_id` / `mi_res_id`: a user-assigned identity's ARM id.
    ResourceId(String),
}

/// The identity of `resource` that `selector` names, if the resource holds it.
pub(crate) fn select<'a>(
    resource: &'a HostedResource,
    selector: &Selector,
) -> Option<&'a IdentityRef> {
    let mut all = resource.system.iter().chain(resource.user.iter());
    match selector {
        Selector::Default => match (&resource.system, resource.user.as_slice()) {
            (Some(system), _) => Some(system),
            (None, [only]) => Some(only),
            (None, _) => None,
        },
        Selector::ClientId(id) => all.find(|identity| identity.client_id.eq_ignore_ascii_case(id)),
        Selector::ObjectId(id) => {
            all.find(|identity| identity.principal_id.eq_ignore_ascii_case(id))
        }
        Selector::ResourceId(id) => resource.user.iter().find(|identity| {
            identity.resource_id.as_deref().is_some_and(|own| own.eq_ignore_ascii_case(id))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UAMI: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/one";

    fn identity(principal: &str, client: &str, resource_id: Option<&str>) -> IdentityRef {
        IdentityRef {
            principal_id: principal.to_owned(),
            client_id: client.to_owned(),
            resource_id: resource_id.map(str::to_owned),
        }
    }

    fn resource(system: bool, users: usize) -> HostedResource {
        HostedResource {
            resource_id:
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
                    .to_owned(),
            resource_key:
                "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm"
                    .to_owned(),
            name: "vm".to_owned(),
            resource_type: "Microsoft.Compute/virtualMachines".to_owned(),
            subscription_id: "s".to_owned(),
            resource_group: "rg".to_owned(),
            location: "local".to_owned(),
            vm_id: None,
            identity_header: "h".to_owned(),
            system: system.then(|| identity("sys-oid", "sys-cid", None)),
            user: (0..users)
                .map(|n| {
                    identity(
                        &format!("u{n}-oid"),
                        &format!("u{n}-cid"),
                        Some(&format!("{UAMI}{n}")),
                    )
                })
                .collect(),
        }
    }

    #[track_caller]
    fn check(resource: &HostedResource, selector: Selector, expected_principal: Option<&str>) {
        let found = select(resource, &selector).map(|identity| identity.principal_id.as_str());
        assert_eq!(found, expected_principal);
    }

    #[test]
    fn default_is_the_system_identity() {
        check(&resource(true, 2), Selector::Default, Some("sys-oid"));
    }

    #[test]
    fn default_is_the_only_user_identity_without_a_system_one() {
        check(&resource(false, 1), Selector::Default, Some("u0-oid"));
        check(&resource(false, 2), Selector::Default, None);
        check(&resource(false, 0), Selector::Default, None);
    }

    #[test]
    fn selectors_match_case_insensitively() {
        let vm = resource(true, 2);
        check(&vm, Selector::ClientId("U1-CID".to_owned()), Some("u1-oid"));
        check(&vm, Selector::ObjectId("SYS-OID".to_owned()), Some("sys-oid"));
        check(&vm, Selector::ResourceId(format!("{UAMI}1").to_uppercase()), Some("u1-oid"));
    }

    #[test]
    fn unknown_identities_are_not_found() {
        let vm = resource(true, 1);
        check(&vm, Selector::ClientId("nope".to_owned()), None);
        check(&vm, Selector::ObjectId("nope".to_owned()), None);
        check(&vm, Selector::ResourceId(format!("{UAMI}9")), None);
    }
}
