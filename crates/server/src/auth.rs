//! Who is calling, and may they: bearer-token authentication and RBAC authorization shared by
//! every API that takes Ambient's tokens (control plane, directory, Key Vault).
//!
//! Authentication validates with `issuer`'s explicit options (RS256 only, this tenant's v1 and
//! v2 issuers, the API's audience set compared exactly, the standard leeway). Each surface has
//! its own audiences: the control plane [`management_audiences`], the directory
//! [`graph_audiences`], Key Vault its vault audiences. Authorization loads only the
//! caller's own role assignments, so its cost does not grow with unrelated assignments.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};
use domain::ResourceId;
use rbac::{ActionKind, Decision, Grant, RoleDefinition};

use crate::error::ApiError;
use crate::state::AppState;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub object_id: String,
    pub app_id: String,
}

/// Audiences the control plane and the agents' admin API accept (DESIGN §2, issue 17): the
/// management audiences `/metadata/endpoints` advertises, and `management.azure.com` and
/// `management.{suffix}`, each with and without its trailing slash. Graph's are not among them.
pub fn management_audiences(state: &AppState) -> &[String] {
    &audiences(state).management
}

/// Audiences the Graph-shaped directory (`/v1.0/...`) accepts (issue 17): Microsoft Graph's,
/// `graph.{suffix}`, and this origin (what `/metadata/endpoints` advertises as
/// `microsoftGraphResourceId`), each with and without its trailing slash. Management audiences
/// are not among them.
pub fn graph_audiences(state: &AppState) -> &[String] {
    &audiences(state).graph
}

/// Audiences Key Vault accepts: `https://vault.{suffix}[:port]` (what its challenge names) and
/// `https://vault.azure.net`, each with and without its trailing slash.
pub fn vault_audiences(state: &AppState) -> &[String] {
    &audiences(state).vault
}

/// Each surface's audiences, computed once (they depend only on the deployment's names).
#[derive(Debug)]
pub struct Audiences {
    management: Vec<String>,
    graph: Vec<String>,
    vault: Vec<String>,
}

fn audiences(state: &AppState) -> &Audiences {
    state.audiences.get_or_init(|| {
        let mut management = crate::arm::metadata::advertised_management_audiences(state);
        management.push("https://management.azure.com/".to_owned());
        management.push(format!("https://management.{}/", state.dns_suffix));
        Audiences {
            management: both_spellings(management),
            graph: both_spellings(vec![
                "https://graph.microsoft.com".to_owned(),
                format!("https://graph.{}", state.dns_suffix),
                crate::arm::metadata::graph_resource_id(state),
            ]),
            vault: both_spellings(vec![
                crate::keyvault::vault_resource(state),
                "https://vault.azure.net".to_owned(),
            ]),
        }
    })
}

/// Each audience with and without one trailing slash, without duplicates: tokens are then
/// compared exactly (`https://x//` is neither `https://x/` nor `https://x`).
pub fn both_spellings(audiences: Vec<String>) -> Vec<String> {
    let mut all: Vec<String> = Vec::with_capacity(audiences.len() * 2);
    for audience in audiences {
        let bare = audience.strip_suffix('/').unwrap_or(&audience).to_owned();
        for spelling in [format!("{bare}/"), bare] {
            if !all.contains(&spelling) {
                all.push(spelling);
            }
        }
    }
    all
}

/// Validates the bearer token in `headers` for one of `audiences`.
pub fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    audiences: &[String],
) -> Result<Caller, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok())
    else {
        return Err(unauthenticated(
            state,
            "AuthenticationFailed",
            "authentication failed: the Authorization header is missing",
        ));
    };
    let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))
    else {
        return Err(unauthenticated(
            state,
            "AuthenticationFailed",
            "authentication failed: the Authorization header is not a Bearer token",
        ));
    };
    let issuers = [state.issuer.issuer_v1(), state.issuer.issuer_v2()];
    let options = issuer::ValidationOptions {
        audiences,
        issuers: &issuers,
        leeway_secs: domain::limits::CLOCK_LEEWAY_SECS,
        algorithms: &[crypto::jws::Algorithm::RS256],
    };
    let token = token.trim();
    // A token seen before skips the signature check (done once), never the claim checks.
    let digest = crypto::hash::sha256(token.as_bytes());
    if let Some(claims) = state.caches.tokens.get(&digest, state.clock.now()) {
        let now = state.clock.now().secs();
        let leeway = domain::limits::CLOCK_LEEWAY_SECS;
        let audience_ok = audiences.iter().any(|audience| *audience == claims.aud);
        let issuer_ok = issuers.iter().any(|issuer| issuer == &claims.iss);
        if audience_ok && issuer_ok && claims.exp + leeway > now && claims.nbf - leeway <= now {
            return Ok(Caller { object_id: claims.oid.clone(), app_id: claims.app_id.clone() });
        }
    }
    match state.issuer.validate(token, &options) {
        Ok(claims) => {
            let caller = Caller { object_id: claims.oid.clone(), app_id: claims.app_id.clone() };
            state.caches.tokens.insert(digest, Arc::new(claims), state.clock.now());
            Ok(caller)
        }
        Err(error) => {
            tracing::info!(reason = %error, code = error.code(), "token refused");
            Err(unauthenticated(
                state,
                "InvalidAuthenticationToken",
                &format!("the access token is invalid: {error}"),
            ))
        }
    }
}

fn unauthenticated(state: &AppState, code: &'static str, message: &str) -> ApiError {
    let challenge = format!(
        "Bearer authorization_uri=\"{}/{}\", error=\"invalid_token\", error_description=\"{}\"",
        state.base_url,
        state.deployment.tenant_id,
        message.replace('"', "'")
    );
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
        .with_header(header::WWW_AUTHENTICATE, challenge)
}

/// Loads the caller's grants: their role assignments with the role definitions resolved.
pub async fn grants_of(
    state: &AppState,
    principal_id: &str,
) -> Result<Vec<(ResourceId, RoleDefinition)>, ApiError> {
    let assignments = state.store.list_role_assignments_for_principal(principal_id).await?;
    let mut grants = Vec::with_capacity(assignments.len());
    for assignment in assignments {
        let Ok(scope) = ResourceId::parse(&assignment.scope) else {
            tracing::warn!(assignment = %assignment.id, "role assignment with an unparsable scope ignored");
            continue;
        };
        if let Some(role) = role_definition(state, &assignment.role_definition_id).await? {
            grants.push((scope, role));
        }
    }
    Ok(grants)
}

/// A built-in role or a custom role from the store.
pub async fn role_definition(
    state: &AppState,
    id: &str,
) -> Result<Option<RoleDefinition>, ApiError> {
    let Ok(guid) = id.parse::<domain::Guid>() else { return Ok(None) };
    if let Some(builtin) = rbac::builtin_role_by_id(&guid) {
        return Ok(Some(builtin.clone()));
    }
    match state.store.get_role_definition(&guid.to_string()).await? {
        Some(record) => Ok(resources::render::role_definition_from_record(&record)),
        None => Ok(None),
    }
}

/// A caller's grants, loaded once per request and checked many times (list filtering, linked
/// authorization of attached identities).
#[derive(Clone)]
pub struct CallerGrants {
    caller: Caller,
    loaded: Arc<Vec<(ResourceId, RoleDefinition)>>,
}

impl CallerGrants {
    pub async fn load(state: &AppState, caller: &Caller) -> Result<CallerGrants, ApiError> {
        if let Some(loaded) = state.caches.grants.get(&caller.object_id, state.clock.now()) {
            return Ok(CallerGrants { caller: caller.clone(), loaded });
        }
        let loaded = Arc::new(grants_of(state, &caller.object_id).await?);
        state.caches.grants.insert(caller.object_id.clone(), loaded.clone(), state.clock.now());
        Ok(CallerGrants { caller: caller.clone(), loaded })
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub fn allows(&self, action: &str, kind: ActionKind, target: &ResourceId) -> bool {
        let grants: Vec<Grant<'_>> =
            self.loaded.iter().map(|(scope, role)| Grant { scope, role }).collect();
        matches!(rbac::authorize(&grants, action, kind, target), Decision::Allowed { .. })
    }

    /// 403 `AuthorizationFailed` naming the caller, the action and the scope, unless allowed.
    pub fn check(&self, action: &str, target: &ResourceId) -> Result<(), ApiError> {
        if self.allows(action, ActionKind::Control, target) {
            return Ok(());
        }
        Err(denied("AuthorizationFailed", &self.caller, action, target))
    }

    /// The roles assigned to the caller at `scope` or above it.
    pub fn roles_at(&self, scope: &ResourceId) -> Vec<&RoleDefinition> {
        self.loaded
            .iter()
            .filter(|(grant_scope, _)| scope.is_within(grant_scope))
            .map(|(_, role)| role)
            .collect()
    }

    /// Whether any grant lies at or below `scope` (the caller can see something inside it).
    pub fn has_any_within(&self, scope: &ResourceId) -> bool {
        self.loaded
            .iter()
            .any(|(grant_scope, _)| grant_scope.is_within(scope) || scope.is_within(grant_scope))
    }
}

pub fn denied(code: &'static str, caller: &Caller, action: &str, target: &ResourceId) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        code,
        format!(
            "The client '{}' with object id '{}' does not have authorization to perform action '{}' over scope '{}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
            caller.app_id, caller.object_id, action, target
        ),
    )
}

/// Checks that `caller` may perform `action` on `target`; a denial is 403 `AuthorizationFailed`
/// naming the caller, the action and the scope.
pub async fn authorize(
    state: &AppState,
    caller: &Caller,
    action: &str,
    kind: ActionKind,
    target: &ResourceId,
) -> Result<(), ApiError> {
    let grants = CallerGrants::load(state, caller).await?;
    if grants.allows(action, kind, target) {
        Ok(())
    } else {
        Err(denied("AuthorizationFailed", caller, action, target))
    }
}
