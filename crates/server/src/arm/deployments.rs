//! Template deployments: `{scope}/providers/Microsoft.Resources/deployments/{name}` at a
//! resource group or a subscription (PUT, GET, DELETE, list), `validate`, `whatIf`, and the
//! deployment's `operations`.
//!
//! A deployment runs synchronously: `resources::template` parses and prepares the template,
//! then each resource, in dependency order, is evaluated (its `reference()` calls read what was
//! deployed before it or exists already) and written through the very path a direct PUT takes
//! (`resources::operate` or the role-assignment handler): RBAC, linked authorization, lifecycle
//! rules and activity events included. A resource that fails stops the deployment, which then
//! answers `Failed` with ARM's `DeploymentFailed` error and keeps what succeeded. The record of
//! the deployment and of each operation is stored as resources of type
//! `Microsoft.Resources/deployments` and `.../operations`.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::{Guid, ResourceId};
use resources::template::{
    CloudEnvironment, DeploymentContext, Prepared, ReferenceResolver, ResourceGroupContext,
    Template,
};
use resources::types::{self, Kind};
use resources::{Resource, load};
use serde_json::{Map, Value, json};
use store::{Expect, ResourceFilter, Write};

use crate::arm::route::{self, ArmPath};
use crate::arm::{Context, from_resources, rbac, resources as arm_resources};
use crate::error::ApiError;
use crate::time_format::rfc3339;

/// How deep deployments may nest (a template deploying a template...).
const NESTING_DEPTH_MAX: usize = 5;

/// Every deployment operation.
pub async fn operate(
    context: &Context,
    scope: &ResourceId,
    name: Option<&str>,
    action: Option<&str>,
) -> Result<Response, ApiError> {
    if !(scope.is_resource_group() || scope.is_subscription()) {
        return Err(ApiError::bad_request(
            "InvalidDeploymentScope",
            "Deployments are made at a resource group or a subscription.",
        ));
    }
    let Some(name) = name else {
        context.only(Method::GET)?;
        return list(context, scope).await;
    };
    check_name(name)?;
    let id = deployment_id(scope, name)?;
    match (action.map(str::to_ascii_lowercase).as_deref(), &context.method) {
        (None, &Method::GET) => {
            context.grants.check("Microsoft.Resources/deployments/read", &id)?;
            let record =
                load::resource(context.state.store.as_ref(), &id).await.map_err(from_resources)?;
            let record = record.ok_or_else(|| not_found(name))?;
            Ok(Json(render(&record)).into_response())
        }
        (None, &Method::HEAD) => {
            context.grants.check("Microsoft.Resources/deployments/read", &id)?;
            let exists = context.state.store.get_resource(id.key()).await?.is_some();
            Ok(if exists { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND }.into_response())
        }
        (None, &Method::PUT) => {
            context.grants.check("Microsoft.Resources/deployments/write", &id)?;
            let request = DeploymentRequest::parse(&context.body, scope)?;
            let record = deploy(context, scope, name, &request, 0).await?;
            let created = record.version == 1;
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            Ok((status, Json(render(&record))).into_response())
        }
        (None, &Method::DELETE) => {
            context.grants.check("Microsoft.Resources/deployments/delete", &id)?;
            let store = context.state.store.as_ref();
            if store.get_resource(id.key()).await?.is_none() {
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            let filter = ResourceFilter {
                key_prefix: Some(format!("{}/", id.key())),
                ..ResourceFilter::default()
            };
            let mut writes: Vec<Write> = load::all(store, &filter)
                .await
                .map_err(from_resources)?
                .iter()
                .map(|operation| Write::DeleteResource { key: operation.key().to_owned() })
                .collect();
            writes.push(Write::DeleteResource { key: id.key().to_owned() });
            store.apply(writes).await?;
            Ok(StatusCode::OK.into_response())
        }
        (Some("validate"), &Method::POST) => {
            context.grants.check("Microsoft.Resources/deployments/validate/action", &id)?;
            let request = DeploymentRequest::parse(&context.body, scope)?;
            validate(context, scope, name, &request).await
        }
        (Some("whatif"), &Method::POST) => {
            context.grants.check("Microsoft.Resources/deployments/whatIf/action", &id)?;
            let request = DeploymentRequest::parse(&context.body, scope)?;
            what_if(context, scope, name, &request).await
        }
        (Some("operations"), &Method::GET) => {
            context.grants.check("Microsoft.Resources/deployments/operations/read", &id)?;
            let filter = ResourceFilter {
                key_prefix: Some(format!("{}/", id.key())),
                ..ResourceFilter::default()
            };
            let operations =
                load::all(context.state.store.as_ref(), &filter).await.map_err(from_resources)?;
            let value: Vec<Value> = operations.iter().map(render_operation).collect();
            Ok(Json(json!({"value": value})).into_response())
        }
        (Some("cancel"), &Method::POST) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "DeploymentCannotBeCancelled",
            "Deployments run to completion before their request is answered; there is nothing to cancel.",
        )),
        _ => Err(context.no_route()),
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "InvalidDeploymentName",
            format!(
                "The deployment name '{name}' is invalid: use 1 to 64 letters, digits, '-', '_', '.', '(' and ')'."
            ),
        ))
    }
}

fn deployment_id(scope: &ResourceId, name: &str) -> Result<ResourceId, ApiError> {
    ResourceId::parse(&format!("{scope}/providers/{}/{name}", types::DEPLOYMENT))
        .map_err(|error| ApiError::bad_request("InvalidResourceId", error.to_string()))
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "DeploymentNotFound",
        format!("Deployment '{name}' could not be found."),
    )
}

/// A deployment request's body, parsed.
struct DeploymentRequest {
    template: Value,
    parameters: Value,
    mode: String,
    location: Option<String>,
}

impl DeploymentRequest {
    fn parse(body: &Bytes, scope: &ResourceId) -> Result<DeploymentRequest, ApiError> {
        let value = lenient_json(body).map_err(|error| {
            ApiError::bad_request(
                "InvalidRequestContent",
                format!("The request content was invalid and could not be deserialized: {error}"),
            )
        })?;
        let properties = value.get("properties").cloned().unwrap_or_default();
        if properties.get("templateLink").is_some_and(|link| !link.is_null()) {
            return Err(ApiError::bad_request(
                "InvalidTemplateLink",
                "Ambient does not fetch templates from links; send the template in 'properties.template' (az deployment ... --template-file).",
            ));
        }
        let template =
            properties.get("template").cloned().filter(Value::is_object).ok_or_else(|| {
                ApiError::bad_request(
                    "InvalidRequestContent",
                    "The deployment has no 'properties.template' object.",
                )
            })?;
        if properties.get("parametersLink").is_some_and(|link| !link.is_null()) {
            return Err(ApiError::bad_request(
                "InvalidParametersLink",
                "Ambient does not fetch parameters from links; send them in 'properties.parameters'.",
            ));
        }
        let mode = properties.get("mode").and_then(Value::as_str).unwrap_or("Incremental");
        if !mode.eq_ignore_ascii_case("incremental") {
            return Err(ApiError::bad_request(
                "InvalidDeploymentMode",
                format!(
                    "The deployment mode '{mode}' is not supported by Ambient; use 'Incremental'."
                ),
            ));
        }
        let location = value.get("location").and_then(Value::as_str).map(str::to_owned);
        if scope.is_subscription() && location.is_none() {
            return Err(ApiError::bad_request(
                "LocationRequired",
                "The location property is required for a subscription deployment.",
            ));
        }
        Ok(DeploymentRequest {
            template,
            parameters: properties.get("parameters").cloned().unwrap_or_else(|| json!({})),
            mode: "Incremental".to_owned(),
            location,
        })
    }
}

/// The context a template sees for a deployment named `name` at `scope`.
async fn deployment_context(
    context: &Context,
    scope: &ResourceId,
    name: &str,
    location: Option<&str>,
) -> Result<DeploymentContext, ApiError> {
    let state = &context.state;
    let subscription = scope.subscription_id().unwrap_or_default();
    let subscription_row =
        state.store.get_subscription(&subscription.to_ascii_lowercase()).await?.ok_or_else(
            || {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "SubscriptionNotFound",
                    format!("The subscription '{subscription}' could not be found."),
                )
            },
        )?;
    let resource_group = if scope.is_resource_group() {
        let group = load::resource(state.store.as_ref(), scope)
            .await
            .map_err(from_resources)?
            .ok_or_else(|| {
                from_resources(resources::plan::group_not_found(
                    scope.resource_group().unwrap_or_default(),
                ))
            })?;
        Some(ResourceGroupContext {
            id: group.id.clone(),
            location: group.location.clone(),
            tags: group.tags.clone(),
        })
    } else {
        None
    };
    let base = state.base_url.to_string();
    Ok(DeploymentContext {
        tenant_id: state.deployment.tenant_id.clone(),
        subscription_id: subscription_row.id.clone(),
        subscription_display_name: subscription_row.display_name.clone(),
        resource_group,
        deployment_name: name.to_owned(),
        location: location.map(str::to_owned),
        now: state.clock.now(),
        environment: CloudEnvironment {
            name: "Ambient".to_owned(),
            resource_manager: format!("{base}/"),
            login_endpoint: format!("{base}/"),
            graph: format!("{base}/"),
            key_vault_dns: format!(".{}", state.vault_host),
            storage: format!("core.{}", state.dns_suffix),
        },
    })
}

/// What `reference()` reads: resources deployed so far in this deployment, and those that
/// existed before it (loaded ahead, since the engine is synchronous).
#[derive(Default)]
struct Known {
    by_key: HashMap<String, Value>,
}

impl ReferenceResolver for Known {
    fn resource(&self, id: &ResourceId) -> Option<Value> {
        self.by_key.get(id.key()).cloned()
    }
}

impl Known {
    async fn load(&mut self, context: &Context, ids: &[ResourceId]) -> Result<(), ApiError> {
        for id in ids {
            if self.by_key.contains_key(id.key()) {
                continue;
            }
            if let Some(resource) =
                load::resource(context.state.store.as_ref(), id).await.map_err(from_resources)?
            {
                self.by_key.insert(id.key().to_owned(), resource.render(&context.state.vault_host));
            }
        }
        Ok(())
    }
}

/// What happened to one resource of a deployment.
struct OperationOutcome {
    target: ResourceId,
    resource_type: String,
    status: StatusCode,
    error: Option<Value>,
    millis: i64,
}

/// Runs a deployment and stores its record; returns the record.
async fn deploy(
    context: &Context,
    scope: &ResourceId,
    name: &str,
    request: &DeploymentRequest,
    depth: usize,
) -> Result<Resource, ApiError> {
    let started = context.state.clock.now();
    let template = Template::parse(&request.template).map_err(template_error)?;
    let deployment_context =
        deployment_context(context, scope, name, request.location.as_deref()).await?;
    let prepared =
        template.prepare(&request.parameters, &deployment_context).map_err(template_error)?;
    let mut known = Known::default();
    let mut operations = Vec::new();
    let mut failure: Option<Value> = None;
    let mut output_resources = Vec::new();
    for (index, instance) in prepared.resources().iter().enumerate() {
        let begun = context.state.clock.now();
        known.load(context, instance.references()).await?;
        let outcome = async {
            let request = prepared.evaluate(index, &known).map_err(template_error)?;
            apply_resource(context, &request.id, &request.resource_type, &request.body, depth).await
        }
        .await;
        let millis = context.state.clock.now().millis() - begun.millis();
        match outcome {
            Ok((status, body)) => {
                if let Some(body) = body {
                    known.by_key.insert(instance.id().key().to_owned(), body);
                }
                output_resources.push(json!({"id": instance.id().as_str()}));
                operations.push(OperationOutcome {
                    target: instance.id().clone(),
                    resource_type: instance.resource_type().to_owned(),
                    status,
                    error: None,
                    millis,
                });
            }
            Err(error) => {
                let detail = json!({"code": error.code, "message": error.message});
                operations.push(OperationOutcome {
                    target: instance.id().clone(),
                    resource_type: instance.resource_type().to_owned(),
                    status: error.status,
                    error: Some(detail.clone()),
                    millis,
                });
                failure = Some(json!({
                    "code": "DeploymentFailed",
                    "message": "At least one resource deployment operation failed. Please list deployment operations for details. Please see https://aka.ms/arm-deployment-operations for usage details.",
                    "details": [detail],
                }));
                break;
            }
        }
    }
    let outputs = if failure.is_none() {
        known.load(context, prepared.output_references()).await?;
        match prepared.outputs(&known) {
            Ok(outputs) => outputs,
            Err(error) => {
                failure = Some(json!({"code": error.code().as_str(), "message": error.message()}));
                json!({})
            }
        }
    } else {
        json!({})
    };
    save(
        context,
        scope,
        name,
        &template,
        &prepared,
        request,
        started,
        outputs,
        output_resources,
        operations,
        failure,
    )
    .await
}

/// Writes one resource of a deployment through the path a direct request takes. Answers its
/// status and, for resources, its ARM representation (for later `reference()` calls).
async fn apply_resource(
    context: &Context,
    id: &ResourceId,
    resource_type: &str,
    body: &Value,
    depth: usize,
) -> Result<(StatusCode, Option<Value>), ApiError> {
    if resource_type.eq_ignore_ascii_case(types::DEPLOYMENT) {
        return nested(context, id, body, depth).await;
    }
    // An assignment written with the old `properties.scope` form (az vm create --scope) lands
    // at that scope.
    let mut id = id.clone();
    if resource_type.eq_ignore_ascii_case("Microsoft.Authorization/roleAssignments")
        && let Some(scope) = body["properties"]["scope"].as_str()
    {
        let name = id.name().unwrap_or_default().to_owned();
        id = ResourceId::parse(&format!(
            "{}/providers/Microsoft.Authorization/roleAssignments/{name}",
            scope.trim_end_matches('/')
        ))
        .map_err(|error| ApiError::bad_request("InvalidRoleAssignmentScope", error.to_string()))?;
    }
    let id = &id;
    let bytes = Bytes::from(serde_json::to_vec(body).map_err(ApiError::internal)?);
    let sub = Context {
        state: context.state.clone(),
        grants: context.grants.clone(),
        method: Method::PUT,
        path: id.as_str().to_owned(),
        query: context.query.clone(),
        ids: context.ids.clone(),
        client_ip: context.client_ip.clone(),
        body: bytes,
    };
    let response = match route::classify(id.as_str())
        .map_err(|error| ApiError::bad_request("InvalidResourceId", error))?
    {
        ArmPath::Group(id) | ArmPath::Resource(id) => arm_resources::operate(&sub, &id).await?,
        ArmPath::RoleAssignment(scope, name) => rbac::assignment(&sub, &scope, &name).await?,
        ArmPath::RoleDefinition(scope, name) => rbac::definition(&sub, &scope, &name).await?,
        _ => {
            return Err(ApiError::bad_request(
                "InvalidResourceType",
                format!("The resource type '{resource_type}' cannot be deployed by Ambient."),
            ));
        }
    };
    let status = response.status();
    let bytes =
        axum::body::to_bytes(response.into_body(), domain::limits::REQUEST_BODY_BYTES_MAX * 4)
            .await
            .map_err(ApiError::internal)?;
    let value: Option<Value> = serde_json::from_slice(&bytes).ok();
    Ok((status, value))
}

/// A nested deployment (`Microsoft.Resources/deployments` inside a template): deployed in its
/// own scope (`resourceGroup`, else the parent's) with its inline template.
async fn nested(
    context: &Context,
    id: &ResourceId,
    body: &Value,
    depth: usize,
) -> Result<(StatusCode, Option<Value>), ApiError> {
    if depth + 1 > NESTING_DEPTH_MAX {
        return Err(ApiError::bad_request(
            "DeploymentNestingTooDeep",
            format!("Deployments nest at most {NESTING_DEPTH_MAX} levels deep."),
        ));
    }
    let name = id.name().unwrap_or_default().to_owned();
    let subscription = body
        .get("subscriptionId")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| id.subscription_id().map(str::to_owned))
        .unwrap_or_default();
    let scope = match body.get("resourceGroup").and_then(Value::as_str).or(id.resource_group()) {
        Some(group) => ResourceId::resource_group_id(&subscription, group),
        None => ResourceId::parse(&format!("/subscriptions/{subscription}")),
    }
    .map_err(|error| ApiError::bad_request("InvalidResourceId", error.to_string()))?;
    let bytes = Bytes::from(serde_json::to_vec(body).map_err(ApiError::internal)?);
    let request = DeploymentRequest::parse(&bytes, &scope)?;
    let record = Box::pin(deploy(context, &scope, &name, &request, depth + 1)).await?;
    let rendered = render(&record);
    if record.properties.get("provisioningState").and_then(Value::as_str) == Some("Failed") {
        let error = record.properties.get("error").cloned().unwrap_or_default();
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "DeploymentFailed",
            error["details"][0]["message"]
                .as_str()
                .unwrap_or("The nested deployment failed.")
                .to_owned(),
        ));
    }
    Ok((StatusCode::CREATED, Some(rendered)))
}

/// Stores the deployment record and its operations.
#[allow(clippy::too_many_arguments)] // One record, built from the run's parts.
async fn save(
    context: &Context,
    scope: &ResourceId,
    name: &str,
    template: &Template,
    prepared: &Prepared,
    request: &DeploymentRequest,
    started: domain::UnixTime,
    outputs: Value,
    output_resources: Vec<Value>,
    operations: Vec<OperationOutcome>,
    failure: Option<Value>,
) -> Result<Resource, ApiError> {
    let state = &context.state;
    let id = deployment_id(scope, name)?;
    let now = state.clock.now();
    let existing = load::resource(state.store.as_ref(), &id).await.map_err(from_resources)?;
    let mut properties = Map::new();
    properties.insert("templateHash".to_owned(), json!(template.hash()));
    properties.insert("parameters".to_owned(), prepared.parameters());
    properties.insert("mode".to_owned(), json!(request.mode));
    properties.insert(
        "provisioningStateFinal".to_owned(),
        json!(if failure.is_some() { "Failed" } else { "Succeeded" }),
    );
    properties.insert("timestamp".to_owned(), json!(rfc3339(now)));
    properties.insert(
        "duration".to_owned(),
        json!(format!("PT{:.3}S", (now.millis() - started.millis()) as f64 / 1000.0)),
    );
    properties.insert("correlationId".to_owned(), json!(context.ids.correlation_id));
    properties.insert("outputs".to_owned(), outputs);
    properties.insert("outputResources".to_owned(), Value::Array(output_resources));
    properties.insert("dependencies".to_owned(), json!([]));
    properties.insert("providers".to_owned(), json!([]));
    if let Some(error) = &failure {
        properties.insert("error".to_owned(), error.clone());
    }
    let record = Resource {
        id: id.clone(),
        subscription_id: scope.subscription_id().unwrap_or_default().to_owned(),
        resource_type: types::lookup(types::DEPLOYMENT).expect("deployments are a known type"),
        name: name.to_owned(),
        location: request.location.clone().unwrap_or_default(),
        tags: Map::new(),
        extras: Map::new(),
        properties,
        identity: None,
        host: None,
        version: existing.as_ref().map_or(1, |existing| existing.version + 1),
        created_at: existing.as_ref().map_or(now.millis(), |existing| existing.created_at),
        updated_at: now.millis(),
    };
    let mut writes = Vec::new();
    // A new run replaces the previous run's operations.
    let filter =
        ResourceFilter { key_prefix: Some(format!("{}/", id.key())), ..ResourceFilter::default() };
    for old in load::all(state.store.as_ref(), &filter).await.map_err(from_resources)? {
        writes.push(Write::DeleteResource { key: old.key().to_owned() });
    }
    writes.push(Write::PutResource { record: record.to_record(), expect: Expect::Any });
    for operation in &operations {
        let operation_id =
            Guid::new_random().to_string().replace('-', "").to_ascii_uppercase()[..16].to_owned();
        let operation_resource = ResourceId::parse(&format!("{id}/operations/{operation_id}"))
            .map_err(|error| ApiError::internal(error.to_string()))?;
        let mut op_properties = Map::new();
        op_properties.insert("provisioningOperation".to_owned(), json!("Create"));
        op_properties.insert(
            "provisioningStateFinal".to_owned(),
            json!(if operation.error.is_some() { "Failed" } else { "Succeeded" }),
        );
        op_properties.insert("timestamp".to_owned(), json!(rfc3339(now)));
        op_properties.insert(
            "duration".to_owned(),
            json!(format!("PT{:.3}S", operation.millis as f64 / 1000.0)),
        );
        op_properties.insert("statusCode".to_owned(), json!(status_name(operation.status)));
        if let Some(error) = &operation.error {
            op_properties.insert("statusMessage".to_owned(), json!({"error": error}));
        }
        op_properties.insert(
            "targetResource".to_owned(),
            json!({
                "id": operation.target.as_str(),
                "resourceType": operation.resource_type,
                "resourceName": operation.target.name().unwrap_or_default(),
            }),
        );
        let op = Resource {
            id: operation_resource,
            subscription_id: record.subscription_id.clone(),
            resource_type: types::lookup(types::DEPLOYMENT_OPERATION)
                .expect("deployment operations are a known type"),
            name: operation_id,
            location: String::new(),
            tags: Map::new(),
            extras: Map::new(),
            properties: op_properties,
            identity: None,
            host: None,
            version: 1,
            created_at: now.millis(),
            updated_at: now.millis(),
        };
        writes.push(Write::PutResource { record: op.to_record(), expect: Expect::Any });
    }
    state.store.apply(writes).await?;
    debug_assert!(record.kind() == Kind::Deployment);
    Ok(record)
}

fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "NoContent",
        400 => "BadRequest",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        _ => "InternalServerError",
    }
}

/// A deployment as ARM returns it. The stored `provisioningStateFinal` becomes
/// `provisioningState` (the generic rendering of resources adds `Succeeded` to everything).
fn render(record: &Resource) -> Value {
    let mut properties = record.properties.clone();
    let state =
        properties.shift_remove("provisioningStateFinal").unwrap_or_else(|| json!("Succeeded"));
    let mut ordered = Map::new();
    ordered.insert("provisioningState".to_owned(), state);
    ordered.extend(properties);
    let mut out = json!({
        "id": record.id.as_str(),
        "name": record.name,
        "type": types::DEPLOYMENT,
        "properties": Value::Object(ordered),
    });
    if !record.location.is_empty() {
        out["location"] = json!(record.location);
    }
    out
}

fn render_operation(record: &Resource) -> Value {
    let mut properties = record.properties.clone();
    let state =
        properties.shift_remove("provisioningStateFinal").unwrap_or_else(|| json!("Succeeded"));
    let mut ordered = Map::new();
    ordered.insert("provisioningState".to_owned(), state);
    ordered.extend(properties);
    json!({"id": record.id.as_str(), "operationId": record.name, "properties": Value::Object(ordered)})
}

async fn list(context: &Context, scope: &ResourceId) -> Result<Response, ApiError> {
    context.grants.check("Microsoft.Resources/deployments/read", scope)?;
    let filter = ResourceFilter {
        subscription_id: scope.subscription_id().map(str::to_ascii_lowercase),
        resource_group_key: scope.resource_group().map(str::to_ascii_lowercase),
        type_key: Some(types::DEPLOYMENT.to_ascii_lowercase()),
        ..ResourceFilter::default()
    };
    let records = load::all(context.state.store.as_ref(), &filter).await.map_err(from_resources)?;
    let value: Vec<Value> = records
        .iter()
        .filter(|record| scope.is_resource_group() || record.id.resource_group().is_none())
        .map(render)
        .collect();
    Ok(Json(json!({"value": value})).into_response())
}

/// `POST .../validate`: the template parses, its parameters check out and its resources order;
/// 400 with ARM's error otherwise.
async fn validate(
    context: &Context,
    scope: &ResourceId,
    name: &str,
    request: &DeploymentRequest,
) -> Result<Response, ApiError> {
    let template = Template::parse(&request.template).map_err(template_error)?;
    let deployment_context =
        deployment_context(context, scope, name, request.location.as_deref()).await?;
    let prepared =
        template.prepare(&request.parameters, &deployment_context).map_err(template_error)?;
    let validated: Vec<Value> =
        prepared.resources().iter().map(|instance| json!({"id": instance.id().as_str()})).collect();
    Ok(Json(json!({
        "id": deployment_id(scope, name)?.as_str(),
        "name": name,
        "type": types::DEPLOYMENT,
        "properties": {
            "provisioningState": "Succeeded",
            "templateHash": template.hash(),
            "parameters": prepared.parameters(),
            "mode": request.mode,
            "timestamp": rfc3339(context.state.clock.now()),
            "correlationId": context.ids.correlation_id,
            "validatedResources": validated,
        },
    }))
    .into_response())
}

/// `POST .../whatIf`: what the deployment would create or change, without writing anything.
async fn what_if(
    context: &Context,
    scope: &ResourceId,
    name: &str,
    request: &DeploymentRequest,
) -> Result<Response, ApiError> {
    let template = Template::parse(&request.template).map_err(template_error)?;
    let deployment_context =
        deployment_context(context, scope, name, request.location.as_deref()).await?;
    let prepared =
        template.prepare(&request.parameters, &deployment_context).map_err(template_error)?;
    let mut known = Known::default();
    let mut changes = Vec::new();
    for (index, instance) in prepared.resources().iter().enumerate() {
        known.load(context, instance.references()).await?;
        known.load(context, std::slice::from_ref(instance.id())).await?;
        let before = known.resource(instance.id());
        let preview = prepared.preview(index, &known).map_err(template_error)?;
        let mut after = preview.body.clone();
        if let Some(map) = after.as_object_mut() {
            map.insert("id".to_owned(), json!(preview.id.as_str()));
            map.insert("name".to_owned(), json!(preview.id.name().unwrap_or_default()));
            map.insert("type".to_owned(), json!(preview.resource_type));
            map.insert("apiVersion".to_owned(), json!(preview.api_version));
        }
        let change = match &before {
            None => {
                json!({"resourceId": preview.id.as_str(), "changeType": "Create", "after": after})
            }
            Some(before) => {
                let delta = delta(before, &preview.body);
                let change_type = if delta.is_empty() { "NoChange" } else { "Modify" };
                json!({"resourceId": preview.id.as_str(), "changeType": change_type, "before": before, "after": after, "delta": delta})
            }
        };
        changes.push(change);
    }
    Ok(Json(json!({"status": "Succeeded", "properties": {"changes": changes}})).into_response())
}

/// What-if's delta: the top-level fields of the request whose value is not already what the
/// resource has (fields the server fills in, such as a principal id, do not count).
fn delta(before: &Value, requested: &Value) -> Vec<Value> {
    let Some(requested) = requested.as_object() else { return Vec::new() };
    requested
        .iter()
        .filter(|(field, value)| !within(value, &before[field.as_str()]))
        .map(|(field, value)| {
            let previous = &before[field.as_str()];
            let kind = if previous.is_null() { "Create" } else { "Modify" };
            json!({"path": field, "propertyChangeType": kind, "before": previous, "after": value})
        })
        .collect()
}

/// Whether `wanted` is already in `actual`: equal scalars, and objects whose every field is.
fn within(wanted: &Value, actual: &Value) -> bool {
    match (wanted, actual) {
        (Value::Object(wanted), Value::Object(actual)) => wanted.iter().all(|(key, value)| {
            value.is_null() || actual.get(key).is_some_and(|other| within(value, other))
        }),
        (Value::Array(wanted), Value::Array(actual)) => {
            wanted.len() == actual.len() && wanted.iter().zip(actual).all(|(a, b)| within(a, b))
        }
        (Value::String(wanted), Value::String(actual)) => wanted.eq_ignore_ascii_case(actual),
        (wanted, actual) => wanted == actual,
    }
}

fn template_error(error: resources::template::TemplateError) -> ApiError {
    let status = if error.code() == resources::template::ErrorCode::ResourceNotFound {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::BAD_REQUEST
    };
    let code = match error.code().as_str() {
        "InvalidTemplate" => "InvalidTemplate",
        "ResourceNotFound" => "ResourceNotFound",
        "InvalidTemplateDeployment" => "InvalidTemplateDeployment",
        _ => "DeploymentOutputEvaluationFailed",
    };
    let message = match error.path() {
        Some(path) => {
            format!("Deployment template validation failed: '{}' (at '{path}').", error.message())
        }
        None => format!("Deployment template validation failed: '{}'.", error.message()),
    };
    ApiError::new(status, code, message)
}

/// Parses JSON as ARM's reader does: also with `//` and `/* */` comments, unquoted object keys
/// and trailing commas (what `az deployment ... --template-file` sends: the template file's text
/// spliced in as is, under an unquoted `template` key).
pub fn lenient_json(bytes: &[u8]) -> Result<Value, String> {
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let text = std::str::from_utf8(bytes).map_err(|error| error.to_string())?;
    serde_json::from_str(&normalize(text)).map_err(|error| error.to_string())
}

/// Strict JSON from lenient JSON: comments removed, bare keys quoted, trailing commas dropped.
fn normalize(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 16);
    let mut at = 0;
    // The last significant character written, to know where a key may start.
    let mut last = ' ';
    while at < chars.len() {
        let c = chars[at];
        if c == '"' {
            let start = at;
            at += 1;
            while at < chars.len() && chars[at] != '"' {
                if chars[at] == '\\' {
                    at += 1;
                }
                at += 1;
            }
            at = (at + 1).min(chars.len());
            out.extend(&chars[start..at]);
            last = '"';
            continue;
        }
        if c == '/' && chars.get(at + 1) == Some(&'/') {
            while at < chars.len() && chars[at] != '\n' {
                at += 1;
            }
            continue;
        }
        if c == '/' && chars.get(at + 1) == Some(&'*') {
            at += 2;
            while at + 1 < chars.len() && !(chars[at] == '*' && chars[at + 1] == '/') {
                at += 1;
            }
            at = (at + 2).min(chars.len());
            continue;
        }
        if c == ',' {
            // Drop a comma followed (after whitespace and comments) by a closing bracket.
            let mut look = at + 1;
            while look < chars.len() && chars[look].is_whitespace() {
                look += 1;
            }
            if matches!(chars.get(look), Some('}') | Some(']')) {
                at += 1;
                continue;
            }
        }
        if (c.is_ascii_alphabetic() || c == '_' || c == '$') && matches!(last, '{' | ',') {
            let start = at;
            while at < chars.len()
                && (chars[at].is_ascii_alphanumeric() || chars[at] == '_' || chars[at] == '$')
            {
                at += 1;
            }
            let mut look = at;
            while look < chars.len() && chars[look].is_whitespace() {
                look += 1;
            }
            let word: String = chars[start..at].iter().collect();
            if chars.get(look) == Some(&':') {
                out.push('"');
                out.push_str(&word);
                out.push('"');
            } else {
                out.push_str(&word);
            }
            last = 'w';
            continue;
        }
        if !c.is_whitespace() {
            last = c;
        }
        out.push(c);
        at += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_json_reads_what_az_sends() {
        let body = br#"{"properties": {template: {
            // a comment
            "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", /* another */
            "resources": [],
        }, "parameters": {"a": {"value": "x//not a comment"}}, "mode": "Incremental"}}"#;
        let value = lenient_json(body).unwrap();
        assert_eq!(value["properties"]["template"]["resources"], json!([]));
        assert_eq!(value["properties"]["parameters"]["a"]["value"], "x//not a comment");
        assert_eq!(value["properties"]["mode"], "Incremental");
        assert!(lenient_json(b"{nope").is_err());
    }
}
