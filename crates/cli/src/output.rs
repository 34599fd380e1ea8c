//! Printing results the way `az` does: `--output json` (the default), `table` or `tsv`.

use serde_json::Value;

/// The `--output` format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Json,
    Table,
    Tsv,
}

/// Renders `value` in `format`.
pub fn render(value: &Value, format: Output) -> String {
    match format {
        Output::Json => serde_json::to_string_pretty(value).unwrap_or_default(),
        Output::Table => table(value),
        Output::Tsv => tsv(value),
    }
}

fn rows(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// The scalar fields of the first row, in order: the table's columns.
fn columns(rows: &[&Value]) -> Vec<String> {
    let mut columns: Vec<String> = Vec::new();
    for row in rows {
        if let Value::Object(map) = row {
            for (key, value) in map {
                if !value.is_object() && !value.is_array() && !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
    }
    columns
}

fn scalar(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

fn table(value: &Value) -> String {
    let rows = rows(value);
    if rows.iter().any(|row| !row.is_object()) {
        return rows.iter().map(|row| scalar(Some(row))).collect::<Vec<_>>().join("\n");
    }
    let columns = columns(&rows);
    if columns.is_empty() {
        return String::new();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| columns.iter().map(|column| scalar(row.get(column))).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(index, column)| {
            cells
                .iter()
                .map(|row| row[index].chars().count())
                .chain([column.len()])
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
        line(&columns),
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
        expect_test::expect![[r#"
            name  n
            ----  --
            a     1
            long  22"#]]
        .assert_eq(&render(&value, Output::Table));
        assert_eq!(render(&value, Output::Tsv), "a\t1\nlong\t22");
    }
}
