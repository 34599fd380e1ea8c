//! Resource ids in templates: the `resourceId` family of functions, the id of each resource a
//! template declares (including extension resources under a `scope` and the older
//! `{type}/providers/{extension}` form az still generates), and the forms `dependsOn` accepts.

use crate::template::DeploymentContext;
use crate::template::functions::Args;

const RESOURCE_GROUPS: &str = "Microsoft.Resources/resourceGroups";

/// `resourceId([subscriptionId], [resourceGroupName], type, name...)`.
pub(crate) fn resource_id(args: &Args, context: &DeploymentContext) -> Result<String, String> {
    let parts = args.strings(2, usize::MAX)?;
    let type_at = type_position(args, &parts, 2)?;
    let base = match &parts[..type_at] {
        [] => match &context.resource_group {
            Some(group) => group.id.as_str().to_owned(),
            None => format!("/subscriptions/{}", context.subscription_id),
        },
        [group] => format!("/subscriptions/{}/resourceGroups/{group}", context.subscription_id),
        [subscription, group] => format!("/subscriptions/{subscription}/resourceGroups/{group}"),
        _ => unreachable!("type_position allows at most two leading arguments"),
    };
    build(args, &base, parts[type_at], &parts[type_at + 1..])
}

/// `subscriptionResourceId([subscriptionId], type, name...)`.
pub(crate) fn subscription_resource_id(
    args: &Args,
    context: &DeploymentContext,
) -> Result<String, String> {
    let parts = args.strings(2, usize::MAX)?;
    let type_at = type_position(args, &parts, 1)?;
    let subscription = parts[..type_at].first().copied().unwrap_or(&context.subscription_id);
    build(args, &format!("/subscriptions/{subscription}"), parts[type_at], &parts[type_at + 1..])
}

/// `tenantResourceId(type, name...)`.
pub(crate) fn tenant_resource_id(args: &Args) -> Result<String, String> {
    let parts = args.strings(2, usize::MAX)?;
    let type_at = type_position(args, &parts, 0)?;
    build(args, "", parts[type_at], &parts[type_at + 1..])
}

/// `extensionResourceId(resourceId, type, name...)`.
pub(crate) fn extension_resource_id(args: &Args) -> Result<String, String> {
    let parts = args.strings(3, usize::MAX)?;
    let base = parts[0].trim_end_matches('/');
    if !base.starts_with('/') {
        return Err(args.fail(&format!("the first argument '{base}' must be a resource id.")));
    }
    build(args, base, parts[1], &parts[2..])
}

/// Where the resource type is among the arguments: the first one with a `/`, after at most
/// `leading_max` subscription and group arguments.
fn type_position(args: &Args, parts: &[&str], leading_max: usize) -> Result<usize, String> {
    match parts.iter().position(|part| part.contains('/')) {
        Some(at) if at <= leading_max && at + 1 < parts.len() => Ok(at),
        _ => Err(args.fail(&format!(
            "function requires exactly one multi-segmented argument which must be resource type including resource provider namespace. Current function arguments '{}'.",
            parts.join(",")
        ))),
    }
}

fn build(args: &Args, base: &str, resource_type: &str, names: &[&str]) -> Result<String, String> {
    let types: Vec<&str> = resource_type.split('/').collect();
    let names: Vec<&str> = names.iter().flat_map(|name| name.split('/')).collect();
    if types.iter().any(|segment| segment.is_empty()) || names.len() + 1 != types.len() {
        return Err(args.fail(&format!(
            "the type '{resource_type}' requires '{}' resource name argument(s).",
            types.len().saturating_sub(1)
        )));
    }
    Ok(interleave(base, &types, &names))
}

/// `{base}/providers/{namespace}/{type}/{name}[/{type}/{name}]...`.
fn interleave(base: &str, types: &[&str], names: &[&str]) -> String {
    let mut id = format!("{base}/providers/{}", types[0]);
    for (kind, name) in types[1..].iter().zip(names) {
        id.push('/');
        id.push_str(kind);
        id.push('/');
        id.push_str(name);
    }
    id
}

/// The id of a resource the template declares and the type to PUT it as, from its full type and
/// name under `base` (the deployment's scope or the resource's `scope`).
///
/// Besides `{namespace}/{type}[/{child}]` with one name segment per type segment after the
/// namespace, this accepts the older extension form `{namespace}/{type}/providers/{extension}`
/// with name `{resource}/{extensionNamespace}/{extensionName}`, which az uses for role
/// assignments on a resource.
pub(crate) fn declared_id(
    base: &str,
    subscription_id: &str,
    resource_type: &str,
    name: &str,
) -> Option<(String, String)> {
    let names: Vec<&str> = name.split('/').collect();
    if names.iter().any(|segment| segment.is_empty()) {
        return None;
    }
    if resource_type.eq_ignore_ascii_case(RESOURCE_GROUPS) && names.len() == 1 {
        return Some((
            format!("/subscriptions/{subscription_id}/resourceGroups/{name}"),
            RESOURCE_GROUPS.to_owned(),
        ));
    }
    let lower = resource_type.to_ascii_lowercase();
    if let Some(at) = lower.find("/providers/") {
        let outer: Vec<&str> = resource_type[..at].split('/').collect();
        let inner: Vec<&str> = resource_type[at + "/providers/".len()..].split('/').collect();
        let outer_names = outer.len().checked_sub(1)?;
        if outer_names == 0 || names.len() != outer_names + 1 + inner.len() {
            return None;
        }
        let namespace = names[outer_names];
        let scope = interleave(base, &outer, &names[..outer_names]);
        let mut extension = vec![namespace];
        extension.extend(&inner);
        let id = interleave(&scope, &extension, &names[outer_names + 1..]);
        return Some((id, format!("{namespace}/{}", inner.join("/"))));
    }
    let types: Vec<&str> = resource_type.split('/').collect();
    if types.len() < 2
        || types.iter().any(|segment| segment.is_empty())
        || names.len() + 1 != types.len()
    {
        return None;
    }
    Some((interleave(base, &types, &names), resource_type.to_owned()))
}

/// The scope an extension resource's `scope` property names: a full id, or a
/// `{namespace}/{type}/{name}` path relative to the deployment's scope (as Bicep writes it).
pub(crate) fn scope_id(base: &str, scope: &str) -> String {
    let scope = scope.trim_end_matches('/');
    if scope.starts_with('/') { scope.to_owned() } else { format!("{base}/providers/{scope}") }
}

/// An id with a resource group spelled `/subscriptions/{s}/resourceGroups/{g}` even when
/// `subscriptionResourceId` wrote it as a provider resource; case is kept.
pub(crate) fn canonical(id: &str) -> String {
    let id = id.trim_end_matches('/');
    let lower = id.to_ascii_lowercase();
    let marker = "/providers/microsoft.resources/resourcegroups/";
    match lower.find(marker) {
        Some(at)
            if lower.starts_with("/subscriptions/") && lower[..at].matches('/').count() == 2 =>
        {
            format!("{}/resourceGroups/{}", &id[..at], &id[at + marker.len()..])
        }
        _ => id.to_owned(),
    }
}

/// The form ids are compared in: canonical and lower case.
pub(crate) fn comparable(id: &str) -> String {
    canonical(id).to_ascii_lowercase()
}
