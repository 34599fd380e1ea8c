//! `--query`: JMESPath over `serde_json::Value`, as `az` applies to every result.
//!
//! The language is the `jmespath` crate's, the JMESPath project's own Rust implementation.
//! `runtime` adjusts its function table so answers match Python's `jmespath`, which `az` uses.
//! This module turns values into `serde_json::Value` and errors into one line.
//! [`Query::parse`] compiles once; [`Query::search`] runs on a value.
//! `tests.rs` runs the official JMESPath compliance suite through [`Query`].

mod runtime;
#[cfg(test)]
mod tests;

use std::fmt;

use anyhow::{Result, anyhow};
use jmespath::{ErrorReason, Expression, JmespathError};
use serde_json::Value;

/// A compiled JMESPath expression.
#[derive(Clone)]
pub struct Query {
    expression: Expression<'static>,
}

// `cli::run` holds a `Query` across awaits, so it must stay `Send` (the crate's `sync` feature).
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Query>();
};

impl Query {
    /// Compiles `text`; the error names the first thing that does not parse.
    pub fn parse(text: &str) -> Result<Query> {
        Query::compile(text)
            .map_err(|error| anyhow!("invalid --query '{text}': {}", describe(&error)))
    }

    /// Evaluates the expression against `value`.
    pub fn search(&self, value: &Value) -> Result<Value> {
        self.evaluate(value).map_err(|error| anyhow!("--query failed: {}", describe(&error)))
    }

    /// [`Query::parse`] with the library's error, whose kind the compliance tests check.
    fn compile(text: &str) -> Result<Query, JmespathError> {
        runtime::compile(text).map(|expression| Query { expression })
    }

    /// [`Query::search`] with the library's error.
    fn evaluate(&self, value: &Value) -> Result<Value, JmespathError> {
        let result = self.expression.search(value)?;
        // A JMESPath value has string keys and finite numbers, so it always serializes.
        Ok(serde_json::to_value(&*result).expect("a JMESPath value is JSON"))
    }
}

impl fmt::Debug for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Query").field(&self.expression.as_str()).finish()
    }
}

/// One line for `error`: the library's own `Display` adds a second line with a caret.
fn describe(error: &JmespathError) -> String {
    let reason = match &error.reason {
        ErrorReason::Parse(message) => message.clone(),
        ErrorReason::Runtime(runtime) => runtime.to_string(),
    };
    let mut chars = reason.chars();
    let reason: String =
        chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default();
    format!("{reason} (at column {})", error.column)
}
