//! `--query`: a JMESPath interpreter over `serde_json::Value`, as `az` applies to every result.
//!
//! It covers the language users type: fields, sub-expressions, `[n]` indexes and slices,
//! `[*]`/`[]`/`*` projections, `[?cond]` filters, multi-select lists and hashes, pipes, `||`,
//! `&&`, `!`, comparisons, literals and the common built-in functions (`length`, `sort_by`,
//! `contains`, ...). [`Query::parse`] compiles once; [`Query::search`] runs on a value.

use std::cmp::Ordering;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};

/// A compiled JMESPath expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    ast: Ast,
}

impl Query {
    /// Compiles `text`; the error names the first thing that does not parse.
    pub fn parse(text: &str) -> Result<Query> {
        let tokens = lex(text).with_context(|| format!("invalid --query '{text}'"))?;
        let mut parser = Parser { tokens, position: 0 };
        let ast = parser.expression(0).with_context(|| format!("invalid --query '{text}'"))?;
        if parser.peek() != &Token::Eof {
            return Err(anyhow!("unexpected {:?}", parser.peek()))
                .with_context(|| format!("invalid --query '{text}'"));
        }
        Ok(Query { ast })
    }

    /// Evaluates the expression against `value`.
    pub fn search(&self, value: &Value) -> Result<Value> {
        evaluate(&self.ast, value).context("--query failed")
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Ast {
    Identity,
    Field(String),
    Index(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Literal(Value),
    Subexpression(Box<Ast>, Box<Ast>),
    /// Evaluates the left side to an array and the right side on each element, dropping nulls.
    Projection(Box<Ast>, Box<Ast>),
    /// Evaluates the left side to an object and the right side on each of its values.
    ObjectProjection(Box<Ast>, Box<Ast>),
    Flatten(Box<Ast>),
    /// Left side, condition, right side (a projection over the elements that pass).
    Filter(Box<Ast>, Box<Ast>, Box<Ast>),
    MultiList(Vec<Ast>),
    MultiHash(Vec<(String, Ast)>),
    Pipe(Box<Ast>, Box<Ast>),
    Or(Box<Ast>, Box<Ast>),
    And(Box<Ast>, Box<Ast>),
    Not(Box<Ast>),
    Compare(Comparator, Box<Ast>, Box<Ast>),
    Function(String, Vec<Ast>),
    ExpressionReference(Box<Ast>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparator {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Identifier(String),
    QuotedIdentifier(String),
    RawString(String),
    Literal(Value),
    Number(i64),
    Dot,
    Star,
    Flatten,
    Filter,
    LeftBracket,
    RightBracket,
    LeftBrace,
    RightBrace,
    LeftParen,
    RightParen,
    Comma,
    Colon,
    Pipe,
    Or,
    And,
    Not,
    Ampersand,
    At,
    Compare(Comparator),
    Eof,
}

fn lex(text: &str) -> Result<Vec<Token>> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        let next = chars.get(at + 1).copied();
        let (token, width) = match c {
            ' ' | '\t' | '\n' | '\r' => {
                at += 1;
                continue;
            }
            'a'..='z' | 'A'..='Z' | '_' => {
                let end = (at..chars.len())
                    .find(|&i| !(chars[i].is_ascii_alphanumeric() || chars[i] == '_'))
                    .unwrap_or(chars.len());
                (Token::Identifier(chars[at..end].iter().collect()), end - at)
            }
            '0'..='9' | '-' => {
                let end = (at + 1..chars.len())
                    .find(|&i| !chars[i].is_ascii_digit())
                    .unwrap_or(chars.len());
                let digits: String = chars[at..end].iter().collect();
                let number = digits.parse().map_err(|_| anyhow!("bad number '{digits}'"))?;
                (Token::Number(number), end - at)
            }
            '"' => {
                let end = closing(&chars, at, '"')?;
                let quoted: String = chars[at..=end].iter().collect();
                let name: String = serde_json::from_str(&quoted)
                    .map_err(|_| anyhow!("bad quoted identifier {quoted}"))?;
                (Token::QuotedIdentifier(name), end + 1 - at)
            }
            '\'' => {
                let end = closing(&chars, at, '\'')?;
                let raw: String = chars[at + 1..end].iter().collect();
                (Token::RawString(raw.replace("\\'", "'")), end + 1 - at)
            }
            '`' => {
                let end = closing(&chars, at, '`')?;
                let raw: String = chars[at + 1..end].iter().collect::<String>().replace("\\`", "`");
                // Old JMESPath accepted bare words in backticks as strings; keep that leniency.
                let value = serde_json::from_str(raw.trim())
                    .unwrap_or_else(|_| Value::String(raw.trim().to_owned()));
                (Token::Literal(value), end + 1 - at)
            }
            '[' if next == Some(']') => (Token::Flatten, 2),
            '[' if next == Some('?') => (Token::Filter, 2),
            '[' => (Token::LeftBracket, 1),
            ']' => (Token::RightBracket, 1),
            '{' => (Token::LeftBrace, 1),
            '}' => (Token::RightBrace, 1),
            '(' => (Token::LeftParen, 1),
            ')' => (Token::RightParen, 1),
            '.' => (Token::Dot, 1),
            '*' => (Token::Star, 1),
            ',' => (Token::Comma, 1),
            ':' => (Token::Colon, 1),
            '@' => (Token::At, 1),
            '|' if next == Some('|') => (Token::Or, 2),
            '|' => (Token::Pipe, 1),
            '&' if next == Some('&') => (Token::And, 2),
            '&' => (Token::Ampersand, 1),
            '!' if next == Some('=') => (Token::Compare(Comparator::NotEqual), 2),
            '!' => (Token::Not, 1),
            '=' if next == Some('=') => (Token::Compare(Comparator::Equal), 2),
            '<' if next == Some('=') => (Token::Compare(Comparator::LessOrEqual), 2),
            '<' => (Token::Compare(Comparator::Less), 1),
            '>' if next == Some('=') => (Token::Compare(Comparator::GreaterOrEqual), 2),
            '>' => (Token::Compare(Comparator::Greater), 1),
            other => bail!("unexpected character '{other}' at {at}"),
        };
        tokens.push(token);
        at += width;
    }
    tokens.push(Token::Eof);
    Ok(tokens)
}

/// The index of the quote closing the one at `start`, skipping backslash escapes.
fn closing(chars: &[char], start: usize, quote: char) -> Result<usize> {
    let mut at = start + 1;
    while at < chars.len() {
        match chars[at] {
            '\\' => at += 2,
            c if c == quote => return Ok(at),
            _ => at += 1,
        }
    }
    bail!("unclosed {quote} starting at {start}")
}

/// Binding powers from the JMESPath reference grammar.
fn binding_power(token: &Token) -> u8 {
    match token {
        Token::Pipe => 1,
        Token::Or => 2,
        Token::And => 3,
        Token::Compare(_) => 5,
        Token::Flatten => 9,
        Token::Star => 20,
        Token::Filter => 21,
        Token::Dot => 40,
        Token::Not => 45,
        Token::LeftBrace => 50,
        Token::LeftBracket => 55,
        Token::LeftParen => 60,
        _ => 0,
    }
}

/// Results of an index expression, `[n]` or `[a:b:c]`.
enum Bracket {
    Index(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.position.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, offset: usize) -> &Token {
        &self.tokens[(self.position + offset).min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        self.position += 1;
        token
    }

    fn expect(&mut self, wanted: &Token) -> Result<()> {
        let token = self.advance();
        if &token != wanted {
            bail!("expected {wanted:?}, found {token:?}");
        }
        Ok(())
    }

    fn expression(&mut self, right_binding_power: u8) -> Result<Ast> {
        let token = self.advance();
        let mut left = self.prefix(token)?;
        while right_binding_power < binding_power(self.peek()) {
            let token = self.advance();
            left = self.infix(token, left)?;
        }
        Ok(left)
    }

    fn prefix(&mut self, token: Token) -> Result<Ast> {
        Ok(match token {
            Token::At => Ast::Identity,
            Token::Identifier(name) | Token::QuotedIdentifier(name) => Ast::Field(name),
            Token::RawString(text) => Ast::Literal(Value::String(text)),
            Token::Literal(value) => Ast::Literal(value),
            Token::Star => {
                let right = self.projection_right(binding_power(&Token::Star))?;
                Ast::ObjectProjection(Box::new(Ast::Identity), Box::new(right))
            }
            Token::Flatten => {
                let right = self.projection_right(binding_power(&Token::Flatten))?;
                Ast::Projection(Box::new(Ast::Flatten(Box::new(Ast::Identity))), Box::new(right))
            }
            Token::Filter => self.filter(Ast::Identity)?,
            Token::LeftBracket => match self.peek() {
                Token::Number(_) | Token::Colon => match self.bracket()? {
                    Bracket::Index(index) => Ast::Index(index),
                    Bracket::Slice(start, stop, step) => {
                        let right = self.projection_right(binding_power(&Token::Star))?;
                        Ast::Projection(Box::new(Ast::Slice(start, stop, step)), Box::new(right))
                    }
                },
                Token::Star if self.peek_at(1) == &Token::RightBracket => {
                    self.advance();
                    self.advance();
                    let right = self.projection_right(binding_power(&Token::Star))?;
                    Ast::Projection(Box::new(Ast::Identity), Box::new(right))
                }
                _ => self.multi_list()?,
            },
            Token::LeftBrace => self.multi_hash()?,
            Token::Not => Ast::Not(Box::new(self.expression(binding_power(&Token::Not))?)),
            Token::LeftParen => {
                let inner = self.expression(0)?;
                self.expect(&Token::RightParen)?;
                inner
            }
            Token::Ampersand => Ast::ExpressionReference(Box::new(self.expression(0)?)),
            other => bail!("unexpected {other:?}"),
        })
    }

    fn infix(&mut self, token: Token, left: Ast) -> Result<Ast> {
        Ok(match token {
            Token::Dot => {
                if self.peek() == &Token::Star {
                    self.advance();
                    let right = self.projection_right(binding_power(&Token::Star))?;
                    Ast::ObjectProjection(Box::new(left), Box::new(right))
                } else {
                    let right = self.dot_right(binding_power(&Token::Dot))?;
                    Ast::Subexpression(Box::new(left), Box::new(right))
                }
            }
            Token::Pipe => {
                Ast::Pipe(Box::new(left), Box::new(self.expression(binding_power(&Token::Pipe))?))
            }
            Token::Or => {
                Ast::Or(Box::new(left), Box::new(self.expression(binding_power(&Token::Or))?))
            }
            Token::And => {
                Ast::And(Box::new(left), Box::new(self.expression(binding_power(&Token::And))?))
            }
            Token::Compare(comparator) => {
                let right = self.expression(binding_power(&Token::Compare(comparator)))?;
                Ast::Compare(comparator, Box::new(left), Box::new(right))
            }
            Token::Flatten => {
                let right = self.projection_right(binding_power(&Token::Flatten))?;
                Ast::Projection(Box::new(Ast::Flatten(Box::new(left))), Box::new(right))
            }
            Token::Filter => self.filter(left)?,
            Token::LeftBracket => match self.peek() {
                Token::Number(_) | Token::Colon => match self.bracket()? {
                    Bracket::Index(index) => {
                        Ast::Subexpression(Box::new(left), Box::new(Ast::Index(index)))
                    }
                    Bracket::Slice(start, stop, step) => {
                        let sliced = Ast::Subexpression(
                            Box::new(left),
                            Box::new(Ast::Slice(start, stop, step)),
                        );
                        let right = self.projection_right(binding_power(&Token::Star))?;
                        Ast::Projection(Box::new(sliced), Box::new(right))
                    }
                },
                Token::Star if self.peek_at(1) == &Token::RightBracket => {
                    self.advance();
                    self.advance();
                    let right = self.projection_right(binding_power(&Token::Star))?;
                    Ast::Projection(Box::new(left), Box::new(right))
                }
                other => bail!("unexpected {other:?} after '['"),
            },
            Token::LeftParen => {
                let Ast::Field(name) = left else { bail!("only a function name can be called") };
                let mut arguments = Vec::new();
                if self.peek() != &Token::RightParen {
                    loop {
                        arguments.push(self.expression(0)?);
                        if self.peek() == &Token::Comma {
                            self.advance();
                        } else {
                            break;
                        }
                    }
                }
                self.expect(&Token::RightParen)?;
                Ast::Function(name, arguments)
            }
            other => bail!("unexpected {other:?}"),
        })
    }

    /// What follows a projection: nothing (the identity), a bracket, or a `.` expression.
    fn projection_right(&mut self, binding: u8) -> Result<Ast> {
        let next = self.peek();
        if binding_power(next) < 10 {
            return Ok(Ast::Identity);
        }
        match next {
            Token::LeftBracket | Token::Filter => self.expression(binding),
            Token::Dot => {
                self.advance();
                self.dot_right(binding)
            }
            other => bail!("unexpected {other:?} after a projection"),
        }
    }

    fn dot_right(&mut self, binding: u8) -> Result<Ast> {
        match self.peek() {
            Token::Identifier(_) | Token::QuotedIdentifier(_) | Token::Star => {
                self.expression(binding)
            }
            Token::LeftBracket => {
                self.advance();
                self.multi_list()
            }
            Token::LeftBrace => {
                self.advance();
                self.multi_hash()
            }
            other => bail!("unexpected {other:?} after '.'"),
        }
    }

    fn filter(&mut self, left: Ast) -> Result<Ast> {
        let condition = self.expression(0)?;
        self.expect(&Token::RightBracket)?;
        let right = self.projection_right(binding_power(&Token::Filter))?;
        Ok(Ast::Filter(Box::new(left), Box::new(condition), Box::new(right)))
    }

    /// After `[`, at a number or `:`.
    fn bracket(&mut self) -> Result<Bracket> {
        let mut parts = [None, None, None];
        let mut part = 0;
        loop {
            match self.advance() {
                Token::Number(number) => parts[part] = Some(number),
                Token::Colon if part < 2 => part += 1,
                Token::RightBracket => break,
                other => bail!("unexpected {other:?} in an index"),
            }
        }
        if part == 0 {
            return parts[0].map(Bracket::Index).context("empty index");
        }
        if parts[2] == Some(0) {
            bail!("a slice step cannot be 0");
        }
        Ok(Bracket::Slice(parts[0], parts[1], parts[2]))
    }

    /// After `[`.
    fn multi_list(&mut self) -> Result<Ast> {
        let mut items = Vec::new();
        loop {
            items.push(self.expression(0)?);
            match self.advance() {
                Token::Comma => continue,
                Token::RightBracket => break,
                other => bail!("expected ',' or ']', found {other:?}"),
            }
        }
        Ok(Ast::MultiList(items))
    }

    /// After `{`.
    fn multi_hash(&mut self) -> Result<Ast> {
        let mut pairs = Vec::new();
        loop {
            let key = match self.advance() {
                Token::Identifier(key) | Token::QuotedIdentifier(key) => key,
                other => bail!("expected a key, found {other:?}"),
            };
            self.expect(&Token::Colon)?;
            pairs.push((key, self.expression(0)?));
            match self.advance() {
                Token::Comma => continue,
                Token::RightBrace => break,
                other => bail!("expected ',' or '}}', found {other:?}"),
            }
        }
        Ok(Ast::MultiHash(pairs))
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        Value::Number(_) => true,
    }
}

fn evaluate(ast: &Ast, value: &Value) -> Result<Value> {
    Ok(match ast {
        Ast::Identity => value.clone(),
        Ast::Field(name) => value.get(name.as_str()).cloned().unwrap_or(Value::Null),
        Ast::Index(index) => match value {
            Value::Array(items) => {
                let at = if *index < 0 { items.len() as i64 + index } else { *index };
                usize::try_from(at)
                    .ok()
                    .and_then(|at| items.get(at))
                    .cloned()
                    .unwrap_or(Value::Null)
            }
            _ => Value::Null,
        },
        Ast::Slice(start, stop, step) => match value {
            Value::Array(items) => Value::Array(slice(items, *start, *stop, step.unwrap_or(1))),
            _ => Value::Null,
        },
        Ast::Literal(literal) => literal.clone(),
        Ast::Subexpression(left, right) => evaluate(right, &evaluate(left, value)?)?,
        Ast::Projection(left, right) => match evaluate(left, value)? {
            Value::Array(items) => project(items.iter(), right)?,
            _ => Value::Null,
        },
        Ast::ObjectProjection(left, right) => match evaluate(left, value)? {
            Value::Object(map) => project(map.values(), right)?,
            _ => Value::Null,
        },
        Ast::Flatten(inner) => match evaluate(inner, value)? {
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .flat_map(|item| match item {
                        Value::Array(inner) => inner,
                        other => vec![other],
                    })
                    .collect(),
            ),
            _ => Value::Null,
        },
        Ast::Filter(left, condition, right) => match evaluate(left, value)? {
            Value::Array(items) => {
                let mut kept = Vec::new();
                for item in items {
                    if truthy(&evaluate(condition, &item)?) {
                        kept.push(item);
                    }
                }
                project(kept.iter(), right)?
            }
            _ => Value::Null,
        },
        Ast::MultiList(items) => {
            if value.is_null() {
                return Ok(Value::Null);
            }
            Value::Array(items.iter().map(|item| evaluate(item, value)).collect::<Result<_>>()?)
        }
        Ast::MultiHash(pairs) => {
            if value.is_null() {
                return Ok(Value::Null);
            }
            let mut map = Map::new();
            for (key, item) in pairs {
                map.insert(key.clone(), evaluate(item, value)?);
            }
            Value::Object(map)
        }
        Ast::Pipe(left, right) => evaluate(right, &evaluate(left, value)?)?,
        Ast::Or(left, right) => {
            let left = evaluate(left, value)?;
            if truthy(&left) { left } else { evaluate(right, value)? }
        }
        Ast::And(left, right) => {
            let left = evaluate(left, value)?;
            if truthy(&left) { evaluate(right, value)? } else { left }
        }
        Ast::Not(inner) => Value::Bool(!truthy(&evaluate(inner, value)?)),
        Ast::Compare(comparator, left, right) => {
            compare(*comparator, &evaluate(left, value)?, &evaluate(right, value)?)
        }
        Ast::Function(name, arguments) => call(name, arguments, value)?,
        Ast::ExpressionReference(_) => bail!("'&expression' is only valid as a function argument"),
    })
}

fn project<'a>(items: impl Iterator<Item = &'a Value>, right: &Ast) -> Result<Value> {
    let mut out = Vec::new();
    for item in items {
        let projected = evaluate(right, item)?;
        if !projected.is_null() {
            out.push(projected);
        }
    }
    Ok(Value::Array(out))
}

fn slice(items: &[Value], start: Option<i64>, stop: Option<i64>, step: i64) -> Vec<Value> {
    let length = items.len() as i64;
    let clamp = |bound: i64, low: i64, high: i64| {
        let bound = if bound < 0 { bound + length } else { bound };
        bound.clamp(low, high)
    };
    let mut out = Vec::new();
    if step > 0 {
        let mut at = start.map_or(0, |start| clamp(start, 0, length));
        let stop = stop.map_or(length, |stop| clamp(stop, 0, length));
        while at < stop {
            out.push(items[at as usize].clone());
            at += step;
        }
    } else {
        let mut at = start.map_or(length - 1, |start| clamp(start, -1, length - 1));
        let stop = stop.map_or(-1, |stop| clamp(stop, -1, length - 1));
        while at > stop {
            out.push(items[at as usize].clone());
            at += step;
        }
    }
    out
}

fn numbers_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| numbers_equal(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(key, value)| b.get(key).is_some_and(|other| numbers_equal(value, other)))
        }
        _ => left == right,
    }
}

fn order(left: &Value, right: &Value) -> Option<Ordering> {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        // Standard JMESPath orders only numbers; strings are allowed too so timestamps compare.
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn compare(comparator: Comparator, left: &Value, right: &Value) -> Value {
    let ordering = || order(left, right);
    let result = match comparator {
        Comparator::Equal => Some(numbers_equal(left, right)),
        Comparator::NotEqual => Some(!numbers_equal(left, right)),
        Comparator::Less => ordering().map(Ordering::is_lt),
        Comparator::LessOrEqual => ordering().map(Ordering::is_le),
        Comparator::Greater => ordering().map(Ordering::is_gt),
        Comparator::GreaterOrEqual => ordering().map(Ordering::is_ge),
    };
    result.map_or(Value::Null, Value::Bool)
}

fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        Value::from(value as i64)
    } else {
        serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn call(name: &str, arguments: &[Ast], current: &Value) -> Result<Value> {
    let expected = match name {
        "abs" | "avg" | "ceil" | "floor" | "keys" | "length" | "max" | "min" | "reverse"
        | "sort" | "sum" | "to_array" | "to_number" | "to_string" | "type" | "values" => Some(1),
        "contains" | "ends_with" | "join" | "map" | "max_by" | "min_by" | "sort_by"
        | "starts_with" => Some(2),
        "merge" | "not_null" => None,
        other => bail!("unknown function {other}()"),
    };
    if let Some(expected) = expected
        && arguments.len() != expected
    {
        bail!("{name}() takes {expected} argument(s), got {}", arguments.len());
    }
    // Expression references stay unevaluated; everything else is evaluated against `current`.
    let value_of = |index: usize| -> Result<Value> { evaluate(&arguments[index], current) };
    let reference_of = |index: usize| -> Result<&Ast> {
        match &arguments[index] {
            Ast::ExpressionReference(inner) => Ok(inner),
            _ => bail!("{name}() needs an &expression as argument {}", index + 1),
        }
    };
    let wrong = |value: &Value| anyhow!("{name}() does not accept a {}", type_name(value));
    Ok(match name {
        "abs" | "ceil" | "floor" => {
            let value = value_of(0)?;
            let x = value.as_f64().ok_or_else(|| wrong(&value))?;
            number(match name {
                "abs" => x.abs(),
                "ceil" => x.ceil(),
                _ => x.floor(),
            })
        }
        "avg" | "sum" => {
            let value = value_of(0)?;
            let items = value.as_array().ok_or_else(|| wrong(&value))?;
            let numbers = items
                .iter()
                .map(|item| item.as_f64().ok_or_else(|| wrong(item)))
                .collect::<Result<Vec<_>>>()?;
            let total: f64 = numbers.iter().sum();
            match (name, numbers.len()) {
                ("avg", 0) => Value::Null,
                ("avg", count) => number(total / count as f64),
                _ => number(total),
            }
        }
        "contains" => match (value_of(0)?, value_of(1)?) {
            (Value::String(text), Value::String(part)) => Value::Bool(text.contains(&part)),
            (Value::Array(items), needle) => {
                Value::Bool(items.iter().any(|item| numbers_equal(item, &needle)))
            }
            (other, _) => return Err(wrong(&other)),
        },
        "starts_with" | "ends_with" => match (value_of(0)?, value_of(1)?) {
            (Value::String(text), Value::String(part)) => Value::Bool(if name == "starts_with" {
                text.starts_with(&part)
            } else {
                text.ends_with(&part)
            }),
            (other, _) => return Err(wrong(&other)),
        },
        "join" => {
            let separator = value_of(0)?;
            let separator = separator.as_str().ok_or_else(|| wrong(&separator))?.to_owned();
            let items = value_of(1)?;
            let parts = items
                .as_array()
                .ok_or_else(|| wrong(&items))?
                .iter()
                .map(|item| item.as_str().map(str::to_owned).ok_or_else(|| wrong(item)))
                .collect::<Result<Vec<_>>>()?;
            Value::String(parts.join(&separator))
        }
        "keys" | "values" => match value_of(0)? {
            Value::Object(map) if name == "keys" => {
                Value::Array(map.keys().cloned().map(Value::String).collect())
            }
            Value::Object(map) => Value::Array(map.values().cloned().collect()),
            other => return Err(wrong(&other)),
        },
        "length" => match value_of(0)? {
            Value::String(text) => Value::from(text.chars().count()),
            Value::Array(items) => Value::from(items.len()),
            Value::Object(map) => Value::from(map.len()),
            other => return Err(wrong(&other)),
        },
        "map" => {
            let expression = reference_of(0)?;
            let items = value_of(1)?;
            let items = items.as_array().ok_or_else(|| wrong(&items))?;
            Value::Array(
                items.iter().map(|item| evaluate(expression, item)).collect::<Result<_>>()?,
            )
        }
        "max" | "min" => {
            let items = value_of(0)?;
            let items = items.as_array().ok_or_else(|| wrong(&items))?;
            extreme(items.iter().cloned().map(|item| (item.clone(), item)), name == "max", name)?
        }
        "max_by" | "min_by" => {
            let items = value_of(0)?;
            let expression = reference_of(1)?;
            let items = items.as_array().ok_or_else(|| wrong(&items))?;
            let keyed = items
                .iter()
                .map(|item| Ok((evaluate(expression, item)?, item.clone())))
                .collect::<Result<Vec<_>>>()?;
            extreme(keyed.into_iter(), name == "max_by", name)?
        }
        "merge" => {
            let mut merged = Map::new();
            for index in 0..arguments.len() {
                match value_of(index)? {
                    Value::Object(map) => merged.extend(map),
                    other => return Err(wrong(&other)),
                }
            }
            Value::Object(merged)
        }
        "not_null" => {
            for index in 0..arguments.len() {
                let value = value_of(index)?;
                if !value.is_null() {
                    return Ok(value);
                }
            }
            Value::Null
        }
        "reverse" => match value_of(0)? {
            Value::Array(mut items) => {
                items.reverse();
                Value::Array(items)
            }
            Value::String(text) => Value::String(text.chars().rev().collect()),
            other => return Err(wrong(&other)),
        },
        "sort" => {
            let items = value_of(0)?;
            let items = items.as_array().ok_or_else(|| wrong(&items))?;
            let keyed = items.iter().map(|item| (item.clone(), item.clone())).collect();
            Value::Array(sorted(keyed, name)?)
        }
        "sort_by" => {
            let items = value_of(0)?;
            let expression = reference_of(1)?;
            let items = items.as_array().ok_or_else(|| wrong(&items))?;
            let keyed = items
                .iter()
                .map(|item| Ok((evaluate(expression, item)?, item.clone())))
                .collect::<Result<Vec<_>>>()?;
            Value::Array(sorted(keyed, name)?)
        }
        "to_array" => match value_of(0)? {
            Value::Array(items) => Value::Array(items),
            other => Value::Array(vec![other]),
        },
        "to_number" => match value_of(0)? {
            Value::Number(n) => Value::Number(n),
            Value::String(text) => text.trim().parse::<f64>().map_or(Value::Null, number),
            _ => Value::Null,
        },
        "to_string" => match value_of(0)? {
            Value::String(text) => Value::String(text),
            other => Value::String(other.to_string()),
        },
        "type" => Value::String(type_name(&value_of(0)?).to_owned()),
        _ => unreachable!("every function named above is handled"),
    })
}

/// Sorts `(key, item)` pairs by key; keys must be all numbers or all strings.
fn sorted(mut keyed: Vec<(Value, Value)>, name: &str) -> Result<Vec<Value>> {
    let all_numbers = keyed.iter().all(|(key, _)| key.is_number());
    let all_strings = keyed.iter().all(|(key, _)| key.is_string());
    if !all_numbers && !all_strings {
        bail!("{name}() needs keys that are all numbers or all strings");
    }
    keyed.sort_by(|(a, _), (b, _)| order(a, b).unwrap_or(Ordering::Equal));
    Ok(keyed.into_iter().map(|(_, item)| item).collect())
}

fn extreme(
    keyed: impl Iterator<Item = (Value, Value)>,
    largest: bool,
    name: &str,
) -> Result<Value> {
    let keyed: Vec<(Value, Value)> = keyed.collect();
    let sorted = sorted(keyed, name)?;
    Ok(if largest { sorted.last() } else { sorted.first() }.cloned().unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};
    use serde_json::json;

    use super::*;

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
            {"name": "id1", "location": "local", "properties": {"principalId": "p1"}, "tags": {"env": "dev"}},
            {"name": "id2", "location": "west", "properties": {"principalId": "p2"}, "tags": {}},
            {"name": "id3", "location": "local", "properties": {"principalId": "p3"}}
        ])
    }

    #[test]
    fn fields_and_indexes() {
        check("[0].name", resources(), expect![[r#""id1""#]]);
        check("[-1].properties.principalId", resources(), expect![[r#""p3""#]]);
        check(
            "identity.principalId",
            json!({"identity": {"principalId": "x"}}),
            expect![[r#""x""#]],
        );
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
        check(
            "[[1,2],[3]][]",
            json!(null),
            expect!["error: invalid --query '[[1,2],[3]][]': unexpected Comma in an index"],
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
        check(
            "{id: id, type: identity.type}",
            json!({"id": "/x", "identity": {"type": "SystemAssigned"}}),
            expect![[r#"{"id":"/x","type":"SystemAssigned"}"#]],
        );
    }

    #[test]
    fn filters() {
        check("[?location=='local'].name", resources(), expect![[r#"["id1","id3"]"#]]);
        check("[?location=='local'] | [0].name", resources(), expect![[r#""id1""#]]);
        check("[?tags.env].name", resources(), expect![[r#"["id1"]"#]]);
        check("[?!tags].name", resources(), expect![[r#"["id2","id3"]"#]]);
        check("[?location=='local' && name!='id1'].name", resources(), expect![[r#"["id3"]"#]]);
        check(
            "[?starts_with(name, 'id') && contains(['id2'], name)].name",
            resources(),
            expect![[r#"["id2"]"#]],
        );
        check("[?n > `1`].n", json!([{"n": 1}, {"n": 2}, {"n": 3.0}]), expect!["[2,3.0]"]);
    }

    #[test]
    fn functions() {
        check("length(@)", resources(), expect!["3"]);
        check("sort_by(@, &location)[].name", resources(), expect![[r#"["id1","id3","id2"]"#]]);
        check("max_by(@, &name).name", resources(), expect![[r#""id3""#]]);
        check("join(', ', [].name)", resources(), expect![[r#""id1, id2, id3""#]]);
        check("sum(@)", json!([1, 2.5]), expect!["3.5"]);
        check("[`1`, name]", json!(null), expect!["null"]);
        check("not_null(missing, name)", json!({"name": "n"}), expect![[r#""n""#]]);
        check("nope(@)", json!(null), expect!["error: --query failed: unknown function nope()"]);
        check(
            "length(`1`)",
            json!(null),
            expect!["error: --query failed: length() does not accept a number"],
        );
    }

    #[test]
    fn errors_name_the_problem() {
        check(
            "[?name=='x'",
            json!([]),
            expect!["error: invalid --query '[?name=='x'': expected RightBracket, found Eof"],
        );
        check(
            "a..b",
            json!({}),
            expect!["error: invalid --query 'a..b': unexpected Dot after '.'"],
        );
        check(
            "a = b",
            json!({}),
            expect!["error: invalid --query 'a = b': unexpected character '=' at 2"],
        );
    }
}
