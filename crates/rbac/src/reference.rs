//! Simple, obviously correct (and slow) models of action matching and scope inheritance.
//! Property tests compare the real implementation against them. Compiled for tests only.

use std::collections::BTreeSet;

/// Plain glob by recursion: `*` tries every split. Exponential, fine for short strings.
fn reference_glob(pattern: &[u8], action: &[u8]) -> bool {
    match pattern.split_first() {
        None => action.is_empty(),
        Some((b'*', rest)) => (0..=action.len()).any(|skip| reference_glob(rest, &action[skip..])),
        Some((byte, rest)) => {
            action.first().is_some_and(|first| first.eq_ignore_ascii_case(byte))
                && reference_glob(rest, &action[1..])
        }
    }
}

/// The documented rule taken literally: the pattern matches if it, or any pattern reached by
/// rewriting occurrences of `/*/` to `/` (repeatedly, anywhere), is a plain glob match.
pub fn reference_matches(pattern: &str, action: &str) -> bool {
    let mut seen = BTreeSet::from([pattern.to_owned()]);
    let mut queue = vec![pattern.to_owned()];
    while let Some(current) = queue.pop() {
        if reference_glob(current.as_bytes(), action.as_bytes()) {
            return true;
        }
        // Every occurrence, overlapping ones included.
        for start in 0..current.len().saturating_sub(2) {
            if current[start..].starts_with("/*/") {
                let rewritten = format!("{}{}", &current[..start], &current[start + 2..]);
                if seen.insert(rewritten.clone()) {
                    queue.push(rewritten);
                }
            }
        }
    }
    false
}

/// True when `scope` is `target` or an ancestor of it: its path segments, compared
/// case-insensitively, are a prefix of the target's.
pub fn reference_scope_contains(scope: &str, target: &str) -> bool {
    let segments = |text: &str| -> Vec<String> {
        text.split('/').filter(|s| !s.is_empty()).map(str::to_ascii_lowercase).collect()
    };
    let scope = segments(scope);
    let target = segments(target);
    scope.len() <= target.len() && scope.iter().zip(&target).all(|(a, b)| a == b)
}
