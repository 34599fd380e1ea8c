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
use jmespath::ast::Ast;
use jmespath::{ErrorReason, Expression, JmespathError};
use serde_json::Value;

/// A compiled JMESPath expression.
#[derive(Clone)]
pub struct Query {
    expression: Expression<'static>,
    /// The keys of each multiselect hash (`{Name: name, Id: id}`) in the order written: the
    /// crate builds objects with sorted keys, and az shows them in the expression's order.
    hash_orders: Vec<Vec<String>>,
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
        runtime::compile(text).map(|expression| {
            let mut hash_orders = Vec::new();
            collect_hash_orders(expression.as_ast(), &mut hash_orders);
            Query { expression, hash_orders }
        })
    }

    /// [`Query::search`] with the library's error.
    fn evaluate(&self, value: &Value) -> Result<Value, JmespathError> {
        let result = self.expression.search(value)?;
        // A JMESPath value has string keys and finite numbers, so it always serializes.
        let value = serde_json::to_value(&*result).expect("a JMESPath value is JSON");
        Ok(if self.hash_orders.is_empty() { value } else { self.reorder(value) })
    }

    /// Gives every object whose keys are exactly one multiselect hash's keys that hash's order.
    fn reorder(&self, value: Value) -> Value {
        match value {
            Value::Object(map) => {
                let order = self.hash_orders.iter().find(|keys| {
                    keys.len() == map.len() && keys.iter().all(|key| map.contains_key(key))
                });
                let mut entries: Vec<(String, Value)> =
                    map.into_iter().map(|(key, value)| (key, self.reorder(value))).collect();
                if let Some(order) = order {
                    entries.sort_by_key(|(key, _)| order.iter().position(|wanted| wanted == key));
                }
                Value::Object(entries.into_iter().collect())
            }
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|item| self.reorder(item)).collect())
            }
            other => other,
        }
    }
}

/// The key lists of every multiselect hash in `ast`, outermost first.
fn collect_hash_orders(ast: &Ast, orders: &mut Vec<Vec<String>>) {
    let mut children: Vec<&Ast> = Vec::new();
    match ast {
        Ast::MultiHash { elements, .. } => {
            orders.push(elements.iter().map(|pair| pair.key.clone()).collect());
            children.extend(elements.iter().map(|pair| &pair.value));
        }
        Ast::Comparison { lhs, rhs, .. }
        | Ast::And { lhs, rhs, .. }
        | Ast::Or { lhs, rhs, .. }
        | Ast::Projection { lhs, rhs, .. }
        | Ast::Subexpr { lhs, rhs, .. } => children.extend([&**lhs, &**rhs]),
        Ast::Condition { predicate, then, .. } => children.extend([&**predicate, &**then]),
        Ast::Expref { ast, .. } => children.push(ast),
        Ast::Flatten { node, .. } | Ast::Not { node, .. } | Ast::ObjectValues { node, .. } => {
            children.push(node)
        }
        Ast::Function { args, .. } => children.extend(args.iter()),
        Ast::MultiList { elements, .. } => children.extend(elements.iter()),
        Ast::Identity { .. }
        | Ast::Field { .. }
        | Ast::Index { .. }
        | Ast::Literal { .. }
        | Ast::Slice { .. } => {}
    }
    for child in children {
        collect_hash_orders(child, orders);
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
