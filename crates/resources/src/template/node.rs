//! Reading a template's structure: parameters, variables, resources (nested children
//! flattened), outputs, and every JSON value compiled into a [`Node`] tree whose expression
//! strings are already parsed.

use serde_json::{Map, Value};

use crate::template::expression::{self, Classified, Expr};
use crate::template::{Template, TemplateError, eval, hash};

/// A JSON value with its expressions parsed.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// A value with no expression anywhere inside.
    Value(Value),
    /// A `[...]` string.
    Expression {
        source: String,
        expr: Expr,
    },
    Array(Vec<Node>),
    /// An object, keys in document order; a key may itself be an expression.
    Object(Vec<(Key, Node)>),
}

#[derive(Debug, Clone)]
pub(crate) enum Key {
    Literal(String),
    Expression { source: String, expr: Expr },
}

/// A parameter's or output's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParameterType {
    String,
    SecureString,
    Int,
    Bool,
    Object,
    SecureObject,
    Array,
}

#[derive(Debug, Clone)]
pub(crate) struct ParameterDefinition {
    pub name: String,
    pub kind: ParameterType,
    pub default: Option<Node>,
    pub allowed: Option<Vec<Value>>,
    pub min_value: Option<i64>,
    pub max_value: Option<i64>,
    pub min_length: Option<i64>,
    pub max_length: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct VariableDefinition {
    pub name: String,
    pub value: VariableValue,
}

#[derive(Debug, Clone)]
pub(crate) enum VariableValue {
    Single(Node),
    /// An entry of the top-level `copy` array of `variables`: an array of `count` inputs.
    Copy {
        count: Node,
        input: Node,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct ResourceDefinition {
    /// `resources[1].resources[0]`.
    pub path: String,
    /// Index of the parent definition for a nested child resource.
    pub parent: Option<usize>,
    pub resource_type: Node,
    pub name: Node,
    pub api_version: Node,
    pub condition: Option<Node>,
    pub copy: Option<CopyDefinition>,
    /// `dependsOn`: an array of strings once evaluated.
    pub depends_on: Option<Node>,
    /// `scope` of an extension resource.
    pub scope: Option<Node>,
    /// Every other top-level property, in document order.
    pub body: Vec<(String, Node)>,
    /// The `name` as written, for messages.
    pub display_name: String,
    /// For a nested deployment with `expressionEvaluationOptions.scope` `inner`: the position
    /// of `template` among `properties` and the template itself, passed on unevaluated because
    /// its expressions belong to the nested deployment.
    pub inner_template: Option<(usize, Value)>,
}

#[derive(Debug, Clone)]
pub(crate) struct CopyDefinition {
    pub name: String,
    pub count: Node,
    pub serial: bool,
    pub batch_size: Option<Node>,
}

#[derive(Debug, Clone)]
pub(crate) struct OutputDefinition {
    pub name: String,
    pub kind: ParameterType,
    pub condition: Option<Node>,
    pub value: OutputValue,
}

#[derive(Debug, Clone)]
pub(crate) enum OutputValue {
    Single(Node),
    Copy { count: Node, input: Node },
}

/// Properties of a resource that belong to the template language, not to the resource body.
const RESOURCE_TEMPLATE_KEYS: &[&str] = &[
    "type",
    "apiVersion",
    "name",
    "condition",
    "copy",
    "dependsOn",
    "scope",
    "resources",
    "comments",
    "metadata",
];

impl ParameterType {
    pub(crate) fn parse(text: &str) -> Option<ParameterType> {
        Some(match text.to_ascii_lowercase().as_str() {
            "string" => ParameterType::String,
            "securestring" => ParameterType::SecureString,
            "int" => ParameterType::Int,
            "bool" => ParameterType::Bool,
            "object" => ParameterType::Object,
            "secureobject" => ParameterType::SecureObject,
            "array" => ParameterType::Array,
            _ => return None,
        })
    }

    /// The spelling ARM uses when it returns parameters and outputs.
    pub(crate) fn arm_name(self) -> &'static str {
        match self {
            ParameterType::String => "String",
            ParameterType::SecureString => "SecureString",
            ParameterType::Int => "Int",
            ParameterType::Bool => "Bool",
            ParameterType::Object => "Object",
            ParameterType::SecureObject => "SecureObject",
            ParameterType::Array => "Array",
        }
    }

    pub(crate) fn is_secure(self) -> bool {
        matches!(self, ParameterType::SecureString | ParameterType::SecureObject)
    }

    /// The JSON token type a value of this type has, as ARM names it.
    pub(crate) fn token_name(self) -> &'static str {
        match self {
            ParameterType::String | ParameterType::SecureString => "String",
            ParameterType::Int => "Integer",
            ParameterType::Bool => "Boolean",
            ParameterType::Object | ParameterType::SecureObject => "Object",
            ParameterType::Array => "Array",
        }
    }

    pub(crate) fn accepts(self, value: &Value) -> bool {
        match self {
            ParameterType::String | ParameterType::SecureString => value.is_string(),
            ParameterType::Int => value.is_i64(),
            ParameterType::Bool => value.is_boolean(),
            ParameterType::Object | ParameterType::SecureObject => value.is_object(),
            ParameterType::Array => value.is_array(),
        }
    }
}

/// ARM's name for the JSON token type of `value`.
pub(crate) fn token_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "Null",
        Value::Bool(_) => "Boolean",
        Value::Number(number) if number.is_i64() => "Integer",
        Value::Number(_) => "Float",
        Value::String(_) => "String",
        Value::Array(_) => "Array",
        Value::Object(_) => "Object",
    }
}

/// Compiles a JSON value, parsing its expressions; errors name `path`.
pub(crate) fn compile(value: &Value, path: &str) -> Result<Node, (String, String)> {
    match value {
        Value::String(text) => match expression::classify(text) {
            Classified::Literal(literal) if literal.len() == text.len() => {
                Ok(Node::Value(value.clone()))
            }
            Classified::Literal(literal) => Ok(Node::Value(Value::String(literal.to_owned()))),
            Classified::Expression(source) => {
                let expr = parse_checked(source, path)?;
                Ok(Node::Expression { source: text.clone(), expr })
            }
        },
        Value::Array(items) => {
            let nodes = items
                .iter()
                .enumerate()
                .map(|(index, item)| compile(item, &format!("{path}[{index}]")))
                .collect::<Result<Vec<_>, _>>()?;
            if nodes.iter().all(|node| matches!(node, Node::Value(_))) {
                Ok(Node::Value(Value::Array(nodes.into_iter().map(Node::into_value).collect())))
            } else {
                Ok(Node::Array(nodes))
            }
        }
        Value::Object(map) => {
            let mut entries = Vec::with_capacity(map.len());
            for (key, item) in map {
                let child_path = join_path(path, key);
                let key = match expression::classify(key) {
                    Classified::Literal(literal) => Key::Literal(literal.to_owned()),
                    Classified::Expression(source) => Key::Expression {
                        source: key.clone(),
                        expr: parse_checked(source, &child_path)?,
                    },
                };
                entries.push((key, compile(item, &child_path)?));
            }
            // An object with a property `copy` loop stays a node so that evaluation expands it.
            let has_copy =
                map.iter().any(|(key, item)| key.eq_ignore_ascii_case("copy") && item.is_array());
            let literal = !has_copy
                && entries.iter().all(|(key, node)| {
                    matches!(key, Key::Literal(_)) && matches!(node, Node::Value(_))
                });
            if literal {
                let mut out = Map::new();
                for (key, node) in entries {
                    let Key::Literal(key) = key else { unreachable!("checked above") };
                    out.insert(key, node.into_value());
                }
                Ok(Node::Value(Value::Object(out)))
            } else {
                Ok(Node::Object(entries))
            }
        }
        _ => Ok(Node::Value(value.clone())),
    }
}

impl Node {
    fn into_value(self) -> Value {
        match self {
            Node::Value(value) => value,
            _ => unreachable!("only literal nodes are turned back into values"),
        }
    }

    /// Every function call anywhere in the node.
    pub(crate) fn visit_calls<'a>(&'a self, visit: &mut dyn FnMut(&'a str, &'a [Expr])) {
        match self {
            Node::Value(_) => {}
            Node::Expression { expr, .. } => expr.visit_calls(visit),
            Node::Array(items) => items.iter().for_each(|item| item.visit_calls(visit)),
            Node::Object(entries) => {
                for (key, node) in entries {
                    if let Key::Expression { expr, .. } = key {
                        expr.visit_calls(visit);
                    }
                    node.visit_calls(visit);
                }
            }
        }
    }
}

/// `path.key`, or `key` at the root.
pub(crate) fn join_path(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn parse_checked(source: &str, path: &str) -> Result<Expr, (String, String)> {
    let expr = expression::parse(source).map_err(|message| (message, path.to_owned()))?;
    let mut unknown = None;
    expr.visit_calls(&mut |name, _| {
        if unknown.is_none() && !eval::is_known_function(name) {
            unknown = Some(name.to_owned());
        }
    });
    match unknown {
        Some(name) => Err((
            format!(
                "The template function '{name}' is not valid. Please see https://aka.ms/arm-functions for usage details."
            ),
            path.to_owned(),
        )),
        None => Ok(expr),
    }
}

pub(crate) fn parse_template(template: &Value) -> Result<Template, TemplateError> {
    let Some(root) = template.as_object() else {
        return Err(TemplateError::validation("The template must be a JSON object.", ""));
    };
    let resources_value = get(root, "resources").ok_or_else(|| {
        TemplateError::validation("Required property 'resources' not found in JSON. Path ''.", "")
    })?;
    if resources_value.is_object() {
        return Err(TemplateError::validation(
            "Templates with symbolic resource names (languageVersion 2.0) are not supported by Ambient. Compile Bicep files without symbolic names, or use languageVersion 1.0.",
            "resources",
        ));
    }
    let parameters = match get(root, "parameters") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(name, definition)| parse_parameter(name, definition))
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(TemplateError::validation(
                "The 'parameters' property must be an object.",
                "parameters",
            ));
        }
    };
    let variables = parse_variables(get(root, "variables"))?;
    let mut resources = Vec::new();
    match resources_value {
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                parse_resource(item, &format!("resources[{index}]"), None, &mut resources)?;
            }
        }
        Value::Null => {}
        _ => {
            return Err(TemplateError::validation(
                "The 'resources' property must be an array.",
                "resources",
            ));
        }
    }
    let outputs = match get(root, "outputs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(name, definition)| parse_output(name, definition))
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(TemplateError::validation(
                "The 'outputs' property must be an object.",
                "outputs",
            ));
        }
    };
    let text = serde_json::to_string(template).expect("a JSON value serializes");
    Ok(Template {
        schema: get(root, "$schema").and_then(Value::as_str).map(str::to_owned),
        content_version: get(root, "contentVersion").and_then(Value::as_str).map(str::to_owned),
        parameters,
        variables,
        resources,
        outputs,
        hash: hash::murmur_hash64(text.as_bytes()).to_string(),
    })
}

/// A property looked up case-insensitively, as ARM reads templates.
pub(crate) fn get<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter().find(|(name, _)| name.eq_ignore_ascii_case(key)).map(|(_, value)| value)
    })
}

fn parse_parameter(name: &str, definition: &Value) -> Result<ParameterDefinition, TemplateError> {
    let path = format!("parameters.{name}");
    let invalid = |detail: &str| {
        TemplateError::validation(
            format!("The template parameter '{name}' is not valid: {detail}"),
            path.clone(),
        )
    };
    let Some(map) = definition.as_object() else {
        return Err(invalid("the parameter definition must be an object."));
    };
    let kind = get(map, "type")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("the 'type' property is required."))?;
    let kind = ParameterType::parse(kind).ok_or_else(|| {
        invalid(&format!(
            "the type '{kind}' is not valid. Allowed types are 'String, SecureString, Int, Bool, Object, SecureObject, Array'."
        ))
    })?;
    let default = get(map, "defaultValue")
        .map(|value| compile(value, &format!("{path}.defaultValue")))
        .transpose()
        .map_err(|(message, at)| {
            TemplateError::validation(
                format!("The template parameter '{name}' is not valid: {message}"),
                at,
            )
        })?;
    let allowed = match get(map, "allowedValues") {
        None | Some(Value::Null) => None,
        Some(Value::Array(values)) => Some(values.clone()),
        Some(_) => return Err(invalid("'allowedValues' must be an array.")),
    };
    let number = |key: &str| -> Result<Option<i64>, TemplateError> {
        match get(map, key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_i64()
                .map(Some)
                .ok_or_else(|| invalid(&format!("'{key}' must be an integer."))),
        }
    };
    Ok(ParameterDefinition {
        name: name.to_owned(),
        kind,
        default,
        allowed,
        min_value: number("minValue")?,
        max_value: number("maxValue")?,
        min_length: number("minLength")?,
        max_length: number("maxLength")?,
    })
}

fn parse_variables(value: Option<&Value>) -> Result<Vec<VariableDefinition>, TemplateError> {
    let map = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(TemplateError::validation(
                "The 'variables' property must be an object.",
                "variables",
            ));
        }
    };
    let mut variables = Vec::new();
    for (name, value) in map {
        let path = format!("variables.{name}");
        let wrap = |(message, at): (String, String)| {
            TemplateError::validation(
                format!("The template variable '{name}' is not valid: {message}"),
                at,
            )
        };
        if name.eq_ignore_ascii_case("copy") && value.is_array() {
            for (index, entry) in value.as_array().into_iter().flatten().enumerate() {
                let entry_path = format!("variables.copy[{index}]");
                let invalid = |detail: &str| {
                    TemplateError::validation(
                        format!(
                            "The template variable copy at '{entry_path}' is not valid: {detail}"
                        ),
                        entry_path.clone(),
                    )
                };
                let map =
                    entry.as_object().ok_or_else(|| invalid("each entry must be an object."))?;
                let loop_name = get(map, "name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("the 'name' property is required."))?;
                let count = get(map, "count")
                    .ok_or_else(|| invalid("the 'count' property is required."))?;
                let input = get(map, "input")
                    .ok_or_else(|| invalid("the 'input' property is required."))?;
                variables.push(VariableDefinition {
                    name: loop_name.to_owned(),
                    value: VariableValue::Copy {
                        count: compile(count, &format!("{entry_path}.count")).map_err(wrap)?,
                        input: compile(input, &format!("{entry_path}.input")).map_err(wrap)?,
                    },
                });
            }
            continue;
        }
        variables.push(VariableDefinition {
            name: name.clone(),
            value: VariableValue::Single(compile(value, &path).map_err(wrap)?),
        });
    }
    Ok(variables)
}

fn parse_resource(
    value: &Value,
    path: &str,
    parent: Option<usize>,
    out: &mut Vec<ResourceDefinition>,
) -> Result<(), TemplateError> {
    let Some(map) = value.as_object() else {
        return Err(TemplateError::validation(
            format!(
                "The template resource at '{path}' is not valid: a resource must be an object."
            ),
            path,
        ));
    };
    let display_name = match get(map, "name") {
        Some(Value::String(text)) => text.clone(),
        _ => String::new(),
    };
    let wrap = |(message, at): (String, String)| {
        TemplateError::validation(
            format!("The template resource '{display_name}' at '{path}' is not valid: {message}"),
            at,
        )
    };
    let required = |key: &str| -> Result<Node, TemplateError> {
        match get(map, key) {
            Some(value @ Value::String(text)) if !text.is_empty() => {
                compile(value, &join_path(path, key)).map_err(wrap)
            }
            _ => Err(TemplateError::validation(
                format!(
                    "The template resource '{display_name}' at '{path}' is not valid: the '{key}' property cannot be null or empty."
                ),
                join_path(path, key),
            )),
        }
    };
    let resource_type = required("type")?;
    let name = required("name")?;
    let api_version = required("apiVersion")?;
    let optional = |key: &str| -> Result<Option<Node>, TemplateError> {
        get(map, key).map(|value| compile(value, &join_path(path, key)).map_err(wrap)).transpose()
    };
    let copy = match get(map, "copy") {
        None | Some(Value::Null) => None,
        Some(Value::Object(copy)) => {
            let copy_path = join_path(path, "copy");
            let invalid = |detail: &str| {
                TemplateError::validation(
                    format!(
                        "The template resource '{display_name}' at '{path}' is not valid: the copy loop {detail}"
                    ),
                    copy_path.clone(),
                )
            };
            let loop_name = get(copy, "name")
                .and_then(Value::as_str)
                .filter(|name| !name.is_empty())
                .ok_or_else(|| invalid("needs a 'name'."))?;
            let count = get(copy, "count").ok_or_else(|| invalid("needs a 'count'."))?;
            let serial =
                match get(copy, "mode").map(|mode| mode.as_str().map(str::to_ascii_lowercase)) {
                    None => false,
                    Some(Some(mode)) if mode == "parallel" => false,
                    Some(Some(mode)) if mode == "serial" => true,
                    Some(_) => return Err(invalid("'mode' must be 'serial' or 'parallel'.")),
                };
            Some(CopyDefinition {
                name: loop_name.to_owned(),
                count: compile(count, &join_path(&copy_path, "count")).map_err(wrap)?,
                serial,
                batch_size: get(copy, "batchSize")
                    .map(|value| compile(value, &join_path(&copy_path, "batchSize")).map_err(wrap))
                    .transpose()?,
            })
        }
        Some(_) => {
            return Err(TemplateError::validation(
                format!(
                    "The template resource '{display_name}' at '{path}' is not valid: 'copy' must be an object."
                ),
                join_path(path, "copy"),
            ));
        }
    };
    let inner_template = inner_template(map);
    let mut body = Vec::new();
    for (key, item) in map {
        if RESOURCE_TEMPLATE_KEYS.iter().any(|reserved| reserved.eq_ignore_ascii_case(key)) {
            continue;
        }
        let node = match (&inner_template, item) {
            (Some(_), Value::Object(properties)) if key.eq_ignore_ascii_case("properties") => {
                let mut rest = properties.clone();
                rest.retain(|name, _| !name.eq_ignore_ascii_case("template"));
                compile(&Value::Object(rest), &join_path(path, key))
            }
            _ => compile(item, &join_path(path, key)),
        };
        body.push((key.clone(), node.map_err(wrap)?));
    }
    let index = out.len();
    out.push(ResourceDefinition {
        path: path.to_owned(),
        parent,
        resource_type,
        name,
        api_version,
        condition: optional("condition")?,
        copy,
        depends_on: optional("dependsOn")?,
        scope: optional("scope")?,
        body,
        display_name: display_name.clone(),
        inner_template,
    });
    match get(map, "resources") {
        None | Some(Value::Null) => {}
        Some(Value::Array(children)) => {
            for (child, item) in children.iter().enumerate() {
                parse_resource(item, &format!("{path}.resources[{child}]"), Some(index), out)?;
            }
        }
        Some(_) => {
            return Err(TemplateError::validation(
                format!(
                    "The template resource '{display_name}' at '{path}' is not valid: 'resources' must be an array."
                ),
                join_path(path, "resources"),
            ));
        }
    }
    Ok(())
}

/// The `template` of a nested deployment whose expressions it evaluates itself (`inner` scope),
/// with its position among `properties`.
fn inner_template(resource: &Map<String, Value>) -> Option<(usize, Value)> {
    let is_deployment = get(resource, "type")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind.eq_ignore_ascii_case("Microsoft.Resources/deployments"));
    let properties = get(resource, "properties")?.as_object()?;
    let inner = get(properties, "expressionEvaluationOptions")
        .and_then(Value::as_object)
        .and_then(|options| get(options, "scope"))
        .and_then(Value::as_str)
        .is_some_and(|scope| scope.eq_ignore_ascii_case("inner"));
    if !(is_deployment && inner) {
        return None;
    }
    properties
        .iter()
        .enumerate()
        .find(|(_, (name, _))| name.eq_ignore_ascii_case("template"))
        .map(|(position, (_, template))| (position, template.clone()))
}

fn parse_output(name: &str, definition: &Value) -> Result<OutputDefinition, TemplateError> {
    let path = format!("outputs.{name}");
    let invalid = |detail: &str| {
        TemplateError::validation(
            format!("The template output '{name}' is not valid: {detail}"),
            path.clone(),
        )
    };
    let wrap = |(message, at): (String, String)| {
        TemplateError::validation(
            format!("The template output '{name}' is not valid: {message}"),
            at,
        )
    };
    let map = definition
        .as_object()
        .ok_or_else(|| invalid("the output definition must be an object."))?;
    let kind = get(map, "type")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("the 'type' property is required."))?;
    let kind = ParameterType::parse(kind)
        .ok_or_else(|| invalid(&format!("the type '{kind}' is not valid.")))?;
    let condition = get(map, "condition")
        .map(|value| compile(value, &format!("{path}.condition")).map_err(wrap))
        .transpose()?;
    let value = match (get(map, "copy"), get(map, "value")) {
        (Some(Value::Object(copy)), _) => {
            let count =
                get(copy, "count").ok_or_else(|| invalid("the copy loop needs a 'count'."))?;
            let input =
                get(copy, "input").ok_or_else(|| invalid("the copy loop needs an 'input'."))?;
            OutputValue::Copy {
                count: compile(count, &format!("{path}.copy.count")).map_err(wrap)?,
                input: compile(input, &format!("{path}.copy.input")).map_err(wrap)?,
            }
        }
        (_, Some(value)) => {
            OutputValue::Single(compile(value, &format!("{path}.value")).map_err(wrap)?)
        }
        (_, None) => return Err(invalid("the 'value' property is required.")),
    };
    Ok(OutputDefinition { name: name.to_owned(), kind, condition, value })
}
