//! The token service's (Entra ID's) error body.

use serde::{Deserialize, Serialize};

/// An OAuth 2.0 error as Entra ID returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthError {
    /// `invalid_client`, `invalid_request`, `unauthorized_client`, `invalid_scope`, ...
    pub error: String,
    /// `AADSTS{code}: {message}` followed by trace and correlation ids and a timestamp.
    pub error_description: String,
    /// The AADSTS numbers.
    pub error_codes: Vec<u32>,
    /// `YYYY-MM-DD hh:mm:ssZ`.
    pub timestamp: String,
    /// A GUID for this request.
    pub trace_id: String,
    /// The caller's `client-request-id`, or a new GUID.
    pub correlation_id: String,
    /// A link describing the error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}
