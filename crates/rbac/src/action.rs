//! Action strings and the patterns that match them.
//!
//! An action is `{Namespace}/{type}[/{childType}...]/{verb}` where the verb is `read`, `write`,
//! `delete` or `{name}/action` (`protocols/06-arm-rbac.md` §6). Role definitions name actions
//! with patterns; [`action_matches`] is the one place that decides whether a pattern covers an
//! action. The other functions here turn a request into its action string.

use domain::ResourceId;

/// True when `pattern` covers `action`.
///
/// The rules:
/// - Comparison is ASCII case-insensitive (`Microsoft.Authorization/*/Write` covers
///   `microsoft.authorization/roleAssignments/write`).
/// - `*` matches any sequence of characters, including the empty one and including `/`;
///   a pattern may hold several. No other character is special.
/// - A `*` with a `/` on both sides may also match an empty segment together with one of its
///   slashes: `a/*/b` covers `a/b` as well as `a/x/b` and `a/x/y/b`. Azure behaves this way:
///   Managed Identity Operator's `Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action`
///   grants `Microsoft.ManagedIdentity/userAssignedIdentities/assign/action`, and Key Vault
///   Reader's `Microsoft.KeyVault/vaults/*/read` grants `Microsoft.KeyVault/vaults/read`.
///
/// Runs in `O(pattern.len() * action.len())` time whatever the pattern (dynamic programming
/// over positions, no backtracking), so a hostile custom role cannot make it slow.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    let pattern = pattern.as_bytes();
    let action = action.as_bytes();
    // The text before the first `*` must match the action's start exactly (ignoring case):
    // most patterns of a role name another provider and are refused here without allocating.
    let literal = pattern.iter().position(|&byte| byte == b'*').unwrap_or(pattern.len());
    if literal == pattern.len() {
        return pattern.eq_ignore_ascii_case(action);
    }
    if action.len() < literal || !pattern[..literal].eq_ignore_ascii_case(&action[..literal]) {
        return false;
    }
    // One `*` only (`Microsoft.KeyVault/vaults/secrets/*`, `Microsoft.KeyVault/vaults/*/read`):
    // the text after it must end the action, or (for a `/*/`) the star and the slash after it
    // are skipped.
    let suffix = &pattern[literal + 1..];
    if !suffix.contains(&b'*') {
        let ends_with_suffix = action.len() >= literal + suffix.len()
            && action[action.len() - suffix.len()..].eq_ignore_ascii_case(suffix);
        let skipped = is_slash_bounded_star(pattern, literal)
            && action.len() == literal + suffix.len() - 1
            && action[literal..].eq_ignore_ascii_case(&suffix[1..]);
        return ends_with_suffix || skipped;
    }
    // `reachable[j]` is true when the pattern prefix read so far can match `action[..j]`.
    let mut reachable = vec![false; action.len() + 1];
    reachable[0] = true;
    let mut next = vec![false; action.len() + 1];
    // When a slash-bounded `*` is skipped together with the `/` after it, the positions
    // reachable before the `*` are also reachable after that `/`.
    let mut reachable_before_skipped_star: Option<Vec<bool>> = None;
    for (index, &byte) in pattern.iter().enumerate() {
        if byte == b'*' {
            let mut any_before = false;
            for (slot, &was_reachable) in next.iter_mut().zip(&reachable) {
                any_before |= was_reachable;
                *slot = any_before;
            }
            if is_slash_bounded_star(pattern, index) {
                reachable_before_skipped_star = Some(reachable.clone());
            }
        } else {
            next[0] = false;
            for position in 1..=action.len() {
                next[position] =
                    reachable[position - 1] && action[position - 1].eq_ignore_ascii_case(&byte);
            }
            // Set only by the byte just before this one, which was a `*` followed by this `/`.
            if let Some(skipped) = reachable_before_skipped_star.take() {
                for (slot, &was_reachable) in next.iter_mut().zip(&skipped) {
                    *slot |= was_reachable;
                }
            }
        }
        std::mem::swap(&mut reachable, &mut next);
        if reachable_before_skipped_star.is_none() && !reachable.contains(&true) {
            return false;
        }
    }
    reachable[action.len()]
}

/// The control-plane action for an HTTP request on a resource of `resource_type`
/// (`Namespace/type[/childType...]`, see [`resource_type_for_scope`]).
///
/// GET and HEAD give `{type}/read`, PUT and PATCH `{type}/write`, DELETE `{type}/delete`; the
/// method is compared case-insensitively. Any other method (POST included) gives `None`: a POST
/// names an operation, so its action comes from [`post_action`].
pub fn http_method_action(resource_type: &str, method: &str) -> Option<String> {
    let verb = if method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD") {
        "read"
    } else if method.eq_ignore_ascii_case("PUT") || method.eq_ignore_ascii_case("PATCH") {
        "write"
    } else if method.eq_ignore_ascii_case("DELETE") {
        "delete"
    } else {
        return None;
    };
    Some(format!("{resource_type}/{verb}"))
}

/// The action for a POST of `operation` on a resource of `resource_type`:
/// `{type}/{operation}/action`, for example `Microsoft.Compute/virtualMachines/start/action`.
pub fn post_action(resource_type: &str, operation: &str) -> String {
    format!("{resource_type}/{operation}/action")
}

/// The resource type that actions on `id` are named after.
///
/// `Microsoft.Resources/subscriptions/resourceGroups` for a resource group,
/// `Microsoft.Resources/subscriptions` for a subscription, `Microsoft.Resources/tenants` for the
/// root scope `/` (Azure's tenant-level read is `Microsoft.Resources/tenants/read`), and
/// [`ResourceId::resource_type`] for everything else (`Microsoft.KeyVault/vaults/secrets` for
/// a secret, `Microsoft.Authorization/roleAssignments` for a role assignment at any scope).
pub fn resource_type_for_scope(id: &ResourceId) -> String {
    if let Some(resource_type) = id.resource_type() {
        resource_type.to_owned()
    } else if id.is_resource_group() {
        "Microsoft.Resources/subscriptions/resourceGroups".to_owned()
    } else if id.is_subscription() {
        "Microsoft.Resources/subscriptions".to_owned()
    } else {
        "Microsoft.Resources/tenants".to_owned()
    }
}

/// A `*` at `index` with a `/` right before and right after it.
fn is_slash_bounded_star(pattern: &[u8], index: usize) -> bool {
    index > 0 && pattern[index - 1] == b'/' && pattern.get(index + 1) == Some(&b'/')
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};
    use proptest::prelude::*;

    use crate::action::{action_matches, http_method_action, post_action, resource_type_for_scope};
    use crate::reference::reference_matches;

    /// One line per `(pattern, action)` pair: whether the pattern covers the action.
    #[track_caller]
    fn check(cases: &[(&str, &str)], expect: Expect) {
        let actual: String = cases
            .iter()
            .map(|(pattern, action)| {
                let verdict = if action_matches(pattern, action) { "match" } else { "no   " };
                format!("{verdict} {pattern:?} ~ {action:?}\n")
            })
            .collect();
        expect.assert_eq(&actual);
    }

    #[test]
    fn literal_patterns_compare_case_insensitively() {
        check(
            &[
                (
                    "Microsoft.Compute/virtualMachines/read",
                    "microsoft.compute/VIRTUALMACHINES/read",
                ),
                (
                    "Microsoft.Compute/virtualMachines/read",
                    "Microsoft.Compute/virtualMachines/write",
                ),
                (
                    "Microsoft.Compute/virtualMachines/read",
                    "Microsoft.Compute/virtualMachines/read/x",
                ),
                ("", ""),
                ("", "a"),
            ],
            expect![[r#"
                match "Microsoft.Compute/virtualMachines/read" ~ "microsoft.compute/VIRTUALMACHINES/read"
                no    "Microsoft.Compute/virtualMachines/read" ~ "Microsoft.Compute/virtualMachines/write"
                no    "Microsoft.Compute/virtualMachines/read" ~ "Microsoft.Compute/virtualMachines/read/x"
                match "" ~ ""
                no    "" ~ "a"
            "#]],
        );
    }

    #[test]
    fn star_matches_any_sequence_including_slashes() {
        check(
            &[
                ("*", "Microsoft.Compute/virtualMachines/write"),
                ("*", ""),
                ("*/read", "Microsoft.KeyVault/vaults/secrets/read"),
                ("*/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"),
                (
                    "Microsoft.KeyVault/vaults/*",
                    "Microsoft.KeyVault/vaults/secrets/getSecret/action",
                ),
                ("Microsoft.KeyVault/vaults/*", "Microsoft.KeyVaultX/vaults/read"),
                ("Microsoft.*/*/delete", "Microsoft.Storage/storageAccounts/delete"),
                (
                    "Microsoft.Authorization/*/Write",
                    "Microsoft.Authorization/roleAssignments/write",
                ),
                ("Microsoft.Authorization/*/Write", "Microsoft.Compute/virtualMachines/write"),
            ],
            expect![[r#"
                match "*" ~ "Microsoft.Compute/virtualMachines/write"
                match "*" ~ ""
                match "*/read" ~ "Microsoft.KeyVault/vaults/secrets/read"
                no    "*/read" ~ "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
                match "Microsoft.KeyVault/vaults/*" ~ "Microsoft.KeyVault/vaults/secrets/getSecret/action"
                no    "Microsoft.KeyVault/vaults/*" ~ "Microsoft.KeyVaultX/vaults/read"
                match "Microsoft.*/*/delete" ~ "Microsoft.Storage/storageAccounts/delete"
                match "Microsoft.Authorization/*/Write" ~ "Microsoft.Authorization/roleAssignments/write"
                no    "Microsoft.Authorization/*/Write" ~ "Microsoft.Compute/virtualMachines/write"
            "#]],
        );
    }

    #[test]
    fn slash_bounded_star_also_matches_an_empty_segment() {
        // Goal: Managed Identity Operator's pattern covers the real assign action, which has no
        // segment between `userAssignedIdentities/` and `assign/action`.
        check(
            &[
                (
                    "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
                    "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
                ),
                (
                    "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
                    "Microsoft.ManagedIdentity/userAssignedIdentities/x/y/assign/action",
                ),
                (
                    "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
                    "Microsoft.ManagedIdentity/userAssignedIdentities/read",
                ),
                ("a/*/*/b", "a/b"),
                ("a/*/b", "ab"),
                ("a/*/b", "a//b"),
                ("a*/b", "a/b"),
                ("a/*b", "a/b"),
            ],
            expect![[r#"
                match "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action" ~ "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"
                match "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action" ~ "Microsoft.ManagedIdentity/userAssignedIdentities/x/y/assign/action"
                match "Microsoft.ManagedIdentity/userAssignedIdentities/*/read" ~ "Microsoft.ManagedIdentity/userAssignedIdentities/read"
                match "a/*/*/b" ~ "a/b"
                no    "a/*/b" ~ "ab"
                match "a/*/b" ~ "a//b"
                match "a*/b" ~ "a/b"
                match "a/*b" ~ "a/b"
            "#]],
        );
    }

    #[test]
    fn many_stars_stay_fast() {
        // Goal: a pattern that makes a backtracking matcher exponential is answered at once.
        let pattern = "*a".repeat(40);
        let action = "a".repeat(39) + "b";
        assert!(!action_matches(&pattern, &action));
        assert!(action_matches(&pattern, &"a".repeat(200)));
    }

    #[test]
    fn http_methods_map_to_verbs() {
        let actual: String = ["GET", "head", "PUT", "Patch", "DELETE", "POST", "OPTIONS"]
            .iter()
            .map(|method| {
                let action =
                    http_method_action("Microsoft.ManagedIdentity/userAssignedIdentities", method);
                format!("{method} -> {action:?}\n")
            })
            .collect();
        expect![[r#"
            GET -> Some("Microsoft.ManagedIdentity/userAssignedIdentities/read")
            head -> Some("Microsoft.ManagedIdentity/userAssignedIdentities/read")
            PUT -> Some("Microsoft.ManagedIdentity/userAssignedIdentities/write")
            Patch -> Some("Microsoft.ManagedIdentity/userAssignedIdentities/write")
            DELETE -> Some("Microsoft.ManagedIdentity/userAssignedIdentities/delete")
            POST -> None
            OPTIONS -> None
        "#]]
        .assert_eq(&actual);
        expect![[r#"Microsoft.Compute/virtualMachines/start/action"#]]
            .assert_eq(&post_action("Microsoft.Compute/virtualMachines", "start"));
    }

    #[test]
    fn scopes_name_their_resource_type() {
        let actual: String = [
            "/",
            "/subscriptions/s1",
            "/subscriptions/s1/resourcegroups/rg",
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v/secrets/db",
            "/subscriptions/s1/providers/Microsoft.Authorization/roleAssignments/a1",
        ]
        .iter()
        .map(|text| {
            let id = domain::ResourceId::parse(text).unwrap();
            format!("{text} -> {}\n", resource_type_for_scope(&id))
        })
        .collect();
        expect![[r#"
            / -> Microsoft.Resources/tenants
            /subscriptions/s1 -> Microsoft.Resources/subscriptions
            /subscriptions/s1/resourcegroups/rg -> Microsoft.Resources/subscriptions/resourceGroups
            /subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v/secrets/db -> Microsoft.KeyVault/vaults/secrets
            /subscriptions/s1/providers/Microsoft.Authorization/roleAssignments/a1 -> Microsoft.Authorization/roleAssignments
        "#]]
        .assert_eq(&actual);
    }

    /// Short strings built from `pieces`, which are chosen to produce the interesting cases
    /// (`/*/` next to empty or repeated segments, case differences) often.
    fn short_string(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(pieces), 0..=6)
            .prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn matches_the_reference_model(
            pattern in short_string(&["a", "B", "/", "*", "/*/", "a/"]),
            action in short_string(&["A", "b", "/", "a/"]),
        ) {
            prop_assert_eq!(action_matches(&pattern, &action), reference_matches(&pattern, &action));
        }
    }
}
