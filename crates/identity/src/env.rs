//! [`Env`]: the environment variables a credential configured by the environment reads, taken
//! as a snapshot.
//!
//! Credentials never call `std::env::var` themselves: they take an [`Env`], which production code
//! builds with [`Env::from_process`] and tests build from a list of pairs. Tests therefore never
//! touch the process environment (`std::env::set_var` is banned: it is process-wide and racy),
//! and each test sees exactly the variables it names.

use std::collections::BTreeMap;
use std::fmt;

/// A snapshot of environment variables.
///
/// A variable set to the empty string counts as unset, as the Azure SDKs treat it. `Debug` prints
/// the names only: values such as `AZURE_CLIENT_SECRET` or `IDENTITY_HEADER` are secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The variables of this process now. Variables whose name or value is not UTF-8 are left
    /// out.
    pub fn from_process() -> Env {
        let vars = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .collect();
        Env { vars }
    }

    /// An environment holding exactly `pairs` (later pairs win over earlier ones of the same
    /// name). `Env::default()` is the empty environment.
    pub fn from_pairs<I, K, V>(pairs: I) -> Env
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Env { vars: pairs.into_iter().map(|(name, value)| (name.into(), value.into())).collect() }
    }

    /// The value of `name`, or `None` when it is unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|value| !value.is_empty())
    }

    /// Every variable, for handing the snapshot to a child process.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// Of `names`, those that are unset or empty, in the given order.
    pub(crate) fn missing<'a>(&self, names: &[&'a str]) -> Vec<&'a str> {
        names.iter().copied().filter(|name| self.get(name).is_none()).collect()
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env").field("names", &self.vars.keys().collect::<Vec<_>>()).finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::env::Env;

    #[test]
    fn empty_values_count_as_unset() {
        let env = Env::from_pairs([("A", "1"), ("B", "")]);
        assert_eq!(env.get("A"), Some("1"));
        assert_eq!(env.get("B"), None);
        assert_eq!(env.get("C"), None);
        assert_eq!(env.missing(&["A", "B", "C"]), ["B", "C"]);
    }

    #[test]
    fn debug_shows_names_but_not_values() {
        let env = Env::from_pairs([("AZURE_CLIENT_SECRET", "hunter2")]);
        let debug = format!("{env:?}");
        assert!(debug.contains("AZURE_CLIENT_SECRET"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
