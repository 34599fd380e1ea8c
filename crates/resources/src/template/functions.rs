//! The template functions that only look at their arguments: strings, arrays, objects,
//! comparison, logic, numbers, conversion and the two hashes. Functions that read the
//! deployment (`parameters`, `resourceId`, `reference`...) live in `eval`.
//!
//! Semantics follow ARM's documentation: `contains`, `equals`, `replace` and `indexOf` of
//! arrays compare exactly; `startsWith`, `endsWith` and `indexOf` of strings ignore case; object
//! keys are looked up ignoring case; booleans print as `True` and `False` as .NET prints them.
//! Strings are indexed by character.

use std::cmp::Ordering;

use base64::Engine;
use domain::UnixTime;
use serde_json::{Map, Value};

use crate::template::STRING_CHARS_MAX;
use crate::template::hash;
use crate::template::node::token_name;

/// Evaluates the pure function `lower` (the name in lower case; `name` as written, for
/// messages) on evaluated arguments. `None` when `lower` is not a pure function.
pub(crate) fn call(lower: &str, name: &str, values: Vec<Value>) -> Option<Result<Value, String>> {
    let args = Args { name, values };
    Some(match lower {
        "concat" => concat(args),
        "format" => format(args),
        "guid" => args.strings(1, usize::MAX).map(|parts| Value::String(hash::guid(&parts))),
        "uniquestring" => {
            args.strings(1, usize::MAX).map(|parts| Value::String(hash::unique_string(&parts)))
        }
        "length" => length(args),
        "empty" => empty(args),
        "contains" => contains(args),
        "equals" => {
            args.count(2, 2).map(|()| Value::Bool(equals(&args.values[0], &args.values[1])))
        }
        "not" => args.count(1, 1).and_then(|()| args.boolean(0)).map(|value| Value::Bool(!value)),
        "and" => logic(args, true),
        "or" => logic(args, false),
        "tolower" => args.single_string().map(|text| Value::String(text.to_lowercase())),
        "toupper" => args.single_string().map(|text| Value::String(text.to_uppercase())),
        "string" => args.count(1, 1).map(|()| Value::String(to_text(&args.values[0]))),
        "int" => int(args),
        "bool" => boolean(args),
        "json" => json(args),
        "createarray" => Ok(Value::Array(args.values)),
        "createobject" => create_object(args),
        "union" => union(args),
        "intersection" => intersection(args),
        "first" => first_or_last(args, true),
        "last" => first_or_last(args, false),
        "split" => split(args),
        "replace" => replace(args),
        "substring" => substring(args),
        "startswith" => affix(args, true),
        "endswith" => affix(args, false),
        "trim" => args.single_string().map(|text| Value::String(text.trim().to_owned())),
        "coalesce" => args.count(1, usize::MAX).map(|()| {
            args.values.iter().find(|value| !value.is_null()).cloned().unwrap_or(Value::Null)
        }),
        "add" => arithmetic(args, i64::checked_add),
        "sub" => arithmetic(args, i64::checked_sub),
        "mul" => arithmetic(args, i64::checked_mul),
        "div" => arithmetic(args, i64::checked_div),
        "mod" => arithmetic(args, i64::checked_rem),
        "greater" => compare(args, Ordering::is_gt),
        "less" => compare(args, Ordering::is_lt),
        "greaterorequals" => compare(args, Ordering::is_ge),
        "lessorequals" => compare(args, Ordering::is_le),
        "true" => args.count(0, 0).map(|()| Value::Bool(true)),
        "false" => args.count(0, 0).map(|()| Value::Bool(false)),
        "null" => args.count(0, 0).map(|()| Value::Null),
        "padleft" => pad_left(args),
        "take" => take_or_skip(args, true),
        "skip" => take_or_skip(args, false),
        "min" => min_or_max(args, true),
        "max" => min_or_max(args, false),
        "range" => range(args),
        "join" => join(args),
        "indexof" => index_of(args, false),
        "lastindexof" => index_of(args, true),
        "array" => args.count(1, 1).map(|()| match &args.values[0] {
            Value::Array(_) => args.values[0].clone(),
            other => Value::Array(vec![other.clone()]),
        }),
        "base64" => args.single_string().map(|text| {
            Value::String(base64::engine::general_purpose::STANDARD.encode(text.as_bytes()))
        }),
        "base64tostring" => base64_decode(&args).map(Value::String),
        "base64tojson" => base64_decode(&args).and_then(|text| {
            serde_json::from_str(&text)
                .map_err(|_| args.fail("the decoded value is not valid JSON."))
        }),
        "uricomponent" => args.single_string().map(|text| Value::String(uri_component(&text))),
        "uricomponenttostring" => args.single_string().map(|text| Value::String(uri_decode(&text))),
        "items" => items(args),
        "tryget" => try_get(args),
        _ => return None,
    })
}

/// A value as ARM turns it into text: strings as they are, booleans as `True`/`False`, null as
/// nothing, arrays and objects as compact JSON.
pub(crate) fn to_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Null => String::new(),
        Value::Number(number) => number.to_string(),
        other => serde_json::to_string(other).expect("a JSON value serializes"),
    }
}

/// Equality as `equals` and `contains` see it: deep, numbers by value.
pub(crate) fn equals(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(a), Some(b)) => a == b,
            _ => a.as_f64() == b.as_f64(),
        },
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equals(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(key, x)| b.get(key).is_some_and(|y| equals(x, y)))
        }
        _ => left == right,
    }
}

/// A property of an object, matched exactly first and then ignoring case.
pub(crate) fn property<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).or_else(|| {
        map.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value)
    })
}

/// The arguments of one call, with the checks every function needs.
pub(crate) struct Args<'a> {
    pub name: &'a str,
    pub values: Vec<Value>,
}

impl Args<'_> {
    pub(crate) fn fail(&self, detail: &str) -> String {
        format!(
            "Unable to evaluate template language function '{}': {detail} Please see https://aka.ms/arm-functions for usage details.",
            self.name
        )
    }

    pub(crate) fn count(&self, min: usize, max: usize) -> Result<(), String> {
        let given = self.values.len();
        if (min..=max).contains(&given) {
            return Ok(());
        }
        let required = match (min, max) {
            (min, usize::MAX) => format!("at least {min}"),
            (min, max) if min == max => min.to_string(),
            (min, max) if max == min + 1 => format!("{min} or {max}"),
            (min, max) => format!("{min} to {max}"),
        };
        Err(self.fail(&format!(
            "function requires {required} argument(s) while {given} were provided."
        )))
    }

    pub(crate) fn wrong_type(&self, index: usize, expected: &str) -> String {
        format!(
            "The template language function '{}' expects its parameter {} to be of type '{expected}'. The provided value is of type '{}'. Please see https://aka.ms/arm-functions for usage details.",
            self.name,
            index + 1,
            token_name(&self.values[index])
        )
    }

    pub(crate) fn string(&self, index: usize) -> Result<&str, String> {
        self.values[index].as_str().ok_or_else(|| self.wrong_type(index, "String"))
    }

    fn integer(&self, index: usize) -> Result<i64, String> {
        self.values[index].as_i64().ok_or_else(|| self.wrong_type(index, "Integer"))
    }

    fn boolean(&self, index: usize) -> Result<bool, String> {
        self.values[index].as_bool().ok_or_else(|| self.wrong_type(index, "Boolean"))
    }

    fn single_string(&self) -> Result<String, String> {
        self.count(1, 1)?;
        self.string(0).map(str::to_owned)
    }

    /// Every argument as a string, for functions that join their arguments.
    pub(crate) fn strings(&self, min: usize, max: usize) -> Result<Vec<&str>, String> {
        self.count(min, max)?;
        (0..self.values.len()).map(|index| self.string(index)).collect()
    }
}

fn limit(text: String, args: &Args) -> Result<Value, String> {
    if text.chars().count() > STRING_CHARS_MAX {
        return Err(too_long(args));
    }
    Ok(Value::String(text))
}

fn too_long(args: &Args) -> String {
    args.fail(&format!(
        "the resulting string is longer than the limit of {STRING_CHARS_MAX} characters."
    ))
}

/// Refuses, before building it, a string that would take more than `bytes` bytes beyond what
/// [`STRING_CHARS_MAX`] characters can.
fn check_size(args: &Args, bytes: usize) -> Result<(), String> {
    if bytes > STRING_CHARS_MAX * 4 { Err(too_long(args)) } else { Ok(()) }
}

fn concat(args: Args) -> Result<Value, String> {
    args.count(1, usize::MAX)?;
    if args.values.iter().any(Value::is_array) {
        if !args.values.iter().all(|value| value.is_array() || value.is_null()) {
            return Err(args.fail("Either all or none of the parameters must be an array."));
        }
        let items = args.values.into_iter().flat_map(|value| match value {
            Value::Array(items) => items,
            _ => Vec::new(),
        });
        return Ok(Value::Array(items.collect()));
    }
    if let Some(index) = args.values.iter().position(Value::is_object) {
        return Err(args.wrong_type(index, "String"));
    }
    let parts: Vec<String> = args.values.iter().map(to_text).collect();
    check_size(&args, parts.iter().map(String::len).sum())?;
    limit(parts.concat(), &args)
}

fn format(args: Args) -> Result<Value, String> {
    args.count(1, usize::MAX)?;
    let pattern: Vec<char> = args.string(0)?.chars().collect();
    let invalid = || args.fail("Input string was not in a correct format.");
    let mut out = String::new();
    let mut index = 0;
    while index < pattern.len() {
        match pattern[index] {
            '{' if pattern.get(index + 1) == Some(&'{') => {
                out.push('{');
                index += 2;
            }
            '}' if pattern.get(index + 1) == Some(&'}') => {
                out.push('}');
                index += 2;
            }
            '}' => return Err(invalid()),
            '{' => {
                let close =
                    pattern[index..].iter().position(|c| *c == '}').ok_or_else(invalid)? + index;
                let item: String = pattern[index + 1..close].iter().collect();
                let (head, spec) = match item.split_once(':') {
                    Some((head, spec)) => (head, Some(spec)),
                    None => (item.as_str(), None),
                };
                let (position, alignment) = match head.split_once(',') {
                    Some((position, alignment)) => {
                        (position, Some(alignment.trim().parse::<i64>().map_err(|_| invalid())?))
                    }
                    None => (head, None),
                };
                let position: usize = position.trim().parse().map_err(|_| invalid())?;
                let value = args.values.get(position + 1).ok_or_else(|| {
                    args.fail("Index (zero based) must be greater than or equal to zero and less than the size of the argument list.")
                })?;
                let text = format_item(value, spec).ok_or_else(invalid)?;
                let width = alignment.map_or(0, |width| width.unsigned_abs() as usize);
                check_size(&args, out.len() + text.len() + width)?;
                let padding = width.saturating_sub(text.chars().count());
                match alignment {
                    Some(width) if width < 0 => {
                        out.push_str(&text);
                        out.extend(std::iter::repeat_n(' ', padding));
                    }
                    _ => {
                        out.extend(std::iter::repeat_n(' ', padding));
                        out.push_str(&text);
                    }
                }
                index = close + 1;
            }
            other => {
                out.push(other);
                index += 1;
            }
        }
    }
    limit(out, &args)
}

/// One `{n:spec}` item: arrays and objects as single-quoted JSON as ARM prints them; integers
/// with the .NET specifiers `D`, `N`, `X` and zero-padding patterns such as `000`.
fn format_item(value: &Value, spec: Option<&str>) -> Option<String> {
    let text = match value {
        Value::Array(_) | Value::Object(_) => to_text(value).replace('"', "'"),
        other => to_text(other),
    };
    let Some(spec) = spec.filter(|spec| !spec.is_empty()) else { return Some(text) };
    let Some(number) = value.as_i64() else { return Some(text) };
    let (kind, digits) = spec.split_at(1);
    let digits: usize = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    Some(match kind {
        "D" | "d" => {
            let magnitude = format!("{:0digits$}", number.unsigned_abs());
            if number < 0 { format!("-{magnitude}") } else { magnitude }
        }
        "X" => format!("{number:0digits$X}"),
        "x" => format!("{number:0digits$x}"),
        "N" | "n" => {
            let grouped = group_thousands(number.unsigned_abs());
            let sign = if number < 0 { "-" } else { "" };
            let decimals = if spec.len() == 1 { 2 } else { digits };
            if decimals == 0 {
                format!("{sign}{grouped}")
            } else {
                format!("{sign}{grouped}.{}", "0".repeat(decimals))
            }
        }
        _ if spec.chars().all(|c| c == '0' || c == '#') => {
            let width = spec.chars().filter(|c| *c == '0').count();
            let magnitude = format!("{:0width$}", number.unsigned_abs());
            if number < 0 { format!("-{magnitude}") } else { magnitude }
        }
        _ => return None,
    })
}

fn group_thousands(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::new();
    for (index, c) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn length(args: Args) -> Result<Value, String> {
    args.count(1, 1)?;
    let count = match &args.values[0] {
        Value::String(text) => text.chars().count(),
        Value::Array(items) => items.len(),
        Value::Object(map) => map.len(),
        Value::Null => 0,
        _ => return Err(args.wrong_type(0, "String, Array or Object")),
    };
    Ok(Value::from(count))
}

fn empty(args: Args) -> Result<Value, String> {
    args.count(1, 1)?;
    let empty = match &args.values[0] {
        Value::String(text) => text.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        Value::Null => true,
        _ => return Err(args.wrong_type(0, "String, Array or Object")),
    };
    Ok(Value::Bool(empty))
}

fn contains(args: Args) -> Result<Value, String> {
    args.count(2, 2)?;
    let found = match &args.values[0] {
        Value::String(text) => text.contains(args.string(1)?),
        Value::Array(items) => items.iter().any(|item| equals(item, &args.values[1])),
        Value::Object(map) => property(map, args.string(1)?).is_some(),
        Value::Null => false,
        _ => return Err(args.wrong_type(0, "String, Array or Object")),
    };
    Ok(Value::Bool(found))
}

fn logic(args: Args, all: bool) -> Result<Value, String> {
    args.count(2, usize::MAX)?;
    let values =
        (0..args.values.len()).map(|index| args.boolean(index)).collect::<Result<Vec<_>, _>>()?;
    Ok(Value::Bool(if all { values.iter().all(|v| *v) } else { values.iter().any(|v| *v) }))
}

fn int(args: Args) -> Result<Value, String> {
    args.count(1, 1)?;
    match &args.values[0] {
        Value::Number(number) if number.is_i64() => Ok(args.values[0].clone()),
        Value::String(text) => text.trim().parse::<i64>().map(Value::from).map_err(|_| {
            args.fail(&format!("the value '{text}' cannot be converted to an integer."))
        }),
        _ => Err(args.wrong_type(0, "Integer or String")),
    }
}

fn boolean(args: Args) -> Result<Value, String> {
    args.count(1, 1)?;
    match &args.values[0] {
        Value::Bool(_) => Ok(args.values[0].clone()),
        Value::Number(number) if number.is_i64() => Ok(Value::Bool(number.as_i64() != Some(0))),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
        Value::String(text) => {
            Err(args.fail(&format!("the value '{text}' cannot be converted to a boolean.")))
        }
        _ => Err(args.wrong_type(0, "Boolean, Integer or String")),
    }
}

fn json(args: Args) -> Result<Value, String> {
    args.count(1, 1)?;
    let text = args.string(0)?;
    serde_json::from_str(text)
        .map_err(|_| args.fail(&format!("the value '{text}' is not valid JSON.")))
}

fn create_object(args: Args) -> Result<Value, String> {
    if !args.values.len().is_multiple_of(2) {
        return Err(
            args.fail("function requires an even number of arguments (property names and values).")
        );
    }
    let mut out = Map::new();
    for pair in (0..args.values.len()).step_by(2) {
        let key = args.string(pair)?;
        if property(&out, key).is_some() {
            return Err(args.fail(&format!("the property name '{key}' is given more than once.")));
        }
        out.insert(key.to_owned(), args.values[pair + 1].clone());
    }
    Ok(Value::Object(out))
}

fn union(args: Args) -> Result<Value, String> {
    args.count(1, usize::MAX)?;
    if args.values.iter().all(Value::is_array) {
        let mut out: Vec<Value> = Vec::new();
        for item in args.values.iter().flat_map(|value| value.as_array().into_iter().flatten()) {
            if !out.iter().any(|seen| equals(seen, item)) {
                out.push(item.clone());
            }
        }
        return Ok(Value::Array(out));
    }
    if args.values.iter().all(Value::is_object) {
        let mut out = Map::new();
        for value in &args.values {
            merge(&mut out, value.as_object().expect("checked above"));
        }
        return Ok(Value::Object(out));
    }
    Err(args.fail("all arguments must be arrays, or all must be objects."))
}

/// Merges `patch` into `target`: later values win, nested objects merge.
fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match (target.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(update)) => merge(existing, update),
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

fn intersection(args: Args) -> Result<Value, String> {
    args.count(2, usize::MAX)?;
    if args.values.iter().all(Value::is_array) {
        let (first, rest) = args.values.split_first().expect("counted above");
        let mut out: Vec<Value> = Vec::new();
        for item in first.as_array().into_iter().flatten() {
            let everywhere = rest.iter().all(|other| {
                other.as_array().is_some_and(|items| items.iter().any(|x| equals(x, item)))
            });
            if everywhere && !out.iter().any(|seen| equals(seen, item)) {
                out.push(item.clone());
            }
        }
        return Ok(Value::Array(out));
    }
    if args.values.iter().all(Value::is_object) {
        let (first, rest) = args.values.split_first().expect("counted above");
        let mut out = Map::new();
        for (key, value) in first.as_object().into_iter().flatten() {
            let everywhere = rest.iter().all(|other| {
                other.as_object().and_then(|map| map.get(key)).is_some_and(|x| equals(x, value))
            });
            if everywhere {
                out.insert(key.clone(), value.clone());
            }
        }
        return Ok(Value::Object(out));
    }
    Err(args.fail("all arguments must be arrays, or all must be objects."))
}

fn first_or_last(args: Args, first: bool) -> Result<Value, String> {
    args.count(1, 1)?;
    match &args.values[0] {
        Value::Array(items) => {
            Ok((if first { items.first() } else { items.last() }).cloned().unwrap_or(Value::Null))
        }
        Value::String(text) => {
            let c = if first { text.chars().next() } else { text.chars().next_back() };
            Ok(Value::String(c.map(String::from).unwrap_or_default()))
        }
        Value::Null => Ok(Value::Null),
        _ => Err(args.wrong_type(0, "Array or String")),
    }
}

fn split(args: Args) -> Result<Value, String> {
    args.count(2, 2)?;
    let text = args.string(0)?;
    let delimiters: Vec<&str> = match &args.values[1] {
        Value::String(delimiter) => vec![delimiter.as_str()],
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().ok_or_else(|| args.wrong_type(1, "String")))
            .collect::<Result<_, _>>()?,
        _ => return Err(args.wrong_type(1, "String or Array")),
    };
    let delimiters: Vec<&str> = delimiters.into_iter().filter(|d| !d.is_empty()).collect();
    let mut parts = Vec::new();
    let mut rest = text;
    loop {
        let next = delimiters
            .iter()
            .filter_map(|delimiter| rest.find(delimiter).map(|at| (at, delimiter.len())))
            .min_by_key(|(at, _)| *at);
        match next {
            Some((at, width)) => {
                parts.push(Value::String(rest[..at].to_owned()));
                rest = &rest[at + width..];
            }
            None => {
                parts.push(Value::String(rest.to_owned()));
                break;
            }
        }
    }
    Ok(Value::Array(parts))
}

fn replace(args: Args) -> Result<Value, String> {
    args.count(3, 3)?;
    let (text, old, new) = (args.string(0)?, args.string(1)?, args.string(2)?);
    if old.is_empty() {
        return Err(args.fail("the string to replace cannot be empty."));
    }
    check_size(&args, text.len() + text.matches(old).count() * new.len())?;
    limit(text.replace(old, new), &args)
}

fn substring(args: Args) -> Result<Value, String> {
    args.count(2, 3)?;
    let chars: Vec<char> = args.string(0)?.chars().collect();
    let start = args.integer(1)?;
    let length = if args.values.len() == 3 { args.integer(2)? } else { chars.len() as i64 - start };
    if start < 0 {
        return Err(args.fail(&format!(
            "The index parameter cannot be less than zero. The index: '{start}'."
        )));
    }
    if start > chars.len() as i64 {
        return Err(args.fail(&format!(
            "The index parameter cannot be larger than the length of the string. The index parameter: '{start}', the length of the string parameter: '{}'.",
            chars.len()
        )));
    }
    if length < 0 || start + length > chars.len() as i64 {
        return Err(args.fail(&format!(
            "The index and length parameters must refer to a location within the string. The index parameter: '{start}', the length parameter: '{length}', the length of the string parameter: '{}'.",
            chars.len()
        )));
    }
    let (start, length) = (start as usize, length as usize);
    Ok(Value::String(chars[start..start + length].iter().collect()))
}

fn affix(args: Args, prefix: bool) -> Result<Value, String> {
    args.count(2, 2)?;
    let text = args.string(0)?.to_lowercase();
    let affix = args.string(1)?.to_lowercase();
    Ok(Value::Bool(if prefix { text.starts_with(&affix) } else { text.ends_with(&affix) }))
}

fn arithmetic(args: Args, operation: fn(i64, i64) -> Option<i64>) -> Result<Value, String> {
    args.count(2, 2)?;
    let (left, right) = (args.integer(0)?, args.integer(1)?);
    if right == 0 && matches!(args.name.to_ascii_lowercase().as_str(), "div" | "mod") {
        return Err(args.fail("Attempted to divide by zero."));
    }
    operation(left, right)
        .map(Value::from)
        .ok_or_else(|| args.fail("the result overflows a 64-bit integer."))
}

fn compare(args: Args, accept: fn(Ordering) -> bool) -> Result<Value, String> {
    args.count(2, 2)?;
    let ordering = match (&args.values[0], &args.values[1]) {
        (Value::String(left), Value::String(right)) => left.cmp(right),
        (Value::Number(left), Value::Number(right)) => match (left.as_i64(), right.as_i64()) {
            (Some(left), Some(right)) => left.cmp(&right),
            _ => left
                .as_f64()
                .partial_cmp(&right.as_f64())
                .ok_or_else(|| args.fail("the numbers cannot be compared."))?,
        },
        (Value::String(_) | Value::Number(_), _) => {
            return Err(args.wrong_type(1, token_name(&args.values[0])));
        }
        _ => return Err(args.wrong_type(0, "Integer or String")),
    };
    Ok(Value::Bool(accept(ordering)))
}

fn pad_left(args: Args) -> Result<Value, String> {
    args.count(2, 3)?;
    let text = match &args.values[0] {
        Value::String(text) => text.clone(),
        Value::Number(number) if number.is_i64() => number.to_string(),
        _ => return Err(args.wrong_type(0, "String or Integer")),
    };
    let width = args.integer(1)?;
    if !(0..=STRING_CHARS_MAX as i64).contains(&width) {
        return Err(args.fail("the total length is out of range."));
    }
    let pad = if args.values.len() == 3 {
        let pad = args.string(2)?;
        let mut chars = pad.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => c,
            _ => return Err(args.fail("the padding character must be a single character.")),
        }
    } else {
        ' '
    };
    let missing = (width as usize).saturating_sub(text.chars().count());
    Ok(Value::String(std::iter::repeat_n(pad, missing).chain(text.chars()).collect()))
}

fn take_or_skip(args: Args, take: bool) -> Result<Value, String> {
    args.count(2, 2)?;
    let count = args.integer(1)?.max(0) as usize;
    match &args.values[0] {
        Value::Array(items) => {
            let count = count.min(items.len());
            Ok(Value::Array(if take { items[..count].to_vec() } else { items[count..].to_vec() }))
        }
        Value::String(text) => Ok(Value::String(if take {
            text.chars().take(count).collect()
        } else {
            text.chars().skip(count).collect()
        })),
        _ => Err(args.wrong_type(0, "Array or String")),
    }
}

fn min_or_max(args: Args, min: bool) -> Result<Value, String> {
    args.count(1, usize::MAX)?;
    let numbers: Vec<&Value> = match args.values.as_slice() {
        [Value::Array(items)] => items.iter().collect(),
        values => values.iter().collect(),
    };
    let numbers = numbers
        .into_iter()
        .map(|value| value.as_i64().ok_or_else(|| args.fail("all values must be integers.")))
        .collect::<Result<Vec<_>, _>>()?;
    let found = if min { numbers.iter().min() } else { numbers.iter().max() };
    found.map(|n| Value::from(*n)).ok_or_else(|| args.fail("the array is empty."))
}

fn range(args: Args) -> Result<Value, String> {
    args.count(2, 2)?;
    let (start, count) = (args.integer(0)?, args.integer(1)?);
    if !(0..=10_000).contains(&count) || start.checked_add(count).is_none() {
        return Err(args.fail("the count must be between 0 and 10000."));
    }
    Ok(Value::Array((start..start + count).map(Value::from).collect()))
}

fn join(args: Args) -> Result<Value, String> {
    args.count(2, 2)?;
    let items = args.values[0].as_array().ok_or_else(|| args.wrong_type(0, "Array"))?;
    let delimiter = args.string(1)?;
    let parts = items
        .iter()
        .map(|item| match item {
            Value::Array(_) | Value::Object(_) => {
                Err(args.fail("the array must hold strings, integers or booleans."))
            }
            other => Ok(to_text(other)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_size(&args, parts.iter().map(|part| part.len() + delimiter.len()).sum())?;
    limit(parts.join(delimiter), &args)
}

fn index_of(args: Args, last: bool) -> Result<Value, String> {
    args.count(2, 2)?;
    let found = match &args.values[0] {
        Value::Array(items) => {
            let mut positions =
                items.iter().enumerate().filter(|(_, item)| equals(item, &args.values[1]));
            let found = if last { positions.next_back() } else { positions.next() };
            found.map(|(index, _)| index)
        }
        Value::String(text) => {
            let chars: Vec<char> = text.to_lowercase().chars().collect();
            let needle: Vec<char> = args.string(1)?.to_lowercase().chars().collect();
            let mut positions = (0..=chars.len().saturating_sub(needle.len())).filter(|start| {
                chars.len() >= needle.len() && chars[*start..*start + needle.len()] == needle[..]
            });
            if last { positions.next_back() } else { positions.next() }
        }
        _ => return Err(args.wrong_type(0, "Array or String")),
    };
    Ok(found.map_or(Value::from(-1), Value::from))
}

fn base64_decode(args: &Args) -> Result<String, String> {
    args.count(1, 1)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(args.string(0)?)
        .map_err(|_| args.fail("the value is not valid base64."))?;
    String::from_utf8(bytes).map_err(|_| args.fail("the decoded value is not UTF-8 text."))
}

/// Percent-encodes everything but RFC 3986's unreserved characters, as .NET's
/// `Uri.EscapeDataString` does.
fn uri_component(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn uri_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16));
        match (bytes[index], hex(index + 1), hex(index + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                index += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                index += 1;
            }
            (byte, _, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn items(args: Args) -> Result<Value, String> {
    args.count(1, 1)?;
    let map = args.values[0].as_object().ok_or_else(|| args.wrong_type(0, "Object"))?;
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by_key(|(key, _)| key.to_lowercase());
    Ok(Value::Array(
        entries
            .into_iter()
            .map(|(key, value)| {
                let mut item = Map::new();
                item.insert("key".to_owned(), Value::String(key.clone()));
                item.insert("value".to_owned(), value.clone());
                Value::Object(item)
            })
            .collect(),
    ))
}

fn try_get(args: Args) -> Result<Value, String> {
    args.count(2, usize::MAX)?;
    let mut current = args.values[0].clone();
    for key in &args.values[1..] {
        current = match (&current, key) {
            (Value::Object(map), Value::String(name)) => {
                property(map, name).cloned().unwrap_or(Value::Null)
            }
            (Value::Array(items), Value::Number(index)) => index
                .as_u64()
                .and_then(|index| items.get(index as usize))
                .cloned()
                .unwrap_or(Value::Null),
            _ => Value::Null,
        };
        if current.is_null() {
            break;
        }
    }
    Ok(current)
}

/// `utcNow(format)`: the time in a .NET standard format (`u`, `s`, `o`, `d`) or a custom one
/// built from `yyyy`, `yy`, `MM`, `M`, `dd`, `d`, `HH`, `H`, `hh`, `h`, `mm`, `m`, `ss`, `s`,
/// `f`... (fractions), `tt`, with other characters and `'quoted'` text printed as they are.
pub(crate) fn format_time(now: UnixTime, format: &str) -> Result<String, String> {
    let pattern = match format {
        "u" => "yyyy-MM-dd HH:mm:ssZ",
        "s" => "yyyy-MM-ddTHH:mm:ss",
        "o" | "O" => "yyyy-MM-ddTHH:mm:ss.fffffffZ",
        "d" => "M/d/yyyy",
        other if other.chars().count() == 1 => {
            return Err(format!("the standard format '{other}' is not supported."));
        }
        other => other,
    };
    let millis = now.millis();
    let (year, month, day) = civil_from_days(millis.div_euclid(86_400_000));
    let of_day = millis.rem_euclid(86_400_000);
    let (hour, minute, second, fraction) =
        (of_day / 3_600_000, of_day / 60_000 % 60, of_day / 1000 % 60, of_day % 1000);
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        let run = chars[index..].iter().take_while(|next| **next == c).count();
        match c {
            '\'' => {
                let close = chars[index + 1..]
                    .iter()
                    .position(|next| *next == '\'')
                    .ok_or_else(|| "the format has an unterminated quote.".to_owned())?;
                out.extend(&chars[index + 1..index + 1 + close]);
                index += close + 2;
                continue;
            }
            '\\' => {
                if let Some(next) = chars.get(index + 1) {
                    out.push(*next);
                }
                index += 2;
                continue;
            }
            'y' if run >= 3 => out.push_str(&format!("{year:0run$}")),
            'y' => out.push_str(&format!("{:0run$}", year.rem_euclid(100))),
            'M' => out.push_str(&format!("{month:0width$}", width = run.min(2))),
            'd' => out.push_str(&format!("{day:0width$}", width = run.min(2))),
            'H' => out.push_str(&format!("{hour:0width$}", width = run.min(2))),
            'h' => out.push_str(&format!("{:0width$}", (hour + 11) % 12 + 1, width = run.min(2))),
            'm' => out.push_str(&format!("{minute:0width$}", width = run.min(2))),
            's' => out.push_str(&format!("{second:0width$}", width = run.min(2))),
            'f' | 'F' => {
                let digits = format!("{fraction:03}0000");
                out.push_str(&digits[..run.min(7)]);
            }
            't' => out.push_str(if hour < 12 { &"AM"[..run.min(2)] } else { &"PM"[..run.min(2)] }),
            other => out.extend(std::iter::repeat_n(other, run)),
        }
        index += run;
    }
    Ok(out)
}

/// The proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
