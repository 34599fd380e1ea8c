//! [`ManagedIdentityCredential`]: tokens of the managed identity of the compute resource the
//! program runs on, from the metadata endpoint its platform provides.
//!
//! The source is detected from environment variables in azure-identity (Python)'s order
//! (02-hosted-endpoints.md §1): Service Fabric, App Service (2019-08-01), Azure Arc, legacy
//! App Service / Azure ML (2017-09-01), Cloud Shell, workload identity (a federated token file,
//! handed to [`WorkloadIdentityCredential`]); then, as MSAL and the Rust `azure_identity`
//! crate do, Azure Arc at `http://localhost:40342` when the agent `/opt/azcmagent/bin/himds` is
//! installed; else IMDS (01-imds.md) at `AZURE_POD_IDENTITY_AUTHORITY_HOST` or
//! `http://169.254.169.254`. Each source's request is the one MSAL Python 1.39 sends for
//! azure-identity 1.27 (Cloud Shell: azure-identity's own); [`ManagedIdentitySource`] describes
//! them. The Azure Arc challenge and its key-file checks live in `arc`, Service Fabric's pinned
//! certificate in `service_fabric`.
//!
//! IMDS requests are retried on 404, 410, 429 and 5xx with azure-identity's exponential schedule
//! ([`ImdsRetryOptions`]). Inside a credential chain, the first IMDS request is a short probe
//! (one second to connect, no retries) so that a machine without IMDS fails over quickly. The
//! other sources are not retried.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::cache::{CacheKey, TokenCache};
use crate::clock::{SharedClock, SystemClock};
use crate::credential::{AccessToken, TokenCredential, TokenRequestOptions};
use crate::env::Env;
use crate::environment::options_from_env;
use crate::options::{ClientOptions, DEFAULT_HTTP_TIMEOUT};
use crate::response::{
    describe_http_error, excerpt, parse_error_response, parse_token_response, read_body,
};
use crate::scope::resource_from_scopes;
use crate::secret::Secret;
use crate::workload_identity::WorkloadIdentityCredential;
use crate::{Error, Result};

/// The instance metadata service's address on Azure VMs, used when neither
/// [`ManagedIdentityCredentialOptions::imds_endpoint`] nor `AZURE_POD_IDENTITY_AUTHORITY_HOST`
/// names another.
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";

/// The directory of the Linux Azure Arc agent's key files, the default of
/// [`ManagedIdentityCredentialOptions::arc_key_directory`].
pub const DEFAULT_ARC_KEY_DIRECTORY: &str = arc::DEFAULT_KEY_DIRECTORY;

/// Which managed identity to ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ManagedIdentityId {
    /// The resource's system-assigned identity (or, on IMDS, its only user-assigned identity
    /// when it has no system identity).
    #[default]
    System,
    /// A user-assigned identity by its client (application) id.
    ClientId(String),
    /// A user-assigned identity by its object (principal) id.
    ObjectId(String),
    /// A user-assigned identity by its ARM resource id.
    ResourceId(String),
}

/// Where a [`ManagedIdentityCredential`] gets its tokens, as detected from the environment, in
/// the order of detection.
///
/// User-assigned identities ([`ManagedIdentityId`]) are selected with the query parameter named
/// for each source below; "refused" means the credential answers [`Error::InvalidConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManagedIdentitySource {
    /// `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` + `IDENTITY_SERVER_THUMBPRINT`: Service Fabric.
    /// `GET {IDENTITY_ENDPOINT}?api-version=2019-07-01-preview&resource=...` with header
    /// `Secret: {IDENTITY_HEADER}`, over HTTPS only, trusting the server certificate whose SHA-1
    /// thumbprint is `IDENTITY_SERVER_THUMBPRINT` (and no other: no CA or host-name check).
    /// The cluster decides the application's identity: as in azure-identity, asking for a
    /// user-assigned one is refused, at the first token request (so that
    /// [`DefaultAzureCredential`](crate::DefaultAzureCredential) still builds when
    /// `AZURE_CLIENT_ID` is set, and stops there).
    ServiceFabric,
    /// `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`: App Service, Functions, Container Apps.
    /// `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=...` with headers
    /// `X-IDENTITY-HEADER` and `Metadata: true`; selectors `client_id`, `object_id`,
    /// `mi_res_id`.
    AppService,
    /// `IDENTITY_ENDPOINT` + `IMDS_ENDPOINT`, or the agent `/opt/azcmagent/bin/himds` installed
    /// (then the endpoint is `http://localhost:40342/metadata/identity/oauth2/token`): Azure
    /// Arc. `GET {IDENTITY_ENDPOINT}?api-version=2020-06-01&resource=...` with `Metadata: true`
    /// must be answered `401` with `WWW-Authenticate: Basic realm=<key file>`; the key file must
    /// be a `.key` file of at most 4096 bytes directly inside
    /// [`ManagedIdentityCredentialOptions::arc_key_directory`]; the request is repeated with
    /// `Authorization: Basic <contents>`. Selectors `client_id`, `object_id`, `msi_res_id`; as
    /// azure-identity 1.27, MSAL Python and MSAL Node do, the token response must then echo
    /// the selected identity (older agents ignore the selector and return the system identity's
    /// token, which is refused).
    AzureArc,
    /// `MSI_ENDPOINT` + `MSI_SECRET`: the legacy App Service protocol that Azure ML also speaks.
    /// `GET {MSI_ENDPOINT}?api-version=2017-09-01&resource=...` with header `secret`; only a
    /// client id can be selected, as `clientid` (object and resource ids are refused, as MSAL
    /// Node does). `expires_on` may be epoch seconds or a date such as
    /// `"06/20/2019 02:57:58 +00:00"`.
    LegacyMsi,
    /// `MSI_ENDPOINT` alone: Cloud Shell. `POST {MSI_ENDPOINT}` with the form field `resource`
    /// and header `Metadata: true`. User-assigned identities are refused when the credential is
    /// built, except inside [`DefaultAzureCredential`](crate::DefaultAzureCredential), where (as
    /// in azure-identity) a client id is sent as the form field `client_id`.
    CloudShell,
    /// `AZURE_FEDERATED_TOKEN_FILE` + `AZURE_TENANT_ID` + `AZURE_AUTHORITY_HOST` (what Azure
    /// Workload Identity's webhook sets in a pod): the token file is exchanged at the authority
    /// by a [`WorkloadIdentityCredential`], as azure-identity's `ManagedIdentityCredential`
    /// does. The application is `AZURE_CLIENT_ID`, or the selected client id; an object or
    /// resource id is refused, since the exchange names an application by client id only.
    /// Skipped inside a [`DefaultAzureCredential`](crate::DefaultAzureCredential) whose
    /// `AZURE_TOKEN_CREDENTIALS` leaves out its own workload identity credential, as in
    /// azure-identity.
    WorkloadIdentity,
    /// None of the above: the instance metadata service.
    /// `GET {base}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=...` with
    /// `Metadata: true`; selectors `client_id`, `object_id`, `msi_res_id`.
    Imds,
}

/// The retry schedule of IMDS requests (01-imds.md §6, azure-identity's `ImdsCredential`).
///
/// Statuses 404, 410, 429 and 500 to 599 are retried up to `max_retries` times. Before retry
/// `n` (from 1) the credential waits `0` for the first and `factor × 2^(n-1)` after that, where
/// `factor` is `gone_backoff_factor` after a 410 and `backoff_factor` otherwise, or longer when
/// the answer carried `Retry-After`. Defaults: 0, 1.6, 3.2, 6.4, 12.8 s; after 410s, 0, 5, 10,
/// 20, 40 s (75 s, covering IMDS's "available within 70 s"). The sum of the waits never exceeds
/// `total_delay_max`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImdsRetryOptions {
    /// Most retries after the first request.
    pub max_retries: u32,
    /// The base of the exponential backoff.
    pub backoff_factor: Duration,
    /// The base after a `410 Gone`.
    pub gone_backoff_factor: Duration,
    /// Most time spent waiting between attempts, in total.
    pub total_delay_max: Duration,
}

impl Default for ImdsRetryOptions {
    fn default() -> ImdsRetryOptions {
        ImdsRetryOptions {
            max_retries: 5,
            backoff_factor: Duration::from_millis(800),
            gone_backoff_factor: Duration::from_millis(2_500),
            total_delay_max: Duration::from_secs(90),
        }
    }
}

/// Options of [`ManagedIdentityCredential`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedIdentityCredentialOptions {
    /// The IMDS base URL (scheme, host and port), such as `http://127.0.0.1:50342`. `None` means
    /// `AZURE_POD_IDENTITY_AUTHORITY_HOST` when set, else [`DEFAULT_IMDS_ENDPOINT`]. Used only when
    /// the environment selects IMDS.
    pub imds_endpoint: Option<String>,
    /// The longest one HTTP request may take.
    pub http_timeout: Duration,
    /// How IMDS requests are retried.
    pub retry: ImdsRetryOptions,
    /// Send the first IMDS request as a probe: one second to connect and no retries, and a
    /// connection failure (or a `403` whose body says `unreachable`) answers
    /// [`Error::CredentialUnavailable`] so a chain moves on. Any other answer shows the endpoint
    /// exists, and later requests are normal. Set it when the credential is one link of a chain;
    /// [`DefaultAzureCredential`](crate::DefaultAzureCredential) does. Skipped when
    /// `AZURE_POD_IDENTITY_AUTHORITY_HOST` names the endpoint, as in azure-identity.
    pub probe_imds: bool,
    /// The directory an Azure Arc key file must be in: the agent's token directory, readable by
    /// root and the `himds` group. Default [`DEFAULT_ARC_KEY_DIRECTORY`], the Linux agent's; the
    /// Windows agent's is `%ProgramData%\AzureConnectedMachineAgent\Tokens`, which the SDKs use
    /// on Windows and which this crate does not pick by itself. Only these options set it (no
    /// environment variable does), so whoever controls the environment or the endpoint cannot
    /// make the credential read files elsewhere.
    pub arc_key_directory: PathBuf,
    /// Settings of the token exchange when the environment selects workload identity
    /// ([`ManagedIdentitySource::WorkloadIdentity`]): extra root certificates, timeout, allowed
    /// tenants; `AZURE_AUTHORITY_HOST` replaces the authority host. Unused by the other sources.
    pub client_options: ClientOptions,
}

impl Default for ManagedIdentityCredentialOptions {
    fn default() -> ManagedIdentityCredentialOptions {
        ManagedIdentityCredentialOptions {
            imds_endpoint: None,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            retry: ImdsRetryOptions::default(),
            probe_imds: false,
            arc_key_directory: PathBuf::from(DEFAULT_ARC_KEY_DIRECTORY),
            client_options: ClientOptions::default(),
        }
    }
}

/// The managed identity of the compute resource this program runs on.
///
/// Cheap to clone; clones share one HTTP client and one token cache. Tokens are cached per
/// resource; [`TokenRequestOptions::tenant_id`] is ignored, since a managed identity lives in
/// one tenant.
#[derive(Clone)]
pub struct ManagedIdentityCredential {
    inner: Arc<Inner>,
}

struct Inner {
    source: ManagedIdentitySource,
    endpoint: Endpoint,
    id: ManagedIdentityId,
    http: reqwest::Client,
    probe_http: reqwest::Client,
    retry: ImdsRetryOptions,
    /// False until a probe has shown that an IMDS endpoint answers; true from the start when no
    /// probe is wanted.
    imds_available: AtomicBool,
    cache: TokenCache,
    clock: SharedClock,
}

/// The endpoint of the detected source, validated.
enum Endpoint {
    ServiceFabric {
        url: reqwest::Url,
        secret: Secret,
        /// Trusts only the certificate with the `IDENTITY_SERVER_THUMBPRINT` thumbprint.
        pinned_http: reqwest::Client,
    },
    AppService {
        url: reqwest::Url,
        header: Secret,
    },
    AzureArc {
        url: reqwest::Url,
        key_directory: PathBuf,
    },
    LegacyMsi {
        url: reqwest::Url,
        secret: Secret,
    },
    CloudShell {
        url: reqwest::Url,
    },
    Imds {
        token_url: reqwest::Url,
    },
    /// Tokens come from the federated token exchange, with its own cache.
    WorkloadIdentity(WorkloadIdentityCredential),
}

/// What detection and construction learn from outside the environment variables and options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Context {
    /// The Azure Arc agent is installed ([`arc::AGENT_EXECUTABLE`] exists).
    pub(crate) arc_agent_installed: bool,
    /// The credential is a link of [`DefaultAzureCredential`](crate::DefaultAzureCredential),
    /// which passes `AZURE_CLIENT_ID` to every source (Cloud Shell then tolerates it).
    pub(crate) within_default_chain: bool,
    /// The default chain leaves out its workload identity credential, so the managed identity
    /// must not use a federated token file either (azure-identity's
    /// `_exclude_workload_identity_credential`).
    pub(crate) exclude_workload_identity: bool,
}

impl Context {
    /// This machine, outside a default chain.
    pub(crate) fn of_this_machine() -> Context {
        Context {
            arc_agent_installed: std::path::Path::new(arc::AGENT_EXECUTABLE).exists(),
            within_default_chain: false,
            exclude_workload_identity: false,
        }
    }
}

/// Path of the IMDS token endpoint below its base URL.
const IMDS_TOKEN_PATH: &str = "/metadata/identity/oauth2/token";
const IMDS_API_VERSION: &str = "2018-02-01";
const APP_SERVICE_API_VERSION: &str = "2019-08-01";
const LEGACY_MSI_API_VERSION: &str = "2017-09-01";
const ARC_API_VERSION: &str = "2020-06-01";
const SERVICE_FABRIC_API_VERSION: &str = "2019-07-01-preview";

/// Connection timeout of normal requests (azure-identity's IMDS `connection_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Connection timeout of the probe inside a chain.
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

const _: () = assert!(PROBE_CONNECT_TIMEOUT.as_millis() < CONNECT_TIMEOUT.as_millis());

/// The prefix of every "not here" message, as azure-identity words it.
const UNAVAILABLE: &str = "ManagedIdentityCredential authentication unavailable";

/// Why Service Fabric refuses a user-assigned identity (azure-identity's reason, reworded).
const SERVICE_FABRIC_USER_ASSIGNED: &str = "a user-assigned identity cannot be selected on Service Fabric: the cluster's configuration determines the application's managed identity (https://aka.ms/servicefabricmi)";

impl ManagedIdentityCredential {
    /// The managed identity `id` of this machine, with the source detected from the process
    /// environment.
    ///
    /// Fails with [`Error::InvalidConfig`] when an endpoint variable is not a URL (Service
    /// Fabric's: not an `https` URL), `IDENTITY_SERVER_THUMBPRINT` is not a SHA-1 thumbprint, or
    /// the source cannot select `id` (Cloud Shell has only its system identity; the legacy
    /// endpoint selects by client id only). Service Fabric refuses a user-assigned `id` at the
    /// first token request instead.
    pub fn new(
        id: ManagedIdentityId,
        options: ManagedIdentityCredentialOptions,
    ) -> Result<ManagedIdentityCredential> {
        Self::from_env(&Env::from_process(), id, options)
    }

    /// As [`ManagedIdentityCredential::new`], with the source detected from `env`.
    pub fn from_env(
        env: &Env,
        id: ManagedIdentityId,
        options: ManagedIdentityCredentialOptions,
    ) -> Result<ManagedIdentityCredential> {
        Self::with_clock(env, id, &options, SystemClock::shared())
    }

    /// The source the environment selected.
    pub fn source(&self) -> ManagedIdentitySource {
        self.inner.source
    }

    pub(crate) fn with_clock(
        env: &Env,
        id: ManagedIdentityId,
        options: &ManagedIdentityCredentialOptions,
        clock: SharedClock,
    ) -> Result<ManagedIdentityCredential> {
        Self::with_context(env, id, options, clock, Context::of_this_machine())
    }

    pub(crate) fn with_context(
        env: &Env,
        id: ManagedIdentityId,
        options: &ManagedIdentityCredentialOptions,
        clock: SharedClock,
        context: Context,
    ) -> Result<ManagedIdentityCredential> {
        if let ManagedIdentityId::ClientId(value)
        | ManagedIdentityId::ObjectId(value)
        | ManagedIdentityId::ResourceId(value) = &id
            && value.trim().is_empty()
        {
            return Err(Error::InvalidConfig("managed identity id is empty".to_owned()));
        }
        if options.http_timeout.is_zero() {
            return Err(Error::InvalidConfig("http timeout must be more than zero".to_owned()));
        }
        let source = detect_source(env, context);
        let endpoint = endpoint(source, env, &id, options, context, &clock)?;
        let probe = options.probe_imds
            && source == ManagedIdentitySource::Imds
            && !(options.imds_endpoint.is_none()
                && env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST").is_some());
        Ok(ManagedIdentityCredential {
            inner: Arc::new(Inner {
                source,
                endpoint,
                id,
                http: http_client(options.http_timeout, CONNECT_TIMEOUT)?,
                probe_http: http_client(options.http_timeout, PROBE_CONNECT_TIMEOUT)?,
                retry: options.retry.clone(),
                imds_available: AtomicBool::new(!probe),
                cache: TokenCache::new(clock.clone()),
                clock,
            }),
        })
    }
}

#[async_trait]
impl TokenCredential for ManagedIdentityCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: &TokenRequestOptions,
    ) -> Result<AccessToken> {
        if let Endpoint::WorkloadIdentity(workload) = &self.inner.endpoint {
            return workload.get_token(scopes, options).await;
        }
        let resource = resource_from_scopes(scopes)?;
        let key = CacheKey::new(&[&resource], None);
        let inner = &self.inner;
        inner.cache.get_token(key, || inner.request_token(&resource)).await
    }
}

impl fmt::Debug for ManagedIdentityCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = match &self.inner.endpoint {
            Endpoint::ServiceFabric { url, .. }
            | Endpoint::AppService { url, .. }
            | Endpoint::AzureArc { url, .. }
            | Endpoint::LegacyMsi { url, .. }
            | Endpoint::CloudShell { url }
            | Endpoint::Imds { token_url: url } => url.to_string(),
            Endpoint::WorkloadIdentity(workload) => format!("{workload:?}"),
        };
        f.debug_struct("ManagedIdentityCredential")
            .field("source", &self.inner.source)
            .field("id", &self.inner.id)
            .field("endpoint", &endpoint)
            .field("imds_available", &self.inner.imds_available.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

/// The source `env` selects, in azure-identity (Python)'s order, with the installed Azure Arc
/// agent next to last as in MSAL and the Rust SDK; a variable counts when it is set and not
/// empty.
pub(crate) fn detect_source(env: &Env, context: Context) -> ManagedIdentitySource {
    let set = |name: &str| env.get(name).is_some();
    if set("IDENTITY_ENDPOINT") {
        if set("IDENTITY_HEADER") {
            if set("IDENTITY_SERVER_THUMBPRINT") {
                return ManagedIdentitySource::ServiceFabric;
            }
            return ManagedIdentitySource::AppService;
        }
        if set("IMDS_ENDPOINT") {
            return ManagedIdentitySource::AzureArc;
        }
    }
    if set("MSI_ENDPOINT") {
        if set("MSI_SECRET") {
            return ManagedIdentitySource::LegacyMsi;
        }
        return ManagedIdentitySource::CloudShell;
    }
    let workload = ["AZURE_AUTHORITY_HOST", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"];
    if workload.iter().all(|name| set(name)) && !context.exclude_workload_identity {
        return ManagedIdentitySource::WorkloadIdentity;
    }
    if context.arc_agent_installed {
        return ManagedIdentitySource::AzureArc;
    }
    ManagedIdentitySource::Imds
}

/// The IMDS base URL: the option, else `AZURE_POD_IDENTITY_AUTHORITY_HOST`, else
/// [`DEFAULT_IMDS_ENDPOINT`].
pub(crate) fn imds_base<'a>(env: &'a Env, option: Option<&'a str>) -> &'a str {
    option.or_else(|| env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST")).unwrap_or(DEFAULT_IMDS_ENDPOINT)
}

/// Whether IMDS answers `status` with a retry (01-imds.md §6).
pub(crate) fn is_retryable(status: u16) -> bool {
    matches!(status, 404 | 410 | 429 | 500..=599)
}

/// How long to wait before retry `retry_number` (from 1) after an answer with `status`.
pub(crate) fn retry_delay(
    options: &ImdsRetryOptions,
    retry_number: u32,
    status: u16,
    retry_after: Option<Duration>,
) -> Duration {
    let factor = if status == 410 { options.gone_backoff_factor } else { options.backoff_factor };
    let exponential = if retry_number <= 1 {
        Duration::ZERO
    } else {
        factor.saturating_mul(1_u32 << (retry_number - 1).min(16))
    };
    retry_after.map_or(exponential, |retry_after| exponential.max(retry_after))
}

fn endpoint(
    source: ManagedIdentitySource,
    env: &Env,
    id: &ManagedIdentityId,
    options: &ManagedIdentityCredentialOptions,
    context: Context,
    clock: &SharedClock,
) -> Result<Endpoint> {
    let var = |name: &str| env.get(name).unwrap_or_default();
    Ok(match source {
        ManagedIdentitySource::ServiceFabric => {
            let url = endpoint_url("IDENTITY_ENDPOINT", var("IDENTITY_ENDPOINT"))?;
            if url.scheme() != "https" {
                return Err(Error::InvalidConfig(format!(
                    "IDENTITY_ENDPOINT {:?} must be an https URL for Service Fabric",
                    var("IDENTITY_ENDPOINT")
                )));
            }
            let thumbprint = service_fabric::Thumbprint::parse(var("IDENTITY_SERVER_THUMBPRINT"))?;
            Endpoint::ServiceFabric {
                url,
                secret: Secret::new(var("IDENTITY_HEADER")),
                pinned_http: service_fabric::pinned_http_client(
                    thumbprint,
                    options.http_timeout,
                    CONNECT_TIMEOUT,
                )?,
            }
        }
        ManagedIdentitySource::AzureArc => {
            let url =
                match env.get("IDENTITY_ENDPOINT").filter(|_| env.get("IMDS_ENDPOINT").is_some()) {
                    Some(url) => endpoint_url("IDENTITY_ENDPOINT", url)?,
                    None => endpoint_url("the Azure Arc endpoint", arc::DEFAULT_ENDPOINT)?,
                };
            Endpoint::AzureArc { url, key_directory: options.arc_key_directory.clone() }
        }
        ManagedIdentitySource::AppService => Endpoint::AppService {
            url: endpoint_url("IDENTITY_ENDPOINT", var("IDENTITY_ENDPOINT"))?,
            header: Secret::new(var("IDENTITY_HEADER")),
        },
        ManagedIdentitySource::LegacyMsi => {
            if matches!(id, ManagedIdentityId::ObjectId(_) | ManagedIdentityId::ResourceId(_)) {
                return Err(Error::InvalidConfig(
                    "the legacy managed identity endpoint (MSI_ENDPOINT and MSI_SECRET) selects user-assigned identities by client id only".to_owned(),
                ));
            }
            Endpoint::LegacyMsi {
                url: endpoint_url("MSI_ENDPOINT", var("MSI_ENDPOINT"))?,
                secret: Secret::new(var("MSI_SECRET")),
            }
        }
        ManagedIdentitySource::CloudShell => {
            let tolerated =
                context.within_default_chain && matches!(id, ManagedIdentityId::ClientId(_));
            if *id != ManagedIdentityId::System && !tolerated {
                return Err(Error::InvalidConfig(
                    "Cloud Shell (MSI_ENDPOINT without MSI_SECRET) does not support user-assigned identities".to_owned(),
                ));
            }
            Endpoint::CloudShell { url: endpoint_url("MSI_ENDPOINT", var("MSI_ENDPOINT"))? }
        }
        ManagedIdentitySource::WorkloadIdentity => {
            let client_id = match id {
                ManagedIdentityId::System => env.get("AZURE_CLIENT_ID").ok_or_else(|| {
                    Error::InvalidConfig(
                        "workload identity was selected (AZURE_FEDERATED_TOKEN_FILE is set) but no client id was given: set AZURE_CLIENT_ID or select the identity by client id".to_owned(),
                    )
                })?,
                ManagedIdentityId::ClientId(client_id) => client_id.as_str(),
                ManagedIdentityId::ObjectId(_) | ManagedIdentityId::ResourceId(_) => {
                    return Err(Error::InvalidConfig(
                        "workload identity (AZURE_FEDERATED_TOKEN_FILE) selects the application by client id only".to_owned(),
                    ));
                }
            };
            let client_options = options_from_env(env, options.client_options.clone());
            Endpoint::WorkloadIdentity(WorkloadIdentityCredential::with_clock(
                var("AZURE_TENANT_ID"),
                client_id,
                PathBuf::from(var("AZURE_FEDERATED_TOKEN_FILE")),
                &client_options,
                clock.clone(),
            )?)
        }
        ManagedIdentitySource::Imds => {
            let base = imds_base(env, options.imds_endpoint.as_deref());
            let token_url = format!("{}{IMDS_TOKEN_PATH}", base.trim_end_matches('/'));
            Endpoint::Imds { token_url: endpoint_url("the IMDS endpoint", &token_url)? }
        }
    })
}

/// An absolute `http` or `https` URL without user information or fragment.
fn endpoint_url(name: &str, value: &str) -> Result<reqwest::Url> {
    let url = reqwest::Url::parse(value.trim()).map_err(|error| {
        Error::InvalidConfig(format!("{name} {value:?} is not an absolute URL: {error}"))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(Error::InvalidConfig(format!(
            "{name} {value:?} must be an http or https URL with a host"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(Error::InvalidConfig(format!(
            "{name} {value:?} must not carry user information or a fragment"
        )));
    }
    Ok(url)
}

/// Managed-identity endpoints are local: no proxy (IMDS refuses proxied requests), no redirects.
fn http_client(timeout: Duration, connect_timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(connect_timeout.min(timeout))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|error| Error::InvalidConfig(format!("build http client: {error}")))
}

impl Inner {
    async fn request_token(&self, resource: &str) -> Result<AccessToken> {
        match &self.endpoint {
            Endpoint::ServiceFabric { url, secret, pinned_http } => {
                if self.id != ManagedIdentityId::System {
                    return Err(Error::InvalidConfig(SERVICE_FABRIC_USER_ASSIGNED.to_owned()));
                }
                let url = self.with_query(url, SERVICE_FABRIC_API_VERSION, resource);
                let request = pinned_http.get(url.clone()).header("Secret", secret.expose());
                let answer = send(request, &url).await?;
                self.service_fabric_outcome(answer.status, &answer.body)
            }
            Endpoint::AppService { url, header } => {
                let url = self.with_query(url, APP_SERVICE_API_VERSION, resource);
                let request = self
                    .http
                    .get(url.clone())
                    .header("X-IDENTITY-HEADER", header.expose())
                    .header("Metadata", "true");
                let answer = send(request, &url).await?;
                self.outcome(answer.status, &answer.body)
            }
            Endpoint::AzureArc { url, key_directory } => {
                let url = self.with_query(url, ARC_API_VERSION, resource);
                self.request_arc(&url, key_directory).await
            }
            Endpoint::LegacyMsi { url, secret } => {
                let url = self.with_query(url, LEGACY_MSI_API_VERSION, resource);
                let request = self.http.get(url.clone()).header("secret", secret.expose());
                let answer = send(request, &url).await?;
                self.outcome(answer.status, &answer.body)
            }
            Endpoint::CloudShell { url } => {
                let mut form = vec![("resource", resource)];
                // Reached only inside the default chain, which passes `AZURE_CLIENT_ID` on;
                // azure-identity then adds it to the form.
                if let ManagedIdentityId::ClientId(client_id) = &self.id {
                    form.push(("client_id", client_id));
                }
                let request = self.http.post(url.clone()).header("Metadata", "true").form(&form);
                let answer = send(request, url).await?;
                self.outcome(answer.status, &answer.body)
            }
            Endpoint::Imds { token_url } => {
                let url = self.with_query(token_url, IMDS_API_VERSION, resource);
                self.request_imds(&url).await
            }
            Endpoint::WorkloadIdentity(_) => {
                unreachable!("get_token hands workload identity requests to their credential")
            }
        }
    }

    /// `url` with `api-version`, `resource` and the identity selector in the source's spelling
    /// (MSAL Python's).
    fn with_query(&self, url: &reqwest::Url, api_version: &str, resource: &str) -> reqwest::Url {
        let mut url = url.clone();
        let selector = match (&self.id, self.source) {
            (ManagedIdentityId::System, _) => None,
            (ManagedIdentityId::ClientId(id), ManagedIdentitySource::LegacyMsi) => {
                Some(("clientid", id))
            }
            (ManagedIdentityId::ClientId(id), _) => Some(("client_id", id)),
            (ManagedIdentityId::ObjectId(id), _) => Some(("object_id", id)),
            (
                ManagedIdentityId::ResourceId(id),
                ManagedIdentitySource::Imds | ManagedIdentitySource::AzureArc,
            ) => Some(("msi_res_id", id)),
            (ManagedIdentityId::ResourceId(id), _) => Some(("mi_res_id", id)),
        };
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("api-version", api_version).append_pair("resource", resource);
            if let Some((name, value)) = selector {
                query.append_pair(name, value);
            }
        }
        url
    }

    /// Azure Arc's challenge: a first request that must be answered `401` naming a key file,
    /// then the same request with the file's contents (see `arc`).
    async fn request_arc(
        &self,
        url: &reqwest::Url,
        key_directory: &std::path::Path,
    ) -> Result<AccessToken> {
        let challenge = send(self.http.get(url.clone()).header("Metadata", "true"), url).await?;
        if challenge.status != 401 {
            // MSAL Python accepts nothing but the challenge here, not even a token.
            if (200..300).contains(&challenge.status) {
                return Err(Error::Http(format!(
                    "the Azure Arc endpoint answered {} without the 401 challenge it must send first",
                    challenge.status
                )));
            }
            return Err(parse_error_response(challenge.status, &challenge.body));
        }
        let header = challenge.www_authenticate.ok_or_else(|| {
            Error::Http("the Azure Arc endpoint answered 401 without WWW-Authenticate".to_owned())
        })?;
        let realm = arc::realm_path(&header)?;
        let key = arc::read_key_file(realm, key_directory).await?;
        let request = self
            .http
            .get(url.clone())
            .header("Metadata", "true")
            .header(reqwest::header::AUTHORIZATION, arc::authorization(&key)?);
        let answer = send(request, url).await?;
        let token = self.outcome(answer.status, &answer.body)?;
        arc::check_identity_echo(&self.id, &answer.body)?;
        Ok(token)
    }

    /// Service Fabric's answer, read as MSAL Python reads it: a token needs `expires_on` and
    /// `token_type`; a refusal is `{"error": {"code", "message"}}`.
    fn service_fabric_outcome(&self, status: u16, body: &[u8]) -> Result<AccessToken> {
        if !(200..300).contains(&status) {
            return Err(service_fabric::error_from_response(status, body));
        }
        let fields = serde_json::from_slice::<serde_json::Value>(body).unwrap_or_default();
        for field in ["expires_on", "token_type"] {
            if fields.get(field).is_none_or(serde_json::Value::is_null) {
                return Err(Error::Http(format!(
                    "the Service Fabric token response has no {field}"
                )));
            }
        }
        self.outcome(status, body)
    }

    async fn request_imds(&self, url: &reqwest::Url) -> Result<AccessToken> {
        if !self.imds_available.load(Ordering::SeqCst) {
            let request = self.probe_http.get(url.clone()).header("Metadata", "true");
            let (status, body) = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    (status, read_body(response).await.map_err(unavailable_from)?)
                }
                Err(error) => {
                    return Err(Error::CredentialUnavailable(format!(
                        "{UNAVAILABLE}: no response from the IMDS endpoint {}: {}",
                        endpoint_without_query(url),
                        describe_http_error(&error.without_url())
                    )));
                }
            };
            if is_unreachable(status, &body) {
                return Err(unreachable(&body));
            }
            self.imds_available.store(true, Ordering::SeqCst);
            if !is_retryable(status) {
                return self.imds_outcome(status, &body);
            }
        }

        let mut retries = 0;
        let mut delayed = Duration::ZERO;
        loop {
            let request = self.http.get(url.clone()).header("Metadata", "true");
            let Answer { status, retry_after, body, .. } = send(request, url).await?;
            if is_retryable(status) && retries < self.retry.max_retries {
                let delay = retry_delay(&self.retry, retries + 1, status, retry_after);
                if delayed.saturating_add(delay) <= self.retry.total_delay_max {
                    retries += 1;
                    delayed += delay;
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
            return self.imds_outcome(status, &body);
        }
    }

    /// The answer of IMDS, mapped as azure-identity maps it: a 400 means no such identity here,
    /// and a body that is not JSON means this is not IMDS; both let a chain move on.
    fn imds_outcome(&self, status: u16, body: &[u8]) -> Result<AccessToken> {
        if status == 400 {
            return Err(Error::CredentialUnavailable(format!(
                "{UNAVAILABLE}: the requested identity has not been assigned to this resource: {}",
                describe_error_body(body)
            )));
        }
        if is_unreachable(status, body) {
            return Err(unreachable(body));
        }
        if (200..300).contains(&status)
            && serde_json::from_slice::<serde_json::Value>(body).is_err()
        {
            return Err(Error::CredentialUnavailable(format!(
                "{UNAVAILABLE}: the IMDS endpoint answered {status} with a body that is not JSON"
            )));
        }
        self.outcome(status, body)
    }

    fn outcome(&self, status: u16, body: &[u8]) -> Result<AccessToken> {
        if (200..300).contains(&status) {
            parse_token_response(body, self.clock.now_unix_secs())
        } else {
            Err(parse_error_response(status, body))
        }
    }
}

/// An endpoint's answer, read whole.
struct Answer {
    status: u16,
    /// `Retry-After` in whole seconds, when given so.
    retry_after: Option<Duration>,
    www_authenticate: Option<String>,
    body: Vec<u8>,
}

/// Sends `request` and reads the answer.
async fn send(request: reqwest::RequestBuilder, url: &reqwest::Url) -> Result<Answer> {
    let response = request.send().await.map_err(|error| {
        Error::Http(format!(
            "{}: {}",
            endpoint_without_query(url),
            describe_http_error(&error.without_url())
        ))
    })?;
    let status = response.status().as_u16();
    let header = |name: reqwest::header::HeaderName| {
        response.headers().get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
    };
    let retry_after = header(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let www_authenticate = header(reqwest::header::WWW_AUTHENTICATE);
    Ok(Answer { status, retry_after, www_authenticate, body: read_body(response).await? })
}

/// The URL without its query, for messages.
fn endpoint_without_query(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

/// Docker Desktop answers for an unreachable 169.254.169.254 with a 403 saying so; the SDKs
/// treat it as "no IMDS here".
fn is_unreachable(status: u16, body: &[u8]) -> bool {
    status == 403 && String::from_utf8_lossy(body).contains("unreachable")
}

fn unreachable(body: &[u8]) -> Error {
    Error::CredentialUnavailable(format!(
        "{UNAVAILABLE}: the IMDS endpoint is unreachable: {:?}",
        excerpt(body)
    ))
}

fn unavailable_from(error: Error) -> Error {
    Error::CredentialUnavailable(format!("{UNAVAILABLE}: {error}"))
}

/// `error: description` of an OAuth error body, else an excerpt of the body.
fn describe_error_body(body: &[u8]) -> String {
    match parse_error_response(400, body) {
        Error::Authentication { error, description, .. } => format!("{error}: {description}"),
        _ => format!("{:?}", excerpt(body)),
    }
}

mod arc;
mod service_fabric;
#[cfg(test)]
mod tests;
