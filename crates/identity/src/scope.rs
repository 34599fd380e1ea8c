//! Scope rules of the client-credentials grant: exactly one scope, ending in `/.default`.
//!
//! Kept apart from the credentials so the managed-identity and CLI credentials can add their
//! own conversions (scope to v1 resource) beside it.

use crate::{Error, Result};

/// The suffix that asks Entra for every application permission granted on a resource.
pub(crate) const DEFAULT_SUFFIX: &str = "/.default";

/// The one scope to send in a client-credentials request.
///
/// A bare resource (`https://vault.azure.net`) gets `/.default` appended as given, so
/// `https://management.azure.com/` becomes `https://management.azure.com//.default`, which is
/// how Entra spells that resource's default scope.
pub(crate) fn client_credentials_scope(scopes: &[&str]) -> Result<String> {
    let [scope] = scopes else {
        return Err(Error::InvalidScope(format!(
            "client credentials take exactly one scope, such as https://vault.azure.net/.default; got {}",
            scopes.len()
        )));
    };
    if scope.is_empty() || scope.chars().any(char::is_whitespace) {
        return Err(Error::InvalidScope(format!(
            "scope {scope:?} is empty or contains whitespace"
        )));
    }
    if scope.ends_with(DEFAULT_SUFFIX) {
        Ok((*scope).to_owned())
    } else {
        Ok(format!("{scope}{DEFAULT_SUFFIX}"))
    }
}

/// The AAD v1 resource of a managed-identity or CLI request: the one scope without its
/// `/.default` suffix, as azure-identity's `_scopes_to_resource` does
/// (`https://management.azure.com//.default` becomes `https://management.azure.com/`).
pub(crate) fn resource_from_scopes(scopes: &[&str]) -> Result<String> {
    let [scope] = scopes else {
        return Err(Error::InvalidScope(format!(
            "this credential takes exactly one scope, such as https://vault.azure.net/.default; got {}",
            scopes.len()
        )));
    };
    let resource = scope.strip_suffix(DEFAULT_SUFFIX).unwrap_or(scope);
    if resource.is_empty() || resource.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::InvalidScope(format!(
            "scope {scope:?} is empty or contains whitespace"
        )));
    }
    Ok(resource.to_owned())
}

#[cfg(test)]
mod tests {
    use crate::Error;
    use crate::scope::{client_credentials_scope, resource_from_scopes};

    #[track_caller]
    fn check(scopes: &[&str], expected: Result<&str, &str>) {
        match (client_credentials_scope(scopes), expected) {
            (Ok(scope), Ok(want)) => assert_eq!(scope, want),
            (Err(Error::InvalidScope(message)), Err(fragment)) => {
                assert!(message.contains(fragment), "{message:?} lacks {fragment:?}")
            }
            (actual, expected) => panic!("{scopes:?}: got {actual:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn default_scope_is_kept() {
        check(&["https://vault.azure.net/.default"], Ok("https://vault.azure.net/.default"));
    }

    #[test]
    fn bare_resource_gets_default_suffix() {
        check(&["https://vault.azure.net"], Ok("https://vault.azure.net/.default"));
        check(&["https://management.azure.com/"], Ok("https://management.azure.com//.default"));
    }

    #[test]
    fn zero_or_several_scopes_are_refused() {
        check(&[], Err("exactly one scope"));
        check(&["https://a/.default", "https://b/.default"], Err("got 2"));
    }

    #[test]
    fn empty_or_spaced_scope_is_refused() {
        check(&[""], Err("empty"));
        check(&["https://a/.default openid"], Err("whitespace"));
    }

    #[test]
    fn resource_is_the_scope_without_default_suffix() {
        let resource = |scopes: &[&str]| resource_from_scopes(scopes);
        assert_eq!(
            resource(&["https://vault.azure.net/.default"]).unwrap(),
            "https://vault.azure.net"
        );
        assert_eq!(
            resource(&["https://management.azure.com//.default"]).unwrap(),
            "https://management.azure.com/"
        );
        assert_eq!(resource(&["https://storage.azure.com"]).unwrap(), "https://storage.azure.com");
        for bad in [&[][..], &["a", "b"], &["/.default"], &["https://a b"]] {
            assert!(matches!(resource(bad), Err(Error::InvalidScope(_))), "{bad:?}");
        }
    }
}
