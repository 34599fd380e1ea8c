//! Evaluating nodes and expressions: the functions that read the deployment (`parameters`,
//! `variables`, `copyIndex`, `reference`, `resourceId`, `resourceGroup()`...), property copy
//! loops inside objects, and the evaluation of a prepared resource's body and of the outputs.

use std::cell::Cell;
use std::rc::Rc;

use domain::ResourceId;
use serde_json::{Map, Value};

use crate::template::expression::Expr;
use crate::template::functions::{self, Args};
use crate::template::node::{Key, Node, OutputValue, join_path, token_name};
use crate::template::{
    COPY_COUNT_MAX, DeploymentContext, EVALUATION_DEPTH_MAX, EVALUATION_STEPS_MAX, ErrorCode,
    Prepared, ReferenceResolver, ResourceRequest, Template, TemplateError, hash, ids,
};

/// One iteration of a `copy` loop in effect.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Loop {
    pub name: String,
    pub index: i64,
    /// True for a resource or output loop: `copyIndex()` without a name refers to the innermost
    /// such loop.
    pub resource: bool,
}

/// Where an expression is, which decides the functions it may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Site {
    /// A parameter's `defaultValue`: `utcNow()` and `newGuid()` allowed, `variables()` not.
    ParameterDefault,
    Variable,
    /// A resource's name, type, API version, condition, copy count, scope or `dependsOn`.
    Static,
    /// A resource's body: `reference()` allowed.
    Body,
    Output,
}

/// Why an evaluation stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    Error {
        code: ErrorCode,
        message: String,
    },
    /// A what-if evaluation needs a resource that does not exist yet.
    Unresolved,
}

/// A fault and where in the template it happened.
#[derive(Debug)]
pub(crate) struct Located {
    pub fault: Fault,
    pub path: String,
}

/// What expressions read from the deployment.
pub(crate) trait Env {
    fn parameter(&self, name: &str, depth: usize) -> Result<Value, Fault>;
    fn variable(&self, name: &str, depth: usize) -> Result<Value, Fault>;
    fn context(&self) -> &DeploymentContext;
    fn template(&self) -> &Template;
    /// The id of the template resource named `name`, for `reference('name')`.
    fn resource_named(&self, name: &str) -> Option<String>;
}

/// Everything an evaluation needs besides the node.
#[derive(Clone)]
pub(crate) struct Scope<'a> {
    pub env: &'a dyn Env,
    pub site: Site,
    pub loops: Vec<Loop>,
    pub resolver: Option<&'a dyn ReferenceResolver>,
    /// What-if: unresolvable references leave their expression as text.
    pub preview: bool,
    /// The parameter whose default is evaluated (for `newGuid()`).
    pub parameter: Option<&'a str>,
    /// How deep evaluation already is (variables evaluating variables).
    pub depth: usize,
    /// Steps taken so far by this evaluation, shared by the scopes its loops derive.
    steps: Rc<Cell<usize>>,
}

/// Functions the engine knows (lower case); `list*` functions are known but unsupported.
const KNOWN_FUNCTIONS: &[&str] = &[
    "add",
    "and",
    "array",
    "base64",
    "base64tojson",
    "base64tostring",
    "bool",
    "coalesce",
    "concat",
    "contains",
    "copyindex",
    "createarray",
    "createobject",
    "deployment",
    "div",
    "empty",
    "endswith",
    "environment",
    "equals",
    "extensionresourceid",
    "false",
    "first",
    "format",
    "greater",
    "greaterorequals",
    "guid",
    "if",
    "indexof",
    "int",
    "intersection",
    "items",
    "join",
    "json",
    "last",
    "lastindexof",
    "length",
    "less",
    "lessorequals",
    "max",
    "min",
    "mod",
    "mul",
    "newguid",
    "not",
    "null",
    "or",
    "padleft",
    "parameters",
    "providers",
    "range",
    "reference",
    "replace",
    "resourcegroup",
    "resourceid",
    "skip",
    "split",
    "startswith",
    "string",
    "sub",
    "subscription",
    "subscriptionresourceid",
    "substring",
    "take",
    "tenant",
    "tenantresourceid",
    "tolower",
    "toupper",
    "trim",
    "true",
    "tryget",
    "union",
    "uniquestring",
    "uricomponent",
    "uricomponenttostring",
    "utcnow",
    "variables",
];

pub(crate) fn is_known_function(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    KNOWN_FUNCTIONS.contains(&lower.as_str()) || lower.starts_with("list")
}

impl Fault {
    pub(crate) fn invalid(message: impl Into<String>) -> Fault {
        Fault::Error { code: ErrorCode::InvalidTemplate, message: message.into() }
    }

    /// The message, for wrapping into a larger one.
    pub(crate) fn message(&self) -> &str {
        match self {
            Fault::Error { message, .. } => message,
            Fault::Unresolved => "a referenced resource does not exist yet.",
        }
    }

    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            Fault::Error { code, .. } => *code,
            Fault::Unresolved => ErrorCode::ResourceNotFound,
        }
    }
}

impl From<String> for Fault {
    fn from(message: String) -> Self {
        Fault::invalid(message)
    }
}

fn not_expected(function: &str, detail: &str) -> Fault {
    Fault::invalid(format!(
        "The template function '{function}' is not expected at this location.{detail} Please see https://aka.ms/arm-template-expressions for usage details."
    ))
}

impl<'a> Scope<'a> {
    pub(crate) fn new(env: &'a dyn Env, site: Site, loops: Vec<Loop>) -> Scope<'a> {
        Scope {
            env,
            site,
            loops,
            resolver: None,
            preview: false,
            parameter: None,
            depth: 0,
            steps: Rc::new(Cell::new(0)),
        }
    }

    /// Counts one step against [`EVALUATION_STEPS_MAX`].
    fn step(&self) -> Result<(), Fault> {
        let steps = self.steps.get() + 1;
        self.steps.set(steps);
        if steps > EVALUATION_STEPS_MAX {
            return Err(Fault::invalid(format!(
                "The template takes more than {EVALUATION_STEPS_MAX} steps to evaluate; reduce its loops."
            )));
        }
        Ok(())
    }

    fn with_loop(&self, name: &str, index: i64) -> Scope<'a> {
        let mut scope = self.clone();
        scope.loops.push(Loop { name: name.to_owned(), index, resource: false });
        scope
    }
}

/// Evaluates a node; `path` locates it in the template.
pub(crate) fn node(node: &Node, scope: &Scope, path: &str) -> Result<Value, Located> {
    scope.step().map_err(|fault| Located { fault, path: path.to_owned() })?;
    match node {
        Node::Value(value) => Ok(value.clone()),
        Node::Expression { source, expr } => match expression(expr, scope, scope.depth) {
            Ok(value) => Ok(value),
            Err(Fault::Unresolved) if scope.preview => Ok(Value::String(source.clone())),
            Err(fault) => Err(Located { fault, path: path.to_owned() }),
        },
        Node::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| self::node(item, scope, &format!("{path}[{index}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Node::Object(entries) => {
            let mut out = Map::new();
            for (key, child) in entries {
                let key = match key {
                    Key::Literal(text) => text.clone(),
                    Key::Expression { source, expr } => {
                        match expression(expr, scope, scope.depth) {
                            Ok(Value::String(text)) => text,
                            Ok(other) => {
                                return Err(Located {
                                    fault: Fault::invalid(format!(
                                        "The property name '{source}' must evaluate to a string, not to a value of type '{}'.",
                                        token_name(&other)
                                    )),
                                    path: join_path(path, source),
                                });
                            }
                            Err(Fault::Unresolved) if scope.preview => source.clone(),
                            Err(fault) => {
                                return Err(Located { fault, path: join_path(path, source) });
                            }
                        }
                    }
                };
                let child_path = join_path(path, &key);
                if key.eq_ignore_ascii_case("copy")
                    && let Some(loops) = property_loops(child)
                {
                    for (index, (name, count, input)) in loops.iter().enumerate() {
                        let at = format!("{child_path}[{index}]");
                        let (name, items) = property_copy(name, count, input, scope, &at)?;
                        out.insert(name, Value::Array(items));
                    }
                    continue;
                }
                let value = self::node(child, scope, &child_path)?;
                out.insert(key, value);
            }
            Ok(Value::Object(out))
        }
    }
}

/// The entries of a property `copy` array, if `node` is one: objects with `name`, `count` and
/// `input`.
fn property_loops(node: &Node) -> Option<Vec<(Node, Node, Node)>> {
    let items = match node {
        Node::Array(items) => items.clone(),
        Node::Value(Value::Array(items)) => items.iter().cloned().map(Node::Value).collect(),
        _ => return None,
    };
    items
        .iter()
        .map(|item| {
            let field = |wanted: &str| -> Option<Node> {
                match item {
                    Node::Object(entries) => entries.iter().find_map(|(key, value)| match key {
                        Key::Literal(text) if text.eq_ignore_ascii_case(wanted) => {
                            Some(value.clone())
                        }
                        _ => None,
                    }),
                    Node::Value(Value::Object(map)) => {
                        functions::property(map, wanted).cloned().map(Node::Value)
                    }
                    _ => None,
                }
            };
            Some((field("name")?, field("count")?, field("input")?))
        })
        .collect()
}

fn property_copy(
    name: &Node,
    count: &Node,
    input: &Node,
    scope: &Scope,
    path: &str,
) -> Result<(String, Vec<Value>), Located> {
    let located =
        |message: String| Located { fault: Fault::invalid(message), path: path.to_owned() };
    let name = match self::node(name, scope, &join_path(path, "name"))? {
        Value::String(name) if !name.is_empty() => name,
        _ => {
            return Err(located(
                "The property copy loop 'name' must be a non-empty string.".to_owned(),
            ));
        }
    };
    let count =
        copy_count(&self::node(count, scope, &join_path(path, "count"))?).map_err(|message| {
            located(format!("The property copy loop '{name}' is not valid: {message}"))
        })?;
    let items = (0..count)
        .map(|index| self::node(input, &scope.with_loop(&name, index), &join_path(path, "input")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((name, items))
}

/// A copy loop's count: an integer from 0 to [`COPY_COUNT_MAX`].
pub(crate) fn copy_count(value: &Value) -> Result<i64, String> {
    match value.as_i64() {
        Some(count) if (0..=COPY_COUNT_MAX).contains(&count) => Ok(count),
        _ => Err(format!(
            "The copy count must be a non-negative integer value and cannot exceed '{COPY_COUNT_MAX}'. The value is '{}'.",
            functions::to_text(value)
        )),
    }
}

/// Evaluates an expression.
pub(crate) fn expression(expr: &Expr, scope: &Scope, depth: usize) -> Result<Value, Fault> {
    scope.step()?;
    if depth > EVALUATION_DEPTH_MAX {
        return Err(Fault::invalid(format!(
            "The template expression nests deeper than the limit of {EVALUATION_DEPTH_MAX} levels."
        )));
    }
    match expr {
        Expr::String(text) => Ok(Value::String(text.clone())),
        Expr::Integer(number) => Ok(Value::from(*number)),
        Expr::Property { target, name } => member(expression(target, scope, depth + 1)?, name),
        Expr::Index { target, index } => {
            let target = expression(target, scope, depth + 1)?;
            match expression(index, scope, depth + 1)? {
                Value::String(name) => member(target, &name),
                Value::Number(number) => match (target, number.as_i64()) {
                    (Value::Array(items), Some(at)) => usize::try_from(at)
                        .ok()
                        .and_then(|at| items.get(at).cloned())
                        .ok_or_else(|| {
                            Fault::invalid(format!(
                                "The language expression property array index '{at}' is out of bounds."
                            ))
                        }),
                    _ => Err(Fault::invalid(format!(
                        "The language expression property '{number}' can't be evaluated."
                    ))),
                },
                other => Err(Fault::invalid(format!(
                    "The language expression property '{}' can't be evaluated, property name must be a string.",
                    functions::to_text(&other)
                ))),
            }
        }
        Expr::Call { name, args } => call(name, args, scope, depth + 1),
    }
}

fn member(target: Value, name: &str) -> Result<Value, Fault> {
    match target {
        Value::Object(map) => functions::property(&map, name).cloned().ok_or_else(|| {
            let available: Vec<&str> = map.keys().map(String::as_str).collect();
            Fault::invalid(format!(
                "The language expression property '{name}' doesn't exist, available properties are '{}'.",
                available.join(", ")
            ))
        }),
        other => Err(Fault::invalid(format!(
            "The language expression property '{name}' can't be evaluated: the value is of type '{}', not an object.",
            token_name(&other)
        ))),
    }
}

fn call(name: &str, args: &[Expr], scope: &Scope, depth: usize) -> Result<Value, Fault> {
    let lower = name.to_ascii_lowercase();
    if lower == "if" {
        // Only the branch taken is evaluated, as ARM does.
        if args.len() != 3 {
            let values = vec![Value::Null; args.len()];
            Args { name, values }.count(3, 3)?;
        }
        return match expression(&args[0], scope, depth)? {
            Value::Bool(true) => expression(&args[1], scope, depth),
            Value::Bool(false) => expression(&args[2], scope, depth),
            other => Err(Fault::invalid(format!(
                "The template language function 'if' expects its first parameter to be of type 'Boolean'. The provided value is of type '{}'.",
                token_name(&other)
            ))),
        };
    }
    let values =
        args.iter().map(|arg| expression(arg, scope, depth)).collect::<Result<Vec<_>, _>>()?;
    let args = Args { name, values };
    let context = scope.env.context();
    match lower.as_str() {
        "parameters" => {
            args.count(1, 1)?;
            scope.env.parameter(args.string(0)?, depth)
        }
        "variables" => {
            if scope.site == Site::ParameterDefault {
                return Err(not_expected(name, ""));
            }
            args.count(1, 1)?;
            scope.env.variable(args.string(0)?, depth)
        }
        "copyindex" => copy_index(&args, scope),
        "reference" => reference(&args, scope),
        "resourceid" => Ok(Value::String(ids::resource_id(&args, context)?)),
        "subscriptionresourceid" => {
            Ok(Value::String(ids::subscription_resource_id(&args, context)?))
        }
        "tenantresourceid" => Ok(Value::String(ids::tenant_resource_id(&args)?)),
        "extensionresourceid" => Ok(Value::String(ids::extension_resource_id(&args)?)),
        "resourcegroup" => {
            args.count(0, 0)?;
            let group = context.resource_group.as_ref().ok_or_else(|| {
                not_expected(name, " A subscription deployment has no resource group.")
            })?;
            let mut out = Map::new();
            out.insert("id".to_owned(), Value::String(group.id.as_str().to_owned()));
            out.insert(
                "name".to_owned(),
                Value::String(group.id.resource_group().unwrap_or_default().to_owned()),
            );
            out.insert(
                "type".to_owned(),
                Value::String("Microsoft.Resources/resourceGroups".to_owned()),
            );
            out.insert("location".to_owned(), Value::String(group.location.clone()));
            out.insert("tags".to_owned(), Value::Object(group.tags.clone()));
            out.insert(
                "properties".to_owned(),
                object([("provisioningState", "Succeeded".into())]),
            );
            Ok(Value::Object(out))
        }
        "subscription" => {
            args.count(0, 0)?;
            Ok(object([
                ("id", format!("/subscriptions/{}", context.subscription_id).into()),
                ("subscriptionId", context.subscription_id.clone().into()),
                ("tenantId", context.tenant_id.clone().into()),
                ("displayName", context.subscription_display_name.clone().into()),
            ]))
        }
        "tenant" => {
            args.count(0, 0)?;
            Ok(object([("tenantId", context.tenant_id.clone().into())]))
        }
        "deployment" => {
            args.count(0, 0)?;
            Ok(deployment(scope.env.template(), context))
        }
        "environment" => {
            args.count(0, 0)?;
            Ok(environment(context))
        }
        "utcnow" => {
            if scope.site != Site::ParameterDefault {
                return Err(not_expected(
                    name,
                    " It can only be used in the default value of a parameter.",
                ));
            }
            args.count(0, 1)?;
            let format = if args.values.is_empty() { "yyyyMMddTHHmmssZ" } else { args.string(0)? };
            Ok(Value::String(
                functions::format_time(context.now, format).map_err(|detail| args.fail(&detail))?,
            ))
        }
        "newguid" => {
            if scope.site != Site::ParameterDefault {
                return Err(not_expected(
                    name,
                    " It can only be used in the default value of a parameter.",
                ));
            }
            args.count(0, 0)?;
            // There is no random source in this pure engine: the value derives from the
            // deployment, its start time and the parameter, so each deployment gets a new one.
            let millis = context.now.millis().to_string();
            let parameter = scope.parameter.unwrap_or_default();
            Ok(Value::String(hash::guid(&[
                "newGuid",
                &context.deployment_name,
                &millis,
                parameter,
            ])))
        }
        "providers" => {
            args.count(1, 2)?;
            let namespace = args.string(0)?;
            let mut out = Map::new();
            out.insert("namespace".to_owned(), Value::String(namespace.to_owned()));
            if args.values.len() == 2 {
                out.insert("resourceType".to_owned(), Value::String(args.string(1)?.to_owned()));
            }
            out.insert("locations".to_owned(), Value::Array(Vec::new()));
            // Ambient serves every API version; this one stands in for "the latest".
            out.insert(
                "apiVersions".to_owned(),
                Value::Array(vec![Value::String(PROVIDERS_API_VERSION.to_owned())]),
            );
            Ok(Value::Object(out))
        }
        _ if lower.starts_with("list") => list(&args, scope),
        _ => match functions::call(&lower, name, args.values) {
            Some(result) => result.map_err(Fault::from),
            None => Err(Fault::invalid(format!(
                "The template function '{name}' is not valid. Please see https://aka.ms/arm-functions for usage details."
            ))),
        },
    }
}

/// The API version `providers()` reports.
const PROVIDERS_API_VERSION: &str = "2024-03-01";

fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(entries.into_iter().map(|(key, value)| (key.to_owned(), value)).collect())
}

fn deployment(template: &Template, context: &DeploymentContext) -> Value {
    let mut shown = Map::new();
    if let Some(schema) = template.schema() {
        shown.insert("$schema".to_owned(), Value::String(schema.to_owned()));
    }
    if let Some(version) = template.content_version() {
        shown.insert("contentVersion".to_owned(), Value::String(version.to_owned()));
    }
    let mut out = Map::new();
    out.insert("name".to_owned(), Value::String(context.deployment_name.clone()));
    if let (None, Some(location)) = (&context.resource_group, &context.location) {
        out.insert("location".to_owned(), Value::String(location.clone()));
    }
    out.insert(
        "properties".to_owned(),
        object([
            ("templateHash", template.hash().into()),
            ("template", Value::Object(shown)),
            ("mode", "Incremental".into()),
            ("provisioningState", "Accepted".into()),
        ]),
    );
    Value::Object(out)
}

fn environment(context: &DeploymentContext) -> Value {
    let cloud = &context.environment;
    object([
        ("name", cloud.name.clone().into()),
        ("resourceManager", cloud.resource_manager.clone().into()),
        ("graph", cloud.graph.clone().into()),
        ("graphAudience", cloud.graph.clone().into()),
        (
            "authentication",
            object([
                ("loginEndpoint", cloud.login_endpoint.clone().into()),
                ("audiences", Value::Array(vec![cloud.resource_manager.clone().into()])),
                ("tenant", "common".into()),
                ("identityProvider", "AAD".into()),
            ]),
        ),
        (
            "suffixes",
            object([
                ("keyvaultDns", cloud.key_vault_dns.clone().into()),
                ("storage", cloud.storage.clone().into()),
            ]),
        ),
    ])
}

fn copy_index(args: &Args, scope: &Scope) -> Result<Value, Fault> {
    args.count(0, 2)?;
    let (loop_name, offset) = match args.values.as_slice() {
        [] => (None, 0),
        [Value::String(name)] => (Some(name.as_str()), 0),
        [offset] => (None, offset.as_i64().ok_or_else(|| args.wrong_type(0, "Integer"))?),
        [_, offset] => {
            (Some(args.string(0)?), offset.as_i64().ok_or_else(|| args.wrong_type(1, "Integer"))?)
        }
        _ => unreachable!("counted above"),
    };
    let found = match loop_name {
        Some(wanted) => {
            scope.loops.iter().rev().find(|entry| entry.name.eq_ignore_ascii_case(wanted))
        }
        None => {
            scope.loops.iter().rev().find(|entry| entry.resource).or_else(|| scope.loops.last())
        }
    };
    match (found, loop_name) {
        (Some(entry), _) => entry
            .index
            .checked_add(offset)
            .map(Value::from)
            .ok_or_else(|| Fault::invalid(args.fail("the offset overflows."))),
        (None, Some(wanted)) => Err(Fault::invalid(format!(
            "The template function 'copyIndex' is not expected at this location: there is no copy loop named '{wanted}' here. Please see https://aka.ms/arm-copy for usage details."
        ))),
        (None, None) => Err(not_expected(
            args.name,
            " The function can only be used in a resource, property, variable or output with a copy loop.",
        )),
    }
}

/// The resolver, where the site lets `reference()` and `list*()` read resources.
fn resolver<'a>(args: &Args, scope: &Scope<'a>) -> Result<&'a dyn ReferenceResolver, Fault> {
    match (scope.site, scope.resolver) {
        (Site::Body | Site::Output, Some(resolver)) => Ok(resolver),
        _ => Err(not_expected(args.name, "")),
    }
}

fn reference(args: &Args, scope: &Scope) -> Result<Value, Fault> {
    let resolver = resolver(args, scope)?;
    args.count(1, 3)?;
    let full = match args.values.get(2) {
        None => false,
        Some(Value::String(mode)) if mode.eq_ignore_ascii_case("full") => true,
        Some(_) => return Err(Fault::invalid(args.fail("the third argument must be 'Full'."))),
    };
    let id = target_id(args, scope)?;
    match resolver.resource(&id) {
        Some(resource) if full => Ok(resource),
        Some(Value::Object(resource)) => Ok(functions::property(&resource, "properties")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()))),
        Some(_) => Ok(Value::Object(Map::new())),
        None if scope.preview => Err(Fault::Unresolved),
        None => {
            Err(Fault::Error { code: ErrorCode::ResourceNotFound, message: not_found_message(&id) })
        }
    }
}

/// `listKeys(resource, apiVersion, [functionValues])` and the other `list*` functions, answered
/// by the resolver where it knows the action.
fn list(args: &Args, scope: &Scope) -> Result<Value, Fault> {
    let resolver = resolver(args, scope)?;
    args.count(2, 3)?;
    let id = target_id(args, scope)?;
    let input = args.values.get(2).unwrap_or(&Value::Null);
    match resolver.list(&id, args.name, input) {
        Some(result) => Ok(result),
        None if scope.preview => Err(Fault::Unresolved),
        None => Err(Fault::invalid(format!(
            "The template function '{}' is not supported by Ambient for the resource '{id}'.",
            args.name
        ))),
    }
}

/// The resource the first argument of `reference()` or `list*()` names: an id, or the name of a
/// resource of the template.
fn target_id(args: &Args, scope: &Scope) -> Result<ResourceId, Fault> {
    let target = args.string(0)?;
    let id = if target.starts_with('/') {
        ids::canonical(target)
    } else {
        scope.env.resource_named(target).ok_or_else(|| {
            Fault::invalid(format!(
                "The template reference '{target}' is not valid: could not find template resource or resource copy with this name. Please see https://aka.ms/arm-function-reference for usage details."
            ))
        })?
    };
    ResourceId::parse(&id).map_err(|_| {
        Fault::invalid(format!(
            "The template reference '{target}' is not valid: the resource identificator '{id}' is malformed. Please see https://aka.ms/arm-function-reference for usage details."
        ))
    })
}

/// ARM's message for a missing resource.
fn not_found_message(id: &ResourceId) -> String {
    let text = id.as_str();
    match id.resource_group() {
        Some(group) => {
            let lower = text.to_ascii_lowercase();
            let tail =
                lower.find("/providers/").map_or(text, |at| &text[at + "/providers/".len()..]);
            format!(
                "The Resource '{tail}' under resource group '{group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            )
        }
        None => format!(
            "The Resource '{text}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    }
}

impl Env for Prepared {
    fn parameter(&self, name: &str, _depth: usize) -> Result<Value, Fault> {
        self.parameters
            .iter()
            .find(|(known, _, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, _, value)| value.clone())
            .ok_or_else(|| parameter_not_found(name))
    }

    fn variable(&self, name: &str, _depth: usize) -> Result<Value, Fault> {
        self.variables
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
            .ok_or_else(|| variable_not_found(name))
    }

    fn context(&self) -> &DeploymentContext {
        &self.context
    }

    fn template(&self) -> &Template {
        &self.template
    }

    fn resource_named(&self, name: &str) -> Option<String> {
        self.names
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, id)| id.as_str().to_owned())
    }
}

pub(crate) fn parameter_not_found(name: &str) -> Fault {
    Fault::invalid(format!(
        "The template parameter '{name}' is not found. Please see https://aka.ms/arm-syntax-parameters for usage details."
    ))
}

pub(crate) fn variable_not_found(name: &str) -> Fault {
    Fault::invalid(format!(
        "The template variable '{name}' is not found. Please see https://aka.ms/arm-syntax-variables for usage details."
    ))
}

pub(crate) fn evaluate_resource(
    prepared: &Prepared,
    index: usize,
    resolver: &dyn ReferenceResolver,
    preview: bool,
) -> Result<ResourceRequest, TemplateError> {
    let instance =
        prepared.resources.get(index).expect("the index is within Prepared::resources()");
    let definition = &prepared.template.resources[instance.definition];
    let mut scope = Scope::new(prepared, Site::Body, instance.loops.clone());
    scope.resolver = Some(resolver);
    scope.preview = preview;
    let mut body = Map::new();
    for (key, child) in &definition.body {
        let value = node(child, &scope, &join_path(&definition.path, key)).map_err(|located| {
            match located.fault.code() {
                ErrorCode::ResourceNotFound => {
                    TemplateError::new(ErrorCode::ResourceNotFound, located.fault.message(), Some(located.path))
                }
                code => TemplateError::new(
                    code,
                    format!(
                        "Unable to process template language expressions for resource '{}' at '{}'. '{}'",
                        instance.id,
                        located.path,
                        located.fault.message()
                    ),
                    Some(located.path),
                ),
            }
        })?;
        let value = match (&definition.inner_template, value) {
            (Some((position, template)), Value::Object(properties))
                if key.eq_ignore_ascii_case("properties") =>
            {
                let mut entries: Vec<(String, Value)> = properties.into_iter().collect();
                entries.insert(
                    (*position).min(entries.len()),
                    ("template".to_owned(), template.clone()),
                );
                Value::Object(entries.into_iter().collect())
            }
            (_, value) => value,
        };
        body.insert(key.clone(), value);
    }
    Ok(ResourceRequest {
        id: instance.id.clone(),
        resource_type: instance.resource_type.clone(),
        api_version: instance.api_version.clone(),
        body: Value::Object(body),
    })
}

pub(crate) fn evaluate_outputs(
    prepared: &Prepared,
    resolver: &dyn ReferenceResolver,
) -> Result<Value, TemplateError> {
    let mut out = Map::new();
    for output in &prepared.template.outputs {
        let path = format!("outputs.{}", output.name);
        let fail = |message: &str, at: String| {
            TemplateError::new(
                ErrorCode::DeploymentOutputEvaluationFailed,
                format!("The template output '{}' is not valid: {message}", output.name),
                Some(at),
            )
        };
        let located = |located: Located| fail(located.fault.message(), located.path);
        let mut scope = Scope::new(prepared, Site::Output, Vec::new());
        scope.resolver = Some(resolver);
        if let Some(condition) = &output.condition {
            match node(condition, &scope, &join_path(&path, "condition")).map_err(located)? {
                Value::Bool(true) => {}
                Value::Bool(false) => continue,
                other => {
                    return Err(fail(
                        &format!(
                            "the condition must be a boolean, not a value of type '{}'.",
                            token_name(&other)
                        ),
                        join_path(&path, "condition"),
                    ));
                }
            }
        }
        let value = match &output.value {
            OutputValue::Single(value) => {
                node(value, &scope, &join_path(&path, "value")).map_err(located)?
            }
            OutputValue::Copy { count, input } => {
                let count_path = format!("{path}.copy.count");
                let count = copy_count(&node(count, &scope, &count_path).map_err(located)?)
                    .map_err(|message| fail(&message, count_path.clone()))?;
                let mut items = Vec::new();
                for index in 0..count {
                    let mut iteration = scope.clone();
                    iteration.loops.push(Loop { name: output.name.clone(), index, resource: true });
                    items.push(
                        node(input, &iteration, &format!("{path}.copy.input")).map_err(located)?,
                    );
                }
                Value::Array(items)
            }
        };
        if !output.kind.accepts(&value) {
            return Err(fail(
                &format!(
                    "Template output JToken type is not valid. Expected '{}'. Actual '{}'.",
                    output.kind.token_name(),
                    token_name(&value)
                ),
                path,
            ));
        }
        let mut entry = Map::new();
        entry.insert("type".to_owned(), Value::String(output.kind.arm_name().to_owned()));
        if !output.kind.is_secure() {
            entry.insert("value".to_owned(), value);
        }
        out.insert(output.name.clone(), Value::Object(entry));
    }
    Ok(Value::Object(out))
}
