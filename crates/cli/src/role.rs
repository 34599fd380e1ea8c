//! `ambient role assignment|definition ...`: Azure RBAC, as `az role` manages it.
//!
//! Assignees are resolved like az resolves them (object id, app id, display name) and also
//! from the resource id of anything with a managed identity. Roles are resolved by name, GUID
//! or full definition id. Assignments and definitions print with `properties` flattened, as az
//! prints them, plus `roleDefinitionName` (and `principalName` in lists).

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::GlobalArgs;
use crate::arm::{self, API_AUTHORIZATION, Arm, Request, SubscriptionArgs};
use crate::identity_cmd::IDENTITY_TYPE;
use crate::output::{Columns, Printed};

const ASSIGNMENTS: &str = "providers/Microsoft.Authorization/roleAssignments";
const DEFINITIONS: &str = "providers/Microsoft.Authorization/roleDefinitions";

/// At most this many distinct principals are looked up to fill `principalName` in a list.
const PRINCIPAL_NAME_LOOKUPS_MAX: usize = 100;

#[derive(Debug, Args)]
pub struct RoleArgs {
    #[command(subcommand)]
    command: RoleCommand,
    #[command(flatten)]
    subscription: SubscriptionArgs,
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Role assignments: who holds which role at which scope.
    #[command(subcommand)]
    Assignment(AssignmentCommand),
    /// Role definitions: built-in and custom roles.
    #[command(subcommand)]
    Definition(DefinitionCommand),
}

#[derive(Debug, Subcommand)]
pub enum AssignmentCommand {
    /// Assign a role to a principal at a scope.
    Create(AssignmentCreateArgs),
    /// List role assignments (by default those at the subscription scope; see --all).
    List(AssignmentListArgs),
    /// Delete role assignments matching the filters, or by id.
    Delete(AssignmentDeleteArgs),
}

#[derive(Debug, Args)]
pub struct AssigneeArgs {
    /// The principal: object id, app id, display name, or the resource id of a managed
    /// identity or of a resource with a system-assigned identity.
    #[arg(long, conflicts_with = "assignee_object_id")]
    assignee: Option<String>,
    /// The principal's object id, used as is.
    #[arg(long)]
    assignee_object_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct AssignmentCreateArgs {
    #[command(flatten)]
    assignee: AssigneeArgs,
    /// The principal's type.
    #[arg(long, default_value = "ServicePrincipal", value_parser = ["User", "Group", "ServicePrincipal", "ForeignGroup", "Device"])]
    assignee_principal_type: String,
    /// Role name, GUID or role definition id.
    #[arg(long)]
    role: String,
    /// The scope: a subscription, resource group or resource id.
    #[arg(long)]
    scope: Option<String>,
    /// The resource group to use as scope (instead of --scope).
    #[arg(long, short = 'g', conflicts_with = "scope")]
    resource_group: Option<String>,
    /// A description of the assignment.
    #[arg(long)]
    description: Option<String>,
    /// The assignment's name (a GUID) [default: a new GUID].
    #[arg(long, short = 'n')]
    name: Option<String>,
}

#[derive(Debug, Args)]
pub struct AssignmentListArgs {
    #[command(flatten)]
    assignee: AssigneeArgs,
    /// Only this role (name, GUID or role definition id).
    #[arg(long)]
    role: Option<String>,
    /// The scope [default: the subscription].
    #[arg(long)]
    scope: Option<String>,
    /// The resource group to use as scope.
    #[arg(long, short = 'g', conflicts_with = "scope")]
    resource_group: Option<String>,
    /// List assignments at every scope of the subscription, not only at the subscription.
    #[arg(long)]
    all: bool,
    /// Include assignments at scopes above --scope.
    #[arg(long)]
    include_inherited: bool,
    /// Include assignments to groups the assignee belongs to.
    #[arg(long)]
    include_groups: bool,
}

#[derive(Debug, Args)]
pub struct AssignmentDeleteArgs {
    #[command(flatten)]
    assignee: AssigneeArgs,
    /// Only this role (name, GUID or role definition id).
    #[arg(long)]
    role: Option<String>,
    /// The scope [default: the subscription].
    #[arg(long)]
    scope: Option<String>,
    /// The resource group to use as scope.
    #[arg(long, short = 'g', conflicts_with = "scope")]
    resource_group: Option<String>,
    /// Full role assignment ids to delete (instead of the filters).
    #[arg(long, num_args = 1.., conflicts_with_all = ["assignee", "assignee_object_id", "role", "scope", "resource_group"])]
    ids: Vec<String>,
    /// Do not ask before deleting every assignment of the subscription.
    #[arg(long, short = 'y')]
    yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum DefinitionCommand {
    /// List role definitions.
    List {
        /// Only the role with this name (or GUID).
        #[arg(long, short = 'n')]
        name: Option<String>,
        /// Only custom roles.
        #[arg(long)]
        custom_role_only: bool,
        /// The scope [default: the subscription].
        #[arg(long)]
        scope: Option<String>,
    },
    /// Create a custom role from az's JSON format (inline, `@file` or a file path).
    Create {
        /// `{"Name", "Description", "Actions", "NotActions", "DataActions", "NotDataActions",
        /// "AssignableScopes"}`.
        #[arg(long)]
        role_definition: String,
    },
    /// Delete a custom role.
    Delete {
        /// The role's name (or GUID).
        #[arg(long, short = 'n')]
        name: String,
        /// Only custom roles.
        #[arg(long)]
        custom_role_only: bool,
        /// The scope [default: the subscription].
        #[arg(long)]
        scope: Option<String>,
    },
}

/// `az role assignment list --output table` columns.
pub(crate) const ASSIGNMENT_COLUMNS: Columns = &[
    ("Principal", "not_null(principalName, principalId)"),
    ("Role", "not_null(roleDefinitionName, roleDefinitionId)"),
    ("Scope", "scope"),
];

pub(crate) const DEFINITION_COLUMNS: Columns =
    &[("Name", "roleName"), ("Type", "roleType"), ("Description", "description")];

/// A role assignment to create.
pub struct NewAssignment<'a> {
    pub principal_id: &'a str,
    pub principal_type: &'a str,
    /// Role name, GUID or role definition id.
    pub role: &'a str,
    pub scope: &'a str,
    pub description: Option<&'a str>,
    /// The assignment GUID; a new one when `None`.
    pub name: Option<&'a str>,
}

/// A resolved role: its definition id, and its name when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRole {
    pub id: String,
    pub name: Option<String>,
}

/// How to list assignments and which of the listed ones to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPlan {
    /// The scope listed.
    pub scope: String,
    /// The server-side `$filter`.
    pub filter: Option<String>,
    /// Keep only assignments at this scope (or above it, when the flag is set).
    pub keep_scope: Option<(String, bool)>,
    /// Keep only this role (definition GUID).
    pub role_guid: Option<String>,
    /// Keep only this principal (object id); `None` with --include-groups.
    pub principal: Option<String>,
}

/// The inputs of [`list_plan`].
#[derive(Debug, Default)]
pub struct ListOptions<'a> {
    pub scope: Option<&'a str>,
    pub assignee_object_id: Option<&'a str>,
    pub role_guid: Option<&'a str>,
    pub all: bool,
    pub include_inherited: bool,
    pub include_groups: bool,
}

pub async fn run(args: RoleArgs, global: &GlobalArgs) -> Result<Printed> {
    let arm = Arm::connect(global, &args.subscription)?;
    match args.command {
        RoleCommand::Assignment(AssignmentCommand::Create(args)) => {
            let scope =
                scope_of(&arm.subscription, args.scope.as_deref(), args.resource_group.as_deref())?
                    .context("--scope is required (or --resource-group)")?;
            let principal_id = resolve_assignee_args(&arm, &args.assignee)
                .await?
                .context("--assignee or --assignee-object-id is required")?;
            let created = create_assignment(
                &arm,
                &NewAssignment {
                    principal_id: &principal_id,
                    principal_type: &args.assignee_principal_type,
                    role: &args.role,
                    scope: &scope,
                    description: args.description.as_deref(),
                    name: args.name.as_deref(),
                },
            )
            .await?;
            Ok(Printed::with_columns(created, ASSIGNMENT_COLUMNS))
        }
        RoleCommand::Assignment(AssignmentCommand::List(args)) => {
            if args.all && (args.scope.is_some() || args.resource_group.is_some()) {
                bail!(
                    "--all lists every scope of the subscription: drop --scope and --resource-group"
                );
            }
            let scope =
                scope_of(&arm.subscription, args.scope.as_deref(), args.resource_group.as_deref())?;
            let principal = resolve_assignee_args(&arm, &args.assignee).await?;
            let role = match &args.role {
                Some(role) => Some(
                    resolve_role(&arm, role, scope.as_deref().unwrap_or(&subscription_scope(&arm)))
                        .await?,
                ),
                None => None,
            };
            let options = ListOptions {
                scope: scope.as_deref(),
                assignee_object_id: principal.as_deref(),
                role_guid: role.as_ref().map(|role| arm::last_segment(&role.id)),
                all: args.all,
                include_inherited: args.include_inherited,
                include_groups: args.include_groups,
            };
            let plan = list_plan(&arm.subscription, &options);
            let assignments = list_assignments(&arm, &plan).await?;
            let role_names = role_names(&arm).await;
            let principal_names = principal_names(&arm, &assignments).await;
            let printed = assignments
                .iter()
                .map(|assignment| {
                    let mut flat = flatten_assignment(assignment, &role_names);
                    if let Some(name) = flat
                        .get("principalId")
                        .and_then(Value::as_str)
                        .and_then(|id| principal_names.get(id))
                    {
                        flat["principalName"] = Value::String(name.clone());
                    }
                    flat
                })
                .collect();
            Ok(Printed::with_columns(Value::Array(printed), ASSIGNMENT_COLUMNS))
        }
        RoleCommand::Assignment(AssignmentCommand::Delete(args)) => {
            if !args.ids.is_empty() {
                for id in &args.ids {
                    arm.send(&Request::delete(arm::path(id, API_AUTHORIZATION))).await?;
                }
                return Ok(Printed::nothing());
            }
            let scope =
                scope_of(&arm.subscription, args.scope.as_deref(), args.resource_group.as_deref())?;
            let principal = resolve_assignee_args(&arm, &args.assignee).await?;
            if principal.is_none() && args.role.is_none() && scope.is_none() {
                eprintln!("This will delete all role assignments at the subscription scope.");
                arm::confirm(args.yes)?;
            }
            let role = match &args.role {
                Some(role) => Some(
                    resolve_role(&arm, role, scope.as_deref().unwrap_or(&subscription_scope(&arm)))
                        .await?,
                ),
                None => None,
            };
            let options = ListOptions {
                scope: scope.as_deref(),
                assignee_object_id: principal.as_deref(),
                role_guid: role.as_ref().map(|role| arm::last_segment(&role.id)),
                ..ListOptions::default()
            };
            let matched = list_assignments(&arm, &list_plan(&arm.subscription, &options)).await?;
            if matched.is_empty() {
                bail!("no matched assignments were found to delete");
            }
            for assignment in matched {
                let id = assignment
                    .get("id")
                    .and_then(Value::as_str)
                    .context("an assignment without an id")?;
                arm.send(&Request::delete(arm::path(id, API_AUTHORIZATION))).await?;
            }
            Ok(Printed::nothing())
        }
        RoleCommand::Definition(DefinitionCommand::List { name, custom_role_only, scope }) => {
            let scope = scope_of(&arm.subscription, scope.as_deref(), None)?
                .unwrap_or_else(|| subscription_scope(&arm));
            let found = find_definitions(&arm, &scope, name.as_deref(), custom_role_only).await?;
            Ok(Printed::with_columns(
                Value::Array(found.iter().map(flatten_definition).collect()),
                DEFINITION_COLUMNS,
            ))
        }
        RoleCommand::Definition(DefinitionCommand::Create { role_definition }) => {
            let input = read_json_argument(&role_definition)?;
            let request = definition_request(&input, &uuid::Uuid::new_v4().to_string())?;
            Ok(Printed::with_columns(
                flatten_definition(&arm.send(&request).await?),
                DEFINITION_COLUMNS,
            ))
        }
        RoleCommand::Definition(DefinitionCommand::Delete { name, custom_role_only, scope }) => {
            let scope = scope_of(&arm.subscription, scope.as_deref(), None)?
                .unwrap_or_else(|| subscription_scope(&arm));
            let found = find_definitions(&arm, &scope, Some(&name), custom_role_only).await?;
            if found.is_empty() {
                bail!("role '{name}' doesn't exist");
            }
            for definition in found {
                let guid = definition
                    .get("name")
                    .and_then(Value::as_str)
                    .context("a role definition without a name")?;
                arm.send(&Request::delete(arm::path(
                    &under(&scope, &format!("{DEFINITIONS}/{guid}")),
                    API_AUTHORIZATION,
                )))
                .await?;
            }
            Ok(Printed::nothing())
        }
    }
}

/// Creates a role assignment and returns it as az prints it.
pub async fn create_assignment(arm: &Arm, new: &NewAssignment<'_>) -> Result<Value> {
    let scope = check_scope(new.scope)?;
    let role = resolve_role(arm, new.role, &scope).await?;
    let role_name = match &role.name {
        Some(name) => Some(name.clone()),
        None => arm.get(arm::path(&role.id, API_AUTHORIZATION)).await.ok().and_then(|definition| {
            definition["properties"]["roleName"].as_str().map(str::to_owned)
        }),
    };
    let guid = match new.name {
        Some(name) if arm::is_guid(name) => name.to_owned(),
        Some(name) => bail!("the assignment name must be a GUID (got '{name}')"),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let request = assignment_request(
        &scope,
        &guid,
        &role.id,
        new.principal_id,
        new.principal_type,
        new.description,
    );
    let created = arm.send(&request).await?;
    let names: HashMap<String, String> = role_name
        .map(|name| (arm::last_segment(&role.id).to_ascii_lowercase(), name))
        .into_iter()
        .collect();
    Ok(flatten_assignment(&created, &names))
}

/// The object id of an assignee: a GUID or name looked up in the directory (an unknown GUID is
/// taken as an object id), or the principal of a managed identity given by resource id.
pub async fn resolve_assignee(arm: &Arm, assignee: &str) -> Result<String> {
    if assignee.starts_with('/') {
        let resource = arm
            .get(arm::path(assignee, arm::api_version_for(assignee)))
            .await
            .with_context(|| format!("look up the assignee {assignee}"))?;
        let is_identity =
            resource["type"].as_str().is_some_and(|kind| kind.eq_ignore_ascii_case(IDENTITY_TYPE));
        let principal = if is_identity {
            &resource["properties"]["principalId"]
        } else {
            &resource["identity"]["principalId"]
        };
        return principal
            .as_str()
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .with_context(|| format!("{assignee} has no managed identity with a principal id"));
    }
    match arm.client.get_service_principal(assignee).await {
        Ok(principal) => {
            return principal["id"]
                .as_str()
                .map(str::to_owned)
                .context("the directory's answer has no id");
        }
        // The directory may not list every principal; the server checks the id on assignment.
        Err(client::ClientError::Api { .. }) if arm::is_guid(assignee) => {
            return Ok(assignee.to_owned());
        }
        Err(client::ClientError::Api { status: 404, .. }) => {}
        Err(error) => return Err(error.into()),
    }
    let found = arm.client.list_service_principals(Some(assignee)).await?;
    match found.as_slice() {
        [one] => one["id"].as_str().map(str::to_owned).context("the directory's answer has no id"),
        [] => bail!("cannot find a service principal for '{assignee}': pass its object id"),
        _ => bail!("more than one service principal is named '{assignee}': pass its object id"),
    }
}

/// The definition id of a role given by name (looked up at `scope`), GUID or definition id.
pub async fn resolve_role(arm: &Arm, role: &str, scope: &str) -> Result<ResolvedRole> {
    if role.starts_with('/') && role.to_ascii_lowercase().contains("/roledefinitions/") {
        return Ok(ResolvedRole { id: role.to_owned(), name: None });
    }
    if arm::is_guid(role) {
        return Ok(ResolvedRole { id: definition_id(&arm.subscription, role), name: None });
    }
    let filter = format!("roleName eq '{}'", role.replace('\'', "''"));
    let path = arm::path_with_filter(&under(scope, DEFINITIONS), API_AUTHORIZATION, Some(&filter));
    let found = arm.list(path, usize::MAX).await?;
    match found.as_slice() {
        [one] => Ok(ResolvedRole {
            id: one["id"].as_str().context("a role definition without an id")?.to_owned(),
            name: Some(role.to_owned()),
        }),
        [] => {
            let all = arm
                .list(arm::path(&under(scope, DEFINITIONS), API_AUTHORIZATION), usize::MAX)
                .await
                .unwrap_or_default();
            let names: Vec<&str> = all
                .iter()
                .filter_map(|definition| definition["properties"]["roleName"].as_str())
                .collect();
            match closest_name(role, &names) {
                Some(near) => bail!("role '{role}' doesn't exist; did you mean '{near}'?"),
                None => bail!("role '{role}' doesn't exist"),
            }
        }
        _ => bail!("more than one role is named '{role}': pass its id"),
    }
}

/// The candidate nearest to a misspelled `name` (case-insensitive edit distance), if one is
/// near enough to be what was meant.
fn closest_name<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let wanted = name.to_lowercase();
    let distance_max = (wanted.chars().count() / 4).max(2);
    candidates
        .iter()
        .map(|candidate| (edit_distance(&wanted, &candidate.to_lowercase()), *candidate))
        .filter(|(distance, _)| *distance <= distance_max)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, char_a) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, char_b) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(char_a != *char_b);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

async fn resolve_assignee_args(arm: &Arm, args: &AssigneeArgs) -> Result<Option<String>> {
    match (&args.assignee_object_id, &args.assignee) {
        (Some(object_id), _) => Ok(Some(object_id.clone())),
        (None, Some(assignee)) => Ok(Some(resolve_assignee(arm, assignee).await?)),
        (None, None) => Ok(None),
    }
}

async fn list_assignments(arm: &Arm, plan: &ListPlan) -> Result<Vec<Value>> {
    let path = arm::path_with_filter(
        &under(&plan.scope, ASSIGNMENTS),
        API_AUTHORIZATION,
        plan.filter.as_deref(),
    );
    let listed = arm.list(path, usize::MAX).await?;
    Ok(listed.into_iter().filter(|assignment| keep_assignment(plan, assignment)).collect())
}

/// Role GUID (lower case) -> role name, for the subscription's roles; empty if unreadable.
async fn role_names(arm: &Arm) -> HashMap<String, String> {
    let path = arm::path(&under(&subscription_scope(arm), DEFINITIONS), API_AUTHORIZATION);
    let definitions = arm.list(path, usize::MAX).await.unwrap_or_default();
    definitions
        .iter()
        .filter_map(|definition| {
            let guid = definition["name"].as_str()?.to_ascii_lowercase();
            Some((guid, definition["properties"]["roleName"].as_str()?.to_owned()))
        })
        .collect()
}

/// Object id -> the name az shows for a principal (its first service principal name).
async fn principal_names(arm: &Arm, assignments: &[Value]) -> HashMap<String, String> {
    let mut names = HashMap::new();
    let mut ids: Vec<&str> =
        assignments.iter().filter_map(|a| a["properties"]["principalId"].as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids.into_iter().take(PRINCIPAL_NAME_LOOKUPS_MAX) {
        if let Ok(principal) = arm.client.get_service_principal(id).await {
            let name = principal["servicePrincipalNames"][0]
                .as_str()
                .or(principal["appId"].as_str())
                .or(principal["displayName"].as_str());
            if let Some(name) = name {
                names.insert(id.to_owned(), name.to_owned());
            }
        }
    }
    names
}

async fn find_definitions(
    arm: &Arm,
    scope: &str,
    name: Option<&str>,
    custom_only: bool,
) -> Result<Vec<Value>> {
    let collection = under(scope, DEFINITIONS);
    let found = match name {
        Some(guid) if arm::is_guid(guid) => arm
            .get_optional(arm::path(&format!("{collection}/{guid}"), API_AUTHORIZATION))
            .await?
            .into_iter()
            .collect(),
        Some(name) => {
            let filter = format!("roleName eq '{}'", name.replace('\'', "''"));
            arm.list(
                arm::path_with_filter(&collection, API_AUTHORIZATION, Some(&filter)),
                usize::MAX,
            )
            .await?
        }
        None => {
            let filter = custom_only.then_some("type eq 'CustomRole'");
            arm.list(arm::path_with_filter(&collection, API_AUTHORIZATION, filter), usize::MAX)
                .await?
        }
    };
    Ok(found
        .into_iter()
        .filter(|definition| !custom_only || definition["properties"]["type"] == "CustomRole")
        .collect())
}

fn subscription_scope(arm: &Arm) -> String {
    format!("/subscriptions/{}", arm.subscription)
}

/// `{scope}/{suffix}`, with the root scope `/` giving `/{suffix}`.
fn under(scope: &str, suffix: &str) -> String {
    format!("{}/{suffix}", scope.trim_end_matches('/'))
}

fn check_scope(scope: &str) -> Result<String> {
    if !scope.starts_with('/') {
        bail!("--scope must be a resource id starting with '/' (got '{scope}')");
    }
    let trimmed = scope.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/".to_owned() } else { trimmed.to_owned() })
}

/// `--scope`, or the scope of `--resource-group`, or `None`.
fn scope_of(
    subscription: &str,
    scope: Option<&str>,
    group: Option<&str>,
) -> Result<Option<String>> {
    match (scope, group) {
        (Some(scope), _) => check_scope(scope).map(Some),
        (None, Some(group)) => Ok(Some(arm::group_id(subscription, group))),
        (None, None) => Ok(None),
    }
}

fn definition_id(subscription: &str, guid: &str) -> String {
    format!("/subscriptions/{subscription}/{DEFINITIONS}/{guid}")
}

fn assignment_request(
    scope: &str,
    guid: &str,
    role_definition_id: &str,
    principal_id: &str,
    principal_type: &str,
    description: Option<&str>,
) -> Request {
    let mut properties = json!({
        "roleDefinitionId": role_definition_id,
        "principalId": principal_id,
        "principalType": principal_type,
    });
    if let Some(description) = description {
        properties["description"] = Value::String(description.to_owned());
    }
    let path = arm::path(&under(scope, &format!("{ASSIGNMENTS}/{guid}")), API_AUTHORIZATION);
    Request::put(path, json!({"properties": properties}))
}

/// Where to list and how to filter, following az's `role assignment list`: without --all only
/// assignments at the scope (default the subscription) are shown, or at and above it with
/// --include-inherited.
pub fn list_plan(subscription: &str, options: &ListOptions<'_>) -> ListPlan {
    let assignee_filter = options.assignee_object_id.map(|id| {
        if options.include_groups {
            format!("assignedTo('{id}')")
        } else {
            format!("principalId eq '{id}'")
        }
    });
    let principal =
        options.assignee_object_id.filter(|_| !options.include_groups).map(str::to_owned);
    let role_guid = options.role_guid.map(str::to_owned);
    if options.all {
        return ListPlan {
            scope: format!("/subscriptions/{subscription}"),
            filter: assignee_filter,
            keep_scope: None,
            role_guid,
            principal,
        };
    }
    let scope =
        options.scope.map_or_else(|| format!("/subscriptions/{subscription}"), str::to_owned);
    let filter = match assignee_filter {
        Some(filter) => Some(filter),
        None if options.include_inherited => None,
        None => Some("atScope()".to_owned()),
    };
    ListPlan {
        keep_scope: Some((scope.clone(), options.include_inherited)),
        scope,
        filter,
        role_guid,
        principal,
    }
}

/// Whether a listed assignment passes the plan's client-side filters.
pub fn keep_assignment(plan: &ListPlan, assignment: &Value) -> bool {
    let properties = &assignment["properties"];
    let text = |field: &str| properties[field].as_str().unwrap_or_default();
    if let Some((scope, inherited)) = &plan.keep_scope {
        let at = text("scope");
        let at_or_above = *inherited
            && (at == "/"
                || scope
                    .to_ascii_lowercase()
                    .starts_with(&format!("{}/", at.to_ascii_lowercase())));
        if !arm::same_id(at, scope) && !at_or_above {
            return false;
        }
    }
    if let Some(role) = &plan.role_guid
        && !arm::last_segment(text("roleDefinitionId")).eq_ignore_ascii_case(role)
    {
        return false;
    }
    if let Some(principal) = &plan.principal
        && !text("principalId").eq_ignore_ascii_case(principal)
    {
        return false;
    }
    true
}

/// An assignment as az prints it: properties at the top level, plus `roleDefinitionName`.
pub fn flatten_assignment(assignment: &Value, role_names: &HashMap<String, String>) -> Value {
    let mut flat = arm::flatten_properties(assignment, &[]);
    let guid =
        flat["roleDefinitionId"].as_str().map(|id| arm::last_segment(id).to_ascii_lowercase());
    if let Some(name) = guid.and_then(|guid| role_names.get(&guid))
        && let Value::Object(map) = &mut flat
    {
        map.insert("roleDefinitionName".to_owned(), Value::String(name.clone()));
    }
    flat
}

/// A role definition as az prints it: properties at the top level, `type` as `roleType`.
pub fn flatten_definition(definition: &Value) -> Value {
    arm::flatten_properties(definition, &[("type", "roleType")])
}

/// Reads a JSON argument given inline, as `@file`, or as a file path (az accepts all three).
fn read_json_argument(argument: &str) -> Result<Value> {
    let text = match argument.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("read {path}"))?,
        None if std::path::Path::new(argument).is_file() => {
            std::fs::read_to_string(argument).with_context(|| format!("read {argument}"))?
        }
        None => argument.to_owned(),
    };
    serde_json::from_str(&text).context("--role-definition is not valid JSON")
}

/// Converts az's custom-role JSON into the PUT of a role definition with GUID `guid` at its
/// first assignable scope.
pub fn definition_request(input: &Value, guid: &str) -> Result<Request> {
    let Value::Object(raw) = input else { bail!("--role-definition must be a JSON object") };
    // az accepts `Name` and `name` alike: it lower-cases the first letter of every key.
    let fields: Map<String, Value> = raw
        .iter()
        .map(|(key, value)| {
            let mut chars = key.chars();
            let key = chars
                .next()
                .map(|first| first.to_ascii_lowercase().to_string() + chars.as_str())
                .unwrap_or_default();
            (key, value.clone())
        })
        .collect();
    let name = fields
        .get("name")
        .or(fields.get("roleName"))
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .context("the role definition needs a Name")?;
    let scopes = strings(&fields, "assignableScopes")?;
    let Some(scope) = scopes.first() else { bail!("the role definition needs AssignableScopes") };
    let scope = check_scope(scope).context("AssignableScopes")?;
    let body = json!({"properties": {
        "roleName": name,
        "description": fields.get("description").and_then(Value::as_str).unwrap_or_default(),
        "type": "CustomRole",
        "permissions": [{
            "actions": strings(&fields, "actions")?,
            "notActions": strings(&fields, "notActions")?,
            "dataActions": strings(&fields, "dataActions")?,
            "notDataActions": strings(&fields, "notDataActions")?,
        }],
        "assignableScopes": scopes,
    }});
    Ok(Request::put(
        arm::path(&under(&scope, &format!("{DEFINITIONS}/{guid}")), API_AUTHORIZATION),
        body,
    ))
}

/// A list of strings (absent means empty).
fn strings(fields: &Map<String, Value>, key: &str) -> Result<Vec<String>> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .with_context(|| format!("{key} must be a list of strings"))
            })
            .collect(),
        Some(_) => bail!("{key} must be a list of strings"),
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    #[track_caller]
    fn check_plan(options: ListOptions<'_>, expect: Expect) {
        let plan = list_plan("s1", &options);
        let path = arm::path_with_filter(
            &under(&plan.scope, ASSIGNMENTS),
            API_AUTHORIZATION,
            plan.filter.as_deref(),
        );
        expect.assert_eq(&format!("{path}\nkeep scope: {:?}", plan.keep_scope));
    }

    #[test]
    fn list_defaults_to_the_subscription_scope_only() {
        check_plan(
            ListOptions::default(),
            expect![[r#"
                /subscriptions/s1/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope%28%29
                keep scope: Some(("/subscriptions/s1", false))"#]],
        );
    }

    #[test]
    fn list_at_a_scope_with_inherited() {
        check_plan(
            ListOptions {
                scope: Some("/subscriptions/s1/resourceGroups/rg1"),
                include_inherited: true,
                ..ListOptions::default()
            },
            expect![[r#"
                /subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01
                keep scope: Some(("/subscriptions/s1/resourceGroups/rg1", true))"#]],
        );
    }

    #[test]
    fn list_by_assignee() {
        check_plan(
            ListOptions {
                assignee_object_id: Some("p1"),
                scope: Some("/subscriptions/s1/resourceGroups/rg1"),
                ..ListOptions::default()
            },
            expect![[r#"
                /subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=principalId%20eq%20%27p1%27
                keep scope: Some(("/subscriptions/s1/resourceGroups/rg1", false))"#]],
        );
        check_plan(
            ListOptions {
                assignee_object_id: Some("p1"),
                all: true,
                include_groups: true,
                ..ListOptions::default()
            },
            expect![[r#"
                /subscriptions/s1/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=assignedTo%28%27p1%27%29
                keep scope: None"#]],
        );
    }

    #[test]
    fn list_all_has_no_filter() {
        check_plan(
            ListOptions { all: true, ..ListOptions::default() },
            expect![[r#"
                /subscriptions/s1/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01
                keep scope: None"#]],
        );
    }

    #[test]
    fn client_side_filters() {
        let assignment = |scope: &str, role: &str, principal: &str| json!({"properties": {"scope": scope, "roleDefinitionId": format!("/subscriptions/s1/{DEFINITIONS}/{role}"), "principalId": principal}});
        let rg = "/subscriptions/s1/resourceGroups/rg1";
        let inherited = list_plan(
            "s1",
            &ListOptions {
                scope: Some(rg),
                include_inherited: true,
                role_guid: Some("r1"),
                ..ListOptions::default()
            },
        );
        assert!(keep_assignment(&inherited, &assignment("/subscriptions/S1", "R1", "p")));
        assert!(keep_assignment(&inherited, &assignment("/", "r1", "p")));
        assert!(keep_assignment(&inherited, &assignment(rg, "r1", "p")));
        assert!(!keep_assignment(
            &inherited,
            &assignment("/subscriptions/s1/resourceGroups/rg10", "r1", "p")
        ));
        assert!(!keep_assignment(
            &inherited,
            &assignment(&format!("{rg}/providers/x/y/z"), "r1", "p")
        ));
        assert!(!keep_assignment(&inherited, &assignment(rg, "r2", "p")));
        let exact = list_plan(
            "s1",
            &ListOptions {
                scope: Some(rg),
                assignee_object_id: Some("p1"),
                ..ListOptions::default()
            },
        );
        assert!(keep_assignment(&exact, &assignment(rg, "r", "P1")));
        assert!(!keep_assignment(&exact, &assignment("/subscriptions/s1", "r", "p1")));
        assert!(!keep_assignment(&exact, &assignment(rg, "r", "p2")));
    }

    #[test]
    fn assignment_body_and_flattened_output() {
        let request = assignment_request(
            "/subscriptions/s1/resourceGroups/rg1",
            "a1",
            "/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7",
            "p1",
            "ServicePrincipal",
            None,
        );
        expect![[r#"
            Request {
                method: Put,
                path: "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Authorization/roleAssignments/a1?api-version=2022-04-01",
                body: Some(
                    Object {
                        "properties": Object {
                            "roleDefinitionId": String("/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"),
                            "principalId": String("p1"),
                            "principalType": String("ServicePrincipal"),
                        },
                    },
                ),
            }
        "#]]
        .assert_debug_eq(&request);
        let returned = json!({
            "id": "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Authorization/roleAssignments/a1",
            "name": "a1",
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": request.body.unwrap()["properties"].clone(),
        });
        let names = HashMap::from([(
            "acdd72a7-3385-48ef-bd42-f606fba81ae7".to_owned(),
            "Reader".to_owned(),
        )]);
        expect![[r#"
            {
              "id": "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Authorization/roleAssignments/a1",
              "name": "a1",
              "type": "Microsoft.Authorization/roleAssignments",
              "roleDefinitionId": "/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7",
              "principalId": "p1",
              "principalType": "ServicePrincipal",
              "resourceGroup": "rg1",
              "roleDefinitionName": "Reader"
            }"#]]
        .assert_eq(&serde_json::to_string_pretty(&flatten_assignment(&returned, &names)).unwrap());
    }

    #[test]
    fn role_definition_from_az_json() {
        let input = json!({
            "Name": "Identity Reader",
            "IsCustom": true,
            "Description": "Reads identities",
            "Actions": ["Microsoft.ManagedIdentity/userAssignedIdentities/read"],
            "NotActions": [],
            "DataActions": [],
            "AssignableScopes": ["/subscriptions/s1/"]
        });
        expect![[r#"
            Request {
                method: Put,
                path: "/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/g1?api-version=2022-04-01",
                body: Some(
                    Object {
                        "properties": Object {
                            "roleName": String("Identity Reader"),
                            "description": String("Reads identities"),
                            "type": String("CustomRole"),
                            "permissions": Array [
                                Object {
                                    "actions": Array [
                                        String("Microsoft.ManagedIdentity/userAssignedIdentities/read"),
                                    ],
                                    "notActions": Array [],
                                    "dataActions": Array [],
                                    "notDataActions": Array [],
                                },
                            ],
                            "assignableScopes": Array [
                                String("/subscriptions/s1/"),
                            ],
                        },
                    },
                ),
            }
        "#]]
        .assert_debug_eq(&definition_request(&input, "g1").unwrap());
        let error = |input: Value| definition_request(&input, "g1").unwrap_err().to_string();
        assert_eq!(error(json!({"AssignableScopes": ["/"]})), "the role definition needs a Name");
        assert_eq!(error(json!({"Name": "x"})), "the role definition needs AssignableScopes");
        assert_eq!(
            error(json!({"Name": "x", "AssignableScopes": ["/"], "Actions": "*"})),
            "actions must be a list of strings"
        );
    }

    #[test]
    fn definitions_flatten_with_role_type() {
        let returned = json!({
            "id": "/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/g1", "name": "g1",
            "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {"roleName": "Reader", "type": "BuiltInRole", "assignableScopes": ["/"]}
        });
        expect![[r#"{"id":"/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/g1","name":"g1","type":"Microsoft.Authorization/roleDefinitions","roleName":"Reader","roleType":"BuiltInRole","assignableScopes":["/"]}"#]]
            .assert_eq(&serde_json::to_string(&flatten_definition(&returned)).unwrap());
    }

    #[test]
    fn misspelled_roles_get_a_suggestion() {
        let names = ["Reader", "Key Vault Secrets User", "Key Vault Secrets Officer", "Owner"];
        assert_eq!(closest_name("Key Vault Secret User", &names), Some("Key Vault Secrets User"));
        assert_eq!(
            closest_name("key vault secrets officr", &names),
            Some("Key Vault Secrets Officer")
        );
        assert_eq!(closest_name("Reeder", &names), Some("Reader"));
        assert_eq!(closest_name("Storage Blob Data Reader", &names), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
