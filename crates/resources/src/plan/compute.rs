//! Compute resources (VMs, scale sets, web and function apps, container groups, clusters,
//! logic apps, storage accounts): the identity block, the host placement and the Ambient
//! settings (`properties.ambient`, checked by `crate::workload`).

use serde_json::{Value, json};
use store::Write;

use crate::identity::{self, IdentitySpec};
use crate::model::{IdentityBlock, Resource, SystemIdentity, UserIdentity};
use crate::plan::{Context, DEFAULT_HOST, PutRequest, Rows, managed_principal};
use crate::{Error, Result};

const VIRTUAL_MACHINES: &str = "Microsoft.Compute/virtualMachines";
const HOST_ID_CHARS_MAX: usize = 64;

pub(super) fn plan(
    context: &Context<'_>,
    rows: &Rows,
    request: PutRequest<'_>,
    resource: &mut Resource,
    writes: &mut Vec<Write>,
    attach: &mut Vec<domain::ResourceId>,
) -> Result<()> {
    let existing = rows.existing.as_ref();
    let current_block = existing.and_then(|resource| resource.identity.as_ref());
    let current = IdentitySpec::of(current_block);
    let requested = match (request.patch, request.body.get("identity")) {
        (_, None) => None,
        (true, Some(block)) if !block.is_null() => Some(identity::apply_patch(&current, block)?),
        (_, block) => identity::parse_put(block)?,
    };
    if let Some(requested) = requested {
        let mut user = Vec::new();
        for id in &requested.user {
            let holder = rows
                .user_identities
                .iter()
                .find(|identity| identity.key() == id.key())
                .ok_or_else(|| {
                    Error::bad_request(
                        "InvalidIdentityValues",
                        format!("The user-assigned identity '{id}' was not found."),
                    )
                })?;
            let principal = holder.identity_principal().ok_or_else(|| {
                Error::Corrupt(format!("user-assigned identity {} has no principal", holder.id))
            })?;
            if !current.user.contains(id) {
                attach.push(holder.id.clone());
            }
            user.push(UserIdentity {
                id: holder.id.clone(),
                principal_id: principal.principal_id,
                client_id: principal.client_id,
            });
        }
        let current_system = current_block.and_then(|block| block.system.clone());
        let system = match (current_system, requested.system) {
            (Some(kept), true) => Some(kept),
            (None, true) => {
                let principal =
                    managed_principal(context, &resource.name, request.id.key(), "SystemAssigned");
                let system = SystemIdentity {
                    principal_id: principal.object_id.clone(),
                    tenant_id: context.tenant_id.to_owned(),
                };
                writes.push(Write::PutPrincipal(principal));
                Some(system)
            }
            (Some(removed), false) => {
                writes.push(Write::DeletePrincipal { object_id: removed.principal_id });
                None
            }
            (None, false) => None,
        };
        resource.identity = Some(IdentityBlock { system, user });
    }
    let host = match resource.properties.get("hostId") {
        Some(Value::String(host)) => host.clone(),
        Some(_) => {
            return Err(Error::bad_request(
                "InvalidRequestContent",
                "'properties.hostId' must be a string",
            ));
        }
        None => existing
            .and_then(|resource| resource.host.clone())
            .unwrap_or_else(|| DEFAULT_HOST.to_owned()),
    };
    if host.is_empty() || host.len() > HOST_ID_CHARS_MAX {
        return Err(Error::bad_request(
            "InvalidRequestContent",
            "'properties.hostId' must be 1 to 64 characters",
        ));
    }
    resource.properties.insert("hostId".to_owned(), json!(host));
    crate::workload::normalize(&mut resource.properties)?;
    // Write-only secrets of the OS profile are never kept (Azure never returns them either).
    if let Some(os_profile) =
        resource.properties.get_mut("osProfile").and_then(Value::as_object_mut)
    {
        os_profile.shift_remove("adminPassword");
        os_profile.shift_remove("customData");
    }
    if resource.resource_type.name == VIRTUAL_MACHINES {
        let vm_id = existing
            .and_then(|resource| resource.properties.get("vmId").cloned())
            .unwrap_or_else(|| json!((context.new_guid)().to_string()));
        resource.properties.entry("vmId").or_insert(vm_id);
    }
    resource.host = Some(host);
    Ok(())
}
