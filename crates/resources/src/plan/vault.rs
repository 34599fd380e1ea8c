//! Key vaults: global DNS-label names, RBAC authorization only, soft delete settings.

use serde_json::{Value, json};

use crate::model::Resource;
use crate::plan::{Context, Rows};
use crate::{Error, Result};

const RETENTION_DAYS_DEFAULT: i64 = 90;

pub(super) fn plan(context: &Context<'_>, rows: &Rows, resource: &mut Resource) -> Result<()> {
    check_vault_name(&resource.name)?;
    if rows.existing.is_none() && rows.vault_name_taken {
        return Err(Error::Conflict(format!(
            "The vault name '{}' is already in use.",
            resource.name
        )));
    }
    let properties = &mut resource.properties;
    if properties.get("enableRbacAuthorization").is_some_and(|value| value == &json!(false)) {
        return Err(Error::bad_request(
            "BadRequest",
            "Ambient vaults use RBAC authorization only; 'enableRbacAuthorization' must be true.",
        ));
    }
    let retention = properties
        .get("softDeleteRetentionInDays")
        .and_then(Value::as_i64)
        .unwrap_or(RETENTION_DAYS_DEFAULT);
    if !(7..=90).contains(&retention) {
        return Err(Error::bad_request(
            "BadRequest",
            "'softDeleteRetentionInDays' must be between 7 and 90.",
        ));
    }
    let soft_delete = properties.get("enableSoftDelete").and_then(Value::as_bool).unwrap_or(true);
    properties.insert("enableRbacAuthorization".to_owned(), json!(true));
    properties.insert("enableSoftDelete".to_owned(), json!(soft_delete));
    properties.insert("softDeleteRetentionInDays".to_owned(), json!(retention));
    properties.insert("tenantId".to_owned(), json!(context.tenant_id));
    properties.entry("sku").or_insert_with(|| json!({"family": "A", "name": "standard"}));
    Ok(())
}

/// The soft-delete policy a vault's properties describe.
pub fn policy(resource: &Resource) -> (bool, i64) {
    (
        resource.properties.get("enableSoftDelete").and_then(Value::as_bool).unwrap_or(true),
        resource
            .properties
            .get("softDeleteRetentionInDays")
            .and_then(Value::as_i64)
            .unwrap_or(RETENTION_DAYS_DEFAULT),
    )
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
