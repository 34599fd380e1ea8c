//! ARM template deployments: the template language engine, pure (no IO, no async, no store).
//!
//! The typical call sequence, for `PUT .../deployments/{name}`, validate and what-if:
//!
//! 1. [`Template::parse`] reads the template JSON, parses every expression and checks that
//!    every function it calls exists.
//! 2. [`Template::prepare`] takes the deployment's parameters and a [`DeploymentContext`]
//!    (subscription, tenant, resource group, deployment name, the time), checks the parameters,
//!    evaluates the variables, expands `copy` loops and nested child resources, evaluates
//!    `condition`s and resolves `dependsOn` into a deployment order. The result, [`Prepared`],
//!    lists the resources to deploy in that order ([`Prepared::resources`]).
//! 3. For each resource in order, [`Prepared::evaluate`] returns the [`ResourceRequest`] to PUT:
//!    its id, type, API version and body with every expression evaluated. `reference()` asks
//!    the caller's [`ReferenceResolver`] for resources deployed earlier or existing already.
//!    [`Prepared::preview`] is the what-if variant: an expression that needs a resource that does
//!    not exist yet is left as its text, as ARM's what-if shows it.
//! 4. [`Prepared::outputs`] evaluates the outputs as ARM returns them.
//!
//! Errors are [`TemplateError`]s carrying ARM's codes and messages, with a template path
//! (`resources[1].properties.principalId`) where ARM gives a line and column.
//!
//! Where the engine departs from ARM, on purpose:
//!
//! - a nested child resource waits for its parent, and a resource whose body calls
//!   `reference()` on another resource of the template waits for it, even without `dependsOn`;
//!   the child of a resource whose condition is false is skipped too;
//! - `newGuid()` derives its value from the deployment's name, start time and the parameter, as
//!   the engine has no random source; `providers()` reports a single API version;
//! - `list*()` functions work only for the actions the caller's resolver serves;
//!   user-defined functions, `languageVersion` 2.0 (symbolic names) and Key Vault references in
//!   parameters are refused with a clear error;
//! - strings are measured and indexed in characters, not UTF-16 code units.

mod eval;
mod expression;
mod functions;
mod hash;
mod ids;
mod node;
mod prepare;
#[cfg(test)]
mod tests;

use std::fmt;

use domain::{ResourceId, UnixTime};
use serde_json::{Map, Value};

use crate::template::node::ParameterType;

/// Most instances one `copy` loop may create (ARM's limit).
pub const COPY_COUNT_MAX: i64 = 800;
/// Most resource instances one deployment may create (ARM's limit).
pub const RESOURCES_PER_DEPLOYMENT_MAX: usize = 800;
/// Deepest nesting of function calls, variables and parameters evaluation follows before giving
/// up, so that a hostile template cannot exhaust the stack.
pub const EVALUATION_DEPTH_MAX: usize = 128;
/// Most nodes and expressions one evaluation (a parameter, a variable, a resource's body, an
/// output) may visit, so that nested loops cannot make a small template explode.
pub const EVALUATION_STEPS_MAX: usize = 1_000_000;
/// Longest string a function may build (ARM's template literal limit).
pub const STRING_CHARS_MAX: usize = 131_072;

/// A parsed template. Cheap to clone relative to a deployment.
#[derive(Debug, Clone)]
pub struct Template {
    schema: Option<String>,
    content_version: Option<String>,
    parameters: Vec<node::ParameterDefinition>,
    variables: Vec<node::VariableDefinition>,
    /// Every resource definition, nested children included, in document order (a parent
    /// before its children).
    resources: Vec<node::ResourceDefinition>,
    outputs: Vec<node::OutputDefinition>,
    /// `deployment().properties.templateHash`: MurmurHash64 of the template's JSON text.
    hash: String,
}

/// Where and as what a deployment runs: what `resourceGroup()`, `subscription()`,
/// `deployment()`, `environment()` and `utcNow()` return.
#[derive(Debug, Clone)]
pub struct DeploymentContext {
    pub tenant_id: String,
    pub subscription_id: String,
    pub subscription_display_name: String,
    /// The target group of a resource-group deployment; `None` for a subscription deployment.
    pub resource_group: Option<ResourceGroupContext>,
    pub deployment_name: String,
    /// The deployment's own location (subscription deployments have one).
    pub location: Option<String>,
    /// The deployment's start: `utcNow()` and `newGuid()` in parameter defaults use it.
    pub now: UnixTime,
    pub environment: CloudEnvironment,
}

/// The target resource group, as `resourceGroup()` shows it.
#[derive(Debug, Clone)]
pub struct ResourceGroupContext {
    pub id: ResourceId,
    pub location: String,
    pub tags: Map<String, Value>,
}

/// The cloud's endpoints, as `environment()` shows them.
#[derive(Debug, Clone)]
pub struct CloudEnvironment {
    /// `AzureCloud` on Azure.
    pub name: String,
    /// `https://management.azure.com/` on Azure.
    pub resource_manager: String,
    /// `https://login.microsoftonline.com/` on Azure.
    pub login_endpoint: String,
    /// `https://graph.microsoft.com/` on Azure.
    pub graph: String,
    /// `.vault.azure.net` on Azure.
    pub key_vault_dns: String,
    /// `core.windows.net` on Azure.
    pub storage: String,
}

/// Gives `reference()` the resources a deployment may read. It is synchronous: a caller with
/// an asynchronous store loads [`ResourceInstance::references`] (and
/// [`Prepared::output_references`]) first and answers from memory.
pub trait ReferenceResolver {
    /// The resource's ARM GET representation (`id`, `name`, `type`, `location`, `identity`,
    /// `properties`...), or `None` when it does not exist. The resource may have been deployed
    /// earlier in this deployment or exist already.
    fn resource(&self, id: &ResourceId) -> Option<Value>;

    /// The result of a `list*` action (`listKeys`, `listSecrets`...) on the resource, with the
    /// function's optional input, or `None` when the caller does not serve it (the default).
    fn list(&self, id: &ResourceId, action: &str, input: &Value) -> Option<Value> {
        let _ = (id, action, input);
        None
    }
}

/// A template with its parameters checked, variables evaluated and resources expanded and
/// ordered.
#[derive(Debug, Clone)]
pub struct Prepared {
    template: Template,
    context: DeploymentContext,
    /// Final parameter values, in template order.
    parameters: Vec<(String, ParameterType, Value)>,
    /// Final variable values, in template order.
    variables: Vec<(String, Value)>,
    /// The resources to deploy, in deployment order (condition false excluded).
    resources: Vec<ResourceInstance>,
    /// Every instance's name and id, deployed or not, for `reference('name')`.
    names: Vec<(String, ResourceId)>,
    /// The resources the outputs read, where known before deployment.
    output_references: Vec<ResourceId>,
}

/// One resource to deploy: a definition, or one iteration of a `copy` loop.
#[derive(Debug, Clone)]
pub struct ResourceInstance {
    id: ResourceId,
    resource_type: String,
    /// The full name (`vnet/subnet` for a child).
    name: String,
    api_version: String,
    /// Resources this one waits for, among those deployed.
    depends_on: Vec<ResourceId>,
    /// Resources its `reference()` calls read, where known before deployment.
    references: Vec<ResourceId>,
    /// Index of its definition in `Template::resources`.
    definition: usize,
    /// The `copy` iterations in effect: the parent's, then its own.
    loops: Vec<eval::Loop>,
}

/// What to PUT for one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRequest {
    pub id: ResourceId,
    pub resource_type: String,
    pub api_version: String,
    /// The body: `location`, `tags`, `identity`, `properties`, `sku`, `kind` and any other
    /// top-level property, in the order the template wrote them.
    pub body: Value,
}

/// Why a template cannot be deployed, in ARM's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    code: ErrorCode,
    message: String,
    path: Option<String>,
}

/// ARM's error codes for template problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The template, its parameters or an expression is wrong.
    InvalidTemplate,
    /// `reference()` names a resource that does not exist.
    ResourceNotFound,
    /// An output could not be evaluated after the resources were deployed.
    DeploymentOutputEvaluationFailed,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidTemplate => "InvalidTemplate",
            ErrorCode::ResourceNotFound => "ResourceNotFound",
            ErrorCode::DeploymentOutputEvaluationFailed => "DeploymentOutputEvaluationFailed",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TemplateError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>, path: Option<String>) -> Self {
        TemplateError { code, message: message.into(), path }
    }

    /// A validation failure, worded as ARM words them.
    pub(crate) fn validation(message: impl fmt::Display, path: impl Into<String>) -> Self {
        let path = path.into();
        TemplateError {
            code: ErrorCode::InvalidTemplate,
            message: format!("Deployment template validation failed: '{message}'."),
            path: (!path.is_empty()).then_some(path),
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where in the template the problem is (`resources[1].properties.principalId`), for ARM's
    /// `TemplateViolation` additional info.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }
}

impl From<TemplateError> for crate::Error {
    fn from(error: TemplateError) -> Self {
        match error.code {
            ErrorCode::ResourceNotFound => {
                crate::Error::not_found("ResourceNotFound", error.message)
            }
            code => crate::Error::bad_request(code.as_str(), error.message),
        }
    }
}

impl Template {
    /// Parses a template: its structure, every expression, and every function name.
    pub fn parse(template: &Value) -> Result<Template, TemplateError> {
        node::parse_template(template)
    }

    /// Checks `parameters` (`{"name": {"value": ...}}` as in a deployment request or a
    /// parameters file, or `{"name": value}`), evaluates the variables, expands the resources
    /// and orders them.
    ///
    /// An entry that is an object with a `value` key (and at most `metadata` and `type` beside
    /// it) is read as the wrapped form, so a plain object value of that shape must be wrapped.
    /// Key Vault references (`{"reference": {"keyVault": ...}}`) must be resolved by the caller
    /// first; they are refused.
    pub fn prepare(
        &self,
        parameters: &Value,
        context: &DeploymentContext,
    ) -> Result<Prepared, TemplateError> {
        prepare::prepare(self, parameters, context)
    }

    /// `contentVersion`, if the template has one.
    pub fn content_version(&self) -> Option<&str> {
        self.content_version.as_deref()
    }

    /// `$schema`, if the template has one.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// `deployment().properties.templateHash`.
    pub fn hash(&self) -> &str {
        &self.hash
    }
}

impl Prepared {
    /// The resources to deploy, in an order that respects every dependency (stable: template
    /// order where dependencies allow).
    pub fn resources(&self) -> &[ResourceInstance] {
        &self.resources
    }

    /// Evaluates the body of `resources()[index]`. `reference()` reads through `resolver`.
    pub fn evaluate(
        &self,
        index: usize,
        resolver: &dyn ReferenceResolver,
    ) -> Result<ResourceRequest, TemplateError> {
        eval::evaluate_resource(self, index, resolver, false)
    }

    /// Like [`Prepared::evaluate`] for what-if: a string whose expression needs a resource that
    /// does not exist yet stays as its expression text.
    pub fn preview(
        &self,
        index: usize,
        resolver: &dyn ReferenceResolver,
    ) -> Result<ResourceRequest, TemplateError> {
        eval::evaluate_resource(self, index, resolver, true)
    }

    /// The resources the outputs' `reference()` calls read, where known before deployment.
    pub fn output_references(&self) -> &[ResourceId] {
        &self.output_references
    }

    /// The outputs as ARM returns them: `{"name": {"type": "String", "value": ...}}`.
    pub fn outputs(&self, resolver: &dyn ReferenceResolver) -> Result<Value, TemplateError> {
        eval::evaluate_outputs(self, resolver)
    }

    /// The parameters as a deployment shows them: `{"name": {"type": "String", "value": ...}}`,
    /// secure ones without their value.
    pub fn parameters(&self) -> Value {
        let mut out = Map::new();
        for (name, kind, value) in &self.parameters {
            let mut entry = Map::new();
            entry.insert("type".to_owned(), Value::String(kind.arm_name().to_owned()));
            if !kind.is_secure() {
                entry.insert("value".to_owned(), value.clone());
            }
            out.insert(name.clone(), Value::Object(entry));
        }
        Value::Object(out)
    }
}

impl ResourceInstance {
    pub fn id(&self) -> &ResourceId {
        &self.id
    }

    /// The full type (`Microsoft.Network/virtualNetworks/subnets`).
    pub fn resource_type(&self) -> &str {
        &self.resource_type
    }

    /// The full name (`vnet/default` for a child).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// The deployed resources this one waits for.
    pub fn depends_on(&self) -> &[ResourceId] {
        &self.depends_on
    }

    /// The resources this one's `reference()` and `list*()` calls read, in this deployment or
    /// outside it,
    /// where the target can be known before anything is deployed (almost always): a caller
    /// whose store is asynchronous loads them before [`Prepared::evaluate`].
    pub fn references(&self) -> &[ResourceId] {
        &self.references
    }
}
