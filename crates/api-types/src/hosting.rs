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
    /// When the host's agent last called the server (RFC 3339, to the minute), once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_contact: Option<String>,
    /// Ids of the resources placed on the host.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The faults injected on every resource of the host that has none of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Faults>,
    /// The faults injected on single resources of the host, by resource id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_faults: BTreeMap<String, Faults>,
    /// Things an administrator should know, such as resources whose identities any local
    /// process may use (no workload selectors).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
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
    /// The tenant the resources' identities belong to (`/metadata/identity/info`'s `tenantId`).
    #[serde(default)]
    pub tenant_id: String,
    /// The compute resources placed on the host, with their identities.
    pub resources: Vec<HostedResource>,
    /// The faults injected on the host's shared listener and on resources without faults of
    /// their own (each resource's effective faults are in [`HostedResource::faults`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Faults>,
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
    /// The managed-identity flavour the resource's platform speaks
    /// (`properties.ambient.identityFlavour`); `None` is IMDS with App Service beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_flavour: Option<IdentityFlavour>,
    /// Which local processes may use the resource's identities
    /// (`properties.ambient.workloadSelectors`); `None`: any local process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_selectors: Option<WorkloadSelectors>,
    /// The faults injected on the resource's endpoints: its own, else the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Faults>,
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

/// Which of a resource's managed identities a token request means. The agent decides it from
/// the assignments (so a request for an identity the resource does not hold fails at once) and
/// the server decides it again, with the same function, when it issues the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentitySelector {
    /// None given: the system identity, or the only user identity when there is no system one.
    Default,
    /// `client_id` (`clientid` in the 2017 App Service protocol).
    ClientId(String),
    /// `object_id` (`principal_id` in App Service).
    ObjectId(String),
    /// `msi_res_id` / `mi_res_id`: a user-assigned identity's ARM id.
    ResourceId(String),
}

impl HostedResource {
    /// The identity `selector` names, if the resource holds it. Values are compared
    /// case-insensitively: they are GUIDs and ARM ids.
    pub fn select(&self, selector: &IdentitySelector) -> Option<&IdentityRef> {
        let mut all = self.system.iter().chain(self.user.iter());
        match selector {
            IdentitySelector::Default => match (&self.system, self.user.as_slice()) {
                (Some(system), _) => Some(system),
                (None, [only]) => Some(only),
                (None, _) => None,
            },
            IdentitySelector::ClientId(id) => {
                all.find(|identity| identity.client_id.eq_ignore_ascii_case(id))
            }
            IdentitySelector::ObjectId(id) => {
                all.find(|identity| identity.principal_id.eq_ignore_ascii_case(id))
            }
            IdentitySelector::ResourceId(id) => self.user.iter().find(|identity| {
                identity.resource_id.as_deref().is_some_and(|own| own.eq_ignore_ascii_case(id))
            }),
        }
    }
}

impl TokenRequest {
    /// The selector this request carries (at most one is set; client id wins, then object id,
    /// then resource id).
    pub fn selector(&self) -> IdentitySelector {
        if let Some(id) = &self.client_id {
            IdentitySelector::ClientId(id.clone())
        } else if let Some(id) = &self.object_id {
            IdentitySelector::ObjectId(id.clone())
        } else if let Some(id) = &self.identity_resource_id {
            IdentitySelector::ResourceId(id.clone())
        } else {
            IdentitySelector::Default
        }
    }
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
    /// SHA-1 thumbprint (lower-case hex) of the certificate the resource listeners present to
    /// HTTPS clients (Service Fabric's `IDENTITY_SERVER_THUMBPRINT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_fabric_thumbprint: Option<String>,
    /// PEM of the certificate authority that issued that certificate. The agent discards the
    /// authority's key once it has signed the certificate, so trusting it trusts that one
    /// certificate; `ambient run --flavour servicefabric` adds it to the workload's CA bundles for
    /// clients that validate the chain instead of pinning the thumbprint (MSAL Node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_fabric_ca_pem: Option<String>,
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
    /// A shorter lifetime than the managed-identity default (fault injection, workload
    /// assertions); the server raises it to `domain::limits::TOKEN_LIFETIME_SECS_MIN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_secs: Option<i64>,
    /// Set when the agent refused the workload (its process matched none of the resource's
    /// workload selectors): the server issues nothing and records a failed sign-in with this
    /// reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
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

/// The managed-identity protocols of Azure's platforms, which the agent serves (docs/flavours.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityFlavour {
    /// A VM's instance metadata service (`AZURE_POD_IDENTITY_AUTHORITY_HOST`).
    Imds,
    /// App Service and Functions, 2019-08-01 (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`).
    #[serde(rename = "appservice")]
    AppService,
    /// Azure Arc's challenge with a key file (`IDENTITY_ENDPOINT`, `IMDS_ENDPOINT`).
    Arc,
    /// Service Fabric over pinned HTTPS (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`,
    /// `IDENTITY_SERVER_THUMBPRINT`).
    #[serde(rename = "servicefabric")]
    ServiceFabric,
    /// Azure ML and the legacy App Service protocol, 2017-09-01 (`MSI_ENDPOINT`, `MSI_SECRET`).
    Ml,
    /// Cloud Shell's POST (`MSI_ENDPOINT` alone).
    #[serde(rename = "cloudshell")]
    CloudShell,
    /// Workload identity federation with a token file (`AZURE_FEDERATED_TOKEN_FILE`).
    Workload,
}

impl IdentityFlavour {
    /// Every flavour, in the order of `ambient run --flavour`'s help.
    pub const ALL: [IdentityFlavour; 7] = [
        IdentityFlavour::Imds,
        IdentityFlavour::AppService,
        IdentityFlavour::Arc,
        IdentityFlavour::ServiceFabric,
        IdentityFlavour::Ml,
        IdentityFlavour::CloudShell,
        IdentityFlavour::Workload,
    ];

    /// The name on the command line and in `properties.ambient.identityFlavour`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityFlavour::Imds => "imds",
            IdentityFlavour::AppService => "appservice",
            IdentityFlavour::Arc => "arc",
            IdentityFlavour::ServiceFabric => "servicefabric",
            IdentityFlavour::Ml => "ml",
            IdentityFlavour::CloudShell => "cloudshell",
            IdentityFlavour::Workload => "workload",
        }
    }

    /// The flavour named `name` (any case).
    pub fn parse(name: &str) -> Option<IdentityFlavour> {
        IdentityFlavour::ALL.into_iter().find(|flavour| flavour.as_str().eq_ignore_ascii_case(name))
    }
}

/// Which local processes may use a resource's identities: every selector given must match the
/// process at the other end of the connection (docs/flavours.md, "Workload attestation").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSelectors {
    /// The process's effective user: a name (looked up on the host) or a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A group of the process (effective or supplementary): a name or a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The process's executable, an absolute path (symbolic links resolved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<String>,
    /// SHA-256 of the executable's contents, lower-case hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable_sha256: Option<String>,
    /// The systemd unit the process runs in (`web.service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
    /// The process's cgroup, or one above it (`/system.slice/web.service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// The container the process runs in: its id, or a prefix of at least 12 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
}

impl WorkloadSelectors {
    /// Whether no selector is given (every local process matches).
    pub fn is_empty(&self) -> bool {
        *self == WorkloadSelectors::default()
    }
}

/// Faults injected on a host's or a resource's metadata endpoints, for testing clients
/// (`/hosting/hosts/{name}/faults`, `/hosting/faults?resourceId=`). Empty fields inject nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Faults {
    /// Added before every answer of the metadata endpoints, in milliseconds.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub latency_ms: u64,
    /// Shares of token requests answered with an error status instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<InjectedError>,
    /// `Retry-After` (seconds) on the injected 429 and 503 answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// Answer IMDS paths as Docker Desktop answers for an unreachable 169.254.169.254 (403,
    /// "A socket operation was attempted to an unreachable network").
    #[serde(default, skip_serializing_if = "is_false")]
    pub imds_unreachable: bool,
    /// Accept token requests and never answer them (clients time out).
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_answer: bool,
    /// The lifetime of the tokens the resource gets, in seconds (at least 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_lifetime_secs: Option<i64>,
    /// Seconds added to every absolute time the endpoints answer (`expires_on`,
    /// `not_before`), as if the metadata service's clock ran that far ahead (behind if
    /// negative); the token and `expires_in` are unchanged.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub clock_offset_secs: i64,
}

/// One share of injected error answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InjectedError {
    /// 429, 500 or 503.
    pub status: u16,
    /// The share of token requests, in percent (1 to 100; all shares add up to 100 at most).
    pub percent: u8,
}

impl Faults {
    /// Whether nothing is injected.
    pub fn is_empty(&self) -> bool {
        *self == Faults::default()
    }
}

fn is_zero_u64(value: &u64) -> bool {
    *value == 0
}

fn is_zero_i64(value: &i64) -> bool {
    *value == 0
}

fn is_false(value: &bool) -> bool {
    !*value
}

#[cfg(test)]
mod tests {
    use super::*;

    const UAMI: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/one";

    fn identity(principal: &str, client: &str, resource_id: Option<&str>) -> IdentityRef {
        IdentityRef {
            principal_id: principal.to_owned(),
            client_id: client.to_owned(),
            resource_id: resource_id.map(str::to_owned),
        }
    }

    fn resource(system: bool, users: usize) -> HostedResource {
        HostedResource {
            resource_id:
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
                    .to_owned(),
            resource_key:
                "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm"
                    .to_owned(),
            name: "vm".to_owned(),
            resource_type: "Microsoft.Compute/virtualMachines".to_owned(),
            subscription_id: "s".to_owned(),
            resource_group: "rg".to_owned(),
            location: "local".to_owned(),
            vm_id: None,
            identity_header: "h".to_owned(),
            identity_flavour: None,
            workload_selectors: None,
            faults: None,
            system: system.then(|| identity("sys-oid", "sys-cid", None)),
            user: (0..users)
                .map(|n| {
                    identity(
                        &format!("u{n}-oid"),
                        &format!("u{n}-cid"),
                        Some(&format!("{UAMI}{n}")),
                    )
                })
                .collect(),
        }
    }

    #[track_caller]
    fn check(
        resource: &HostedResource,
        selector: IdentitySelector,
        expected_principal: Option<&str>,
    ) {
        let found = resource.select(&selector).map(|identity| identity.principal_id.as_str());
        assert_eq!(found, expected_principal);
    }

    #[test]
    fn default_is_the_system_identity_or_the_only_user_identity() {
        check(&resource(true, 2), IdentitySelector::Default, Some("sys-oid"));
        check(&resource(false, 1), IdentitySelector::Default, Some("u0-oid"));
        check(&resource(false, 2), IdentitySelector::Default, None);
        check(&resource(false, 0), IdentitySelector::Default, None);
    }

    #[test]
    fn selectors_match_case_insensitively_and_only_held_identities() {
        let vm = resource(true, 2);
        check(&vm, IdentitySelector::ClientId("U1-CID".to_owned()), Some("u1-oid"));
        check(&vm, IdentitySelector::ObjectId("SYS-OID".to_owned()), Some("sys-oid"));
        check(&vm, IdentitySelector::ResourceId(format!("{UAMI}1").to_uppercase()), Some("u1-oid"));
        check(&vm, IdentitySelector::ClientId("nope".to_owned()), None);
        check(&vm, IdentitySelector::ResourceId(format!("{UAMI}9")), None);
    }
}
