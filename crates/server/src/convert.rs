//! Hand-written conversions between storage rows, domain types and wire shapes.

use rbac::{Permission, RoleDefinition, RoleType};
use serde::{Deserialize, Serialize};

/// A permission block as stored and as ARM prints it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionJson {
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub not_actions: Vec<String>,
    #[serde(default)]
    pub data_actions: Vec<String>,
    #[serde(default)]
    pub not_data_actions: Vec<String>,
}

impl From<&Permission> for PermissionJson {
    fn from(permission: &Permission) -> Self {
        PermissionJson {
            actions: permission.actions.clone(),
            not_actions: permission.not_actions.clone(),
            data_actions: permission.data_actions.clone(),
            not_data_actions: permission.not_data_actions.clone(),
        }
    }
}

impl From<PermissionJson> for Permission {
    fn from(json: PermissionJson) -> Self {
        Permission {
            actions: json.actions,
            not_actions: json.not_actions,
            data_actions: json.data_actions,
            not_data_actions: json.not_data_actions,
        }
    }
}

/// A custom role definition row as a domain role; `None` (and a warning) for a corrupt row.
pub fn role_definition_from_record(record: &store::RoleDefinitionRecord) -> Option<RoleDefinition> {
    let id = record.id.parse().ok()?;
    let permissions: Vec<PermissionJson> = match serde_json::from_str(&record.permissions) {
        Ok(permissions) => permissions,
        Err(error) => {
            tracing::warn!(role = %record.id, %error, "stored role definition has unreadable permissions");
            return None;
        }
    };
    let assignable_scopes: Vec<String> =
        serde_json::from_str(&record.assignable_scopes).unwrap_or_default();
    Some(RoleDefinition {
        id,
        role_name: record.role_name.clone(),
        role_type: if record.role_type == "BuiltInRole" {
            RoleType::BuiltIn
        } else {
            RoleType::Custom
        },
        description: record.description.clone(),
        assignable_scopes,
        permissions: permissions.into_iter().map(Permission::from).collect(),
    })
}

/// `2024-01-01 00:00:00Z`, the timestamp format of Entra's error bodies.
pub fn entra_timestamp(time: domain::UnixTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    rfc_time(time).format(&format).unwrap_or_default()
}

/// RFC 3339 with seconds precision and `Z`, as Graph and ARM print times.
pub fn rfc3339(time: domain::UnixTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    rfc_time(time).format(&format).unwrap_or_default()
}

fn rfc_time(time: domain::UnixTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(time.secs())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Parses an RFC 3339 time (as Graph's `endDateTime`).
pub fn parse_rfc3339(text: &str) -> Option<domain::UnixTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|parsed| domain::UnixTime::from_secs(parsed.unix_timestamp()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_entra_and_graph_do() {
        let time = domain::UnixTime::from_secs(1_704_067_205);
        assert_eq!(entra_timestamp(time), "2024-01-01 00:00:05Z");
        assert_eq!(rfc3339(time), "2024-01-01T00:00:05Z");
        assert_eq!(parse_rfc3339("2024-01-01T00:00:05Z"), Some(time));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
