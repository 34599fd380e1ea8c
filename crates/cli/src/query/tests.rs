//! Tests for `--query`: the expressions `az` users type, where we match Python's `jmespath`,
//! the one-line errors, and the official JMESPath compliance suite.

use std::path::{Path, PathBuf};

use expect_test::{Expect, expect};
use jmespath::{ErrorReason, JmespathError, RuntimeError};
use serde_json::{Value, json};

use crate::query::Query;

#[track_caller]
fn check(query: &str, value: Value, expect: Expect) {
    let out = match Query::parse(query) {
        Ok(query) => match query.search(&value) {
            Ok(value) => serde_json::to_string(&value).unwrap(),
            Err(error) => format!("error: {error:#}"),
        },
        Err(error) => format!("error: {error:#}"),
    };
    expect.assert_eq(&out);
}

fn resources() -> Value {
    json!([
        {"id": "/r/id1", "name": "id1", "location": "local", "properties": {"principalId": "p1"}, "tags": {"env": "dev"}},
        {"id": "/r/id2", "name": "id2", "location": "west", "properties": {"principalId": "p2"}, "tags": {}},
        {"id": "/r/id3", "name": "id3", "location": "local", "properties": {"principalId": "p3"}}
    ])
}

#[test]
fn what_az_users_type() {
    check("[0].id", resources(), expect![[r#""/r/id1""#]]);
    // A multi-select hash keeps its keys in the order written (`Name`, then `Id`), as Python's
    // `jmespath` and az's table columns do.
    check(
        "[].{Name:name, Id:id}",
        resources(),
        expect![[
            r#"[{"Name":"id1","Id":"/r/id1"},{"Name":"id2","Id":"/r/id2"},{"Name":"id3","Id":"/r/id3"}]"#
        ]],
    );
    check("length(@)", resources(), expect!["3"]);
    check("[?name=='id2'].id | [0]", resources(), expect![[r#""/r/id2""#]]);
    check("sort_by(@, &location)[].name", resources(), expect![[r#"["id1","id3","id2"]"#]]);
    check("[?contains(name, '2')].name", resources(), expect![[r#"["id2"]"#]]);
    check("[?starts_with(id, '/r/id')] | length(@)", resources(), expect!["3"]);
    check("'raw string'", json!(null), expect![[r#""raw string""#]]);
    check("`{\"a\": [1, true]}`", json!(null), expect![[r#"{"a":[1,true]}"#]]);
    check("[?location==`\"west\"`].name", resources(), expect![[r#"["id2"]"#]]);
}

#[test]
fn fields_and_indexes() {
    check("[-1].properties.principalId", resources(), expect![[r#""p3""#]]);
    check("identity.principalId", json!({"identity": {"principalId": "x"}}), expect![[r#""x""#]]);
    check("missing.deep", json!({}), expect!["null"]);
    check(r#""odd-key""#, json!({"odd-key": 1}), expect!["1"]);
}

#[test]
fn projections() {
    check("[].name", resources(), expect![[r#"["id1","id2","id3"]"#]]);
    check("[*].properties.principalId", resources(), expect![[r#"["p1","p2","p3"]"#]]);
    check("[].tags.env", resources(), expect![[r#"["dev"]"#]]);
    check(
        "userAssignedIdentities.*.clientId",
        json!({"userAssignedIdentities": {"/a": {"clientId": "c1"}, "/b": {"clientId": "c2"}}}),
        expect![[r#"["c1","c2"]"#]],
    );
    check(
        "keys(userAssignedIdentities)",
        json!({"userAssignedIdentities": {"/a": {}, "/b": {}}}),
        expect![[r#"["/a","/b"]"#]],
    );
    check("a[]", json!({"a": [[1, 2], [3]]}), expect!["[1,2,3]"]);
    check("[1:3].name", resources(), expect![[r#"["id2","id3"]"#]]);
    check("[::-1].name | [0]", resources(), expect![[r#""id3""#]]);
}

#[test]
fn multi_select() {
    check(
        "[].{n: name, p: properties.principalId}",
        resources(),
        expect![[r#"[{"n":"id1","p":"p1"},{"n":"id2","p":"p2"},{"n":"id3","p":"p3"}]"#]],
    );
    check(
        "[].[name, location]",
        resources(),
        expect![[r#"[["id1","local"],["id2","west"],["id3","local"]]"#]],
    );
}

#[test]
fn filters() {
    check("[?location=='local'].name", resources(), expect![[r#"["id1","id3"]"#]]);
    check("[?tags.env].name", resources(), expect![[r#"["id1"]"#]]);
    check("[?!tags].name", resources(), expect![[r#"["id2","id3"]"#]]);
    check("[?location=='local' && name!='id1'].name", resources(), expect![[r#"["id3"]"#]]);
    check("[?n > `1`].n", json!([{"n": 1}, {"n": 2}, {"n": 3.0}]), expect!["[2,3.0]"]);
    check("[?n == `1`].n", json!([{"n": 1}, {"n": 1.0}, {"n": "1"}]), expect!["[1,1.0]"]);
}

#[test]
fn functions() {
    check("max_by(@, &name).name", resources(), expect![[r#""id3""#]]);
    check("join(', ', [].name)", resources(), expect![[r#""id1, id2, id3""#]]);
    check("not_null(missing, name)", json!({"name": "n"}), expect![[r#""n""#]]);
    check("to_number('1.5')", json!(null), expect!["1.5"]);
    check("avg(@)", json!([1, 2]), expect!["1.5"]);
}

/// Goal: where the crate's answer differs from Python's `jmespath`, `runtime` gives Python's.
#[test]
fn answers_as_python_does() {
    // Strings order by code point, so ISO timestamps compare.
    // A string against a number is `null`, as the spec says; Python fails with a `TypeError`.
    check(
        "[?t > '2024-01-15'].t",
        json!([{"t": "2024-01-01T00:00:00Z"}, {"t": "2024-02-01T00:00:00Z"}]),
        expect![[r#"["2024-02-01T00:00:00Z"]"#]],
    );
    check(
        "['a' < 'b', 'b' <= 'a', `2` >= `1.5`, 'a' < `1`]",
        json!({}),
        expect!["[true,false,true,null]"],
    );
    check(
        "sort_by(@, &t)[?t >= 'b'].t",
        json!([{"t": "c"}, {"t": "a"}, {"t": "b"}]),
        expect![[r#"["b","c"]"#]],
    );
    // The spec and Python give `null` for the average of nothing.
    check("avg(@)", json!([]), expect!["null"]);
    check("avg(@)", json!([1, 3]), expect!["2.0"]);
    // Python's `sum` and `abs` keep integers whole; `ceil` and `floor` always give integers.
    check(
        "[sum(a), sum(b), sum(c)]",
        json!({"a": [1, 2], "b": [1, 2.5], "c": []}),
        expect!["[3,3.5,0]"],
    );
    check("[abs(`-3`), abs(`-3.5`), abs(`-3.0`)]", json!({}), expect!["[3,3.5,3.0]"]);
    check("[ceil(`1.2`), floor(`1.8`), floor(`-0.5`)]", json!({}), expect!["[2,1,-1]"]);
}

#[test]
fn errors_are_one_line() {
    check(
        "[?name=='x'",
        json!([]),
        expect!["error: invalid --query '[?name=='x'': expected ']' -- found Eof (at column 11)"],
    );
    check(
        "a..b",
        json!({}),
        expect![
            "error: invalid --query 'a..b': expected identifier, '*', '{', '[', '&', or '[?' -- found Dot (at column 2)"
        ],
    );
    check(
        "a = b",
        json!({}),
        expect![
            "error: invalid --query 'a = b': '=' is not valid. Did you mean '=='? (at column 2)"
        ],
    );
    check(
        "nope(@)",
        json!(null),
        expect!["error: --query failed: call to undefined function nope (at column 4)"],
    );
    check(
        "length(`1`)",
        json!(null),
        expect![
            "error: --query failed: argument 0 expects type array|object|string, given number (at column 6)"
        ],
    );
    check(
        "sum(@, @)",
        json!([]),
        expect!["error: --query failed: too many arguments: expected 1, found 2 (at column 3)"],
    );
    check(
        "avg(@)",
        json!(["x"]),
        expect![
            "error: --query failed: argument 0 expects type array[number], given array (at column 3)"
        ],
    );
    check("[::0]", json!([]), expect!["error: --query failed: invalid slice (at column 4)"]);
}

/// Goal: every case of the official JMESPath compliance suite passes through [`Query`].
/// Method: run each case's expression on its suite's `given` and compare the result as the
/// reference implementation's runner does (numbers by value, so `1` equals `1.0`), or compare
/// the error's kind; a parse-only benchmark must compile. Failures are collected and listed.
#[test]
fn compliance() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jmespath-compliance");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "json"))
        .collect();
    files.sort();
    let mut cases = 0;
    let mut failures = Vec::new();
    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy();
        let suites: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for suite in &suites {
            for case in suite["cases"].as_array().unwrap() {
                cases += 1;
                let expression = case["expression"].as_str().unwrap();
                let outcome = outcome(expression, &suite["given"]);
                let passed = match (case.get("result"), case.get("error"), case.get("bench")) {
                    (Some(expected), None, _) => {
                        outcome.as_ref().is_ok_and(|value| same(value, expected))
                    }
                    (None, Some(kind), _) => {
                        outcome.as_ref().err().map(String::as_str) == kind.as_str()
                    }
                    (None, None, Some(_)) => Query::compile(expression).is_ok(),
                    _ => panic!("{file}: a case needs one of result, error or bench: {case}"),
                };
                if !passed {
                    failures.push(format!("{file}: {expression}: wanted {case}, got {outcome:?}"));
                }
            }
        }
    }
    assert_eq!(files.len(), 16, "compliance files in {}", directory.display());
    assert_eq!(cases, 908, "compliance cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The result of `expression` on `given`, or the compliance suite's name for the error's kind.
fn outcome(expression: &str, given: &Value) -> Result<Value, String> {
    let query = Query::compile(expression).map_err(|error| kind(&error))?;
    query.evaluate(given).map_err(|error| kind(&error))
}

fn kind(error: &JmespathError) -> String {
    let kind = match &error.reason {
        ErrorReason::Parse(_) => "syntax",
        ErrorReason::Runtime(runtime) => match runtime {
            RuntimeError::InvalidSlice => "invalid-value",
            RuntimeError::TooManyArguments { .. } | RuntimeError::NotEnoughArguments { .. } => {
                "invalid-arity"
            }
            RuntimeError::UnknownFunction(_) => "unknown-function",
            RuntimeError::InvalidType { .. } | RuntimeError::InvalidReturnType { .. } => {
                "invalid-type"
            }
        },
    };
    kind.to_owned()
}

/// Equality as Python's `==` on decoded JSON: numbers by value, object keys in any order.
fn same(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(left), Value::Number(right)) => left.as_f64() == right.as_f64(),
        (Value::Array(left), Value::Array(right)) => {
            left.len() == right.len()
                && left.iter().zip(right).all(|(left, right)| same(left, right))
        }
        (Value::Object(left), Value::Object(right)) => {
            left.len() == right.len()
                && left
                    .iter()
                    .all(|(key, value)| right.get(key).is_some_and(|other| same(value, other)))
        }
        _ => left == right,
    }
}
