//! The agents' API (`/hosting/...` on the server): host administration, enrollment with a
//! one-time join token, certificate renewal, the assignment watch, status reports and
//! managed-identity token requests. Agents authenticate with a client certificate issued by
//! the server's CA (subject CN = host name) on every call but enrollment.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `PUT /hosting/hosts/{name}` answer (admin): a new one-time join token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostCreated {
    /// The host name.
    pub name: String,
    /// `pending`, `active` or `revoked`.
    pub state: String,
    /// The one-time join token (shown once).
    pub join_token: String,
    /// When the join token stops working (RFC 3339).
    pub join_token_expires_on: String,
}

/// A host as `GET /hosting/hosts[/{name}]` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostInfo {
    /// The host name.
    pub name: String,
    /// `pending`, `active` or `revoked`.
    pub state: String,
    /// When the current client certificate expires (RFC 3339), once enrolled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_expires_on: Option<String>,
    /// Ids of the resources placed on the host.
    #[serde(default)]
    pub resources: Vec<String>,
}

/// `POST /hosting/enroll` body (no client certificate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollRequest {
    /// The host name the join token was made for.
    pub host: String,
    /// The one-time join token.
    pub join_token: String,
    /// A PEM certificate signing request for the key the agent generated.
    pub csr: String,
}

/// `POST /hosting/renew` body (with the current client certificate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenewRequest {
    /// A PEM certificate signing request for a new key.
    pub csr: String,
}

/// The answer to enrollment and renewal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedHostCertificate {
    /// The client certificate, PEM.
    pub certificate: String,
    /// The server's CA, PEM (the agent trusts it for the server's TLS certificate).
    pub ca_certificate: String,
    /// When the certificate expires (Unix seconds); agents renew at half its lifetime.
    pub not_after: i64,
    /// Lifetime in seconds, for the renewal schedule.
    pub lifetime_secs: i64,
}

/// `GET /hosting/assignments?version=V&wait=SECONDS`: what runs on the calling host. The
/// server answers at once when the state differs from `version`, else when it changes or
/// `wait` (at most 30) seconds pass, with the same version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignments {
    /// An opaque version of this state; send it back to wait for the next change.
    pub version: String,
    /// The compute resources placed on the host, with their identities.
    pub resources: Vec<HostedResource>,
}

/// One compute resource placed on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostedResource {
    /// ARM id as created.
    pub resource_id: String,
    /// Lower-cased id: the key to use in maps.
    pub resource_key: String,
    /// The resource name.
    pub name: String,
    /// `Microsoft.Compute/virtualMachines`, `Microsoft.Web/sites`, ...
    pub resource_type: String,
    /// Subscription id.
    pub subscription_id: String,
    /// Resource group name.
    pub resource_group: String,
    /// Location.
    pub location: String,
    /// The VM id (`properties.vmId`), when the resource is a VM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_id: Option<String>,
    /// The secret the App Service endpoint requires in `X-IDENTITY-HEADER` for this resource.
    pub identity_header: String,
    /// The system-assigned identity, if enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<IdentityRef>,
    /// The attached user-assigned identities.
    #[serde(default)]
    pub user: Vec<IdentityRef>,
}

/// A managed identity as the agent needs to select it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityRef {
    /// Object id (`principalId`).
    pub principal_id: String,
    /// App id (`clientId`).
    pub client_id: String,
    /// For user-assigned identities, the identity's ARM id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
}

/// `POST /hosting/status`: where the agent serves each resource's endpoints, so `ambient run`
/// can find them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostStatus {
    /// By resource key: the base URL of that resource's metadata listener
    /// (`http://127.0.0.1:PORT`; IMDS at `/metadata/identity/oauth2/token`, App Service at
    /// `/msi/token`).
    pub endpoints: BTreeMap<String, String>,
    /// The shared IMDS listener, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imds: Option<String>,
}

/// `POST /hosting/token`: a managed-identity token for one resource on the calling host.
/// At most one selector is set; none means the system identity (or the only user identity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    /// The resource the workload runs as (its key or id).
    pub resource_id: String,
    /// The audience (`resource` parameter), as the workload sent it.
    pub audience: String,
    /// Select a user-assigned identity by client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Select by object (principal) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// Select a user-assigned identity by its ARM id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_resource_id: Option<String>,
    /// `imds` or `appService`, for the sign-in log.
    pub endpoint: String,
    /// The workload's address as the agent saw it, for the sign-in log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
}

/// A managed-identity token as the server hands it to the agent (numbers as numbers; the
/// agent renders each endpoint's own shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedToken {
    /// The JWT.
    pub access_token: String,
    /// Unix seconds.
    pub expires_on: i64,
    /// Seconds from issuance.
    pub expires_in: i64,
    /// Unix seconds.
    pub not_before: i64,
    /// The audience.
    pub resource: String,
    /// The identity's client id.
    pub client_id: String,
    /// The identity's object id.
    pub object_id: String,
    /// The identity's ARM id (`xms_mirid`).
    pub identity_resource_id: String,
}

/// A refusal from `/hosting/token`: `error` is `invalid_request` (identity not found, bad
/// selector), `forbidden` (not placed on this host, host revoked) or `server_error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRefusal {
    /// The code.
    pub error: String,
    /// A sentence for people.
    pub error_description: String,
}
