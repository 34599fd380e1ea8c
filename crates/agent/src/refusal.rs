//! Every way the metadata endpoint refuses a request, with its status and its body in the two
//! wire shapes: IMDS (`{"error","error_description"}`, protocols/01-imds.md §4) and App Service
//! (`{"statusCode","message"}`, protocols/02-hosted-endpoints.md §2); the instance metadata
//! paths answer a missing or malformed `api-version` as IMDS does there, with the text in
//! `error` and the newest versions beside it.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Which protocol's error body to answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Imds,
    AppService,
    /// `/metadata/instance`: `{"error": TEXT, "newest-versions": [...]}` for a missing or
    /// malformed `api-version`, IMDS's shape otherwise.
    Instance,
}

/// The versions IMDS names when a request has none (Azure's documented answer).
const NEWEST_VERSIONS: [&str; 3] = ["2020-10-01", "2020-09-01", "2020-07-15"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The request came through a proxy (`X-Forwarded-For`, `Forwarded`, `X-Real-IP`, `Via`,
    /// or another proxy header).
    ForwardedFor,
    /// The `api-version` is not one this protocol has.
    InvalidApiVersion,
    /// The instance metadata paths: no `api-version`.
    MissingApiVersion,
    /// Anything but `GET`.
    MethodNotAllowed,
    /// `Metadata: true` missing (also the answer to the bare availability probe).
    MissingMetadataHeader,
    /// The shared IMDS listener cannot tell which of several resources is meant.
    SeveralResources,
    /// The listener's resource is not (or no longer) placed on the host.
    NoResource,
    /// The query string could not be parsed.
    BadQuery,
    /// A required query parameter is missing or empty.
    MissingParameter(&'static str),
    /// More than one identity selector.
    ConflictingSelectors,
    /// The resource holds no such identity (or the server said so).
    IdentityNotFound,
    /// App Service: the identity header is missing.
    MissingIdentityHeader,
    /// App Service: the identity header is not this resource's.
    WrongIdentityHeader,
    /// The server no longer accepts this host.
    HostRevoked,
    /// The server refused the token (403).
    Forbidden,
    /// The server failed or could not be reached.
    TokenUnavailable,
    /// Over the resource's request budget.
    RateLimited { retry_after_secs: u64 },
    /// No such path.
    NotFound,
    /// Azure Arc: the `Authorization` key is not one the agent handed out (or was used).
    WrongArcKey,
    /// Azure Arc: the agent cannot write key files (not root).
    ArcUnavailable,
    /// The calling process does not match the resource's workload selectors (the reason goes
    /// to the log and the sign-in log, not to the caller).
    WorkloadNotAttested,
}

impl Refusal {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Refusal::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::WrongIdentityHeader | Refusal::WrongArcKey => StatusCode::UNAUTHORIZED,
            Refusal::ArcUnavailable => StatusCode::INTERNAL_SERVER_ERROR,
            Refusal::HostRevoked | Refusal::Forbidden | Refusal::WorkloadNotAttested => {
                StatusCode::FORBIDDEN
            }
            Refusal::TokenUnavailable => StatusCode::INTERNAL_SERVER_ERROR,
            Refusal::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refusal::NotFound => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The IMDS `error` code.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Refusal::ForwardedFor | Refusal::InvalidApiVersion | Refusal::MissingApiVersion => {
                "bad_request"
            }
            Refusal::MethodNotAllowed => "method_not_allowed",
            Refusal::MissingMetadataHeader => "bad_request_102",
            Refusal::WrongIdentityHeader
            | Refusal::MissingIdentityHeader
            | Refusal::WrongArcKey => "unauthorized_client",
            Refusal::ArcUnavailable => "unknown",
            Refusal::HostRevoked | Refusal::Forbidden | Refusal::WorkloadNotAttested => "forbidden",
            Refusal::TokenUnavailable => "unknown",
            Refusal::RateLimited { .. } => "too_many_requests",
            Refusal::NotFound => "not_found",
            _ => "invalid_request",
        }
    }

    /// The sentence for people; never holds secrets.
    pub(crate) fn description(&self) -> String {
        match self {
            Refusal::ForwardedFor => {
                "requests through a proxy (X-Forwarded-For, Forwarded, X-Real-IP, Via) are not accepted"
                    .to_owned()
            }
            Refusal::InvalidApiVersion => {
                "Bad request. api-version is invalid or was not specified in the request.".to_owned()
            }
            Refusal::MissingApiVersion => "Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds".to_owned(),
            Refusal::MethodNotAllowed => "only GET is allowed".to_owned(),
            Refusal::MissingMetadataHeader => "Required metadata header not specified".to_owned(),
            Refusal::SeveralResources => {
                "this host runs several resources; use the resource's own endpoint".to_owned()
            }
            Refusal::NoResource | Refusal::IdentityNotFound => "Identity not found".to_owned(),
            Refusal::BadQuery => "the query string is malformed".to_owned(),
            Refusal::MissingParameter(name) => {
                format!("Required query variable '{name}' is missing")
            }
            Refusal::ConflictingSelectors => "only one identity selector may be given".to_owned(),
            Refusal::MissingIdentityHeader => "the identity header is missing".to_owned(),
            Refusal::WrongIdentityHeader => {
                "the identity header is not valid for this resource".to_owned()
            }
            Refusal::HostRevoked => "this host is no longer accepted by the server".to_owned(),
            Refusal::Forbidden => "the server refused a token for this identity".to_owned(),
            Refusal::TokenUnavailable => {
                "Failed to retrieve token from the Active directory".to_owned()
            }
            Refusal::RateLimited { .. } => "too many requests; retry later".to_owned(),
            Refusal::NotFound => "no such path".to_owned(),
            Refusal::WrongArcKey => "the Authorization key is not valid (each key works once)".to_owned(),
            Refusal::WorkloadNotAttested => "the calling process does not match this resource's workload selectors".to_owned(),
            Refusal::ArcUnavailable => "Azure Arc needs the agent to run as root: it cannot write key files in /var/opt/azcmagent/tokens".to_owned(),
        }
    }

    /// A short stable name for the log line.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Refusal::ForwardedFor => "forwarded_for",
            Refusal::InvalidApiVersion => "invalid_api_version",
            Refusal::MissingApiVersion => "missing_api_version",
            Refusal::MethodNotAllowed => "method_not_allowed",
            Refusal::MissingMetadataHeader => "missing_metadata_header",
            Refusal::SeveralResources => "several_resources",
            Refusal::NoResource => "no_resource",
            Refusal::BadQuery => "bad_query",
            Refusal::MissingParameter(_) => "missing_parameter",
            Refusal::ConflictingSelectors => "conflicting_selectors",
            Refusal::IdentityNotFound => "identity_not_found",
            Refusal::MissingIdentityHeader => "missing_identity_header",
            Refusal::WrongIdentityHeader => "wrong_identity_header",
            Refusal::HostRevoked => "host_revoked",
            Refusal::Forbidden => "forbidden",
            Refusal::TokenUnavailable => "token_unavailable",
            Refusal::RateLimited { .. } => "rate_limited",
            Refusal::NotFound => "not_found",
            Refusal::WrongArcKey => "wrong_arc_key",
            Refusal::ArcUnavailable => "arc_unavailable",
            Refusal::WorkloadNotAttested => "workload_not_attested",
        }
    }

    pub(crate) fn render(&self, shape: Shape) -> Response {
        let status = self.status();
        let body = match shape {
            Shape::Instance
                if matches!(self, Refusal::MissingApiVersion | Refusal::InvalidApiVersion) =>
            {
                json!({ "error": self.description(), "newest-versions": NEWEST_VERSIONS })
            }
            Shape::Imds | Shape::Instance => {
                json!({ "error": self.code(), "error_description": self.description() })
            }
            Shape::AppService => {
                json!({ "statusCode": status.as_u16(), "message": self.description() })
            }
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            Refusal::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Refusal::MethodNotAllowed => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
            }
            _ => {}
        }
        response
    }
}
