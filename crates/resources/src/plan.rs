//! Planning writes: each operation reads what it needs and returns the batch of writes that
//! realises it atomically, following DESIGN §3's lifecycle rules:
//!
//! - enabling `SystemAssigned` creates a service principal named after the resource; removing it,
//!   or deleting the resource, deletes that principal with its role assignments; enabling it
//!   again creates a new principal;
//! - a user-assigned identity has its own principal for its whole life; deleting it detaches it
//!   from every resource that holds it;
//! - deleting a resource group deletes everything in it, with the same cascades.

use std::collections::BTreeSet;

use domain::{Guid, ResourceId, UnixTime};
use serde_json::{Map, Value, json};
use store::{
    Expect, FederatedCredentialRecord, Page, PrincipalRecord, ResourceFilter, ResourceRecord,
    Store, Write,
};

use crate::identity::{self, IdentitySpec};
use crate::types::{self, Kind, RESOURCE_GROUP};
use crate::{Error, Result};

const GROUP_TYPE_KEY: &str = "microsoft.resources/resourcegroups";
const LIST_BATCH: i64 = 500;
/// The host compute resources run on unless the request names one.
pub const DEFAULT_HOST: &str = "local";

/// What an operation will do.
#[derive(Debug)]
pub struct Plan {
    /// The writes, to apply in one transaction.
    pub writes: Vec<Write>,
    /// The row after the operation (`None` for deletes).
    pub record: Option<ResourceRecord>,
    /// Whether the operation creates the resource.
    pub created: bool,
    /// User-assigned identities the operation newly attaches: the caller needs
    /// `Microsoft.ManagedIdentity/userAssignedIdentities/assign/action` on each.
    pub attach: Vec<ResourceId>,
}

/// Plans operations against the store's current rows.
pub struct Planner<'a> {
    pub store: &'a dyn Store,
    pub now: UnixTime,
    pub tenant_id: &'a str,
}

impl Planner<'_> {
    /// Creates, replaces (`patch` false) or updates (`patch` true) a resource group.
    pub async fn put_group(&self, id: &ResourceId, body: &Value, patch: bool) -> Result<Plan> {
        let subscription = self.subscription_of(id).await?;
        let name = id.resource_group().unwrap_or_default();
        types::check_name(name)?;
        let body = object(body)?;
        let existing = self.store.get_resource(id.key()).await?;
        if patch && existing.is_none() {
            return Err(group_not_found(name));
        }
        let location = text_field(body, "location")?
            .or_else(|| existing.as_ref().map(|row| row.location.clone()))
            .unwrap_or_else(|| "local".to_owned());
        let tags = tags_field(body, existing.as_ref(), patch)?;
        let now = self.now.millis();
        let record = ResourceRecord {
            key: id.key().to_owned(),
            id: existing.as_ref().map_or_else(|| id.as_str().to_owned(), |row| row.id.clone()),
            subscription_id: subscription,
            resource_group_key: Some(name.to_ascii_lowercase()),
            type_key: GROUP_TYPE_KEY.to_owned(),
            name: existing.as_ref().map_or_else(|| name.to_owned(), |row| row.name.clone()),
            location,
            tags,
            properties: json!({"properties": {"provisioningState": "Succeeded"}}).to_string(),
            identity: None,
            host_id: None,
            user_identity_keys: Vec::new(),
            version: existing.as_ref().map_or(1, |row| row.version),
            created_at: existing.as_ref().map_or(now, |row| row.created_at),
            updated_at: now,
        };
        Ok(put_plan(record, existing.as_ref(), Vec::new(), Vec::new()))
    }

    /// Creates, replaces (`patch` false) or updates (`patch` true) a resource of a known type.
    pub async fn put_resource(&self, id: &ResourceId, body: &Value, patch: bool) -> Result<Plan> {
        let subscription = self.subscription_of(id).await?;
        let resource_type = id.resource_type().and_then(types::lookup).ok_or_else(|| {
            Error::bad_request(
                "InvalidResourceType",
                format!(
                    "The resource type '{}' is not supported by Ambient.",
                    id.resource_type().unwrap_or_default()
                ),
            )
        })?;
        let group = id.resource_group().ok_or_else(|| {
            Error::bad_request(
                "InvalidResourceId",
                format!("'{id}' does not name a resource group"),
            )
        })?;
        let group_id = ResourceId::resource_group_id(&subscription, group)
            .map_err(|_| group_not_found(group))?;
        let group_row =
            self.store.get_resource(group_id.key()).await?.ok_or_else(|| group_not_found(group))?;
        let name = id.name().unwrap_or_default();
        types::check_name(name)?;
        let body = object(body)?;
        let existing = self.store.get_resource(id.key()).await?;
        if patch && existing.is_none() {
            return Err(resource_not_found(id, group));
        }
        let mut extras: Map<String, Value> = existing
            .as_ref()
            .and_then(|row| serde_json::from_str(&row.properties).ok())
            .unwrap_or_default();
        let mut properties = match (patch, extras.remove("properties"), body.get("properties")) {
            (_, _, Some(Value::Null)) | (false, _, None) => Map::new(),
            (true, Some(Value::Object(current)), None) => current,
            (true, Some(Value::Object(mut current)), Some(Value::Object(update))) => {
                current.extend(update.clone());
                current
            }
            (_, _, Some(Value::Object(given))) => given.clone(),
            (_, _, Some(_)) => {
                return Err(Error::bad_request(
                    "InvalidRequestContent",
                    "'properties' must be an object",
                ));
            }
            (true, _, None) => Map::new(),
        };
        for field in ["kind", "sku", "zones"] {
            match body.get(field) {
                Some(value) => {
                    extras.insert(field.to_owned(), value.clone());
                }
                None if !patch => {
                    extras.remove(field);
                }
                None => {}
            }
        }
        let location = text_field(body, "location")?
            .or_else(|| existing.as_ref().map(|row| row.location.clone()))
            .unwrap_or_else(|| group_row.location.clone());
        let tags = tags_field(body, existing.as_ref(), patch)?;
        let now = self.now.millis();
        let mut writes = Vec::new();
        let mut attach = Vec::new();
        let mut identity_block = existing.as_ref().and_then(|row| row.identity.clone());
        let mut user_identity_keys =
            existing.as_ref().map(|row| row.user_identity_keys.clone()).unwrap_or_default();
        let mut host_id = None;
        properties.remove("provisioningState");

        match resource_type.kind {
            Kind::Compute => {
                let stored = identity_block
                    .as_deref()
                    .and_then(|text| serde_json::from_str::<Value>(text).ok());
                let current = IdentitySpec::from_stored(stored.as_ref());
                let requested = match (patch, body.get("identity")) {
                    (_, None) => None,
                    (true, Some(block)) if !block.is_null() => {
                        Some(identity::apply_patch(&current, block)?)
                    }
                    (_, block) => identity::parse_put(block)?,
                };
                if let Some(requested) = requested {
                    let mut holders = Vec::new();
                    for user in &requested.user {
                        let row = self.store.get_resource(user.key()).await?.ok_or_else(|| {
                            Error::bad_request(
                                "InvalidIdentityValues",
                                format!("The user-assigned identity '{user}' was not found."),
                            )
                        })?;
                        if !current.user.contains(user) {
                            attach.push(user.clone());
                        }
                        holders.push(row);
                    }
                    let current_principal = stored
                        .as_ref()
                        .and_then(|block| block.get("principalId"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    let system_principal =
                        match (current.system, requested.system, current_principal) {
                            (true, true, Some(existing_id)) => Some(existing_id),
                            (_, true, _) => {
                                let principal = managed_principal(
                                    self.tenant_id,
                                    name,
                                    id.key(),
                                    "SystemAssigned",
                                    now,
                                );
                                let object_id = principal.object_id.clone();
                                writes.push(Write::PutPrincipal(principal));
                                Some(object_id)
                            }
                            (true, false, Some(existing_id)) => {
                                writes.push(Write::DeletePrincipal { object_id: existing_id });
                                None
                            }
                            _ => None,
                        };
                    let mut block = json!({"type": requested.type_string()});
                    if let Some(principal_id) = &system_principal {
                        block["principalId"] = json!(principal_id);
                        block["tenantId"] = json!(self.tenant_id);
                    }
                    if !holders.is_empty() {
                        let mut users = Map::new();
                        for row in &holders {
                            let uami: Value =
                                serde_json::from_str(&row.properties).unwrap_or_default();
                            users.insert(
                                row.id.clone(),
                                json!({
                                    "principalId": uami["properties"]["principalId"],
                                    "clientId": uami["properties"]["clientId"],
                                }),
                            );
                        }
                        block["userAssignedIdentities"] = Value::Object(users);
                    }
                    identity_block = Some(block.to_string());
                    user_identity_keys =
                        requested.user.iter().map(|user| user.key().to_owned()).collect();
                }
                let host = properties
                    .get("hostId")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| existing.as_ref().and_then(|row| row.host_id.clone()))
                    .unwrap_or_else(|| DEFAULT_HOST.to_owned());
                if host.is_empty() || host.len() > 64 {
                    return Err(Error::bad_request(
                        "InvalidRequestContent",
                        "'properties.hostId' must be 1 to 64 characters",
                    ));
                }
                properties.insert("hostId".to_owned(), json!(host));
                if resource_type.name == "Microsoft.Compute/virtualMachines"
                    && !properties.contains_key("vmId")
                {
                    properties.insert("vmId".to_owned(), json!(Guid::new_random().to_string()));
                }
                host_id = Some(host);
            }
            Kind::UserAssignedIdentity => {
                let current: Value = existing
                    .as_ref()
                    .and_then(|row| serde_json::from_str(&row.properties).ok())
                    .unwrap_or_default();
                let current = &current["properties"];
                let (principal_id, client_id) =
                    match (current["principalId"].as_str(), current["clientId"].as_str()) {
                        (Some(principal_id), Some(client_id)) => {
                            (principal_id.to_owned(), client_id.to_owned())
                        }
                        _ => {
                            let principal = managed_principal(
                                self.tenant_id,
                                name,
                                id.key(),
                                "UserAssigned",
                                now,
                            );
                            let ids = (principal.object_id.clone(), principal.app_id.clone());
                            writes.push(Write::PutPrincipal(principal));
                            ids
                        }
                    };
                let isolation = properties.get("isolationScope").cloned().unwrap_or(json!("None"));
                properties = Map::new();
                properties.insert("tenantId".to_owned(), json!(self.tenant_id));
                properties.insert("principalId".to_owned(), json!(principal_id));
                properties.insert("clientId".to_owned(), json!(client_id));
                properties.insert("isolationScope".to_owned(), isolation);
            }
            Kind::FederatedCredential => {
                let parent = parent_of(id)?;
                if self.store.get_resource(parent.key()).await?.is_none() {
                    return Err(Error::not_found(
                        "ParentResourceNotFound",
                        format!(
                            "The user-assigned identity '{}' was not found.",
                            parent.name().unwrap_or_default()
                        ),
                    ));
                }
                if existing.is_none() {
                    let siblings = self.store.list_federated_credentials(parent.key()).await?;
                    if siblings.len() >= domain::limits::FEDERATED_CREDENTIALS_PER_IDENTITY_MAX {
                        return Err(Error::bad_request(
                            "BadRequest",
                            format!(
                                "An identity may have at most {} federated identity credentials.",
                                domain::limits::FEDERATED_CREDENTIALS_PER_IDENTITY_MAX
                            ),
                        ));
                    }
                }
                let issuer = required_text(&properties, "issuer")?;
                let subject = required_text(&properties, "subject")?;
                let audiences = match properties.get("audiences") {
                    None | Some(Value::Null) => vec!["api://AzureADTokenExchange".to_owned()],
                    Some(Value::Array(items))
                        if !items.is_empty() && items.iter().all(Value::is_string) =>
                    {
                        items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
                    }
                    Some(_) => {
                        return Err(Error::bad_request(
                            "InvalidRequestContent",
                            "'properties.audiences' must be a non-empty array of strings",
                        ));
                    }
                };
                properties.insert("audiences".to_owned(), json!(audiences));
                writes.push(Write::PutFederatedCredential(FederatedCredentialRecord {
                    key: id.key().to_owned(),
                    id: id.as_str().to_owned(),
                    identity_key: parent.key().to_owned(),
                    name: name.to_owned(),
                    issuer,
                    subject,
                    audiences: json!(audiences).to_string(),
                    created_at: existing.as_ref().map_or(now, |row| row.created_at),
                }));
            }
            Kind::Vault => {
                check_vault_name(name)?;
                if existing.is_none() {
                    let filter = ResourceFilter {
                        type_key: Some(types::VAULT.to_ascii_lowercase()),
                        ..ResourceFilter::default()
                    };
                    let vaults =
                        self.store.list_resources(&filter, &Page::first(LIST_BATCH * 20)).await?;
                    if vaults.iter().any(|vault| vault.name.eq_ignore_ascii_case(name)) {
                        return Err(Error::Conflict(format!(
                            "The vault name '{name}' is already in use."
                        )));
                    }
                }
                if properties
                    .get("enableRbacAuthorization")
                    .is_some_and(|value| value == &json!(false))
                {
                    return Err(Error::bad_request(
                        "BadRequest",
                        "Ambient vaults use RBAC authorization only; 'enableRbacAuthorization' must be true.",
                    ));
                }
                let retention = properties
                    .get("softDeleteRetentionInDays")
                    .and_then(Value::as_i64)
                    .unwrap_or(90);
                if !(7..=90).contains(&retention) {
                    return Err(Error::bad_request(
                        "BadRequest",
                        "'softDeleteRetentionInDays' must be between 7 and 90.",
                    ));
                }
                let soft_delete =
                    properties.get("enableSoftDelete").and_then(Value::as_bool).unwrap_or(true);
                properties.insert("enableRbacAuthorization".to_owned(), json!(true));
                properties.insert("enableSoftDelete".to_owned(), json!(soft_delete));
                properties.insert("softDeleteRetentionInDays".to_owned(), json!(retention));
                properties.insert("tenantId".to_owned(), json!(self.tenant_id));
                properties
                    .entry("sku".to_owned())
                    .or_insert_with(|| json!({"family": "A", "name": "standard"}));
                // `vaultUri` is derived when read (`render`), so a changed public URL strands
                // nothing; rows written before kept one, which `render` replaces.
                properties.remove("vaultUri");
            }
        }
        properties.insert("provisioningState".to_owned(), json!("Succeeded"));
        extras.insert("properties".to_owned(), Value::Object(properties));
        extras.insert("type".to_owned(), json!(resource_type.name));
        let record = ResourceRecord {
            key: id.key().to_owned(),
            id: existing.as_ref().map_or_else(|| id.as_str().to_owned(), |row| row.id.clone()),
            subscription_id: subscription,
            resource_group_key: Some(group.to_ascii_lowercase()),
            type_key: resource_type.name.to_ascii_lowercase(),
            name: existing.as_ref().map_or_else(|| name.to_owned(), |row| row.name.clone()),
            location,
            tags,
            properties: Value::Object(extras).to_string(),
            identity: identity_block,
            host_id,
            user_identity_keys,
            version: existing.as_ref().map_or(1, |row| row.version),
            created_at: existing.as_ref().map_or(now, |row| row.created_at),
            updated_at: now,
        };
        Ok(put_plan(record, existing.as_ref(), writes, attach))
    }

    /// Deletes a resource or group with its cascades; `None` when it does not exist.
    pub async fn delete(&self, id: &ResourceId) -> Result<Option<Plan>> {
        let Some(row) = self.store.get_resource(id.key()).await? else { return Ok(None) };
        let mut doomed = Vec::new();
        if row.type_key == GROUP_TYPE_KEY {
            let filter = ResourceFilter {
                subscription_id: Some(row.subscription_id.clone()),
                resource_group_key: row.resource_group_key.clone(),
                ..ResourceFilter::default()
            };
            let mut page = Page::first(LIST_BATCH);
            loop {
                let rows = self.store.list_resources(&filter, &page).await?;
                let Some(last) = rows.last() else { break };
                page.after_key = Some(last.key.clone());
                doomed.extend(rows.into_iter().filter(|member| member.key != row.key));
            }
        } else if row.type_key == types::USER_ASSIGNED_IDENTITY.to_ascii_lowercase() {
            let filter = ResourceFilter {
                key_prefix: Some(format!("{}/", row.key)),
                ..ResourceFilter::default()
            };
            doomed.extend(self.store.list_resources(&filter, &Page::first(LIST_BATCH)).await?);
        }
        doomed.push(row.clone());
        let doomed_keys: BTreeSet<String> =
            doomed.iter().map(|member| member.key.clone()).collect();
        let mut writes = Vec::new();
        for member in &doomed {
            self.cascade(member, &doomed_keys, &mut writes).await?;
        }
        Ok(Some(Plan { writes, record: None, created: false, attach: Vec::new() }))
    }

    /// The writes that remove `row` and what depends on it.
    async fn cascade(
        &self,
        row: &ResourceRecord,
        doomed: &BTreeSet<String>,
        writes: &mut Vec<Write>,
    ) -> Result<()> {
        for principal in self.store.list_principals_managed_by(&row.key).await? {
            writes.push(Write::DeletePrincipal { object_id: principal.object_id });
        }
        if row.type_key == types::USER_ASSIGNED_IDENTITY.to_ascii_lowercase() {
            for holder_key in self.store.list_resources_holding_identity(&row.key).await? {
                if doomed.contains(&holder_key) {
                    continue;
                }
                if let Some(holder) = self.store.get_resource(&holder_key).await? {
                    writes.push(detach(holder, &row.key, self.now.millis()));
                }
            }
            writes.push(Write::DeleteFederatedCredentialsOf { identity_key: row.key.clone() });
        }
        if row.type_key == types::VAULT.to_ascii_lowercase() {
            writes.push(Write::PurgeVault { vault_key: row.key.clone() });
        }
        if row.type_key == types::FEDERATED_CREDENTIAL.to_ascii_lowercase() {
            writes.push(Write::DeleteFederatedCredential { key: row.key.clone() });
        }
        writes.push(Write::DeleteRoleAssignmentsUnder { scope_key: row.key.clone() });
        writes.push(Write::DeleteResource { key: row.key.clone() });
        Ok(())
    }

    async fn subscription_of(&self, id: &ResourceId) -> Result<String> {
        let subscription = id.subscription_id().ok_or_else(|| {
            Error::bad_request("InvalidResourceId", format!("'{id}' does not name a subscription"))
        })?;
        match self.store.get_subscription(&subscription.to_ascii_lowercase()).await? {
            Some(row) => Ok(row.id),
            None => Err(Error::not_found(
                "SubscriptionNotFound",
                format!("The subscription '{subscription}' could not be found."),
            )),
        }
    }
}

/// Removes the identity `identity_key` from `holder`'s identity block.
fn detach(mut holder: ResourceRecord, identity_key: &str, now: i64) -> Write {
    let mut block: Value = holder
        .identity
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    if let Some(users) = block.get_mut("userAssignedIdentities").and_then(Value::as_object_mut) {
        users.retain(|key, _| !key.eq_ignore_ascii_case(identity_key));
    }
    holder.user_identity_keys.retain(|key| key != identity_key);
    let system = block.get("principalId").is_some_and(|value| !value.is_null());
    let spec_type = match (system, holder.user_identity_keys.is_empty()) {
        (true, true) => "SystemAssigned",
        (true, false) => "SystemAssigned, UserAssigned",
        (false, true) => "None",
        (false, false) => "UserAssigned",
    };
    block["type"] = json!(spec_type);
    if holder.user_identity_keys.is_empty()
        && let Some(map) = block.as_object_mut()
    {
        map.remove("userAssignedIdentities");
    }
    holder.identity = Some(block.to_string());
    holder.updated_at = now;
    let version = holder.version;
    Write::PutResource { record: holder, expect: Expect::Version(version) }
}

fn put_plan(
    record: ResourceRecord,
    existing: Option<&ResourceRecord>,
    mut writes: Vec<Write>,
    attach: Vec<ResourceId>,
) -> Plan {
    let expect = existing.map_or(Expect::Absent, |row| Expect::Version(row.version));
    writes.push(Write::PutResource { record: record.clone(), expect });
    Plan { writes, created: existing.is_none(), record: Some(record), attach }
}

fn managed_principal(
    tenant_id: &str,
    name: &str,
    managed_by_key: &str,
    kind: &str,
    now: i64,
) -> PrincipalRecord {
    PrincipalRecord {
        object_id: Guid::new_random().to_string(),
        tenant_id: tenant_id.to_owned(),
        kind: "ManagedIdentity".to_owned(),
        app_id: Guid::new_random().to_string(),
        display_name: name.to_owned(),
        managed_by_key: Some(managed_by_key.to_owned()),
        identity_kind: Some(kind.to_owned()),
        enabled: true,
        created_at: now,
    }
}

fn parent_of(id: &ResourceId) -> Result<ResourceId> {
    let text = id.as_str();
    let cut = text.rfind('/').and_then(|last| text[..last].rfind('/'));
    cut.and_then(|at| ResourceId::parse(&text[..at]).ok()).ok_or_else(|| {
        Error::bad_request("InvalidResourceId", format!("'{id}' has no parent resource"))
    })
}

fn object(body: &Value) -> Result<&Map<String, Value>> {
    body.as_object().ok_or_else(|| {
        Error::bad_request("InvalidRequestContent", "The request content must be a JSON object.")
    })
}

fn text_field(body: &Map<String, Value>, field: &str) -> Result<Option<String>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if !text.is_empty() => Ok(Some(text.clone())),
        Some(_) => Err(Error::bad_request(
            "InvalidRequestContent",
            format!("'{field}' must be a non-empty string"),
        )),
    }
}

fn required_text(properties: &Map<String, Value>, field: &str) -> Result<String> {
    match properties.get(field) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        _ => Err(Error::bad_request(
            "InvalidRequestContent",
            format!("'properties.{field}' is required"),
        )),
    }
}

/// The tags a write leaves: the body's (strings only), the current ones on a PATCH without
/// tags, none on a PUT without tags.
fn tags_field(
    body: &Map<String, Value>,
    existing: Option<&ResourceRecord>,
    patch: bool,
) -> Result<String> {
    match body.get("tags") {
        Some(Value::Object(tags)) => {
            if tags.len() > 50
                || tags
                    .iter()
                    .any(|(key, value)| key.is_empty() || key.len() > 512 || !value.is_string())
            {
                return Err(Error::bad_request(
                    "InvalidTag",
                    "tags must be at most 50 string values with names of 1 to 512 characters",
                ));
            }
            Ok(Value::Object(tags.clone()).to_string())
        }
        None | Some(Value::Null) if patch => {
            Ok(existing.map_or_else(|| "{}".to_owned(), |row| row.tags.clone()))
        }
        None | Some(Value::Null) => Ok("{}".to_owned()),
        Some(_) => Err(Error::bad_request("InvalidTag", "'tags' must be an object")),
    }
}

/// Vault names are DNS labels: 3 to 24 letters, digits and single hyphens, starting with a
/// letter and ending with a letter or digit.
fn check_vault_name(name: &str) -> Result<()> {
    let ok = (3..=24).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(
            "VaultNameNotValid",
            format!(
                "The vault name '{name}' is invalid: use 3 to 24 letters, digits and single hyphens, starting with a letter and ending with a letter or digit."
            ),
        ))
    }
}

fn group_not_found(name: &str) -> Error {
    Error::not_found(
        "ResourceGroupNotFound",
        format!("Resource group '{name}' could not be found."),
    )
}

/// The ARM error for a missing resource.
pub fn resource_not_found(id: &ResourceId, group: &str) -> Error {
    Error::not_found(
        "ResourceNotFound",
        format!(
            "The Resource '{}/{}' under resource group '{group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
            id.resource_type().unwrap_or_default(),
            id.name().unwrap_or_default()
        ),
    )
}

/// A row as ARM returns it. `vault_host` is where vaults are served now (`vault.{suffix}[:port]`):
/// a vault's `vaultUri` is derived from it.
pub fn render(record: &ResourceRecord, vault_host: &str) -> Value {
    let tags: Value = serde_json::from_str(&record.tags).unwrap_or_else(|_| json!({}));
    if record.type_key == GROUP_TYPE_KEY {
        return json!({
            "id": record.id,
            "name": record.name,
            "type": RESOURCE_GROUP,
            "location": record.location,
            "tags": tags,
            "managedBy": null,
            "properties": {"provisioningState": "Succeeded"},
        });
    }
    let extras: Map<String, Value> = serde_json::from_str(&record.properties).unwrap_or_default();
    let type_name = extras
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| record.type_key.clone());
    let mut out = Map::new();
    out.insert("id".to_owned(), json!(record.id));
    out.insert("name".to_owned(), json!(record.name));
    out.insert("type".to_owned(), json!(type_name));
    if !type_name.eq_ignore_ascii_case(types::FEDERATED_CREDENTIAL) {
        out.insert("location".to_owned(), json!(record.location));
        out.insert("tags".to_owned(), tags);
    }
    for field in ["kind", "sku", "zones"] {
        if let Some(value) = extras.get(field) {
            out.insert(field.to_owned(), value.clone());
        }
    }
    let mut properties = extras.get("properties").cloned().unwrap_or_else(|| json!({}));
    if record.type_key == types::VAULT.to_ascii_lowercase()
        && let Some(map) = properties.as_object_mut()
    {
        map.insert(
            "vaultUri".to_owned(),
            json!(format!("https://{}.{vault_host}/", record.name.to_ascii_lowercase())),
        );
    }
    out.insert("properties".to_owned(), properties);
    if let Some(identity) =
        record.identity.as_deref().and_then(|text| serde_json::from_str::<Value>(text).ok())
    {
        out.insert("identity".to_owned(), identity);
    }
    Value::Object(out)
}
