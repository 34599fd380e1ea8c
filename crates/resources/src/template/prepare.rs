//! Preparing a deployment: checking the parameters it is given, evaluating parameters and
//! variables (lazily, in whatever order they refer to each other), expanding `copy` loops and
//! nested child resources into instances with ids, evaluating conditions, and ordering the
//! instances by their dependencies.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use domain::ResourceId;
use serde_json::{Map, Value};

use crate::template::eval::{self, Env, Fault, Loop, Scope, Site};
use crate::template::expression::Expr;
use crate::template::functions::{self, to_text};
use crate::template::node::{
    Node, OutputValue, ParameterDefinition, ResourceDefinition, VariableValue, join_path,
    token_name,
};
use crate::template::{
    DeploymentContext, EVALUATION_DEPTH_MAX, Prepared, RESOURCES_PER_DEPLOYMENT_MAX,
    ResourceInstance, Template, TemplateError, ids,
};

pub(crate) fn prepare(
    template: &Template,
    parameters: &Value,
    context: &DeploymentContext,
) -> Result<Prepared, TemplateError> {
    let supplied = supplied_parameters(template, parameters)?;
    let lazy = Lazy {
        template,
        context,
        supplied,
        parameters: RefCell::new(vec![Slot::Pending; template.parameters.len()]),
        variables: RefCell::new(vec![Slot::Pending; template.variables.len()]),
        failure: RefCell::new(None),
    };
    let mut parameter_values = Vec::new();
    for definition in &template.parameters {
        let value = lazy.parameter(&definition.name, 0).map_err(|fault| lazy.error(fault, ""))?;
        parameter_values.push((definition.name.clone(), definition.kind, value));
    }
    let mut variable_values = Vec::new();
    for definition in &template.variables {
        let value = lazy.variable(&definition.name, 0).map_err(|fault| lazy.error(fault, ""))?;
        variable_values.push((definition.name.clone(), value));
    }
    let mut expansion = Expansion { lazy: &lazy, instances: Vec::new() };
    for (index, definition) in template.resources.iter().enumerate() {
        if definition.parent.is_none() {
            expansion.expand(index, None, &[])?;
        }
    }
    let mut instances = expansion.instances;
    check_duplicates(&instances)?;
    resolve_dependencies(template, &lazy, &mut instances)?;
    let order = order(&instances)?;
    let names =
        instances.iter().map(|instance| (instance.name.clone(), instance.id.clone())).collect();
    let output_references = output_references(template, &lazy, &instances);
    let resources = order
        .iter()
        .filter(|index| instances[**index].condition)
        .map(|index| {
            let instance = &instances[*index];
            ResourceInstance {
                id: instance.id.clone(),
                resource_type: instance.resource_type.clone(),
                name: instance.name.clone(),
                api_version: instance.api_version.clone(),
                depends_on: deployed_dependencies(&instances, *index),
                references: instance.references.clone(),
                definition: instance.definition,
                loops: instance.loops.clone(),
            }
        })
        .collect();
    Ok(Prepared {
        template: template.clone(),
        context: context.clone(),
        parameters: parameter_values,
        variables: variable_values,
        resources,
        names,
        output_references,
    })
}

/// The resources the outputs read, where known before deployment.
fn output_references(template: &Template, lazy: &Lazy, instances: &[Expanded]) -> Vec<ResourceId> {
    let catalog = Catalog::new(template, instances);
    let scope = Scope::new(lazy, Site::Static, Vec::new());
    let nodes = template.outputs.iter().flat_map(|output| {
        let value = match &output.value {
            OutputValue::Single(value) => value,
            OutputValue::Copy { input, .. } => input,
        };
        output.condition.iter().chain(std::iter::once(value))
    });
    let mut references = Vec::new();
    for target in reference_targets(nodes, &scope) {
        references.extend(
            catalog.referenced(&target).into_iter().map(|index| instances[index].id.clone()),
        );
        if target.starts_with('/')
            && let Ok(id) = ResourceId::parse(&ids::canonical(&target))
        {
            references.push(id);
        }
    }
    lazy.failure.borrow_mut().take();
    dedup(references)
}

/// The values the deployment gives, by parameter index.
fn supplied_parameters(
    template: &Template,
    parameters: &Value,
) -> Result<Vec<Option<Value>>, TemplateError> {
    let empty = Map::new();
    let mut map = match parameters {
        Value::Null => &empty,
        Value::Object(map) => map,
        _ => {
            return Err(TemplateError::validation(
                "The deployment parameters must be a JSON object.",
                "parameters",
            ));
        }
    };
    // A whole parameters file: its `parameters` property holds the values.
    if (map.contains_key("$schema") || map.contains_key("contentVersion"))
        && let Some(Value::Object(inner)) = map.get("parameters")
    {
        map = inner;
    }
    let mut out = vec![None; template.parameters.len()];
    let mut unknown = Vec::new();
    for (name, entry) in map {
        let Some(index) = template
            .parameters
            .iter()
            .position(|definition| definition.name.eq_ignore_ascii_case(name))
        else {
            unknown.push(name.as_str());
            continue;
        };
        let value = match entry {
            Value::Object(wrapper)
                if wrapper
                    .get("reference")
                    .and_then(|reference| reference.get("keyVault"))
                    .is_some() =>
            {
                return Err(TemplateError::validation(
                    format!(
                        "The template parameter '{name}' is a Key Vault reference; resolve it to a value before the deployment is prepared."
                    ),
                    format!("parameters.{name}"),
                ));
            }
            Value::Object(wrapper)
                if wrapper.contains_key("value")
                    && wrapper
                        .keys()
                        .all(|key| matches!(key.as_str(), "value" | "metadata" | "type")) =>
            {
                wrapper["value"].clone()
            }
            other => other.clone(),
        };
        // A null value counts as not given, so the default applies.
        out[index] = (!value.is_null()).then_some(value);
    }
    if !unknown.is_empty() {
        let supported: Vec<&str> =
            template.parameters.iter().map(|definition| definition.name.as_str()).collect();
        return Err(TemplateError::validation(
            format!(
                "The template parameters '{}' in the parameters file are not valid; they are not present in the original template and can therefore not be provided at deployment time. The only supported parameters for this template are '{}'. Please see https://aka.ms/arm-pass-parameter-values for usage details.",
                unknown.join(", "),
                supported.join(", ")
            ),
            "parameters",
        ));
    }
    Ok(out)
}

#[derive(Debug, Clone)]
enum Slot {
    Pending,
    Busy,
    Done(Value),
}

/// Parameters and variables evaluated on first use, so they may refer to each other in any
/// order; a cycle is an error.
struct Lazy<'t> {
    template: &'t Template,
    context: &'t DeploymentContext,
    supplied: Vec<Option<Value>>,
    parameters: RefCell<Vec<Slot>>,
    variables: RefCell<Vec<Slot>>,
    /// The first failure, with its location, reported instead of the chain of faults it causes.
    failure: RefCell<Option<TemplateError>>,
}

impl Lazy<'_> {
    /// The error to report for `fault`: the first located failure if there was one.
    fn error(&self, fault: Fault, path: &str) -> TemplateError {
        self.failure
            .borrow_mut()
            .take()
            .unwrap_or_else(|| TemplateError::validation(fault.message(), path.to_owned()))
    }

    fn record(&self, message: String, path: String) -> Fault {
        let mut failure = self.failure.borrow_mut();
        if failure.is_none() {
            *failure = Some(TemplateError::validation(&message, path));
        }
        Fault::invalid(message)
    }

    fn depth_check(&self, depth: usize) -> Result<(), Fault> {
        if depth > EVALUATION_DEPTH_MAX {
            return Err(Fault::invalid(format!(
                "Parameters and variables refer to each other deeper than the limit of {EVALUATION_DEPTH_MAX} levels."
            )));
        }
        Ok(())
    }

    fn compute_parameter(&self, index: usize, depth: usize) -> Result<Value, Fault> {
        let definition = &self.template.parameters[index];
        let name = definition.name.as_str();
        let path = format!("parameters.{name}");
        let value = match (&self.supplied[index], &definition.default) {
            (Some(value), _) => value.clone(),
            (None, Some(default)) => {
                let mut scope = Scope::new(self, Site::ParameterDefault, Vec::new());
                scope.parameter = Some(name);
                scope.depth = depth;
                eval::node(default, &scope, &join_path(&path, "defaultValue")).map_err(
                    |located| {
                        self.record(
                            format!(
                                "The template parameter '{name}' is not valid: {}",
                                located.fault.message()
                            ),
                            located.path,
                        )
                    },
                )?
            }
            (None, None) => {
                return Err(self.record(
                    format!(
                        "The value for the template parameter '{name}' is not provided. Please see https://aka.ms/arm-create-parameter-file for usage details."
                    ),
                    path,
                ));
            }
        };
        check_parameter(definition, &value).map_err(|message| self.record(message, path))?;
        Ok(value)
    }

    fn compute_variable(&self, index: usize, depth: usize) -> Result<Value, Fault> {
        let definition = &self.template.variables[index];
        let name = definition.name.as_str();
        let mut scope = Scope::new(self, Site::Variable, Vec::new());
        scope.depth = depth;
        let wrap = |located: eval::Located| {
            self.record(
                format!("The template variable '{name}' is not valid: {}", located.fault.message()),
                located.path,
            )
        };
        match &definition.value {
            VariableValue::Single(value) => {
                eval::node(value, &scope, &format!("variables.{name}")).map_err(wrap)
            }
            VariableValue::Copy { count, input } => {
                let count = eval::node(count, &scope, "variables.copy").map_err(wrap)?;
                let count = eval::copy_count(&count).map_err(|message| {
                    self.record(
                        format!("The template variable '{name}' is not valid: {message}"),
                        "variables.copy".to_owned(),
                    )
                })?;
                let mut items = Vec::new();
                for index in 0..count {
                    let mut iteration = scope.clone();
                    iteration.loops.push(Loop { name: name.to_owned(), index, resource: false });
                    items.push(eval::node(input, &iteration, "variables.copy").map_err(wrap)?);
                }
                Ok(Value::Array(items))
            }
        }
    }
}

impl Env for Lazy<'_> {
    fn parameter(&self, name: &str, depth: usize) -> Result<Value, Fault> {
        self.depth_check(depth)?;
        let index = self
            .template
            .parameters
            .iter()
            .position(|definition| definition.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| eval::parameter_not_found(name))?;
        let slot = self.parameters.borrow()[index].clone();
        match slot {
            Slot::Done(value) => Ok(value),
            Slot::Busy => Err(Fault::invalid(format!(
                "The template parameter '{name}' refers to itself through the default values of parameters."
            ))),
            Slot::Pending => {
                self.parameters.borrow_mut()[index] = Slot::Busy;
                let result = self.compute_parameter(index, depth + 1);
                self.parameters.borrow_mut()[index] = match &result {
                    Ok(value) => Slot::Done(value.clone()),
                    Err(_) => Slot::Pending,
                };
                result
            }
        }
    }

    fn variable(&self, name: &str, depth: usize) -> Result<Value, Fault> {
        self.depth_check(depth)?;
        let index = self
            .template
            .variables
            .iter()
            .position(|definition| definition.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| eval::variable_not_found(name))?;
        let slot = self.variables.borrow()[index].clone();
        match slot {
            Slot::Done(value) => Ok(value),
            Slot::Busy => Err(Fault::invalid(format!(
                "The template variable '{name}' refers to itself through other variables."
            ))),
            Slot::Pending => {
                self.variables.borrow_mut()[index] = Slot::Busy;
                let result = self.compute_variable(index, depth + 1);
                self.variables.borrow_mut()[index] = match &result {
                    Ok(value) => Slot::Done(value.clone()),
                    Err(_) => Slot::Pending,
                };
                result
            }
        }
    }

    fn context(&self) -> &DeploymentContext {
        self.context
    }

    fn template(&self) -> &Template {
        self.template
    }

    fn resource_named(&self, _name: &str) -> Option<String> {
        // Nothing is deployed while preparing; `reference()` is not allowed here anyway.
        None
    }
}

/// Checks a parameter's value against its definition; the message is ARM's.
fn check_parameter(definition: &ParameterDefinition, value: &Value) -> Result<(), String> {
    let name = &definition.name;
    if !definition.kind.accepts(value) {
        return Err(format!(
            "The template parameter '{name}' is not valid: Template parameter JToken type is not valid. Expected '{}'. Actual '{}'. Please see https://aka.ms/resource-manager-parameter-files for usage details.",
            definition.kind.token_name(),
            token_name(value)
        ));
    }
    let shown = |value: &Value| {
        if definition.kind.is_secure() { String::new() } else { format!(" '{}'", to_text(value)) }
    };
    let invalid = |detail: String| {
        format!(
            "The provided value{} for the template parameter '{name}' is not valid. {detail}",
            shown(value)
        )
    };
    if let Some(allowed) = &definition.allowed {
        let candidates: Vec<&Value> = match value {
            Value::Array(items) if !allowed.iter().any(|a| functions::equals(a, value)) => {
                items.iter().collect()
            }
            other => vec![other],
        };
        if !candidates
            .iter()
            .all(|candidate| allowed.iter().any(|a| functions::equals(a, candidate)))
        {
            let list: Vec<String> = allowed.iter().map(to_text).collect();
            return Err(invalid(format!(
                "The parameter value is not part of the allowed value(s): '{}'.",
                list.join(",")
            )));
        }
    }
    if let Some(number) = value.as_i64() {
        if let Some(min) = definition.min_value.filter(|min| number < *min) {
            return Err(invalid(format!("The value must be greater than or equal to '{min}'.")));
        }
        if let Some(max) = definition.max_value.filter(|max| number > *max) {
            return Err(invalid(format!("The value must be less than or equal to '{max}'.")));
        }
    }
    let length = match value {
        Value::String(text) => Some(text.chars().count() as i64),
        Value::Array(items) => Some(items.len() as i64),
        _ => None,
    };
    if let Some(length) = length {
        if let Some(min) = definition.min_length.filter(|min| length < *min) {
            return Err(invalid(format!(
                "Length of the value should be greater than or equal to '{min}'."
            )));
        }
        if let Some(max) = definition.max_length.filter(|max| length > *max) {
            return Err(invalid(format!(
                "Length of the value should be less than or equal to '{max}'."
            )));
        }
    }
    Ok(())
}

/// One resource instance while preparing.
struct Expanded {
    definition: usize,
    loops: Vec<Loop>,
    id: ResourceId,
    resource_type: String,
    name: String,
    api_version: String,
    condition: bool,
    parent: Option<usize>,
    /// `dependsOn` entries with their paths.
    declared: Vec<(String, String)>,
    /// Indices of the instances this one depends on.
    depends: BTreeSet<usize>,
    /// The batch size of a `serial` copy loop this instance is an iteration of.
    serial_batch: Option<usize>,
    /// The resources its `reference()` calls read, where known before deployment.
    references: Vec<ResourceId>,
}

struct Expansion<'a, 't> {
    lazy: &'a Lazy<'t>,
    instances: Vec<Expanded>,
}

impl Expansion<'_, '_> {
    fn expand(
        &mut self,
        index: usize,
        parent: Option<usize>,
        inherited: &[Loop],
    ) -> Result<(), TemplateError> {
        let template = self.lazy.template;
        let definition = &template.resources[index];
        let fail = |message: &str, path: String| {
            TemplateError::validation(
                format!(
                    "The template resource '{}' at '{}' is not valid: {message}",
                    definition.display_name, definition.path
                ),
                path,
            )
        };
        let mut serial_batch = None;
        let iterations: Vec<Vec<Loop>> = match &definition.copy {
            None => vec![inherited.to_vec()],
            Some(copy) => {
                let count_path = join_path(&definition.path, "copy.count");
                let scope = Scope::new(self.lazy, Site::Static, inherited.to_vec());
                let count = eval::node(&copy.count, &scope, &count_path)
                    .map_err(|located| self.located(definition, located))?;
                let count = eval::copy_count(&count)
                    .map_err(|message| fail(&message, count_path.clone()))?;
                if copy.serial {
                    let batch = match &copy.batch_size {
                        None => 1,
                        Some(size) => {
                            let path = join_path(&definition.path, "copy.batchSize");
                            let size = eval::node(size, &scope, &path)
                                .map_err(|located| self.located(definition, located))?;
                            match size.as_i64() {
                                Some(size) if size > 0 => size as usize,
                                _ => {
                                    return Err(fail(
                                        &format!(
                                            "the copy batch size must be a positive integer, not '{}'.",
                                            to_text(&size)
                                        ),
                                        path,
                                    ));
                                }
                            }
                        }
                    };
                    serial_batch = Some(batch);
                }
                (0..count)
                    .map(|iteration| {
                        let mut loops = inherited.to_vec();
                        loops.push(Loop {
                            name: copy.name.clone(),
                            index: iteration,
                            resource: true,
                        });
                        loops
                    })
                    .collect()
            }
        };
        let children: Vec<usize> = template
            .resources
            .iter()
            .enumerate()
            .filter(|(_, child)| child.parent == Some(index))
            .map(|(child, _)| child)
            .collect();
        for loops in iterations {
            if self.instances.len() >= RESOURCES_PER_DEPLOYMENT_MAX {
                return Err(TemplateError::validation(
                    format!(
                        "The template creates more than {RESOURCES_PER_DEPLOYMENT_MAX} resources, the most one deployment may create."
                    ),
                    definition.path.clone(),
                ));
            }
            let mut instance = self.instance(index, parent, loops)?;
            instance.serial_batch = serial_batch;
            let position = self.instances.len();
            let loops = instance.loops.clone();
            self.instances.push(instance);
            for child in &children {
                self.expand(*child, Some(position), &loops)?;
            }
        }
        Ok(())
    }

    fn located(&self, definition: &ResourceDefinition, located: eval::Located) -> TemplateError {
        self.lazy.failure.borrow_mut().take().unwrap_or_else(|| {
            TemplateError::validation(
                format!(
                    "The template resource '{}' at '{}' is not valid: {}",
                    definition.display_name,
                    definition.path,
                    located.fault.message()
                ),
                located.path,
            )
        })
    }

    fn text(
        &self,
        definition: &ResourceDefinition,
        scope: &Scope,
        key: &str,
    ) -> Result<String, TemplateError> {
        let node = match key {
            "type" => &definition.resource_type,
            "name" => &definition.name,
            _ => &definition.api_version,
        };
        let path = join_path(&definition.path, key);
        match eval::node(node, scope, &path).map_err(|located| self.located(definition, located))? {
            Value::String(text) if !text.is_empty() => Ok(text),
            other => Err(TemplateError::validation(
                format!(
                    "The template resource '{}' at '{}' is not valid: the '{key}' property must be a non-empty string, not '{}'.",
                    definition.display_name,
                    definition.path,
                    to_text(&other)
                ),
                path,
            )),
        }
    }

    fn instance(
        &self,
        index: usize,
        parent: Option<usize>,
        loops: Vec<Loop>,
    ) -> Result<Expanded, TemplateError> {
        let definition = &self.lazy.template.resources[index];
        let context = self.lazy.context;
        let scope = Scope::new(self.lazy, Site::Static, loops.clone());
        let short_type = self.text(definition, &scope, "type")?;
        let short_name = self.text(definition, &scope, "name")?;
        let api_version = self.text(definition, &scope, "apiVersion")?;
        let (resource_type, name) = match parent.map(|parent| &self.instances[parent]) {
            None => (short_type, short_name),
            Some(parent) => {
                let full_type = if short_type.contains('/') {
                    short_type
                } else {
                    format!("{}/{short_type}", parent.resource_type)
                };
                let needed = full_type.split('/').count().saturating_sub(1);
                let full_name = if short_name.split('/').count() == needed {
                    short_name
                } else {
                    format!("{}/{short_name}", parent.name)
                };
                (full_type, full_name)
            }
        };
        let fail = |message: String, key: &str| {
            TemplateError::validation(
                format!(
                    "The template resource '{name}' at '{}' is not valid: {message}",
                    definition.path
                ),
                join_path(&definition.path, key),
            )
        };
        let base = match &context.resource_group {
            Some(group) => group.id.as_str().to_owned(),
            None => format!("/subscriptions/{}", context.subscription_id),
        };
        let base = match &definition.scope {
            None => base,
            Some(scope_node) => {
                let path = join_path(&definition.path, "scope");
                match eval::node(scope_node, &scope, &path)
                    .map_err(|located| self.located(definition, located))?
                {
                    Value::String(text) if !text.is_empty() => ids::scope_id(&base, &text),
                    other => {
                        return Err(fail(
                            format!(
                                "the 'scope' property must be a resource id, not '{}'.",
                                to_text(&other)
                            ),
                            "scope",
                        ));
                    }
                }
            }
        };
        let (id, put_type) = ids::declared_id(&base, &context.subscription_id, &resource_type, &name)
            .ok_or_else(|| {
                TemplateError::validation(
                    format!(
                        "The template resource '{name}' for type '{resource_type}' at '{}' has incorrect segment lengths. A nested resource type must have identical number of segments as its resource name. A root resource type must have segment length one greater than its resource name. Please see https://aka.ms/arm-syntax-resources for usage details.",
                        definition.path
                    ),
                    join_path(&definition.path, "name"),
                )
            })?;
        let id = ResourceId::parse(&id).map_err(|_| {
            fail(format!("The resource identificator '{id}' is malformed."), "name")
        })?;
        let condition = match &definition.condition {
            None => true,
            Some(condition) => {
                let path = join_path(&definition.path, "condition");
                match eval::node(condition, &scope, &path)
                    .map_err(|located| self.located(definition, located))?
                {
                    Value::Bool(value) => value,
                    other => {
                        return Err(fail(
                            format!(
                                "the condition must be a boolean, not a value of type '{}'.",
                                token_name(&other)
                            ),
                            "condition",
                        ));
                    }
                }
            }
        };
        // A child whose parent is not deployed is not deployed either.
        let condition = condition && parent.is_none_or(|parent| self.instances[parent].condition);
        let mut declared = Vec::new();
        if let Some(depends_on) = &definition.depends_on {
            let path = join_path(&definition.path, "dependsOn");
            match eval::node(depends_on, &scope, &path)
                .map_err(|located| self.located(definition, located))?
            {
                Value::Array(entries) => {
                    for (position, entry) in entries.iter().enumerate() {
                        match entry {
                            Value::String(text) => {
                                declared.push((text.clone(), format!("{path}[{position}]")))
                            }
                            Value::Null => {}
                            other => {
                                return Err(fail(
                                    format!(
                                        "each 'dependsOn' entry must be a string, not '{}'.",
                                        to_text(other)
                                    ),
                                    "dependsOn",
                                ));
                            }
                        }
                    }
                }
                Value::Null => {}
                _ => return Err(fail("'dependsOn' must be an array.".to_owned(), "dependsOn")),
            }
        }
        Ok(Expanded {
            definition: index,
            loops,
            id,
            resource_type: put_type,
            name,
            api_version,
            condition,
            parent,
            declared,
            depends: BTreeSet::new(),
            serial_batch: None,
            references: Vec::new(),
        })
    }
}

fn check_duplicates(instances: &[Expanded]) -> Result<(), TemplateError> {
    let mut seen = HashMap::new();
    for instance in instances.iter().filter(|instance| instance.condition) {
        if seen.insert(ids::comparable(instance.id.as_str()), instance.definition).is_some() {
            return Err(TemplateError::validation(
                format!(
                    "The resource '{}' is defined multiple times in a template. Please see https://aka.ms/arm-syntax-resources for usage details.",
                    instance.id
                ),
                "resources",
            ));
        }
    }
    Ok(())
}

/// What `dependsOn` entries and `reference()` targets are matched against, per instance, in
/// lower case.
struct Catalog {
    ids: Vec<String>,
    names: Vec<String>,
    /// `{type}/{name}`.
    typed_names: Vec<String>,
    /// The name of the instance's own copy loop.
    loops: Vec<Option<String>>,
}

impl Catalog {
    fn new(template: &Template, instances: &[Expanded]) -> Catalog {
        Catalog {
            ids: instances.iter().map(|instance| ids::comparable(instance.id.as_str())).collect(),
            names: instances.iter().map(|instance| instance.name.to_ascii_lowercase()).collect(),
            typed_names: instances
                .iter()
                .map(|instance| {
                    format!("{}/{}", instance.resource_type, instance.name).to_ascii_lowercase()
                })
                .collect(),
            loops: instances
                .iter()
                .map(|instance| {
                    let copy = template.resources[instance.definition].copy.as_ref();
                    copy.map(|copy| copy.name.to_ascii_lowercase())
                })
                .collect(),
        }
    }

    /// The instances a `dependsOn` entry names: by id, `{type}/{name}`, the id's provider path,
    /// plain name, or copy loop name.
    fn dependency(&self, entry: &str) -> Vec<usize> {
        if entry.starts_with('/') {
            let wanted = ids::comparable(entry);
            return (0..self.ids.len()).filter(|index| self.ids[*index] == wanted).collect();
        }
        let lower = entry.trim_end_matches('/').to_ascii_lowercase();
        let tail = format!("/providers/{lower}");
        (0..self.ids.len())
            .filter(|index| {
                self.loops[*index].as_deref() == Some(lower.as_str())
                    || self.names[*index] == lower
                    || self.typed_names[*index] == lower
                    || self.ids[*index].ends_with(&tail)
            })
            .collect()
    }

    /// The instances `reference()` of a resource id or name reads.
    fn referenced(&self, target: &str) -> Vec<usize> {
        if target.starts_with('/') {
            return self.dependency(target);
        }
        let lower = target.to_ascii_lowercase();
        (0..self.names.len()).filter(|index| self.names[*index] == lower).collect()
    }
}

fn resolve_dependencies(
    template: &Template,
    lazy: &Lazy,
    instances: &mut [Expanded],
) -> Result<(), TemplateError> {
    let catalog = Catalog::new(template, instances);
    for index in 0..instances.len() {
        let mut depends = BTreeSet::new();
        if let Some(parent) = instances[index].parent {
            depends.insert(parent);
        }
        for (entry, path) in &instances[index].declared {
            let found = catalog.dependency(entry);
            if found.is_empty() {
                let message = if entry.contains('/') {
                    format!(
                        "The resource '{entry}' is not defined in the template. Please see https://aka.ms/arm-syntax for usage details."
                    )
                } else {
                    format!(
                        "The template reference '{entry}' is not valid: could not find template resource or resource copy with this name. Please see https://aka.ms/arm-function-reference for usage details."
                    )
                };
                return Err(TemplateError::validation(message, path.clone()));
            }
            depends.extend(found);
        }
        // `reference()` of another resource of the template implies a dependency on it.
        let definition = &template.resources[instances[index].definition];
        let scope = Scope::new(lazy, Site::Static, instances[index].loops.clone());
        let targets = reference_targets(definition.body.iter().map(|(_, node)| node), &scope);
        lazy.failure.borrow_mut().take();
        let mut references = Vec::new();
        for target in targets {
            let found = catalog.referenced(&target);
            references.extend(found.iter().map(|other| instances[*other].id.clone()));
            depends.extend(found.into_iter().filter(|other| *other != index));
            if target.starts_with('/')
                && let Ok(id) = ResourceId::parse(&ids::canonical(&target))
            {
                references.push(id);
            }
        }
        instances[index].references = dedup(references);
        instances[index].depends = depends;
    }
    add_serial_batches(instances);
    Ok(())
}

/// The first argument of every `reference()` and `list*()` in `nodes` that can be evaluated before
/// anything is deployed. Faults while probing are dropped: the real evaluation reports them.
fn reference_targets<'a>(nodes: impl Iterator<Item = &'a Node>, scope: &Scope) -> Vec<String> {
    let mut targets = Vec::new();
    for node in nodes {
        node.visit_calls(&mut |name, args: &[Expr]| {
            let lower = name.to_ascii_lowercase();
            if (lower == "reference" || lower.starts_with("list"))
                && let Some(Ok(Value::String(target))) =
                    args.first().map(|arg| eval::expression(arg, scope, 0))
            {
                targets.push(target);
            }
        });
    }
    targets
}

fn dedup(ids: Vec<ResourceId>) -> Vec<ResourceId> {
    let mut out: Vec<ResourceId> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// In a `serial` copy loop, each batch of `batchSize` instances waits for the batch before it.
fn add_serial_batches(instances: &mut [Expanded]) {
    let mut groups: HashMap<(usize, Vec<Loop>), (usize, Vec<usize>)> = HashMap::new();
    for (index, instance) in instances.iter().enumerate() {
        if let Some(batch) = instance.serial_batch {
            let outer = instance.loops[..instance.loops.len() - 1].to_vec();
            groups.entry((instance.definition, outer)).or_insert((batch, Vec::new())).1.push(index);
        }
    }
    for (batch, members) in groups.into_values() {
        for (position, member) in members.iter().enumerate().skip(batch) {
            let previous = position / batch - 1;
            for earlier in &members[previous * batch..(previous + 1) * batch] {
                instances[*member].depends.insert(*earlier);
            }
        }
    }
}

/// A stable topological order: among the instances whose dependencies are met, the first in
/// template order goes next.
fn order(instances: &[Expanded]) -> Result<Vec<usize>, TemplateError> {
    let mut waiting: Vec<usize> = instances.iter().map(|instance| instance.depends.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); instances.len()];
    for (index, instance) in instances.iter().enumerate() {
        for dependency in &instance.depends {
            dependents[*dependency].push(index);
        }
    }
    let mut ready: BTreeSet<usize> =
        (0..instances.len()).filter(|index| waiting[*index] == 0).collect();
    let mut order = Vec::with_capacity(instances.len());
    while let Some(next) = ready.pop_first() {
        order.push(next);
        for dependent in &dependents[next] {
            waiting[*dependent] -= 1;
            if waiting[*dependent] == 0 {
                ready.insert(*dependent);
            }
        }
    }
    if order.len() == instances.len() {
        return Ok(order);
    }
    // Every instance left waits for another one left: follow them until one repeats.
    let left: BTreeSet<usize> = (0..instances.len()).filter(|index| waiting[*index] > 0).collect();
    let mut path = vec![*left.first().expect("some instances are left")];
    loop {
        let current = *path.last().expect("the path is never empty");
        let next = *instances[current]
            .depends
            .iter()
            .find(|dependency| left.contains(dependency))
            .expect("an instance left waits for another instance left");
        if let Some(start) = path.iter().position(|seen| *seen == next) {
            let mut cycle: Vec<String> =
                path[start..].iter().map(|index| instances[*index].id.to_string()).collect();
            cycle.push(instances[next].id.to_string());
            return Err(TemplateError::validation(
                format!(
                    "Circular dependency detected on resource: '{}'. The cycle is {}. Please see https://aka.ms/arm-syntax-resources for usage details.",
                    instances[next].id,
                    cycle.iter().map(|id| format!("'{id}'")).collect::<Vec<_>>().join(" -> ")
                ),
                "resources",
            ));
        }
        path.push(next);
    }
}

/// The deployed instances `index` waits for, looking through instances that are not deployed.
fn deployed_dependencies(instances: &[Expanded], index: usize) -> Vec<ResourceId> {
    let mut found = BTreeSet::new();
    let mut visited = BTreeSet::new();
    let mut stack: Vec<usize> = instances[index].depends.iter().copied().collect();
    while let Some(next) = stack.pop() {
        if !visited.insert(next) {
            continue;
        }
        if instances[next].condition {
            found.insert(next);
        } else {
            stack.extend(instances[next].depends.iter().copied());
        }
    }
    found.into_iter().map(|index| instances[index].id.clone()).collect()
}
