//! Azure Resource Manager's error envelope and list shape.

use serde::{Deserialize, Serialize};

/// `{"error": {...}}`, the body of every ARM (and Key Vault) error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorDetail,
}

/// One ARM error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A stable machine-readable code such as `ResourceNotFound` or `AuthorizationFailed`.
    pub code: String,
    /// A sentence for people.
    pub message: String,
    /// Key Vault's nested code (`ForbiddenByRbac`, `ObjectIsDeletedButRecoverable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub innererror: Option<InnerError>,
}

/// Key Vault's `innererror` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InnerError {
    /// The more specific code.
    pub code: String,
}

/// A page of a list operation: `{"value": [...], "nextLink": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items on this page.
    pub value: Vec<T>,
    /// The absolute URL of the next page, absent on the last page.
    #[serde(rename = "nextLink", default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

impl ErrorResponse {
    /// An error with a code and a message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorResponse {
            error: ErrorDetail { code: code.into(), message: message.into(), innererror: None },
        }
    }
}
