//! The template expression language: which JSON strings are expressions, and the parser from
//! an expression's text to an [`Expr`] tree.
//!
//! A string is an expression when it starts with `[` and ends with `]`; `[[` at the start
//! escapes a literal string that would otherwise be one. Inside: string literals in single
//! quotes (`''` is a quote), integers, `true`, `false` and `null`, function calls
//! `name(arg, ...)`, property access `.name` and index access `[expr]`.

use std::fmt;

use crate::template::EVALUATION_DEPTH_MAX;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    String(String),
    Integer(i64),
    /// A function call; `name` is as written (functions match case-insensitively).
    Call {
        name: String,
        args: Vec<Expr>,
    },
    /// `target.name`.
    Property {
        target: Box<Expr>,
        name: String,
    },
    /// `target[index]`.
    Index {
        target: Box<Expr>,
        index: Box<Expr>,
    },
}

/// What a JSON string means to the template language.
#[derive(Debug, PartialEq)]
pub(crate) enum Classified<'a> {
    /// A literal string (with a `[[` escape already removed).
    Literal(&'a str),
    /// The text between the outer brackets of an expression.
    Expression(&'a str),
}

/// Classifies a JSON string.
pub(crate) fn classify(text: &str) -> Classified<'_> {
    if text.starts_with("[[") {
        return Classified::Literal(&text[1..]);
    }
    if text.len() >= 2 && text.starts_with('[') && text.ends_with(']') {
        return Classified::Expression(&text[1..text.len() - 1]);
    }
    Classified::Literal(text)
}

/// Parses the text of an expression (without its outer brackets).
pub(crate) fn parse(text: &str) -> Result<Expr, String> {
    let tokens = lex(text)?;
    let mut parser = Parser { text, tokens, position: 0, depth: 0 };
    let expr = parser.expression()?;
    parser.expect(&Token::End)?;
    Ok(expr)
}

impl Expr {
    /// Every function name called anywhere in the expression, outermost first.
    pub(crate) fn visit_calls<'a>(&'a self, visit: &mut dyn FnMut(&'a str, &'a [Expr])) {
        match self {
            Expr::String(_) | Expr::Integer(_) => {}
            Expr::Call { name, args } => {
                visit(name, args);
                for arg in args {
                    arg.visit_calls(visit);
                }
            }
            Expr::Property { target, .. } => target.visit_calls(visit),
            Expr::Index { target, index } => {
                target.visit_calls(visit);
                index.visit_calls(visit);
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Identifier(String),
    String(String),
    Integer(i64),
    LeftParenthesis,
    RightParenthesis,
    LeftSquareBracket,
    RightSquareBracket,
    Comma,
    Dot,
    End,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // ARM's parser names tokens this way in its messages.
        f.write_str(match self {
            Token::Identifier(_) => "Identifier",
            Token::String(_) => "Literal",
            Token::Integer(_) => "Integer",
            Token::LeftParenthesis => "LeftParenthesis",
            Token::RightParenthesis => "RightParenthesis",
            Token::LeftSquareBracket => "LeftSquareBracket",
            Token::RightSquareBracket => "RightSquareBracket",
            Token::Comma => "Comma",
            Token::Dot => "Dot",
            Token::End => "EndOfData",
        })
    }
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let invalid =
        |detail: String| format!("Unable to parse language expression '{text}': {detail}");
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        match c {
            _ if c.is_whitespace() => index += 1,
            '(' | ')' | '[' | ']' | ',' | '.' => {
                tokens.push(match c {
                    '(' => Token::LeftParenthesis,
                    ')' => Token::RightParenthesis,
                    '[' => Token::LeftSquareBracket,
                    ']' => Token::RightSquareBracket,
                    ',' => Token::Comma,
                    _ => Token::Dot,
                });
                index += 1;
            }
            '\'' => {
                let mut value = String::new();
                index += 1;
                loop {
                    match chars.get(index) {
                        None => {
                            return Err(invalid("the string literal is not terminated".to_owned()));
                        }
                        Some('\'') if chars.get(index + 1) == Some(&'\'') => {
                            value.push('\'');
                            index += 2;
                        }
                        Some('\'') => {
                            index += 1;
                            break;
                        }
                        Some(other) => {
                            value.push(*other);
                            index += 1;
                        }
                    }
                }
                tokens.push(Token::String(value));
            }
            '-' | '0'..='9' => {
                let start = index;
                index += 1;
                while chars.get(index).is_some_and(char::is_ascii_digit) {
                    index += 1;
                }
                let literal: String = chars[start..index].iter().collect();
                let value = literal.parse::<i64>().map_err(|_| {
                    invalid(format!("the integer literal '{literal}' is not valid"))
                })?;
                tokens.push(Token::Integer(value));
            }
            _ if c.is_alphabetic() || c == '_' || c == '$' => {
                let start = index;
                while chars
                    .get(index)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                {
                    index += 1;
                }
                tokens.push(Token::Identifier(chars[start..index].iter().collect()));
            }
            _ => {
                return Err(invalid(format!(
                    "the character '{c}' at position '{index}' is not expected"
                )));
            }
        }
    }
    tokens.push(Token::End);
    Ok(tokens)
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    position: usize,
    /// How many expressions enclose the one being parsed.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.position]
    }

    fn next(&mut self) -> Token {
        let token = self.tokens[self.position].clone();
        if token != Token::End {
            self.position += 1;
        }
        token
    }

    fn unexpected(&self, expected: &str, actual: &Token) -> String {
        format!(
            "Unable to parse language expression '{}': expected token '{expected}' and actual '{actual}'.",
            self.text
        )
    }

    fn expect(&mut self, expected: &Token) -> Result<(), String> {
        let actual = self.next();
        if std::mem::discriminant(&actual) == std::mem::discriminant(expected) {
            Ok(())
        } else {
            Err(self.unexpected(&expected.to_string(), &actual))
        }
    }

    fn expression(&mut self) -> Result<Expr, String> {
        if self.depth >= EVALUATION_DEPTH_MAX {
            return Err(format!(
                "Unable to parse language expression '{}': it nests deeper than the limit of {EVALUATION_DEPTH_MAX} levels.",
                self.text
            ));
        }
        self.depth += 1;
        let expr = self.expression_within();
        self.depth -= 1;
        expr
    }

    fn expression_within(&mut self) -> Result<Expr, String> {
        let mut expr = match self.next() {
            Token::String(value) => Expr::String(value),
            Token::Integer(value) => Expr::Integer(value),
            Token::Identifier(first)
                if *self.peek() != Token::LeftParenthesis
                    && ["true", "false", "null"]
                        .iter()
                        .any(|word| first.eq_ignore_ascii_case(word)) =>
            {
                // The literals `true`, `false` and `null` stand for the functions of those names.
                Expr::Call { name: first, args: Vec::new() }
            }
            Token::Identifier(first) => {
                // `namespace.function(...)` names a user-defined function.
                let mut name = first;
                while *self.peek() == Token::Dot {
                    self.next();
                    match self.next() {
                        Token::Identifier(part) => {
                            name.push('.');
                            name.push_str(&part);
                        }
                        other => return Err(self.unexpected("Identifier", &other)),
                    }
                }
                self.expect(&Token::LeftParenthesis)?;
                let mut args = Vec::new();
                if *self.peek() == Token::RightParenthesis {
                    self.next();
                } else {
                    loop {
                        args.push(self.expression()?);
                        match self.next() {
                            Token::Comma => {}
                            Token::RightParenthesis => break,
                            other => return Err(self.unexpected("RightParenthesis", &other)),
                        }
                    }
                }
                Expr::Call { name, args }
            }
            other => return Err(self.unexpected("Identifier", &other)),
        };
        loop {
            match self.peek() {
                Token::Dot => {
                    self.next();
                    match self.next() {
                        Token::Identifier(name) => {
                            expr = Expr::Property { target: Box::new(expr), name };
                        }
                        other => return Err(self.unexpected("Identifier", &other)),
                    }
                }
                Token::LeftSquareBracket => {
                    self.next();
                    let index = self.expression()?;
                    self.expect(&Token::RightSquareBracket)?;
                    expr = Expr::Index { target: Box::new(expr), index: Box::new(index) };
                }
                _ => return Ok(expr),
            }
        }
    }
}
