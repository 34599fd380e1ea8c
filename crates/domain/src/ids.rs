//! GUID identifiers: tenants, subscriptions, object ids, app ids, role definition names.

use std::fmt;
use std::str::FromStr;

/// A GUID in canonical lower-case hyphenated form (`8e3af657-a8ff-443c-a75c-2fe8c4bcb635`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Guid(uuid::Uuid);

#[derive(Debug, thiserror::Error)]
#[error("not a GUID: {0:?}")]
pub struct GuidError(String);

impl Guid {
    /// A new random GUID (version 4), for ids that must not reveal creation order.
    pub fn new_random() -> Self {
        Guid(uuid::Uuid::new_v4())
    }

    /// A new time-ordered GUID (version 7), for primary keys.
    pub fn new_ordered() -> Self {
        Guid(uuid::Uuid::now_v7())
    }

    /// The 32 lower-case hex digits without hyphens (Key Vault secret versions use this form).
    pub fn simple(&self) -> String {
        self.0.simple().to_string()
    }
}

impl FromStr for Guid {
    type Err = GuidError;

    /// Accepts the hyphenated form only (what ARM and Entra accept), in any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() != 36 {
            return Err(GuidError(text.to_owned()));
        }
        uuid::Uuid::parse_str(text).map(Guid).map_err(|_| GuidError(text.to_owned()))
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upper_case_and_prints_lower_case() {
        let guid: Guid = "8E3AF657-A8FF-443C-A75C-2FE8C4BCB635".parse().unwrap();
        assert_eq!(guid.to_string(), "8e3af657-a8ff-443c-a75c-2fe8c4bcb635");
    }

    #[test]
    fn rejects_the_simple_form_and_garbage() {
        assert!("8e3af657a8ff443ca75c2fe8c4bcb635".parse::<Guid>().is_err());
        assert!("not-a-guid".parse::<Guid>().is_err());
    }
}
