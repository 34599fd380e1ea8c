//! ARM resource ids and RBAC scopes.
//!
//! Grammar (segment names case-insensitive, values printed as created):
//! `/`, `/subscriptions/{s}`, `/subscriptions/{s}/resourceGroups/{rg}`,
//! `{parent}/providers/{Namespace}/{type}/{name}[/{childType}/{childName}]...` where `{parent}` is
//! any of the above (extension resources such as role assignments hang off any scope).

use std::fmt;

use crate::limits::RESOURCE_ID_CHARS_MAX;

/// A parsed resource id or scope. Comparison and hashing are case-insensitive through
/// [`ResourceId::key`]; [`ResourceId::as_str`] keeps the spelling it was created with.
#[derive(Clone)]
pub struct ResourceId {
    /// The id as given, with a leading `/` and no trailing `/`; `/` for the root scope.
    text: String,
    /// Lower-cased `text`, the identity of the id.
    key: String,
    subscription_id: Option<String>,
    resource_group: Option<String>,
    /// `Namespace/type[/childType...]` of the last provider section, if any.
    resource_type: Option<String>,
    /// The last name segment, if the id names a resource (not the root).
    name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceIdError {
    #[error("resource id must start with '/': {0:?}")]
    NotAbsolute(String),
    #[error("resource id is longer than {RESOURCE_ID_CHARS_MAX} characters")]
    TooLong,
    #[error("resource id has an empty segment: {0:?}")]
    EmptySegment(String),
    #[error("resource id has a character that is not allowed: {0:?}")]
    BadCharacter(String),
    #[error("resource id does not follow the ARM grammar: {0:?}")]
    Grammar(String),
}

impl ResourceId {
    /// Parses a full resource id or scope.
    pub fn parse(text: &str) -> Result<Self, ResourceIdError> {
        if text.len() > RESOURCE_ID_CHARS_MAX {
            return Err(ResourceIdError::TooLong);
        }
        if !text.starts_with('/') {
            return Err(ResourceIdError::NotAbsolute(text.to_owned()));
        }
        if text.chars().any(|c| c.is_control() || matches!(c, '?' | '#' | '\\' | '%')) {
            return Err(ResourceIdError::BadCharacter(text.to_owned()));
        }
        let trimmed = text.trim_end_matches('/');
        if trimmed.is_empty() {
            return Ok(ResourceId::root());
        }
        let segments: Vec<&str> = trimmed[1..].split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(ResourceIdError::EmptySegment(text.to_owned()));
        }
        let grammar = || ResourceIdError::Grammar(text.to_owned());
        let mut index = 0;
        let mut subscription_id = None;
        let mut resource_group = None;
        let mut resource_type = None;
        let mut name = None;
        if segments[0].eq_ignore_ascii_case("subscriptions") {
            let sub = segments.get(1).ok_or_else(grammar)?;
            subscription_id = Some((*sub).to_owned());
            name = Some((*sub).to_owned());
            index = 2;
            if segments.get(index).is_some_and(|s| s.eq_ignore_ascii_case("resourceGroups")) {
                let rg = segments.get(index + 1).ok_or_else(grammar)?;
                resource_group = Some((*rg).to_owned());
                name = Some((*rg).to_owned());
                index += 2;
            }
        }
        while index < segments.len() {
            if !segments[index].eq_ignore_ascii_case("providers") {
                return Err(grammar());
            }
            let namespace = segments.get(index + 1).ok_or_else(grammar)?;
            index += 2;
            let mut types = vec![(*namespace).to_owned()];
            // At least one (type, name) pair must follow a provider namespace.
            let mut pairs = 0;
            while index < segments.len() && !segments[index].eq_ignore_ascii_case("providers") {
                let kind = segments[index];
                let value = segments.get(index + 1).ok_or_else(grammar)?;
                types.push(kind.to_owned());
                name = Some((*value).to_owned());
                index += 2;
                pairs += 1;
            }
            if pairs == 0 {
                return Err(grammar());
            }
            resource_type = Some(types.join("/"));
        }
        let text = format!("/{}", segments.join("/"));
        Ok(ResourceId {
            key: text.to_ascii_lowercase(),
            text,
            subscription_id,
            resource_group,
            resource_type,
            name,
        })
    }

    /// The root scope `/`.
    pub fn root() -> Self {
        ResourceId {
            text: "/".to_owned(),
            key: "/".to_owned(),
            subscription_id: None,
            resource_group: None,
            resource_type: None,
            name: None,
        }
    }

    pub fn subscription(subscription_id: &str) -> Result<Self, ResourceIdError> {
        ResourceId::parse(&format!("/subscriptions/{subscription_id}"))
    }

    pub fn resource_group_id(
        subscription_id: &str,
        resource_group: &str,
    ) -> Result<Self, ResourceIdError> {
        ResourceId::parse(&format!(
            "/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        ))
    }

    /// `{self}/providers/{namespace}/{type}/{name}` for a top-level type such as
    /// `Microsoft.Compute/virtualMachines`, or `{self}/{childType}/{name}` when `self` is already
    /// a provider resource and `resource_type` is one segment.
    pub fn child(&self, resource_type: &str, name: &str) -> Result<Self, ResourceIdError> {
        let base = if self.is_root() { "" } else { self.text.as_str() };
        if resource_type.contains('/') {
            ResourceId::parse(&format!("{base}/providers/{resource_type}/{name}"))
        } else {
            ResourceId::parse(&format!("{base}/{resource_type}/{name}"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The case-insensitive identity of the id (lower case).
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn is_root(&self) -> bool {
        self.text == "/"
    }

    pub fn subscription_id(&self) -> Option<&str> {
        self.subscription_id.as_deref()
    }

    pub fn resource_group(&self) -> Option<&str> {
        self.resource_group.as_deref()
    }

    /// `Namespace/type[/childType...]`, or `None` for the root, a subscription or a group.
    pub fn resource_type(&self) -> Option<&str> {
        self.resource_type.as_deref()
    }

    /// The last name segment.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn is_subscription(&self) -> bool {
        self.subscription_id.is_some()
            && self.resource_group.is_none()
            && self.resource_type.is_none()
    }

    pub fn is_resource_group(&self) -> bool {
        self.resource_group.is_some() && self.resource_type.is_none()
    }

    /// True when `self` equals `scope` or lies below it, compared segment by segment.
    pub fn is_within(&self, scope: &ResourceId) -> bool {
        if scope.is_root() {
            return true;
        }
        self.key == scope.key
            || (self.key.starts_with(&scope.key) && self.key.as_bytes()[scope.key.len()] == b'/')
    }

    /// Every scope that contains `self`, from the root down to `self` itself.
    pub fn ancestors_and_self(&self) -> Vec<String> {
        let mut scopes = vec!["/".to_owned()];
        if self.is_root() {
            return scopes;
        }
        // Scopes end after a name, so only prefixes with an even number of segments qualify.
        let mut prefix = String::new();
        for (index, segment) in self.key[1..].split('/').enumerate() {
            prefix.push('/');
            prefix.push_str(segment);
            if index % 2 == 1 {
                scopes.push(prefix.clone());
            }
        }
        scopes
    }
}

impl PartialEq for ResourceId {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for ResourceId {}

impl std::hash::Hash for ResourceId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceId({})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, expect: expect_test::Expect) {
        let actual = match ResourceId::parse(text) {
            Ok(id) => format!(
                "{} sub={:?} rg={:?} type={:?} name={:?}",
                id.as_str(),
                id.subscription_id(),
                id.resource_group(),
                id.resource_type(),
                id.name()
            ),
            Err(error) => format!("error: {error}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn parses_the_arm_grammar() {
        check("/", expect_test::expect![[r#"/ sub=None rg=None type=None name=None"#]]);
        check(
            "/subscriptions/s1/",
            expect_test::expect![[
                r#"/subscriptions/s1 sub=Some("s1") rg=None type=None name=Some("s1")"#
            ]],
        );
        check(
            "/subscriptions/s1/resourcegroups/RG1",
            expect_test::expect![[
                r#"/subscriptions/s1/resourcegroups/RG1 sub=Some("s1") rg=Some("RG1") type=None name=Some("RG1")"#
            ]],
        );
        check(
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1/federatedIdentityCredentials/f1",
            expect_test::expect![[
                r#"/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1/federatedIdentityCredentials/f1 sub=Some("s1") rg=Some("rg") type=Some("Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials") name=Some("f1")"#
            ]],
        );
        check(
            "/providers/Microsoft.Authorization/roleDefinitions/abc",
            expect_test::expect![[
                r#"/providers/Microsoft.Authorization/roleDefinitions/abc sub=None rg=None type=Some("Microsoft.Authorization/roleDefinitions") name=Some("abc")"#
            ]],
        );
    }

    #[test]
    fn rejects_what_is_not_an_id() {
        check(
            "subscriptions/s1",
            expect_test::expect![[r#"error: resource id must start with '/': "subscriptions/s1""#]],
        );
        check(
            "/subscriptions//x",
            expect_test::expect![[
                r#"error: resource id has an empty segment: "/subscriptions//x""#
            ]],
        );
        check(
            "/subscriptions/s1/providers/Microsoft.Compute",
            expect_test::expect![[
                r#"error: resource id does not follow the ARM grammar: "/subscriptions/s1/providers/Microsoft.Compute""#
            ]],
        );
        check(
            "/subscriptions/s1/foo/bar",
            expect_test::expect![[
                r#"error: resource id does not follow the ARM grammar: "/subscriptions/s1/foo/bar""#
            ]],
        );
        check(
            "/subscriptions/s1?x",
            expect_test::expect![[
                r#"error: resource id has a character that is not allowed: "/subscriptions/s1?x""#
            ]],
        );
    }

    #[test]
    fn scopes_compare_case_insensitively_by_segment() {
        let vm = ResourceId::parse(
            "/subscriptions/S1/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/vm",
        )
        .unwrap();
        let group = ResourceId::parse("/subscriptions/s1/resourcegroups/rg").unwrap();
        let other_group = ResourceId::parse("/subscriptions/s1/resourcegroups/r").unwrap();
        assert!(vm.is_within(&group));
        assert!(vm.is_within(&ResourceId::root()));
        assert!(!vm.is_within(&other_group));
        assert!(!group.is_within(&vm));
        assert_eq!(vm.ancestors_and_self().len(), 5);
        assert_eq!(vm.ancestors_and_self()[4], vm.key());
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_an_id_that_reparses_to_itself_or_an_error(
            text in "(/(subscriptions|resourceGroups|providers|Microsoft\\.[A-Za-z]{1,8}|[A-Za-z0-9._()~-]{0,12}|-[a-z]{0,3})){0,12}/?|.{0,300}",
        ) {
            // Issue 17: hostile resource ids never panic the parser; what parses is stable.
            if let Ok(id) = ResourceId::parse(&text) {
                let again = ResourceId::parse(id.as_str());
                proptest::prop_assert_eq!(again.as_ref().ok(), Some(&id), "{}", text);
                proptest::prop_assert!(id.as_str().len() <= text.len() + 1);
            }
        }
    }
}
