//! `ambient vm|webapp|functionapp ...`: compute resources that carry managed identities, as
//! `az vm`, `az webapp` and `az functionapp` manage them.
//!
//! One implementation serves all three; a [`Kind`] row says which resource type, site kind and
//! api-version a command group uses and how az prints `identity assign`. The identity-block
//! arithmetic of `--assign-identity` and `identity assign|remove` lives in pure functions
//! ([`parse_identities`], [`assign_block`], [`remove_block`]).
//!
//! Ambient's own settings (`properties.ambient`): `create` and `update` take the workload
//! selectors as `--workload-user`, `--workload-group`, ... (docs/flavours.md, "Workload
//! attestation"); `update` also takes az's generic `--set PATH=VALUE` and `--remove PATH`,
//! applied to the resource's `properties` and `tags` ([`apply_generic_update`]).

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::GlobalArgs;
use crate::arm::{self, API_COMPUTE, API_WEB, Arm, Request, SubscriptionArgs, TargetArgs};
use crate::identity_cmd::{IDENTITY_TYPE, one_or_many};
use crate::output::{Columns, Printed};
use crate::role;

/// How az spells the system-assigned identity in `--assign-identity` and `--identities`.
pub const SYSTEM_IDENTITY: &str = "[system]";

/// One compute command group.
#[derive(Debug)]
pub struct Kind {
    /// The command group (`vm`).
    pub command: &'static str,
    /// What messages call it (`VM`).
    pub noun: &'static str,
    pub resource_type: &'static str,
    /// `kind` of a Microsoft.Web site.
    pub site_kind: Option<&'static str>,
    pub api_version: &'static str,
    /// az asks before deleting (only `vm delete`).
    pub confirm_delete: bool,
    /// How `identity assign` prints its result.
    pub assign_output: AssignOutput,
}

/// What `identity assign` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOutput {
    /// az vm: `{"systemAssignedIdentity", "userAssignedIdentities": {id: {clientId, principalId}}}`.
    Summary,
    /// az webapp/functionapp: the resource's `identity` block as returned.
    IdentityBlock,
}

pub const VM: Kind = Kind {
    command: "vm",
    noun: "VM",
    resource_type: "Microsoft.Compute/virtualMachines",
    site_kind: None,
    api_version: API_COMPUTE,
    confirm_delete: true,
    assign_output: AssignOutput::Summary,
};

pub const WEBAPP: Kind = Kind {
    command: "webapp",
    noun: "web app",
    resource_type: "Microsoft.Web/sites",
    site_kind: Some("app"),
    api_version: API_WEB,
    confirm_delete: false,
    assign_output: AssignOutput::IdentityBlock,
};

pub const FUNCTIONAPP: Kind = Kind {
    command: "functionapp",
    noun: "function app",
    resource_type: "Microsoft.Web/sites",
    site_kind: Some("functionapp"),
    api_version: API_WEB,
    confirm_delete: false,
    assign_output: AssignOutput::IdentityBlock,
};

#[derive(Debug, Args)]
pub struct ComputeArgs {
    #[command(subcommand)]
    command: ComputeCommand,
    #[command(flatten)]
    subscription: SubscriptionArgs,
}

#[derive(Debug, Subcommand)]
pub enum ComputeCommand {
    /// Create (or update) one, optionally with managed identities.
    Create(CreateArgs),
    /// Show resources.
    Show(TargetArgs),
    /// Update resources: workload selectors, or any property with --set and --remove.
    Update(UpdateArgs),
    /// List those of a resource group, or of the subscription.
    List {
        /// Only this resource group.
        #[arg(long, short = 'g')]
        resource_group: Option<String>,
    },
    /// Delete resources (their system-assigned identities go with them).
    Delete {
        #[command(flatten)]
        target: TargetArgs,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Managed identities of a resource.
    #[command(subcommand)]
    Identity(IdentityCommand),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The resource group.
    #[arg(long, short = 'g')]
    resource_group: String,
    /// The name.
    #[arg(long, short = 'n')]
    name: String,
    /// The location.
    #[arg(long, short = 'l', default_value = "local")]
    location: String,
    /// Enable managed identities: `[system]` (the default with no value) and/or user-assigned
    /// identity names or ids.
    #[arg(long, num_args = 0.., value_name = "ID")]
    assign_identity: Option<Vec<String>>,
    /// A role to give the system-assigned identity at --scope.
    #[arg(long)]
    role: Option<String>,
    /// The scope of --role.
    #[arg(long)]
    scope: Option<String>,
    /// The host whose agent serves this resource's identities.
    #[arg(long, default_value = "local")]
    host: String,
    /// The image (VMs only; recorded, not run).
    #[arg(long)]
    image: Option<String>,
    /// Tags: KEY=VALUE ...
    #[arg(long, num_args = 0..)]
    tags: Option<Vec<String>>,
    #[command(flatten)]
    workload: WorkloadArgs,
}

/// Which local processes may use the resource's identities
/// (`properties.ambient.workloadSelectors`); every one given must match. Without any, every
/// local process of the host may.
#[derive(Debug, Args, Default, Clone)]
pub struct WorkloadArgs {
    /// Only processes of this Unix user (a name or a uid).
    #[arg(long, value_name = "USER")]
    workload_user: Option<String>,
    /// Only processes in this Unix group (a name or a gid; effective or supplementary).
    #[arg(long, value_name = "GROUP")]
    workload_group: Option<String>,
    /// Only processes running this executable (an absolute path).
    #[arg(long, value_name = "PATH")]
    workload_executable: Option<String>,
    /// Only processes whose executable has this SHA-256 (hex).
    #[arg(long, value_name = "HEX")]
    workload_executable_sha256: Option<String>,
    /// Only processes of this systemd unit (web.service).
    #[arg(long, value_name = "UNIT")]
    workload_systemd_unit: Option<String>,
    /// Only processes in this cgroup or below it (/system.slice/web.service).
    #[arg(long, value_name = "PATH")]
    workload_cgroup: Option<String>,
    /// Only processes in this container (its id, or a prefix of 12 characters or more).
    #[arg(long, value_name = "ID")]
    workload_container_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Remove every workload selector (any local process may use the identities again).
    #[arg(long, conflicts_with_all = WORKLOAD_FLAGS)]
    clear_workload_selectors: bool,
    /// Set a property: PATH=VALUE under `properties` or `tags`, as az does (for example
    /// `properties.ambient.workloadSelectors.user=alice`); VALUE is JSON or else a string.
    #[arg(long, value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// Remove a property: PATH under `properties` or `tags`.
    #[arg(long, value_name = "PATH")]
    remove: Vec<String>,
}

/// The `--workload-*` options, which `--clear-workload-selectors` excludes.
const WORKLOAD_FLAGS: [&str; 7] = [
    "workload_user",
    "workload_group",
    "workload_executable",
    "workload_executable_sha256",
    "workload_systemd_unit",
    "workload_cgroup",
    "workload_container_id",
];

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Enable managed identities, keeping those already assigned.
    Assign(AssignArgs),
    /// Disable managed identities.
    Remove(RemoveArgs),
    /// Show the `identity` block.
    Show(TargetArgs),
}

#[derive(Debug, Args)]
pub struct AssignArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// `[system]` and/or user-assigned identity names or ids.
    #[arg(long, num_args = 1.., default_value = SYSTEM_IDENTITY, value_name = "ID")]
    identities: Vec<String>,
    /// A role to give the system-assigned identity at --scope.
    #[arg(long)]
    role: Option<String>,
    /// The scope of --role.
    #[arg(long)]
    scope: Option<String>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// `[system]` and/or user-assigned identity names or ids.
    #[arg(long, num_args = 1.., default_value = SYSTEM_IDENTITY, value_name = "ID")]
    identities: Vec<String>,
}

/// Which identities a command names: the system-assigned one and user-assigned ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentitySpec {
    pub system: bool,
    /// Full resource ids, without duplicates.
    pub user: Vec<String>,
}

/// `az vm list --output table` columns (webapps show the same useful three).
pub(crate) const COMPUTE_COLUMNS: Columns =
    &[("Name", "name"), ("ResourceGroup", "resourceGroup"), ("Location", "location")];

pub async fn run(kind: &Kind, args: ComputeArgs, global: &GlobalArgs) -> Result<Printed> {
    let arm = Arm::connect(global, &args.subscription)?;
    let subscription = arm.subscription.clone();
    Ok(match args.command {
        ComputeCommand::Create(args) => {
            let identities = args
                .assign_identity
                .as_ref()
                .map(|values| parse_identities(values, &subscription, &args.resource_group));
            let role_plan =
                role_plan(args.role.as_deref(), args.scope.as_deref(), identities.as_ref())?;
            let request = create_request(kind, &subscription, &args, identities.as_ref())?;
            let mut created = arm.send(&request).await?;
            if let Some((role, scope)) = role_plan {
                assign_role(kind, &arm, &created, &role, &scope).await?;
            }
            arm::add_resource_group(&mut created);
            Printed::plain(created)
        }
        ComputeCommand::Show(target) => {
            let mut shown = Vec::new();
            for id in target.resource_ids(&subscription, kind.resource_type)? {
                shown.push(arm.get(arm::path(&id, kind.api_version)).await?);
            }
            let mut shown = one_or_many(shown);
            arm::add_resource_group(&mut shown);
            Printed::with_columns(shown, COMPUTE_COLUMNS)
        }
        ComputeCommand::Update(args) => {
            let mut updates = args.workload.as_updates();
            if args.clear_workload_selectors {
                updates.push(Update::Remove("properties.ambient.workloadSelectors".to_owned()));
            }
            for set in &args.set {
                updates.push(Update::parse_set(set)?);
            }
            updates.extend(args.remove.iter().cloned().map(Update::Remove));
            if updates.is_empty() {
                bail!("nothing to update: pass --workload-..., --set or --remove");
            }
            let mut printed = Vec::new();
            for id in args.target.resource_ids(&subscription, kind.resource_type)? {
                let path = arm::path(&id, kind.api_version);
                let current = arm.get(path.clone()).await?;
                let body = apply_generic_update(&current, &updates)?;
                let mut updated = arm.send(&Request::patch(path, body)).await?;
                arm::add_resource_group(&mut updated);
                printed.push(updated);
            }
            Printed::plain(one_or_many(printed))
        }
        ComputeCommand::List { resource_group } => {
            let scope = match &resource_group {
                Some(group) => arm::group_id(&subscription, group),
                None => format!("/subscriptions/{subscription}"),
            };
            let path =
                arm::path(&format!("{scope}/providers/{}", kind.resource_type), kind.api_version);
            let items = arm.list(path, usize::MAX).await?;
            let mut items =
                Value::Array(items.into_iter().filter(|item| is_of_kind(kind, item)).collect());
            arm::add_resource_group(&mut items);
            Printed::with_columns(items, COMPUTE_COLUMNS)
        }
        ComputeCommand::Delete { target, yes } => {
            if kind.confirm_delete {
                arm::confirm(yes)?;
            }
            for id in target.resource_ids(&subscription, kind.resource_type)? {
                arm.send(&Request::delete(arm::path(&id, kind.api_version))).await?;
            }
            Printed::nothing()
        }
        ComputeCommand::Identity(IdentityCommand::Show(target)) => {
            let mut shown = Vec::new();
            for id in target.resource_ids(&subscription, kind.resource_type)? {
                shown.push(arm.get(arm::path(&id, kind.api_version)).await?["identity"].take());
            }
            Printed::plain(one_or_many(shown))
        }
        ComputeCommand::Identity(IdentityCommand::Assign(args)) => {
            let mut printed = Vec::new();
            for id in args.target.resource_ids(&subscription, kind.resource_type)? {
                let group = arm::resource_group_of(&id).unwrap_or_default().to_owned();
                let spec = parse_identities(&args.identities, &subscription, &group);
                let role_plan =
                    role_plan(args.role.as_deref(), args.scope.as_deref(), Some(&spec))?;
                let path = arm::path(&id, kind.api_version);
                let current = arm.get(path.clone()).await?;
                let block = assign_block(&current["identity"], &spec);
                let updated = arm.send(&Request::patch(path, json!({"identity": block}))).await?;
                if let Some((role, scope)) = &role_plan {
                    assign_role(kind, &arm, &updated, role, scope).await?;
                }
                printed.push(match kind.assign_output {
                    AssignOutput::Summary => {
                        identity_summary(&updated["identity"], role_plan.as_ref())
                    }
                    AssignOutput::IdentityBlock => updated["identity"].clone(),
                });
            }
            Printed::plain(one_or_many(printed))
        }
        ComputeCommand::Identity(IdentityCommand::Remove(args)) => {
            let mut printed = Vec::new();
            for id in args.target.resource_ids(&subscription, kind.resource_type)? {
                let group = arm::resource_group_of(&id).unwrap_or_default().to_owned();
                let spec = parse_identities(&args.identities, &subscription, &group);
                let path = arm::path(&id, kind.api_version);
                let current = arm.get(path.clone()).await?;
                let name = current["name"].as_str().unwrap_or(arm::last_segment(&id)).to_owned();
                let block = remove_block(&current["identity"], &spec, &name)?;
                let mut updated =
                    arm.send(&Request::patch(path, json!({"identity": block}))).await?;
                printed.push(updated["identity"].take());
            }
            Printed::plain(one_or_many(printed))
        }
    })
}

/// Reads `--assign-identity` / `--identities`: no value or `[system]` is the system-assigned
/// identity; anything else a user-assigned identity id, or a name in `group`.
pub fn parse_identities(values: &[String], subscription: &str, group: &str) -> IdentitySpec {
    let mut spec = IdentitySpec { system: values.is_empty(), user: Vec::new() };
    for value in values {
        if value.eq_ignore_ascii_case(SYSTEM_IDENTITY) {
            spec.system = true;
            continue;
        }
        let id = if value.starts_with('/') {
            value.clone()
        } else {
            arm::resource_id(subscription, group, IDENTITY_TYPE, value)
        };
        if !spec.user.iter().any(|known| arm::same_id(known, &id)) {
            spec.user.push(id);
        }
    }
    spec
}

/// The `type` of an identity block.
pub fn identity_type(system: bool, user: bool) -> &'static str {
    match (system, user) {
        (true, true) => "SystemAssigned, UserAssigned",
        (true, false) => "SystemAssigned",
        (false, true) => "UserAssigned",
        (false, false) => "None",
    }
}

/// The identities a returned `identity` block holds.
pub fn current_identities(block: &Value) -> IdentitySpec {
    let kind = block["type"].as_str().unwrap_or("None").to_ascii_lowercase();
    let user = match &block["userAssignedIdentities"] {
        Value::Object(map) => map.keys().cloned().collect(),
        _ => Vec::new(),
    };
    IdentitySpec { system: kind.contains("systemassigned"), user }
}

/// The `identity` block of a new resource.
pub fn create_block(spec: &IdentitySpec) -> Value {
    let mut block = json!({"type": identity_type(spec.system, !spec.user.is_empty())});
    if !spec.user.is_empty() {
        block["userAssignedIdentities"] =
            Value::Object(spec.user.iter().map(|id| (id.clone(), json!({}))).collect());
    }
    block
}

/// The `identity` block PATCHed by `identity assign`: what is there plus what is asked for.
pub fn assign_block(current: &Value, spec: &IdentitySpec) -> Value {
    let mut merged = current_identities(current);
    merged.system |= spec.system;
    for id in &spec.user {
        if !merged.user.iter().any(|known| arm::same_id(known, id)) {
            merged.user.push(id.clone());
        }
    }
    create_block(&merged)
}

/// The `identity` block PATCHed by `identity remove`: `None` when nothing is left; removed
/// user-assigned identities set to `null` while others remain.
pub fn remove_block(current: &Value, spec: &IdentitySpec, name: &str) -> Result<Value> {
    let existing = current_identities(current);
    let mut removed = Vec::new();
    let mut missing = Vec::new();
    for id in &spec.user {
        match existing.user.iter().find(|known| arm::same_id(known, id)) {
            Some(known) => removed.push(known.clone()),
            None => missing.push(id.clone()),
        }
    }
    if !missing.is_empty() {
        bail!("'{}' are not associated with '{name}'", missing.join(","));
    }
    let system = existing.system && !spec.system;
    let remaining: Vec<&String> = existing.user.iter().filter(|id| !removed.contains(id)).collect();
    let mut block = json!({"type": identity_type(system, !remaining.is_empty())});
    if !remaining.is_empty() && !removed.is_empty() {
        block["userAssignedIdentities"] =
            Value::Object(removed.into_iter().map(|id| (id, Value::Null)).collect());
    }
    Ok(block)
}

/// az vm's identity summary: `{"systemAssignedIdentity", "userAssignedIdentities"}` (with
/// `role` and `scope` when one was assigned).
pub fn identity_summary(block: &Value, role_plan: Option<&(String, String)>) -> Value {
    let mut user = Map::new();
    if let Value::Object(map) = &block["userAssignedIdentities"] {
        for (id, details) in map {
            user.insert(
                id.clone(),
                json!({"clientId": details["clientId"], "principalId": details["principalId"]}),
            );
        }
    }
    let mut summary = json!({
        "systemAssignedIdentity": block["principalId"].as_str().unwrap_or_default(),
        "userAssignedIdentities": user,
    });
    if let Some((role, scope)) = role_plan {
        summary["role"] = Value::String(role.clone());
        summary["scope"] = Value::String(scope.clone());
    }
    summary
}

/// Checks `--role`/`--scope`: both or neither, and only for a system-assigned identity.
pub fn role_plan(
    role: Option<&str>,
    scope: Option<&str>,
    identities: Option<&IdentitySpec>,
) -> Result<Option<(String, String)>> {
    match (role, scope) {
        (None, None) => Ok(None),
        (Some(_), None) => bail!("--role requires --scope"),
        (None, Some(_)) => bail!("--scope requires --role"),
        (Some(role), Some(scope)) => {
            if !identities.is_some_and(|spec| spec.system) {
                bail!(
                    "--role and --scope apply to the system-assigned identity: include {SYSTEM_IDENTITY}"
                );
            }
            Ok(Some((role.to_owned(), scope.to_owned())))
        }
    }
}

/// The PUT that creates a resource of `kind`.
pub fn create_request(
    kind: &Kind,
    subscription: &str,
    args: &CreateArgs,
    identities: Option<&IdentitySpec>,
) -> Result<Request> {
    if args.image.is_some() && kind.site_kind.is_some() {
        bail!("--image applies to `vm create` only, not `{} create`", kind.command);
    }
    let mut body = arm::location_and_tags(&args.location, args.tags.as_deref())?;
    body["properties"] = json!({"hostId": args.host});
    if let Some(image) = &args.image {
        body["properties"]["storageProfile"] = json!({"imageReference": {"offer": image}});
    }
    if let Some(site_kind) = kind.site_kind {
        body["kind"] = Value::String(site_kind.to_owned());
    }
    if let Some(spec) = identities {
        body["identity"] = create_block(spec);
    }
    let selectors = args.workload.selectors();
    if !selectors.is_empty() {
        body["properties"]["ambient"] = json!({"workloadSelectors": selectors});
    }
    let id = arm::resource_id(subscription, &args.resource_group, kind.resource_type, &args.name);
    Ok(Request::put(arm::path(&id, kind.api_version), body))
}

/// One change of `update`.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A dotted path under `properties` or `tags`, and its new value.
    Set(String, Value),
    /// A dotted path under `properties` or `tags` to remove.
    Remove(String),
}

impl Update {
    /// `PATH=VALUE`; VALUE is JSON when it parses as JSON, else a string.
    fn parse_set(text: &str) -> Result<Update> {
        let Some((path, value)) = text.split_once('=') else {
            bail!("--set {text}: expected PATH=VALUE");
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        Ok(Update::Set(path.trim().to_owned(), value))
    }
}

impl WorkloadArgs {
    /// The selectors given, as `properties.ambient.workloadSelectors` spells them.
    fn selectors(&self) -> Map<String, Value> {
        self.fields()
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_owned(), Value::String(value?.clone()))))
            .collect()
    }

    /// The selectors given, as updates of their properties.
    fn as_updates(&self) -> Vec<Update> {
        self.selectors()
            .into_iter()
            .map(|(name, value)| {
                Update::Set(format!("properties.ambient.workloadSelectors.{name}"), value)
            })
            .collect()
    }

    fn fields(&self) -> [(&'static str, Option<&String>); 7] {
        [
            ("user", self.workload_user.as_ref()),
            ("group", self.workload_group.as_ref()),
            ("executable", self.workload_executable.as_ref()),
            ("executableSha256", self.workload_executable_sha256.as_ref()),
            ("systemdUnit", self.workload_systemd_unit.as_ref()),
            ("cgroup", self.workload_cgroup.as_ref()),
            ("containerId", self.workload_container_id.as_ref()),
        ]
    }
}

/// The PATCH body of `update`: the resource's current `properties` and `tags` with `updates`
/// applied in order (a PATCH replaces each top-level property it names, so the whole of each
/// is sent).
pub fn apply_generic_update(current: &Value, updates: &[Update]) -> Result<Value> {
    let mut body = Map::new();
    for update in updates {
        let path = match update {
            Update::Set(path, _) | Update::Remove(path) => path,
        };
        let mut parts: Vec<&str> = path.split('.').collect();
        let root = parts.remove(0);
        if !matches!(root, "properties" | "tags") || parts.iter().any(|part| part.is_empty()) {
            bail!("{path}: only paths under properties or tags can be changed");
        }
        let Some(last) = parts.pop() else {
            bail!("{path}: name a property under {root}");
        };
        let mut node = body.entry(root.to_owned()).or_insert_with(|| match &current[root] {
            Value::Object(map) => Value::Object(map.clone()),
            _ => json!({}),
        });
        match update {
            Update::Set(_, value) => {
                for part in parts {
                    if !node[part].is_object() {
                        node[part] = json!({});
                    }
                    node = &mut node[part];
                }
                node[last] = value.clone();
            }
            Update::Remove(_) => {
                // Removing what is not there changes nothing.
                let parent = parts.iter().try_fold(node, |node, part| node.get_mut(*part));
                if let Some(map) = parent.and_then(Value::as_object_mut) {
                    map.shift_remove(last);
                }
            }
        }
    }
    if let Some(Value::Object(properties)) = body.get_mut("properties") {
        properties.shift_remove("provisioningState");
    }
    Ok(Value::Object(body))
}

/// Whether a listed resource belongs to this command group (web apps and function apps share
/// Microsoft.Web/sites and differ by `kind`).
fn is_of_kind(kind: &Kind, resource: &Value) -> bool {
    let site_kind = resource["kind"].as_str().unwrap_or_default().to_ascii_lowercase();
    match kind.site_kind {
        None => true,
        Some("functionapp") => site_kind.contains("functionapp"),
        Some(_) => !site_kind.contains("functionapp"),
    }
}

/// Gives the resource's system-assigned identity `role` at `scope`.
async fn assign_role(
    kind: &Kind,
    arm: &Arm,
    resource: &Value,
    role: &str,
    scope: &str,
) -> Result<()> {
    let Some(principal_id) =
        resource["identity"]["principalId"].as_str().filter(|id| !id.is_empty())
    else {
        bail!("the {} has no system-assigned principalId: cannot assign --role", kind.noun);
    };
    let new = role::NewAssignment {
        principal_id,
        principal_type: "ServicePrincipal",
        role,
        scope,
        description: None,
        name: None,
    };
    role::create_assignment(arm, &new).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    const UAMI: &str = "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities";

    fn spec(values: &[&str]) -> IdentitySpec {
        parse_identities(
            &values.iter().map(|value| (*value).to_owned()).collect::<Vec<_>>(),
            "s1",
            "rg1",
        )
    }

    #[track_caller]
    fn check(value: Value, expect: Expect) {
        expect.assert_eq(&serde_json::to_string(&value).unwrap());
    }

    #[test]
    fn assign_identity_parsing() {
        expect![[r#"
            IdentitySpec {
                system: true,
                user: [],
            }
        "#]]
        .assert_debug_eq(&spec(&[]));
        expect![[r#"
            IdentitySpec {
                system: true,
                user: [
                    "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
                    "/subscriptions/s2/resourceGroups/other/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id2",
                ],
            }
        "#]]
        .assert_debug_eq(&spec(&[
            "id1",
            "[System]",
            "/subscriptions/s2/resourceGroups/other/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id2",
            &format!("{UAMI}/ID1"),
        ]));
        check(
            create_block(&spec(&["id1"])),
            expect![[
                r#"{"type":"UserAssigned","userAssignedIdentities":{"/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1":{}}}"#
            ]],
        );
        check(create_block(&spec(&[])), expect![[r#"{"type":"SystemAssigned"}"#]]);
    }

    #[test]
    fn assign_keeps_existing_identities() {
        let current = json!({"type": "UserAssigned", "userAssignedIdentities": {format!("{UAMI}/id1"): {"clientId": "c1", "principalId": "p1"}}});
        check(
            assign_block(&current, &spec(&["[system]"])),
            expect![[
                r#"{"type":"SystemAssigned, UserAssigned","userAssignedIdentities":{"/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1":{}}}"#
            ]],
        );
        check(
            assign_block(&current, &spec(&["id2", "id1"])),
            expect![[
                r#"{"type":"UserAssigned","userAssignedIdentities":{"/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1":{},"/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id2":{}}}"#
            ]],
        );
        check(
            assign_block(&Value::Null, &spec(&["[system]"])),
            expect![[r#"{"type":"SystemAssigned"}"#]],
        );
        check(
            assign_block(
                &json!({"type": "SystemAssigned", "principalId": "p"}),
                &spec(&[&format!("{UAMI}/id3")]),
            ),
            expect![[
                r#"{"type":"SystemAssigned, UserAssigned","userAssignedIdentities":{"/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id3":{}}}"#
            ]],
        );
    }

    #[test]
    fn remove_computes_what_is_left() {
        let both = json!({
            "type": "SystemAssigned, UserAssigned",
            "principalId": "sp",
            "userAssignedIdentities": {format!("{UAMI}/id1"): {}, format!("{UAMI}/id2"): {}}
        });
        // Removing the system identity keeps the user ones; no map needed.
        check(
            remove_block(&both, &spec(&["[system]"]), "vm1").unwrap(),
            expect![[r#"{"type":"UserAssigned"}"#]],
        );
        // Removing one user identity of two sends it as null.
        check(
            remove_block(&both, &spec(&["ID1"]), "vm1").unwrap(),
            expect![[
                r#"{"type":"SystemAssigned, UserAssigned","userAssignedIdentities":{"/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1":null}}"#
            ]],
        );
        // Removing every user identity leaves the system one.
        check(
            remove_block(&both, &spec(&["id1", "id2"]), "vm1").unwrap(),
            expect![[r#"{"type":"SystemAssigned"}"#]],
        );
        // Removing the last identity sets None.
        check(
            remove_block(&both, &spec(&["[system]", "id1", "id2"]), "vm1").unwrap(),
            expect![[r#"{"type":"None"}"#]],
        );
        check(
            remove_block(&json!({"type": "SystemAssigned"}), &spec(&[]), "vm1").unwrap(),
            expect![[r#"{"type":"None"}"#]],
        );
        let error = remove_block(&both, &spec(&["id9"]), "vm1").unwrap_err().to_string();
        assert_eq!(error, format!("'{UAMI}/id9' are not associated with 'vm1'"));
    }

    #[test]
    fn vm_summary_like_az() {
        let block = json!({
            "type": "SystemAssigned, UserAssigned", "principalId": "sp", "tenantId": "t",
            "userAssignedIdentities": {format!("{UAMI}/id1"): {"clientId": "c1", "principalId": "p1"}}
        });
        check(
            identity_summary(&block, None),
            expect![[
                r#"{"systemAssignedIdentity":"sp","userAssignedIdentities":{"/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1":{"clientId":"c1","principalId":"p1"}}}"#
            ]],
        );
        let plan = ("Reader".to_owned(), "/subscriptions/s1".to_owned());
        check(
            identity_summary(&json!({"type": "UserAssigned"}), Some(&plan)),
            expect![[
                r#"{"systemAssignedIdentity":"","userAssignedIdentities":{},"role":"Reader","scope":"/subscriptions/s1"}"#
            ]],
        );
    }

    #[test]
    fn role_and_scope_go_together() {
        let system = spec(&[]);
        let user = spec(&["id1"]);
        let error = |role, scope, ids| role_plan(role, scope, ids).unwrap_err().to_string();
        assert_eq!(error(Some("Reader"), None, Some(&system)), "--role requires --scope");
        assert_eq!(
            error(None, Some("/subscriptions/s1"), Some(&system)),
            "--scope requires --role"
        );
        assert_eq!(
            error(Some("Reader"), Some("/s"), Some(&user)),
            "--role and --scope apply to the system-assigned identity: include [system]"
        );
        assert_eq!(
            error(Some("Reader"), Some("/s"), None),
            "--role and --scope apply to the system-assigned identity: include [system]"
        );
        assert_eq!(role_plan(None, None, None).unwrap(), None);
    }

    #[test]
    fn create_bodies() {
        let args = CreateArgs {
            resource_group: "rg1".to_owned(),
            name: "vm1".to_owned(),
            location: "local".to_owned(),
            assign_identity: Some(vec!["[system]".to_owned(), "id1".to_owned()]),
            role: None,
            scope: None,
            host: "host-a".to_owned(),
            image: Some("Ubuntu2204".to_owned()),
            tags: None,
            workload: WorkloadArgs::default(),
        };
        let identities = parse_identities(args.assign_identity.as_deref().unwrap(), "s1", "rg1");
        let request = create_request(&VM, "s1", &args, Some(&identities)).unwrap();
        assert_eq!(
            request.path,
            "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1?api-version=2024-07-01"
        );
        check(
            request.body.unwrap(),
            expect![[
                r#"{"location":"local","properties":{"hostId":"host-a","storageProfile":{"imageReference":{"offer":"Ubuntu2204"}}},"identity":{"type":"SystemAssigned, UserAssigned","userAssignedIdentities":{"/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1":{}}}}"#
            ]],
        );
        let web = CreateArgs {
            image: None,
            assign_identity: None,
            name: "app1".to_owned(),
            workload: WorkloadArgs {
                workload_user: Some("alice".to_owned()),
                workload_executable: Some("/usr/bin/python3".to_owned()),
                ..WorkloadArgs::default()
            },
            ..args
        };
        let request = create_request(&FUNCTIONAPP, "s1", &web, None).unwrap();
        assert_eq!(
            request.path,
            "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Web/sites/app1?api-version=2023-12-01"
        );
        check(
            request.body.unwrap(),
            expect![[
                r#"{"location":"local","properties":{"hostId":"host-a","ambient":{"workloadSelectors":{"user":"alice","executable":"/usr/bin/python3"}}},"kind":"functionapp"}"#
            ]],
        );
    }

    #[track_caller]
    fn check_update(current: Value, updates: &[&str], expect: Expect) {
        let updates: Result<Vec<Update>> = updates
            .iter()
            .map(|text| match text.strip_prefix('-') {
                Some(path) => Ok(Update::Remove(path.to_owned())),
                None => Update::parse_set(text),
            })
            .collect();
        match updates.and_then(|updates| apply_generic_update(&current, &updates)) {
            Ok(body) => check(body, expect),
            Err(error) => expect.assert_eq(&format!("error: {error}")),
        }
    }

    #[test]
    fn generic_updates_send_whole_top_level_properties() {
        let vm = json!({
            "id": "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1",
            "properties": {"hostId": "local", "provisioningState": "Succeeded", "ambient": {"identityFlavour": "arc"}},
            "tags": {"env": "dev"},
        });
        check_update(
            vm.clone(),
            &["properties.ambient.workloadSelectors.user=alice"],
            expect![[
                r#"{"properties":{"hostId":"local","ambient":{"identityFlavour":"arc","workloadSelectors":{"user":"alice"}}}}"#
            ]],
        );
        check_update(
            vm.clone(),
            &["tags.owner=ops", "properties.ambient.workloadSelectors={\"group\": \"web\"}"],
            expect![[
                r#"{"tags":{"env":"dev","owner":"ops"},"properties":{"hostId":"local","ambient":{"identityFlavour":"arc","workloadSelectors":{"group":"web"}}}}"#
            ]],
        );
        check_update(
            vm.clone(),
            &["-properties.ambient.identityFlavour", "-properties.nothing.here"],
            expect![[r#"{"properties":{"hostId":"local","ambient":{}}}"#]],
        );
        check_update(
            vm.clone(),
            &["identity.type=None"],
            expect!["error: identity.type: only paths under properties or tags can be changed"],
        );
        check_update(vm, &["properties"], expect!["error: --set properties: expected PATH=VALUE"]);
    }

    #[test]
    fn lists_split_sites_by_kind() {
        let app = json!({"kind": "app"});
        let function = json!({"kind": "functionapp,linux"});
        assert!(is_of_kind(&WEBAPP, &app));
        assert!(!is_of_kind(&WEBAPP, &function));
        assert!(is_of_kind(&FUNCTIONAPP, &function));
        assert!(!is_of_kind(&FUNCTIONAPP, &app));
        assert!(is_of_kind(&VM, &json!({})));
    }
}
