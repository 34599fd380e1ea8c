//! The OData `$filter` clauses Graph clients send for service principals and applications:
//! `field eq 'value'`, `startswith(field,'value')`, `servicePrincipalNames/any(c:c eq 'value')`,
//! joined by `and`. Parsed once into [`Filter`], then matched against each object.

/// A parsed `$filter`: every clause must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    clauses: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Clause {
    /// `field eq 'value'` (field lower-cased; compared case-insensitively, as Graph does).
    Equals(String, String),
    /// `startswith(field,'value')`.
    StartsWith(String, String),
    /// `collection/any(c:c eq 'value')`.
    AnyEquals(String, String),
}

/// The fields an object offers to a filter: (lower-cased name, values).
pub type Fields<'a> = &'a [(&'a str, Vec<&'a str>)];

impl Filter {
    /// Parses `text`; the error names the clause that is not understood.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let mut clauses = Vec::new();
        for clause in split_and(text) {
            clauses.push(
                parse_clause(clause.trim())
                    .ok_or_else(|| format!("unsupported $filter clause: {clause}"))?,
            );
        }
        Ok(Filter { clauses })
    }

    /// Whether the object whose fields are `fields` passes. A field the object does not have
    /// fails the clause.
    pub fn matches(&self, fields: Fields<'_>) -> bool {
        self.clauses.iter().all(|clause| {
            let (name, wanted) = match clause {
                Clause::Equals(name, wanted)
                | Clause::StartsWith(name, wanted)
                | Clause::AnyEquals(name, wanted) => (name, wanted),
            };
            let Some((_, values)) = fields.iter().find(|(field, _)| field == name) else {
                return false;
            };
            values.iter().any(|value| match clause {
                Clause::Equals(..) | Clause::AnyEquals(..) => value.eq_ignore_ascii_case(wanted),
                Clause::StartsWith(..) => {
                    value.to_ascii_lowercase().starts_with(&wanted.to_ascii_lowercase())
                }
            })
        })
    }
}

/// Splits on ` and ` outside quotes.
fn split_and(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'\'' {
            quoted = !quoted;
        } else if !quoted && text[at..].to_ascii_lowercase().starts_with(" and ") {
            parts.push(&text[start..at]);
            at += 5;
            start = at;
            continue;
        }
        at += 1;
    }
    parts.push(&text[start..]);
    parts.into_iter().filter(|part| !part.trim().is_empty()).collect()
}

fn quoted(text: &str) -> Option<String> {
    let inner = text.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

fn parse_clause(clause: &str) -> Option<Clause> {
    let lower = clause.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("startswith(") {
        let inner = &clause[clause.len() - rest.len()..];
        let inner = inner.strip_suffix(')')?;
        let (field, value) = inner.split_once(',')?;
        return Some(Clause::StartsWith(field.trim().to_ascii_lowercase(), quoted(value)?));
    }
    if let Some(slash) = lower.find("/any(") {
        let field = lower[..slash].trim().to_owned();
        let inner = clause[slash + 5..].strip_suffix(')')?;
        let (variable, predicate) = inner.split_once(':')?;
        let (left, value) = predicate.split_once(" eq ")?;
        if left.trim() != variable.trim() {
            return None;
        }
        return Some(Clause::AnyEquals(field, quoted(value)?));
    }
    let (field, value) = clause.split_once(" eq ")?;
    Some(Clause::Equals(field.trim().to_ascii_lowercase(), quoted(value)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(name: &'a str, kind: &'a str, app: &'a str) -> Vec<(&'a str, Vec<&'a str>)> {
        vec![
            ("displayname", vec![name]),
            ("serviceprincipaltype", vec![kind]),
            ("appid", vec![app]),
            ("serviceprincipalnames", vec![app, "https://identity.azure.net/x"]),
        ]
    }

    #[track_caller]
    fn check(filter: &str, name: &str, kind: &str, app: &str, expected: bool) {
        let parsed = Filter::parse(filter).unwrap();
        assert_eq!(parsed.matches(&fields(name, kind, app)), expected, "{filter}");
    }

    #[test]
    fn graph_filters_az_sends() {
        check("servicePrincipalType eq 'ManagedIdentity'", "vm1", "ManagedIdentity", "a1", true);
        check("servicePrincipalType eq 'ManagedIdentity'", "app", "Application", "a1", false);
        check("startswith(displayName,'stock')", "stock-vm", "Application", "a1", true);
        check("startswith(displayName, 'STOCK')", "stock-vm", "Application", "a1", true);
        check("servicePrincipalNames/any(c:c eq 'a1')", "x", "Application", "a1", true);
        check("servicePrincipalNames/any(c:c eq 'a2')", "x", "Application", "a1", false);
        check("displayName eq 'O''Brien' and appId eq 'a1'", "O'Brien", "Application", "a1", true);
        check("displayName eq 'x and y'", "x and y", "Application", "a1", true);
        check("nosuchfield eq 'x'", "x", "Application", "a1", false);
        assert!(Filter::parse("displayName gt 'x'").is_err());
    }
}
