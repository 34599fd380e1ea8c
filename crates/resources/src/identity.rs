//! The `identity` block of compute resources: parsing what a request asks for (PUT replaces,
//! PATCH merges with `null` removing a user-assigned identity) and the canonical type strings.

use domain::ResourceId;
use serde_json::Value;

use crate::types::USER_ASSIGNED_IDENTITY;
use crate::{Error, Result};

/// Which identities a resource holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentitySpec {
    pub system: bool,
    /// User-assigned identities, each once, in the order first given.
    pub user: Vec<ResourceId>,
}

impl IdentitySpec {
    /// `None`, `SystemAssigned`, `UserAssigned` or `SystemAssigned, UserAssigned`.
    pub fn type_string(&self) -> &'static str {
        match (self.system, !self.user.is_empty()) {
            (false, false) => "None",
            (true, false) => "SystemAssigned",
            (false, true) => "UserAssigned",
            (true, true) => "SystemAssigned, UserAssigned",
        }
    }

    fn add_user(&mut self, id: ResourceId) {
        if !self.user.contains(&id) {
            self.user.push(id);
        }
    }

    /// The spec a resource's current identity block describes.
    pub fn of(block: Option<&crate::model::IdentityBlock>) -> IdentitySpec {
        let Some(block) = block else { return IdentitySpec::default() };
        IdentitySpec {
            system: block.system.is_some(),
            user: block.user.iter().map(|user| user.id.clone()).collect(),
        }
    }
}

/// Parses an identity `type` into (system-assigned, user-assigned).
pub fn parse_type(text: &str) -> Result<(bool, bool)> {
    let mut system = false;
    let mut user = false;
    for part in text.split(',').map(str::trim) {
        match part.to_ascii_lowercase().as_str() {
            "systemassigned" => system = true,
            "userassigned" => user = true,
            "none" if !text.contains(',') => {}
            _ => {
                return Err(Error::bad_request(
                    "InvalidIdentityType",
                    format!(
                        "The identity type '{text}' is invalid. Allowed: None, SystemAssigned, UserAssigned, 'SystemAssigned, UserAssigned'."
                    ),
                ));
            }
        }
    }
    Ok((system, user))
}

/// What a PUT asks for: `None` when the body has no `identity` (the current one is kept).
pub fn parse_put(value: Option<&Value>) -> Result<Option<IdentitySpec>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(block) => apply_patch(&IdentitySpec::default(), block).map(Some),
    }
}

/// Applies a PATCH `identity` block to `current`.
pub fn apply_patch(current: &IdentitySpec, block: &Value) -> Result<IdentitySpec> {
    let Some(map) = block.as_object() else {
        return Err(Error::bad_request("InvalidRequestContent", "'identity' must be an object"));
    };
    let mut next = current.clone();
    let mut type_allows_user = !current.user.is_empty();
    if let Some(text) = map.get("type") {
        let text = text.as_str().ok_or_else(|| {
            Error::bad_request("InvalidRequestContent", "'identity.type' must be a string")
        })?;
        let (system, user) = parse_type(text)?;
        next.system = system;
        type_allows_user = user;
        if !user {
            next.user.clear();
        }
    }
    if let Some(users) = map.get("userAssignedIdentities").filter(|users| !users.is_null()) {
        let users = users.as_object().ok_or_else(|| {
            Error::bad_request(
                "InvalidRequestContent",
                "'identity.userAssignedIdentities' must be an object",
            )
        })?;
        if !type_allows_user && !users.is_empty() && users.values().any(|value| !value.is_null()) {
            return Err(Error::bad_request(
                "InvalidIdentityValues",
                "'userAssignedIdentities' is given but the identity type does not include UserAssigned",
            ));
        }
        for (key, value) in users {
            let id = user_identity_id(key)?;
            if value.is_null() {
                next.user.retain(|existing| existing != &id);
            } else {
                next.add_user(id);
            }
        }
    }
    if type_allows_user
        && next.user.is_empty()
        && map.contains_key("type")
        && !current_has_user_only_removed(current, map)
    {
        return Err(Error::bad_request(
            "InvalidIdentityValues",
            "the identity type includes UserAssigned but 'userAssignedIdentities' names none",
        ));
    }
    Ok(next)
}

/// A PATCH that removes the last user identity with `null` while keeping type UserAssigned is
/// allowed: the type follows what remains.
fn current_has_user_only_removed(
    current: &IdentitySpec,
    map: &serde_json::Map<String, Value>,
) -> bool {
    !current.user.is_empty()
        && map
            .get("userAssignedIdentities")
            .and_then(Value::as_object)
            .is_some_and(|users| !users.is_empty() && users.values().all(Value::is_null))
}

fn user_identity_id(key: &str) -> Result<ResourceId> {
    let invalid = || {
        Error::bad_request(
            "InvalidIdentityValues",
            format!("'{key}' is not the resource id of a user-assigned identity"),
        )
    };
    // Not an id at all (a bare name, as `az webapp identity assign --identities NAME` sends):
    // Azure's own answer.
    if !key.starts_with("/subscriptions/") && !key.starts_with("/providers/") {
        return Err(Error::bad_request(
            "LinkedInvalidPropertyId",
            format!(
                "Property id '{key}' at path '' is invalid. Expect fully qualified resource Id that start with '/subscriptions/{{subscriptionId}}' or '/providers/{{resourceProviderNamespace}}/'."
            ),
        ));
    }
    let id = ResourceId::parse(key).map_err(|_| invalid())?;
    if !id.resource_type().is_some_and(|kind| kind.eq_ignore_ascii_case(USER_ASSIGNED_IDENTITY)) {
        return Err(invalid());
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID1: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1";
    const ID2: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id2";

    #[track_caller]
    fn check(current: &str, patch: &str, expect: expect_test::Expect) {
        let block = crate::model::IdentityBlock::from_json(&serde_json::from_str(current).unwrap())
            .unwrap();
        let current = IdentitySpec::of(Some(&block));
        let actual = match apply_patch(&current, &serde_json::from_str(patch).unwrap()) {
            Ok(spec) => format!(
                "{} {:?}",
                spec.type_string(),
                spec.user.iter().map(|id| id.name().unwrap().to_owned()).collect::<Vec<_>>()
            ),
            Err(error) => format!("error: {error}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn patches_merge_as_arm_does() {
        let none = r#"{"type":"None"}"#;
        let both = format!(
            r#"{{"type":"SystemAssigned, UserAssigned","principalId":"p","tenantId":"t","userAssignedIdentities":{{"{ID1}":{{}}}}}}"#
        );
        check(none, r#"{"type":"SystemAssigned"}"#, expect_test::expect![[r#"SystemAssigned []"#]]);
        check(
            none,
            &format!(
                r#"{{"type":"UserAssigned","userAssignedIdentities":{{"{ID1}":{{}},"{ID2}":{{}}}}}}"#
            ),
            expect_test::expect![[r#"UserAssigned ["id1", "id2"]"#]],
        );
        check(
            &both,
            &format!(r#"{{"userAssignedIdentities":{{"{ID1}":null}}}}"#),
            expect_test::expect![[r#"SystemAssigned []"#]],
        );
        check(
            &both,
            r#"{"type":"UserAssigned"}"#,
            expect_test::expect![[r#"UserAssigned ["id1"]"#]],
        );
        check(&both, r#"{"type":"None"}"#, expect_test::expect![[r#"None []"#]]);
        check(
            &both,
            r#"{"type":"SystemAssigned,UserAssigned"}"#,
            expect_test::expect![[r#"SystemAssigned, UserAssigned ["id1"]"#]],
        );
    }

    #[test]
    fn bad_blocks_are_refused() {
        let none = r#"{"type":"None"}"#;
        check(
            none,
            r#"{"type":"Sometimes"}"#,
            expect_test::expect![[
                r#"error: The identity type 'Sometimes' is invalid. Allowed: None, SystemAssigned, UserAssigned, 'SystemAssigned, UserAssigned'."#
            ]],
        );
        check(
            none,
            r#"{"type":"UserAssigned"}"#,
            expect_test::expect![[
                r#"error: the identity type includes UserAssigned but 'userAssignedIdentities' names none"#
            ]],
        );
        check(
            none,
            r#"{"type":"SystemAssigned, UserAssigned","userAssignedIdentities":{"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm":{}}}"#,
            expect_test::expect![[
                r#"error: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm' is not the resource id of a user-assigned identity"#
            ]],
        );
        check(
            none,
            &format!(r#"{{"type":"SystemAssigned","userAssignedIdentities":{{"{ID1}":{{}}}}}}"#),
            expect_test::expect![[
                r#"error: 'userAssignedIdentities' is given but the identity type does not include UserAssigned"#
            ]],
        );
    }

    #[test]
    fn put_without_identity_keeps_the_current_one() {
        assert_eq!(parse_put(None).unwrap(), None);
        assert_eq!(
            parse_put(Some(&serde_json::json!({"type": "SystemAssigned"})))
                .unwrap()
                .unwrap()
                .type_string(),
            "SystemAssigned"
        );
    }
}
