//! Federated identity credentials of user-assigned identities (workload identity federation).

use serde_json::{Value, json};
use store::{FederatedCredentialRecord, Write};

use crate::model::Resource;
use crate::plan::{PutRequest, Rows, required_text};
use crate::{Error, Result};

pub(super) fn plan(
    rows: &Rows,
    request: PutRequest<'_>,
    resource: &mut Resource,
    writes: &mut Vec<Write>,
) -> Result<()> {
    let parent = rows.parent.as_ref().ok_or_else(|| {
        Error::not_found(
            "ParentResourceNotFound",
            format!("The user-assigned identity '{}' was not found.", parent_name(request.id)),
        )
    })?;
    if rows.existing.is_none()
        && rows.federated_siblings >= domain::limits::FEDERATED_CREDENTIALS_PER_IDENTITY_MAX
    {
        return Err(Error::bad_request(
            "BadRequest",
            format!(
                "An identity may have at most {} federated identity credentials.",
                domain::limits::FEDERATED_CREDENTIALS_PER_IDENTITY_MAX
            ),
        ));
    }
    let issuer = required_text(&resource.properties, "issuer")?;
    let subject = required_text(&resource.properties, "subject")?;
    let audiences: Vec<String> = match resource.properties.get("audiences") {
        None | Some(Value::Null) => vec!["api://AzureADTokenExchange".to_owned()],
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        Some(_) => {
            return Err(Error::bad_request(
                "InvalidRequestContent",
                "'properties.audiences' must be a non-empty array of strings",
            ));
        }
    };
    resource.properties.insert("audiences".to_owned(), json!(audiences));
    writes.push(Write::PutFederatedCredential(FederatedCredentialRecord {
        key: resource.key().to_owned(),
        id: resource.id.as_str().to_owned(),
        identity_key: parent.key().to_owned(),
        name: resource.name.clone(),
        issuer,
        subject,
        audiences: json!(audiences).to_string(),
        created_at: resource.created_at,
    }));
    Ok(())
}

/// The identity a credential id names: `.../userAssignedIdentities/{name}/federatedIdentityCredentials/{cred}`.
fn parent_name(id: &domain::ResourceId) -> String {
    let segments: Vec<&str> = id.as_str().split('/').collect();
    segments
        .len()
        .checked_sub(3)
        .and_then(|at| segments.get(at))
        .copied()
        .unwrap_or_default()
        .to_owned()
}
