//! User-assigned identities: a principal for the identity's whole life, created with it.

use serde_json::{Map, Value, json};
use store::Write;

use crate::model::Resource;
use crate::plan::{Context, managed_principal};

pub(super) fn plan(
    context: &Context<'_>,
    existing: Option<&Resource>,
    resource: &mut Resource,
    writes: &mut Vec<Write>,
) {
    let (principal_id, client_id) = match existing.and_then(Resource::identity_principal) {
        Some(principal) => (principal.principal_id, principal.client_id),
        None => {
            let principal =
                managed_principal(context, &resource.name, resource.key(), "UserAssigned");
            let ids = (principal.object_id.clone(), principal.app_id.clone());
            writes.push(Write::PutPrincipal(principal));
            ids
        }
    };
    let isolation =
        resource.properties.get("isolationScope").cloned().unwrap_or_else(|| json!("None"));
    let mut properties = Map::new();
    properties.insert("tenantId".to_owned(), json!(context.tenant_id));
    properties.insert("principalId".to_owned(), Value::String(principal_id));
    properties.insert("clientId".to_owned(), Value::String(client_id));
    properties.insert("isolationScope".to_owned(), isolation);
    resource.properties = properties;
}
