//! Reading the rows a plan needs, before planning: the only part of `resources` that talks to
//! the store. Each loader reads exactly what its plan's rules look at, and parses every row into
//! the typed model once.

use std::collections::BTreeSet;

use domain::ResourceId;
use serde_json::Value;
use store::{Page, ResourceFilter, Store};

use crate::model::Resource;
use crate::plan::{DeleteRows, Rows};
use crate::types::{self, Kind};
use crate::{Error, Result};

const LIST_BATCH: i64 = 500;

/// A resource or group by id, parsed.
pub async fn resource(store: &dyn Store, id: &ResourceId) -> Result<Option<Resource>> {
    match store.get_resource(id.key()).await? {
        Some(record) => Ok(Some(Resource::from_record(&record)?)),
        None => Ok(None),
    }
}

/// Every row `filter` matches, page by page.
pub async fn all(store: &dyn Store, filter: &ResourceFilter) -> Result<Vec<Resource>> {
    let mut page = Page::first(LIST_BATCH);
    let mut out = Vec::new();
    loop {
        let rows = store.list_resources(filter, &page).await?;
        let Some(last) = rows.last() else { break };
        page.after_key = Some(last.key.clone());
        for row in &rows {
            out.push(Resource::from_record(row)?);
        }
        if (rows.len() as i64) < LIST_BATCH {
            break;
        }
    }
    Ok(out)
}

/// The rows a PUT or PATCH of `id` with `body` reads.
pub async fn for_put(store: &dyn Store, id: &ResourceId, body: &Value) -> Result<Rows> {
    let mut rows = Rows::default();
    let Some(subscription) = id.subscription_id() else { return Ok(rows) };
    rows.subscription = store.get_subscription(&subscription.to_ascii_lowercase()).await?;
    rows.existing = resource(store, id).await?;
    if id.is_resource_group() {
        return Ok(rows);
    }
    if let Some(group) = id.resource_group()
        && let Ok(group_id) = ResourceId::resource_group_id(subscription, group)
    {
        rows.group = resource(store, &group_id).await?;
    }
    let Some(known) = id.resource_type().and_then(types::lookup) else { return Ok(rows) };
    match known.kind {
        Kind::Compute => {
            // Only the identities the body names: each at most once.
            let named: BTreeSet<String> = body["identity"]["userAssignedIdentities"]
                .as_object()
                .map(|users| users.keys().map(|key| key.to_ascii_lowercase()).collect())
                .unwrap_or_default();
            let mut wanted: Vec<ResourceId> =
                named.iter().filter_map(|key| ResourceId::parse(key).ok()).collect();
            // A PATCH keeps the identities already attached.
            if let Some(block) =
                rows.existing.as_ref().and_then(|resource| resource.identity.as_ref())
            {
                for user in &block.user {
                    if !named.contains(user.id.key()) {
                        wanted.push(user.id.clone());
                    }
                }
            }
            for identity_id in wanted {
                if let Some(identity) = resource(store, &identity_id).await? {
                    rows.user_identities.push(identity);
                }
            }
        }
        Kind::FederatedCredential => {
            if let Some(parent) = parent_of(id) {
                rows.parent = resource(store, &parent).await?;
                rows.federated_siblings =
                    store.list_federated_credentials(parent.key()).await?.len();
            }
        }
        Kind::Vault => {
            let name = id.name().unwrap_or_default();
            let filter = ResourceFilter {
                type_key: Some(types::VAULT.to_ascii_lowercase()),
                ..ResourceFilter::default()
            };
            rows.vault_name_taken = all(store, &filter)
                .await?
                .iter()
                .any(|vault| vault.name.eq_ignore_ascii_case(name) && vault.key() != id.key());
        }
        _ => {}
    }
    Ok(rows)
}

/// The rows the delete of `id` reads; `None` when it does not exist.
pub async fn for_delete(store: &dyn Store, id: &ResourceId) -> Result<Option<DeleteRows>> {
    let Some(target) = resource(store, id).await? else { return Ok(None) };
    let mut doomed = Vec::new();
    match target.kind() {
        Kind::ResourceGroup => {
            let filter = ResourceFilter {
                subscription_id: Some(target.subscription_id.clone()),
                resource_group_key: target.id.resource_group().map(str::to_ascii_lowercase),
                ..ResourceFilter::default()
            };
            doomed.extend(
                all(store, &filter)
                    .await?
                    .into_iter()
                    .filter(|member| member.key() != target.key()),
            );
        }
        Kind::UserAssignedIdentity => {
            let filter = ResourceFilter {
                key_prefix: Some(format!("{}/", target.key())),
                ..ResourceFilter::default()
            };
            doomed.extend(all(store, &filter).await?);
        }
        _ => {}
    }
    doomed.push(target);
    let doomed_keys: BTreeSet<String> =
        doomed.iter().map(|resource| resource.key().to_owned()).collect();
    let mut principals = Vec::new();
    let mut holder_keys = BTreeSet::new();
    for resource in &doomed {
        principals.extend(store.list_principals_managed_by(resource.key()).await?);
        if resource.kind() == Kind::UserAssignedIdentity {
            for holder in store.list_resources_holding_identity(resource.key()).await? {
                if !doomed_keys.contains(&holder) {
                    holder_keys.insert(holder);
                }
            }
        }
    }
    let mut holders = Vec::new();
    for key in holder_keys {
        let record = store
            .get_resource(&key)
            .await?
            .ok_or_else(|| Error::Conflict(format!("'{key}' changed during the delete; retry")))?;
        holders.push(Resource::from_record(&record)?);
    }
    Ok(Some(DeleteRows { doomed, principals, holders }))
}

/// The identity a federated credential id belongs to.
pub fn parent_of(id: &ResourceId) -> Option<ResourceId> {
    let text = id.as_str();
    let cut = text.rfind('/').and_then(|last| text[..last].rfind('/'))?;
    ResourceId::parse(&text[..cut]).ok()
}
