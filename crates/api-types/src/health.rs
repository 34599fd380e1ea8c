//! `GET /healthz` and `GET /readyz` bodies.

use serde::{Deserialize, Serialize};

/// The body of a health answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStatus {
    /// `ok` when healthy, `unavailable` otherwise.
    pub status: String,
    /// What was checked and what it found, for `/readyz` (for example `database: sqlite`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For `/readyz`: whether this node runs the deployment's background jobs (key rotation,
    /// purges, log retention) now. Exactly one node of a deployment does at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<bool>,
}
