//! Printing results the way `az` does: `--output json` (the default), `table`, `tsv` or
//! `none`, after `--query`.
//!
//! A command returns a [`Printed`]: the value, and optionally the columns `--output table` shows
//! (az's "table transformers"); the columns are ignored when `--query` reshapes the value.
//!
//! Key order follows az (knack): JSON output always sorts object keys; table and TSV output sort
//! them too, except after `--query`, whose projections keep the order they name.
//!
//! The generic table follows knack's `_TableOutput`: one column per scalar field, headed by the
//! key with its first letter capitalised (`principalId` becomes `PrincipalId`), with `id`,
//! `type` and `etag` and nested objects and lists left out; a list of lists gets `Column1`,
//! `Column2`..., a list of scalars `Result`.
//! Unlike knack, cells are cut to [`CELL_CHARS_MAX`] characters so that one long resource id
//! does not push every other column off the screen, and RFC 3339 times are shown with the same
//! precision on every row.

use std::io::Write as _;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::query::Query;

/// Writes `text` and a newline to standard output. When the reader has gone away
/// (`ambient ... | head -c 10`), the process ends quietly with success, as `cat` does, instead of
/// panicking as `println!` would; other write errors are returned.
pub fn print_line(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    match written {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => other,
    }
}

/// The widest a table cell gets; longer text is cut with `…` (resource ids keep their end).
pub const CELL_CHARS_MAX: usize = 60;

/// Keys knack leaves out of generic tables.
const TABLE_SKIP_KEYS: &[&str] = &["id", "type", "etag"];

/// The `--output` format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    #[value(alias = "jsonc")]
    Json,
    Table,
    Tsv,
    /// Print nothing (for scripts that only want the exit code).
    None,
}

/// Table columns: (header, JMESPath expression evaluated on each row).
pub type Columns = &'static [(&'static str, &'static str)];

/// What a command produces.
#[derive(Debug)]
pub struct Printed {
    /// The result; `Value::Null` prints nothing.
    pub value: Value,
    /// The columns of `--output table`, when the generic table is not the useful one.
    pub columns: Option<Columns>,
}

impl Printed {
    /// A result printed with the generic table.
    pub fn plain(value: Value) -> Printed {
        Printed { value, columns: None }
    }

    /// A result with its own table columns.
    pub fn with_columns(value: Value, columns: Columns) -> Printed {
        Printed { value, columns: Some(columns) }
    }

    /// Nothing to print.
    pub fn nothing() -> Printed {
        Printed::plain(Value::Null)
    }
}

/// Applies `query`, then renders in `format`; `None` when there is nothing to print.
pub fn finish(
    printed: Printed,
    query: Option<&Query>,
    format: Output,
) -> anyhow::Result<Option<String>> {
    let (value, columns) = match query {
        Some(query) => (query.search(&printed.value)?, None),
        None => (sort_keys(printed.value), printed.columns),
    };
    if value.is_null() || format == Output::None {
        return Ok(None);
    }
    let value = if format == Output::Json { sort_keys(value) } else { value };
    Ok(Some(match (format, columns) {
        (Output::Table, Some(columns)) => table_with_columns(&value, columns),
        _ => render(&value, format),
    }))
}

/// `value` with the keys of every object in it sorted.
fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.cmp(b));
            Value::Object(entries.into_iter().map(|(key, value)| (key, sort_keys(value))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

/// Renders `value` in `format`.
pub fn render(value: &Value, format: Output) -> String {
    match format {
        Output::Json => serde_json::to_string_pretty(value).unwrap_or_default(),
        Output::Table => table(value),
        Output::Tsv => tsv(value),
        Output::None => String::new(),
    }
}

/// A table with the given columns, one row per element (or one row for an object).
pub fn table_with_columns(value: &Value, columns: Columns) -> String {
    let queries: Vec<Query> = columns
        .iter()
        .map(|(_, expression)| {
            Query::parse(expression).expect("table columns are valid JMESPath (see tests)")
        })
        .collect();
    let cells: Vec<Vec<String>> = rows(value)
        .iter()
        .map(|row| queries.iter().map(|query| cell(query.search(row).ok().as_ref())).collect())
        .collect();
    let headers: Vec<String> = columns.iter().map(|(header, _)| (*header).to_owned()).collect();
    format_table(&headers, &cells)
}

fn rows(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// The scalar, non-null fields of the rows, in order of first appearance: the table's columns.
fn columns(rows: &[&Value]) -> Vec<String> {
    let mut columns: Vec<String> = Vec::new();
    for row in rows {
        if let Value::Object(map) = row {
            for (key, value) in map {
                let shown = !value.is_null() && !value.is_object() && !value.is_array();
                if shown && !TABLE_SKIP_KEYS.contains(&key.as_str()) && !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
    }
    columns
}

/// knack's header: the key with its first letter capitalised.
fn header(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A table cell: the scalar text, times at one precision, cut to [`CELL_CHARS_MAX`].
fn cell(value: Option<&Value>) -> String {
    let text = match value {
        Some(Value::String(text)) => uniform_time(text).unwrap_or_else(|| text.clone()),
        other => scalar(other),
    };
    shorten(&text, CELL_CHARS_MAX)
}

/// An RFC 3339 time as `2024-01-01T00:00:05.123Z` (milliseconds, UTC), whatever precision and
/// offset it came with; `None` for text that is not such a time.
pub fn uniform_time(text: &str) -> Option<String> {
    if text.len() < 20
        || text.as_bytes().get(4) != Some(&b'-')
        || text.as_bytes().get(10) != Some(&b'T')
    {
        return None;
    }
    let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?.to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    parsed.format(&format).ok()
}

/// `text` cut to `chars_max` characters with `…`: a path (`/subscriptions/...`,
/// `Microsoft.Compute/virtualMachines/write`) keeps its end, which names the resource or the
/// action; anything else (URLs included) its start.
fn shorten(text: &str, chars_max: usize) -> String {
    let count = text.chars().count();
    if count <= chars_max {
        return text.to_owned();
    }
    let keep = chars_max - 1;
    if text.contains('/') && !text.contains("://") && !text.contains(' ') {
        let tail: String = text.chars().skip(count - keep).collect();
        format!("…{tail}")
    } else {
        let head: String = text.chars().take(keep).collect();
        format!("{head}…")
    }
}

fn scalar(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items))
            if items.iter().all(|item| !item.is_object() && !item.is_array()) =>
        {
            items.iter().map(|item| scalar(Some(item))).collect::<Vec<_>>().join(", ")
        }
        Some(other) => other.to_string(),
    }
}

fn table(value: &Value) -> String {
    let rows = rows(value);
    if rows.is_empty() {
        return String::new();
    }
    if rows.iter().all(|row| row.is_array()) {
        let width = rows.iter().filter_map(|row| row.as_array()).map(Vec::len).max().unwrap_or(0);
        let headers: Vec<String> = (1..=width).map(|index| format!("Column{index}")).collect();
        let cells: Vec<Vec<String>> =
            rows.iter().map(|row| (0..width).map(|index| cell(row.get(index))).collect()).collect();
        return format_table(&headers, &cells);
    }
    if rows.iter().any(|row| !row.is_object()) {
        let cells: Vec<Vec<String>> = rows.iter().map(|row| vec![cell(Some(row))]).collect();
        return format_table(&["Result".to_owned()], &cells);
    }
    let columns = columns(&rows);
    if columns.is_empty() {
        return String::new();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| columns.iter().map(|column| cell(row.get(column))).collect())
        .collect();
    let headers: Vec<String> = columns.iter().map(|column| header(column)).collect();
    format_table(&headers, &cells)
}

fn format_table(columns: &[String], cells: &[Vec<String>]) -> String {
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(index, column)| {
            cells
                .iter()
                .map(|row| row[index].chars().count())
                .chain([column.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: &[String]| {
        values
            .iter()
            .zip(&widths)
            .map(|(value, width)| format!("{value:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![
        line(columns),
        line(&widths.iter().map(|width| "-".repeat(*width)).collect::<Vec<_>>()),
    ];
    out.extend(cells.iter().map(|row| line(row)));
    out.join("\n")
}

fn tsv(value: &Value) -> String {
    let rows = rows(value);
    rows.iter()
        .map(|row| match row {
            Value::Object(map) => map
                .values()
                .filter(|value| !value.is_object() && !value.is_array())
                .map(|value| scalar(Some(value)))
                .collect::<Vec<_>>()
                .join("\t"),
            // A list row (from `--query "[].[a, b]"`) prints its items tab-separated, as az does.
            Value::Array(items) => items
                .iter()
                .filter(|value| !value.is_object() && !value.is_array())
                .map(|value| scalar(Some(value)))
                .collect::<Vec<_>>()
                .join("\t"),
            other => scalar(Some(other)),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_scalar_columns() {
        let value = serde_json::json!([{"name": "a", "n": 1, "nested": {"x": 1}}, {"name": "long", "n": 22}]);
        // Keys print sorted, as az prints them without --query.
        let finished = |format| {
            finish(Printed::plain(value.clone()), None, format).unwrap().unwrap_or_default()
        };
        expect_test::expect![[r#"
            N   Name
            --  ----
            1   a
            22  long"#]]
        .assert_eq(&finished(Output::Table));
        assert_eq!(finished(Output::Tsv), "1\ta\n22\tlong");
        // After --query, a projection keeps the order it names.
        let query = Query::parse("[].{name: name, n: n}").unwrap();
        let projected = finish(Printed::plain(value.clone()), Some(&query), Output::Tsv).unwrap();
        assert_eq!(projected.unwrap(), "a\t1\nlong\t22");
    }

    #[test]
    fn columns_pick_and_order_fields() {
        let value = serde_json::json!([
            {"name": "vm1", "location": "local", "id": "/x", "tags": {"a": "b"}, "zones": ["1", "2"]},
            {"name": "vm2", "location": "west"}
        ]);
        let columns: Columns =
            &[("Name", "name"), ("Location", "location"), ("Tag", "tags.a"), ("Zones", "zones")];
        expect_test::expect![[r#"
            Name  Location  Tag  Zones
            ----  --------  ---  -----
            vm1   local     b    1, 2
            vm2   west"#]]
        .assert_eq(&table_with_columns(&value, columns));
        let query = Query::parse("[0].name").unwrap();
        let printed = Printed::with_columns(value, columns);
        // A scalar gets az's `Result` header.
        assert_eq!(
            finish(printed, Some(&query), Output::Table).unwrap().as_deref(),
            Some("Result\n------\nvm1")
        );
        assert_eq!(finish(Printed::nothing(), None, Output::Json).unwrap(), None);
        let pairs = serde_json::json!([["vm1", "local"], ["vm2", "west"]]);
        assert_eq!(render(&pairs, Output::Tsv), "vm1\tlocal\nvm2\twest");
    }

    #[track_caller]
    fn check_table(value: Value, query: Option<&str>, expect: expect_test::Expect) {
        let query = query.map(|text| Query::parse(text).unwrap());
        let printed = finish(Printed::plain(value), query.as_ref(), Output::Table).unwrap();
        expect.assert_eq(&printed.unwrap_or_default());
    }

    #[test]
    fn generic_tables_look_like_knack() {
        // Goal: the generic table has az's headers and columns; method: render typical results.
        check_table(
            serde_json::json!([{
                "id": "/subscriptions/s/resourceGroups/stock/providers/Microsoft.KeyVault/vaults/stockvault",
                "type": "Microsoft.KeyVault/vaults",
                "name": "stockvault",
                "location": "local",
                "resourceGroup": "stock",
                "properties": {"vaultUri": "https://stockvault.vault.localhost:8443/"},
                "tags": {},
                "etag": null
            }]),
            None,
            expect_test::expect![[r#"
                Location  Name        ResourceGroup
                --------  ----------  -------------
                local     stockvault  stock"#]],
        );
        check_table(
            serde_json::json!([{"principalId": "p1", "createdOn": "2024-01-01T00:00:00+01:00"}]),
            Some("[].{principalId: principalId, createdOn: createdOn}"),
            expect_test::expect![[r#"
                PrincipalId  CreatedOn
                -----------  ------------------------
                p1           2023-12-31T23:00:00.000Z"#]],
        );
        check_table(
            serde_json::json!([{"name": "a"}, {"name": "b"}]),
            Some("[].name"),
            expect_test::expect![[r#"
                Result
                ------
                a
                b"#]],
        );
        check_table(
            serde_json::json!([{"name": "a", "n": 1}]),
            Some("[].[name, n]"),
            expect_test::expect![[r#"
                Column1  Column2
                -------  -------
                a        1"#]],
        );
    }

    #[test]
    fn long_cells_are_cut() {
        let id = format!("/subscriptions/{}/resourceGroups/rg/providers/X/y/name", "0".repeat(60));
        let cut = shorten(&id, CELL_CHARS_MAX);
        assert_eq!(cut.chars().count(), CELL_CHARS_MAX);
        assert!(cut.starts_with('…') && cut.ends_with("/X/y/name"), "{cut}");
        let operation = format!(
            "Microsoft.ManagedIdentity/{}/federatedIdentityCredentials/write",
            "x".repeat(40)
        );
        assert!(
            shorten(&operation, CELL_CHARS_MAX).ends_with("/federatedIdentityCredentials/write")
        );
        let url = format!("https://{}.example.com/path", "x".repeat(60));
        assert!(shorten(&url, CELL_CHARS_MAX).starts_with("https://xxx"));
        let text = "x".repeat(100);
        assert_eq!(shorten(&text, 10), format!("{}…", "x".repeat(9)));
        assert_eq!(
            uniform_time("2024-01-01T00:00:05Z").as_deref(),
            Some("2024-01-01T00:00:05.000Z")
        );
        assert_eq!(uniform_time("2024-01-01"), None);
        assert_eq!(uniform_time("not a time at all, really"), None);
    }
}
