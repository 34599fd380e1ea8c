//! Role definitions: permission blocks of action patterns, and the checks a custom role must
//! pass before it is stored.
//!
//! The shape follows Azure's `Microsoft.Authorization/roleDefinitions`
//! (`protocols/06-arm-rbac.md` §5). The wire form lives in `api-types` and the stored form in
//! `store`; both convert to and from these types by hand.

use domain::{Guid, ResourceId, ResourceIdError};

use crate::action::action_matches;
use crate::builtin::builtin_role_by_id;
use crate::decision::ActionKind;

/// Longest action pattern a custom role may hold. Real Azure actions stay well under 200
/// characters; the bound keeps [`action_matches`] cheap.
pub const ACTION_PATTERN_CHARS_MAX: usize = 512;

/// Most action patterns (all four lists of all blocks together) a custom role may hold. With
/// [`ACTION_PATTERN_CHARS_MAX`] it bounds the cost of one role in [`crate::authorize`].
pub const ROLE_PATTERNS_MAX: usize = 1000;

/// One permission block of a role definition.
///
/// An action is allowed by the block when it matches some pattern in `actions` and none in
/// `not_actions`; data actions likewise with `data_actions` and `not_data_actions`. The `not_`
/// lists subtract from their own block only: they are not denials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permission {
    /// Control-plane action patterns granted (`actions`).
    pub actions: Vec<String>,
    /// Control-plane action patterns taken back out of `actions` (`notActions`).
    pub not_actions: Vec<String>,
    /// Data-plane action patterns granted (`dataActions`).
    pub data_actions: Vec<String>,
    /// Data-plane action patterns taken back out of `data_actions` (`notDataActions`).
    pub not_data_actions: Vec<String>,
}

/// Whether a role ships with the platform or was defined by a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleType {
    /// Built into the platform with Azure's GUID (`BuiltInRole` on the wire).
    BuiltIn,
    /// Defined by an administrator (`CustomRole` on the wire).
    Custom,
}

/// A role: a named set of permission blocks that can be assigned at the listed scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleDefinition {
    /// The role definition's name, a GUID (the last segment of its resource id).
    pub id: Guid,
    /// Display name (`roleName`), unique per tenant and compared case-insensitively.
    pub role_name: String,
    /// Built-in or custom.
    pub role_type: RoleType,
    /// Free text shown to administrators.
    pub description: String,
    /// Scopes at which the role may be assigned (`/` for the built-in roles), as given.
    pub assignable_scopes: Vec<String>,
    /// The permission blocks; the role allows the union of what each block allows.
    pub permissions: Vec<Permission>,
}

/// Why a custom role definition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    /// `role_name` is empty or only whitespace.
    #[error("role name is empty")]
    EmptyName,
    /// The definition is not marked [`RoleType::Custom`].
    #[error("a custom role definition must have role type custom")]
    NotCustom,
    /// The id is the GUID of a built-in role, which cannot be redefined.
    #[error("role definition id {0} belongs to a built-in role")]
    BuiltInId(Guid),
    /// `permissions` is empty.
    #[error("role definition has no permission block")]
    NoPermissions,
    /// An action pattern is the empty string.
    #[error("action pattern is empty")]
    EmptyAction,
    /// An action pattern holds whitespace or a control character.
    #[error("action pattern has whitespace or a control character: {0:?}")]
    BadAction(String),
    /// An action pattern is longer than [`ACTION_PATTERN_CHARS_MAX`].
    #[error("action pattern is longer than {ACTION_PATTERN_CHARS_MAX} characters")]
    ActionTooLong,
    /// The blocks hold more than [`ROLE_PATTERNS_MAX`] patterns in all.
    #[error("role definition has more than {ROLE_PATTERNS_MAX} action patterns")]
    TooManyPatterns,
    /// `assignable_scopes` is empty.
    #[error("role definition has no assignable scope")]
    NoAssignableScopes,
    /// An assignable scope is not a resource id or scope.
    #[error("assignable scope {scope:?} is not a valid scope")]
    BadAssignableScope {
        /// The scope as given.
        scope: String,
        /// What the parser objected to.
        #[source]
        source: ResourceIdError,
    },
}

/// Checks a custom role definition before it is created or updated.
///
/// Requires: role type [`RoleType::Custom`], an id that is not a built-in role's, a non-empty
/// name, at least one permission block, action patterns that are non-empty, free of whitespace
/// and control characters and within the limits above, and at least one assignable scope, each
/// of which parses as a [`ResourceId`]. Returns the first problem found.
pub fn validate_custom_role(definition: &RoleDefinition) -> Result<(), RoleError> {
    if definition.role_type != RoleType::Custom {
        return Err(RoleError::NotCustom);
    }
    if builtin_role_by_id(&definition.id).is_some() {
        return Err(RoleError::BuiltInId(definition.id));
    }
    validate_shape(definition)
}

impl Permission {
    /// True when this block allows `action` of the given kind: it matches some granting pattern
    /// of that kind and no subtracting pattern of the same kind in this block.
    pub fn allows(&self, action: &str, kind: ActionKind) -> bool {
        let (granted, subtracted) = match kind {
            ActionKind::Control => (&self.actions, &self.not_actions),
            ActionKind::Data => (&self.data_actions, &self.not_data_actions),
        };
        granted.iter().any(|pattern| action_matches(pattern, action))
            && !subtracted.iter().any(|pattern| action_matches(pattern, action))
    }

    /// Every pattern of the block, in all four lists.
    fn patterns(&self) -> impl Iterator<Item = &String> {
        self.actions
            .iter()
            .chain(&self.not_actions)
            .chain(&self.data_actions)
            .chain(&self.not_data_actions)
    }
}

impl RoleDefinition {
    /// True when some permission block allows `action` of the given kind (the union of blocks).
    pub fn allows(&self, action: &str, kind: ActionKind) -> bool {
        self.permissions.iter().any(|permission| permission.allows(action, kind))
    }

    /// True when the role may be assigned at `scope`: `scope` is one of the assignable scopes or
    /// lies below one. Assignable scopes that do not parse count as no scope at all.
    pub fn is_assignable_at(&self, scope: &ResourceId) -> bool {
        self.assignable_scopes.iter().any(|assignable| {
            ResourceId::parse(assignable).is_ok_and(|assignable| scope.is_within(&assignable))
        })
    }
}

/// The checks that hold for every role definition, built-in ones included.
pub(crate) fn validate_shape(definition: &RoleDefinition) -> Result<(), RoleError> {
    if definition.role_name.trim().is_empty() {
        return Err(RoleError::EmptyName);
    }
    if definition.permissions.is_empty() {
        return Err(RoleError::NoPermissions);
    }
    let mut pattern_count = 0;
    for pattern in definition.permissions.iter().flat_map(Permission::patterns) {
        pattern_count += 1;
        if pattern_count > ROLE_PATTERNS_MAX {
            return Err(RoleError::TooManyPatterns);
        }
        validate_pattern(pattern)?;
    }
    if definition.assignable_scopes.is_empty() {
        return Err(RoleError::NoAssignableScopes);
    }
    for scope in &definition.assignable_scopes {
        ResourceId::parse(scope)
            .map_err(|source| RoleError::BadAssignableScope { scope: scope.clone(), source })?;
    }
    Ok(())
}

fn validate_pattern(pattern: &str) -> Result<(), RoleError> {
    if pattern.is_empty() {
        return Err(RoleError::EmptyAction);
    }
    if pattern.len() > ACTION_PATTERN_CHARS_MAX {
        return Err(RoleError::ActionTooLong);
    }
    if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(RoleError::BadAction(pattern.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use crate::role::{
        ACTION_PATTERN_CHARS_MAX, Permission, ROLE_PATTERNS_MAX, RoleDefinition, RoleType,
        validate_custom_role,
    };

    /// A valid custom role; each test breaks one thing.
    fn custom_role() -> RoleDefinition {
        RoleDefinition {
            id: "11111111-2222-3333-4444-555555555555".parse().unwrap(),
            role_name: "VM Restarter".to_owned(),
            role_type: RoleType::Custom,
            description: "Restarts virtual machines.".to_owned(),
            assignable_scopes: vec!["/subscriptions/s1".to_owned()],
            permissions: vec![Permission {
                actions: vec![
                    "Microsoft.Compute/virtualMachines/read".to_owned(),
                    "Microsoft.Compute/virtualMachines/restart/action".to_owned(),
                ],
                ..Permission::default()
            }],
        }
    }

    #[track_caller]
    fn check(change: impl FnOnce(&mut RoleDefinition), expect: Expect) {
        let mut definition = custom_role();
        change(&mut definition);
        let actual = match validate_custom_role(&definition) {
            Ok(()) => "ok".to_owned(),
            Err(error) => format!("{error:?}\n{error}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn accepts_a_well_formed_custom_role() {
        check(|_| {}, expect![[r#"ok"#]]);
    }

    #[test]
    fn accepts_root_and_resource_scopes() {
        check(
            |role| {
                role.assignable_scopes = vec![
                    "/".to_owned(),
                    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v"
                        .to_owned(),
                ]
            },
            expect![[r#"ok"#]],
        );
    }

    #[test]
    fn rejects_an_empty_name() {
        check(
            |role| role.role_name = "  ".to_owned(),
            expect![[r#"
                EmptyName
                role name is empty"#]],
        );
    }

    #[test]
    fn rejects_a_built_in_type() {
        check(
            |role| role.role_type = RoleType::BuiltIn,
            expect![[r#"
                NotCustom
                a custom role definition must have role type custom"#]],
        );
    }

    #[test]
    fn rejects_a_built_in_id() {
        check(
            |role| role.id = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635".parse().unwrap(),
            expect![[r#"
                BuiltInId(8e3af657-a8ff-443c-a75c-2fe8c4bcb635)
                role definition id 8e3af657-a8ff-443c-a75c-2fe8c4bcb635 belongs to a built-in role"#]],
        );
    }

    #[test]
    fn rejects_no_permission_block() {
        check(
            |role| role.permissions.clear(),
            expect![[r#"
                NoPermissions
                role definition has no permission block"#]],
        );
    }

    #[test]
    fn rejects_an_empty_action() {
        check(
            |role| role.permissions[0].not_data_actions.push(String::new()),
            expect![[r#"
                EmptyAction
                action pattern is empty"#]],
        );
    }

    #[test]
    fn rejects_whitespace_in_an_action() {
        check(
            |role| role.permissions[0].data_actions.push("Microsoft.KeyVault/ vaults/*".to_owned()),
            expect![[r#"
                BadAction("Microsoft.KeyVault/ vaults/*")
                action pattern has whitespace or a control character: "Microsoft.KeyVault/ vaults/*""#]],
        );
        check(
            |role| role.permissions[0].not_actions.push("a/\u{0}".to_owned()),
            expect![[r#"
                BadAction("a/\0")
                action pattern has whitespace or a control character: "a/\0""#]],
        );
    }

    #[test]
    fn rejects_oversized_patterns() {
        check(
            |role| role.permissions[0].actions.push("a".repeat(ACTION_PATTERN_CHARS_MAX + 1)),
            expect![[r#"
                ActionTooLong
                action pattern is longer than 512 characters"#]],
        );
        check(
            |role| {
                role.permissions[0].actions = vec!["*/read".to_owned(); ROLE_PATTERNS_MAX + 1];
            },
            expect![[r#"
                TooManyPatterns
                role definition has more than 1000 action patterns"#]],
        );
    }

    #[test]
    fn rejects_missing_or_bad_assignable_scopes() {
        check(
            |role| role.assignable_scopes.clear(),
            expect![[r#"
                NoAssignableScopes
                role definition has no assignable scope"#]],
        );
        check(
            |role| role.assignable_scopes.push("subscriptions/s1".to_owned()),
            expect![[r#"
                BadAssignableScope { scope: "subscriptions/s1", source: NotAbsolute("subscriptions/s1") }
                assignable scope "subscriptions/s1" is not a valid scope"#]],
        );
    }

    #[test]
    fn assignable_scopes_cover_their_descendants_only() {
        let role = custom_role();
        let at = |text: &str| role.is_assignable_at(&domain::ResourceId::parse(text).unwrap());
        assert!(at("/subscriptions/S1"));
        assert!(at("/subscriptions/s1/resourceGroups/rg"));
        assert!(!at("/subscriptions/s10"));
        assert!(!at("/"));
    }
}
