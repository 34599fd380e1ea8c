//! Which control-plane operation a path names. ARM paths are case-insensitive and nest
//! arbitrarily (`/subscriptions/{s}/resourceGroups/{g}/providers/{ns}/{type}/{name}/...`), so
//! they are classified here, by a pure function with its own tests, rather than by the router.

use domain::ResourceId;

/// A control-plane path, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArmPath {
    /// `/subscriptions`
    Subscriptions,
    /// `/tenants`
    Tenants,
    /// `/subscriptions/{s}`
    Subscription(String),
    /// `/subscriptions/{s}/resourceGroups`
    Groups { subscription: String },
    /// `/subscriptions/{s}/resourceGroups/{g}`
    Group(ResourceId),
    /// `/subscriptions/{s}[/resourceGroups/{g}]/resources`
    Resources { subscription: String, group: Option<String> },
    /// A collection of one type: `.../providers/{ns}/{type}` or a child collection
    /// `.../providers/{ns}/{type}/{name}/{child}`.
    Collection {
        subscription: String,
        group: Option<String>,
        type_name: String,
        parent: Option<ResourceId>,
    },
    /// One resource: `.../providers/{ns}/{type}/{name}[/{child}/{name}]`.
    Resource(ResourceId),
    /// `{scope}/providers/Microsoft.Authorization/roleAssignments`
    RoleAssignments(ResourceId),
    /// `{scope}/providers/Microsoft.Authorization/roleAssignments/{name}`
    RoleAssignment(ResourceId, String),
    /// `{scope}/providers/Microsoft.Authorization/roleDefinitions`
    RoleDefinitions(ResourceId),
    /// `{scope}/providers/Microsoft.Authorization/roleDefinitions/{name}`
    RoleDefinition(ResourceId, String),
    /// `{scope}/providers/Microsoft.Authorization/permissions`: the caller's own permissions.
    Permissions(ResourceId),
    /// `/subscriptions/{s}/providers/microsoft.insights/eventtypes/management/values`
    ActivityLog(ResourceId),
    /// `{resource}/providers/Microsoft.ManagedIdentity/identities/default`
    SystemIdentity(ResourceId),
    /// `{scope}/providers/Microsoft.Resources/deployments[/{name}[/{action}]]` at a group or
    /// subscription: template deployments.
    Deployments { scope: ResourceId, name: Option<String>, action: Option<String> },
    /// `/subscriptions/{s}/providers/Microsoft.Compute/locations/{l}/publishers/...`: the VM
    /// image catalog, by the segments after `locations`.
    ImageCatalog { subscription: String, location: String, segments: Vec<String> },
    /// `/providers/{ns}/...` at the root or a subscription with nothing else to match (provider
    /// metadata such as `Microsoft.Web/webAppStacks`).
    Provider { subscription: Option<String>, namespace: String, rest: Vec<String> },
    /// A subscription- or group-level action: `.../providers/{ns}/{action}` that is not a type
    /// (such as `Microsoft.Web/checknameavailability`).
    Unknown,
}

const AUTHORIZATION: &str = "/providers/microsoft.authorization/";
const ACTIVITY_VALUES: &str = "/providers/microsoft.insights/eventtypes/management/values";
const IDENTITY_DEFAULT: &str = "/providers/microsoft.managedidentity/identities/default";
const DEPLOYMENTS: &str = "/providers/microsoft.resources/deployments";

/// Classifies `path` (without query, no trailing slash). `Err` is a malformed id.
pub fn classify(path: &str) -> Result<ArmPath, String> {
    let path = path.trim_end_matches('/');
    let lower = path.to_ascii_lowercase();
    if lower == "/subscriptions" {
        return Ok(ArmPath::Subscriptions);
    }
    if lower == "/tenants" {
        return Ok(ArmPath::Tenants);
    }
    if let Some(at) = lower.find(AUTHORIZATION) {
        let scope = parse_id(if at == 0 { "/" } else { &path[..at] })?;
        let rest: Vec<&str> = path[at + AUTHORIZATION.len()..].split('/').collect();
        return Ok(match (rest[0].to_ascii_lowercase().as_str(), rest.get(1), rest.len()) {
            ("roleassignments", None, _) => ArmPath::RoleAssignments(scope),
            ("roleassignments", Some(name), 2) => {
                ArmPath::RoleAssignment(scope, (*name).to_owned())
            }
            ("roledefinitions", None, _) => ArmPath::RoleDefinitions(scope),
            ("roledefinitions", Some(name), 2) => {
                ArmPath::RoleDefinition(scope, (*name).to_owned())
            }
            ("permissions", None, _) => ArmPath::Permissions(scope),
            _ => ArmPath::Unknown,
        });
    }
    if lower.ends_with(ACTIVITY_VALUES) {
        return Ok(ArmPath::ActivityLog(parse_id(&path[..path.len() - ACTIVITY_VALUES.len()])?));
    }
    if lower.ends_with(IDENTITY_DEFAULT) {
        return Ok(ArmPath::SystemIdentity(parse_id(
            &path[..path.len() - IDENTITY_DEFAULT.len()],
        )?));
    }
    if let Some(at) = lower.find(DEPLOYMENTS)
        && lower[at + DEPLOYMENTS.len()..].chars().next().is_none_or(|c| c == '/')
    {
        let scope = parse_id(if at == 0 { "/" } else { &path[..at] })?;
        let rest: Vec<&str> = path[at + DEPLOYMENTS.len()..]
            .split('/')
            .filter(|segment| !segment.is_empty())
            .collect();
        return Ok(match rest.as_slice() {
            [] => ArmPath::Deployments { scope, name: None, action: None },
            [name] => ArmPath::Deployments { scope, name: Some((*name).to_owned()), action: None },
            [name, action @ ..] => ArmPath::Deployments {
                scope,
                name: Some((*name).to_owned()),
                action: Some(action.join("/")),
            },
        });
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let lowered: Vec<String> =
        segments.iter().map(|segment| segment.to_ascii_lowercase()).collect();
    let shape: Vec<&str> = lowered.iter().map(String::as_str).collect();
    Ok(match shape.as_slice() {
        ["subscriptions", _] => ArmPath::Subscription(segments[1].to_owned()),
        ["subscriptions", _, "resourcegroups"] => {
            ArmPath::Groups { subscription: segments[1].to_owned() }
        }
        ["subscriptions", _, "resourcegroups", _] => ArmPath::Group(parse_id(path)?),
        ["subscriptions", _, "resources"] => {
            ArmPath::Resources { subscription: segments[1].to_owned(), group: None }
        }
        // The short form of deployment paths older clients use (`.../resourcegroups/{g}/
        // deployments/{name}[/operations]`), as ARM accepts it.
        ["subscriptions", _, "resourcegroups", _, "deployments", ..]
        | ["subscriptions", _, "deployments", ..] => {
            let at = lowered.iter().position(|segment| segment == "deployments").unwrap_or(0);
            let scope = parse_id(&format!("/{}", segments[..at].join("/")))?;
            let rest = &segments[at + 1..];
            ArmPath::Deployments {
                scope,
                name: rest.first().map(|name| (*name).to_owned()),
                action: (rest.len() > 1).then(|| rest[1..].join("/")),
            }
        }
        ["subscriptions", _, "resourcegroups", _, "resources"] => ArmPath::Resources {
            subscription: segments[1].to_owned(),
            group: Some(segments[3].to_owned()),
        },
        ["subscriptions", _, "providers", "microsoft.compute", "locations", _, ..] => {
            ArmPath::ImageCatalog {
                subscription: segments[1].to_owned(),
                location: segments[5].to_owned(),
                segments: segments[6..].iter().map(|segment| (*segment).to_owned()).collect(),
            }
        }
        ["providers", _, ..] => ArmPath::Provider {
            subscription: None,
            namespace: segments[1].to_owned(),
            rest: segments[2..].iter().map(|segment| (*segment).to_owned()).collect(),
        },
        _ => resource_path(path, &segments, &lowered)?,
    })
}

/// `.../providers/{ns}/{type}[/{name}[/{child}[/{childName}]]]` under a subscription or group.
fn resource_path(path: &str, segments: &[&str], lowered: &[String]) -> Result<ArmPath, String> {
    let Some(providers) = lowered.iter().position(|segment| segment == "providers") else {
        return Ok(ArmPath::Unknown);
    };
    if lowered.first().map(String::as_str) != Some("subscriptions") || providers < 2 {
        return Ok(ArmPath::Unknown);
    }
    let subscription = segments[1].to_owned();
    let group = (providers == 4 && lowered[2] == "resourcegroups").then(|| segments[3].to_owned());
    if providers != 2 && group.is_none() {
        return Ok(ArmPath::Unknown);
    }
    let after = &segments[providers + 1..];
    if after.len() < 2 {
        if group.is_none() && after.len() == 1 {
            return Ok(ArmPath::Provider {
                subscription: Some(subscription),
                namespace: after[0].to_owned(),
                rest: Vec::new(),
            });
        }
        return Ok(ArmPath::Unknown);
    }
    if after.len().is_multiple_of(2) {
        let type_name = if after.len() == 2 {
            format!("{}/{}", after[0], after[1])
        } else {
            let children: Vec<&str> = after.iter().skip(1).step_by(2).copied().collect();
            format!("{}/{}", after[0], children.join("/"))
        };
        let parent = if after.len() > 2 {
            Some(parse_id(&path[..path.rfind('/').unwrap_or(0)])?)
        } else {
            None
        };
        return Ok(ArmPath::Collection { subscription, group, type_name, parent });
    }
    Ok(ArmPath::Resource(parse_id(path)?))
}

fn parse_id(text: &str) -> Result<ResourceId, String> {
    ResourceId::parse(if text.is_empty() { "/" } else { text }).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    #[track_caller]
    fn check(path: &str, expect: Expect) {
        let actual = match classify(path) {
            Ok(ArmPath::Group(id)) => format!("Group({id})"),
            Ok(ArmPath::Resource(id)) => format!("Resource({id})"),
            Ok(ArmPath::RoleAssignments(scope)) => format!("RoleAssignments({scope})"),
            Ok(ArmPath::RoleAssignment(scope, name)) => format!("RoleAssignment({scope}, {name})"),
            Ok(ArmPath::SystemIdentity(id)) => format!("SystemIdentity({id})"),
            Ok(other) => format!("{other:?}"),
            Err(error) => format!("error: {error}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn paths_are_classified_in_any_case() {
        check("/subscriptions", expect!["Subscriptions"]);
        check("/Subscriptions/s1", expect![[r#"Subscription("s1")"#]]);
        check("/subscriptions/s1/resourcegroups", expect![[r#"Groups { subscription: "s1" }"#]]);
        check(
            "/SUBSCRIPTIONS/s1/resourceGroups/rg/",
            expect!["Group(/SUBSCRIPTIONS/s1/resourceGroups/rg)"],
        );
        check(
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
            expect![
                "Resource(/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm)"
            ],
        );
        check(
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines",
            expect![[
                r#"Collection { subscription: "s1", group: Some("rg"), type_name: "Microsoft.Compute/virtualMachines", parent: None }"#
            ]],
        );
        check(
            "/subscriptions/s1/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
            expect![[
                r#"Collection { subscription: "s1", group: None, type_name: "Microsoft.ManagedIdentity/userAssignedIdentities", parent: None }"#
            ]],
        );
        check(
            "/subscriptions/s1/resourceGroups/rg/resources",
            expect![[r#"Resources { subscription: "s1", group: Some("rg") }"#]],
        );
    }

    #[test]
    fn authorization_activity_identity_and_deployment_paths() {
        check(
            "/subscriptions/s1/providers/Microsoft.Authorization/roleAssignments",
            expect!["RoleAssignments(/subscriptions/s1)"],
        );
        check(
            "/providers/Microsoft.Authorization/roleAssignments/a1",
            expect!["RoleAssignment(/, a1)"],
        );
        check(
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Authorization/roleDefinitions/d1",
            expect![[r#"RoleDefinition(ResourceId(/subscriptions/s1/resourceGroups/rg), "d1")"#]],
        );
        check(
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm/providers/Microsoft.ManagedIdentity/identities/default",
            expect![
                "SystemIdentity(/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm)"
            ],
        );
        check(
            "/subscriptions/s1/resourcegroups/rg/providers/Microsoft.Resources/deployments/d1/validate",
            expect![[
                r#"Deployments { scope: ResourceId(/subscriptions/s1/resourcegroups/rg), name: Some("d1"), action: Some("validate") }"#
            ]],
        );
        check(
            "/subscriptions/s1/providers/Microsoft.Compute/locations/westus/publishers/Canonical/artifacttypes/vmimage/offers/o/skus/s/versions",
            expect![[
                r#"ImageCatalog { subscription: "s1", location: "westus", segments: ["publishers", "Canonical", "artifacttypes", "vmimage", "offers", "o", "skus", "s", "versions"] }"#
            ]],
        );
        check(
            "/providers/Microsoft.Web/webAppStacks",
            expect![[
                r#"Provider { subscription: None, namespace: "Microsoft.Web", rest: ["webAppStacks"] }"#
            ]],
        );
        check(
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute",
            expect!["Unknown"],
        );
    }
}
