//! The `jmespath` crate's runtime, adjusted where its answers differ from Python's `jmespath`.
//!
//! `az` evaluates `--query` with Python's `jmespath`, the reference implementation, so users
//! expect its answers. The crate differs in three ways, each fixed here by wrapping a built-in
//! function rather than reimplementing it:
//!
//! - `avg` of an empty array fails instead of returning `null` (the spec and Python say `null`).
//! - `sum`, `abs`, `ceil` and `floor` compute in `f64` and print `3.0` where Python prints `3`.
//! - `<`, `<=`, `>` and `>=` order only numbers; Python also orders strings, which users rely
//!   on to compare timestamps (`[?createdOn > '2024-01-01']`). Comparisons are rewritten into
//!   calls of functions whose names no query can spell, since the crate has no other hook.

use std::sync::LazyLock;

use jmespath::ast::{Ast, Comparator, KeyValuePair};
use jmespath::functions::Function;
use jmespath::{Context, Expression, JmespathError, Rcvar, Runtime, SearchResult, Variable};
use serde_json::Number;

/// Parses `text` into an expression that runs on the adjusted runtime.
pub fn compile(text: &str) -> Result<Expression<'static>, JmespathError> {
    let ast = jmespath::parse(text)?;
    Ok(Expression::new(text, rewrite(ast), &RUNTIME))
}

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    let mut runtime = Runtime::new();
    runtime.register_builtin_functions();
    let avg = builtin(&mut runtime, "avg");
    runtime.register_function("avg", Box::new(NullForEmpty { builtin: avg }));
    for (name, always) in [("sum", false), ("abs", false), ("ceil", true), ("floor", true)] {
        let builtin = builtin(&mut runtime, name);
        runtime.register_function(name, Box::new(WholeNumbers { builtin, always }));
    }
    for comparator in ORDERING_COMPARATORS {
        let name = ordering_function(&comparator);
        runtime.register_function(name, Box::new(Ordering { comparator }));
    }
    runtime
});

const ORDERING_COMPARATORS: [Comparator; 4] = [
    Comparator::LessThan,
    Comparator::LessThanEqual,
    Comparator::GreaterThan,
    Comparator::GreaterThanEqual,
];

fn builtin(runtime: &mut Runtime, name: &str) -> Box<dyn Function> {
    runtime.deregister_function(name).expect("the crate has every JMESPath built-in function")
}

/// The function standing for an ordering comparison; the space keeps queries from calling it.
fn ordering_function(comparator: &Comparator) -> &'static str {
    match comparator {
        Comparator::LessThan => "ordering <",
        Comparator::LessThanEqual => "ordering <=",
        Comparator::GreaterThan => "ordering >",
        Comparator::GreaterThanEqual => "ordering >=",
        Comparator::Equal | Comparator::NotEqual => unreachable!("equality is not an ordering"),
    }
}

/// Replaces every ordering comparison in `ast` by a call of its [`Ordering`] function.
fn rewrite(ast: Ast) -> Ast {
    let boxed = |ast: Box<Ast>| Box::new(rewrite(*ast));
    match ast {
        Ast::Comparison { offset, comparator, lhs, rhs }
            if ORDERING_COMPARATORS.contains(&comparator) =>
        {
            Ast::Function {
                offset,
                name: ordering_function(&comparator).to_owned(),
                args: vec![rewrite(*lhs), rewrite(*rhs)],
            }
        }
        Ast::Comparison { offset, comparator, lhs, rhs } => {
            Ast::Comparison { offset, comparator, lhs: boxed(lhs), rhs: boxed(rhs) }
        }
        Ast::Condition { offset, predicate, then } => {
            Ast::Condition { offset, predicate: boxed(predicate), then: boxed(then) }
        }
        Ast::Expref { offset, ast } => Ast::Expref { offset, ast: boxed(ast) },
        Ast::Flatten { offset, node } => Ast::Flatten { offset, node: boxed(node) },
        Ast::Function { offset, name, args } => {
            Ast::Function { offset, name, args: args.into_iter().map(rewrite).collect() }
        }
        Ast::MultiList { offset, elements } => {
            Ast::MultiList { offset, elements: elements.into_iter().map(rewrite).collect() }
        }
        Ast::MultiHash { offset, elements } => Ast::MultiHash {
            offset,
            elements: elements
                .into_iter()
                .map(|pair| KeyValuePair { key: pair.key, value: rewrite(pair.value) })
                .collect(),
        },
        Ast::Not { offset, node } => Ast::Not { offset, node: boxed(node) },
        Ast::Projection { offset, lhs, rhs } => {
            Ast::Projection { offset, lhs: boxed(lhs), rhs: boxed(rhs) }
        }
        Ast::ObjectValues { offset, node } => Ast::ObjectValues { offset, node: boxed(node) },
        Ast::And { offset, lhs, rhs } => Ast::And { offset, lhs: boxed(lhs), rhs: boxed(rhs) },
        Ast::Or { offset, lhs, rhs } => Ast::Or { offset, lhs: boxed(lhs), rhs: boxed(rhs) },
        Ast::Subexpr { offset, lhs, rhs } => {
            Ast::Subexpr { offset, lhs: boxed(lhs), rhs: boxed(rhs) }
        }
        leaf @ (Ast::Identity { .. }
        | Ast::Field { .. }
        | Ast::Index { .. }
        | Ast::Literal { .. }
        | Ast::Slice { .. }) => leaf,
    }
}

/// An ordering comparison that orders two strings by code point, as Python does, and leaves
/// every other pair to the crate (numbers compare, anything else is `null`).
struct Ordering {
    comparator: Comparator,
}

impl Function for Ordering {
    fn evaluate(&self, args: &[Rcvar], _context: &mut Context<'_>) -> SearchResult {
        let [left, right] = args else { unreachable!("`rewrite` passes both operands") };
        let result = match (left.as_string(), right.as_string()) {
            (Some(left), Some(right)) => {
                let ordering = left.cmp(right);
                Some(match self.comparator {
                    Comparator::LessThan => ordering.is_lt(),
                    Comparator::LessThanEqual => ordering.is_le(),
                    Comparator::GreaterThan => ordering.is_gt(),
                    Comparator::GreaterThanEqual => ordering.is_ge(),
                    Comparator::Equal | Comparator::NotEqual => unreachable!("not an ordering"),
                })
            }
            _ => left.compare(&self.comparator, right),
        };
        Ok(Rcvar::new(result.map_or(Variable::Null, Variable::Bool)))
    }
}

/// `avg` that answers `null` for an empty array and otherwise defers to the built-in.
struct NullForEmpty {
    builtin: Box<dyn Function>,
}

impl Function for NullForEmpty {
    fn evaluate(&self, args: &[Rcvar], context: &mut Context<'_>) -> SearchResult {
        match args {
            [only] if only.as_array().is_some_and(Vec::is_empty) => Ok(Rcvar::new(Variable::Null)),
            _ => self.builtin.evaluate(args, context),
        }
    }
}

/// A numeric built-in whose whole results print as integers where Python's would be `int`:
/// always (`always`, for `ceil` and `floor`) or when every number it was given is an integer.
struct WholeNumbers {
    builtin: Box<dyn Function>,
    always: bool,
}

impl Function for WholeNumbers {
    fn evaluate(&self, args: &[Rcvar], context: &mut Context<'_>) -> SearchResult {
        let result = self.builtin.evaluate(args, context)?;
        let whole = match result.as_number() {
            Some(number) if number.fract() == 0.0 && number.abs() < 2f64.powi(53) => number,
            _ => return Ok(result),
        };
        if self.always || args.iter().all(|arg| integers_only(arg)) {
            // The bound above keeps the conversion exact.
            let integer = whole as i64;
            return Ok(Rcvar::new(Variable::Number(Number::from(integer))));
        }
        Ok(result)
    }
}

/// Whether every number in `value` (a number or an array of them) is an integer.
fn integers_only(value: &Variable) -> bool {
    match value {
        Variable::Number(number) => number.is_i64() || number.is_u64(),
        Variable::Array(items) => items.iter().all(|item| integers_only(item)),
        _ => true,
    }
}
