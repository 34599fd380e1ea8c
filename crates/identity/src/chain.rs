//! Credential chains: [`ChainedTokenCredential`] tries credentials in order, and
//! [`DefaultAzureCredential`] is the chain azure-identity builds by default: Environment →
//! Workload identity → Managed identity (with an IMDS probe) → CLI.
//!
//! Rules (azure-identity's `ChainedTokenCredential`): a credential answering
//! [`Error::CredentialUnavailable`] passes the turn to the next; any other error stops the chain
//! and is returned; the first credential that returns a token is remembered and asked directly
//! afterwards. When the chain ends without a token, one error lists every credential tried and
//! why it failed.
//!
//! `AZURE_TOKEN_CREDENTIALS` narrows [`DefaultAzureCredential`] as the SDKs do: `dev` keeps the
//! CLI, `prod` keeps Environment, Workload identity and Managed identity, and a credential name
//! (`EnvironmentCredential`, `WorkloadIdentityCredential`, `ManagedIdentityCredential`,
//! `AzureCliCredential` or `CliCredential`, in any case) keeps that one alone; a managed identity
//! named alone is not probed. Any other value is [`Error::InvalidConfig`].

use std::fmt;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;

use crate::cli::{CliCredential, CliCredentialOptions};
use crate::clock::{SharedClock, SystemClock};
use crate::credential::{AccessToken, TokenCredential, TokenRequestOptions};
use crate::env::Env;
use crate::environment::EnvironmentCredential;
use crate::managed_identity::{
    Context, ManagedIdentityCredential, ManagedIdentityCredentialOptions, ManagedIdentityId,
};
use crate::options::ClientOptions;
use crate::workload_identity::WorkloadIdentityCredential;
use crate::{Error, Result};

/// Credentials tried in order until one returns a token.
///
/// Cheap to clone; clones share the credentials and the memory of which one succeeded.
#[derive(Clone)]
pub struct ChainedTokenCredential {
    inner: Arc<ChainInner>,
}

struct ChainInner {
    /// Names the chain in its error messages.
    name: &'static str,
    sources: Vec<Arc<dyn TokenCredential>>,
    /// The index of the first source that returned a token.
    selected: OnceLock<usize>,
}

impl ChainedTokenCredential {
    /// A chain of `sources`, tried in the given order. Fails with [`Error::InvalidConfig`] when
    /// `sources` is empty.
    pub fn new(sources: Vec<Arc<dyn TokenCredential>>) -> Result<ChainedTokenCredential> {
        Self::named("ChainedTokenCredential", sources)
    }

    fn named(
        name: &'static str,
        sources: Vec<Arc<dyn TokenCredential>>,
    ) -> Result<ChainedTokenCredential> {
        if sources.is_empty() {
            return Err(Error::InvalidConfig(format!("{name} needs at least one credential")));
        }
        Ok(ChainedTokenCredential {
            inner: Arc::new(ChainInner { name, sources, selected: OnceLock::new() }),
        })
    }

    /// The type names of the credentials in the chain, in order.
    #[cfg(test)]
    pub(crate) fn source_names(&self) -> Vec<String> {
        self.inner.sources.iter().map(|source| credential_name(source.as_ref())).collect()
    }
}

#[async_trait]
impl TokenCredential for ChainedTokenCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: &TokenRequestOptions,
    ) -> Result<AccessToken> {
        let inner = &self.inner;
        if let Some(&index) = inner.selected.get() {
            return inner.sources[index].get_token(scopes, options).await;
        }
        let mut attempts: Vec<(String, String)> = Vec::new();
        for (index, source) in inner.sources.iter().enumerate() {
            let name = credential_name(source.as_ref());
            match source.get_token(scopes, options).await {
                Ok(token) => {
                    // A concurrent caller may have selected an earlier source; either is fine.
                    let _ = inner.selected.set(index);
                    return Ok(token);
                }
                Err(Error::CredentialUnavailable(message)) => attempts.push((name, message)),
                Err(error) => {
                    attempts.push((name, error.to_string()));
                    let summary = summary(inner.name, &attempts);
                    return Err(with_message(error, summary));
                }
            }
        }
        Err(Error::CredentialUnavailable(summary(inner.name, &attempts)))
    }
}

impl fmt::Debug for ChainedTokenCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainedTokenCredential")
            .field("name", &self.inner.name)
            .field("sources", &self.inner.sources)
            .field("selected", &self.inner.selected.get())
            .finish()
    }
}

/// Options of [`DefaultAzureCredential`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DefaultAzureCredentialOptions {
    /// Settings of the Environment and Workload identity credentials (`AZURE_AUTHORITY_HOST`,
    /// when set, replaces the authority host).
    pub client_options: ClientOptions,
    /// The managed identity to ask for. `None`: the user-assigned identity whose client id is
    /// `AZURE_CLIENT_ID` when that is set, else the system-assigned identity (as
    /// azure-identity does).
    pub managed_identity_id: Option<ManagedIdentityId>,
    /// Settings of the Managed identity credential. `probe_imds` is set by the chain (on, unless
    /// `AZURE_TOKEN_CREDENTIALS` names the managed identity alone), and `client_options` are
    /// the chain's.
    pub managed_identity: ManagedIdentityCredentialOptions,
    /// Settings of the CLI credential.
    pub cli: CliCredentialOptions,
}

/// The credential chain for code that runs unchanged on a laptop and in production:
/// Environment → Workload identity → Managed identity → CLI, narrowed by
/// `AZURE_TOKEN_CREDENTIALS`.
///
/// Cheap to clone; clones share every credential's token cache.
#[derive(Clone, Debug)]
pub struct DefaultAzureCredential {
    chain: ChainedTokenCredential,
}

impl DefaultAzureCredential {
    /// The chain, configured from the process environment.
    ///
    /// Fails with [`Error::InvalidConfig`] when `AZURE_TOKEN_CREDENTIALS` has an unknown value or
    /// a credential's variables are present but unusable (see each credential's constructor).
    /// Missing variables are not an error: that credential answers
    /// [`Error::CredentialUnavailable`] and the chain moves on.
    pub fn new(options: DefaultAzureCredentialOptions) -> Result<DefaultAzureCredential> {
        Self::from_env(&Env::from_process(), options)
    }

    /// As [`DefaultAzureCredential::new`], configured from `env`.
    pub fn from_env(
        env: &Env,
        options: DefaultAzureCredentialOptions,
    ) -> Result<DefaultAzureCredential> {
        Self::with_clock(env, options, SystemClock::shared())
    }

    pub(crate) fn with_clock(
        env: &Env,
        options: DefaultAzureCredentialOptions,
        clock: SharedClock,
    ) -> Result<DefaultAzureCredential> {
        let selection = Selection::parse(env.get("AZURE_TOKEN_CREDENTIALS"))?;
        let mut sources: Vec<Arc<dyn TokenCredential>> = Vec::new();
        if selection.includes(Kind::Environment) {
            sources.push(Arc::new(EnvironmentCredential::with_clock(
                env,
                options.client_options.clone(),
                clock.clone(),
            )?));
        }
        if selection.includes(Kind::WorkloadIdentity) {
            sources.push(Arc::new(WorkloadIdentityCredential::from_env_with_clock(
                env,
                options.client_options.clone(),
                clock.clone(),
            )?));
        }
        if selection.includes(Kind::ManagedIdentity) {
            let id = options.managed_identity_id.clone().unwrap_or_else(|| {
                env.get("AZURE_CLIENT_ID").map_or(ManagedIdentityId::System, |client_id| {
                    ManagedIdentityId::ClientId(client_id.to_owned())
                })
            });
            let managed_identity = ManagedIdentityCredentialOptions {
                probe_imds: selection != Selection::Only(Kind::ManagedIdentity),
                client_options: options.client_options.clone(),
                ..options.managed_identity.clone()
            };
            let context = Context {
                within_default_chain: true,
                exclude_workload_identity: !selection.includes(Kind::WorkloadIdentity),
                ..Context::of_this_machine()
            };
            sources.push(Arc::new(ManagedIdentityCredential::with_context(
                env,
                id,
                &managed_identity,
                clock.clone(),
                context,
            )?));
        }
        if selection.includes(Kind::Cli) {
            sources.push(Arc::new(CliCredential::with_clock(env, options.cli.clone(), clock)?));
        }
        Ok(DefaultAzureCredential {
            chain: ChainedTokenCredential::named("DefaultAzureCredential", sources)?,
        })
    }

    #[cfg(test)]
    pub(crate) fn source_names(&self) -> Vec<String> {
        self.chain.source_names()
    }
}

#[async_trait]
impl TokenCredential for DefaultAzureCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: &TokenRequestOptions,
    ) -> Result<AccessToken> {
        self.chain.get_token(scopes, options).await
    }
}

/// The credentials of [`DefaultAzureCredential`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Environment,
    WorkloadIdentity,
    ManagedIdentity,
    Cli,
}

/// What `AZURE_TOKEN_CREDENTIALS` keeps of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Selection {
    All,
    Dev,
    Prod,
    Only(Kind),
}

impl Selection {
    pub(crate) fn parse(value: Option<&str>) -> Result<Selection> {
        let Some(value) = value.map(str::trim).filter(|value| !value.is_empty()) else {
            return Ok(Selection::All);
        };
        Ok(match value.to_ascii_lowercase().as_str() {
            "dev" => Selection::Dev,
            "prod" => Selection::Prod,
            "environmentcredential" => Selection::Only(Kind::Environment),
            "workloadidentitycredential" => Selection::Only(Kind::WorkloadIdentity),
            "managedidentitycredential" => Selection::Only(Kind::ManagedIdentity),
            "azureclicredential" | "clicredential" => Selection::Only(Kind::Cli),
            _ => {
                return Err(Error::InvalidConfig(format!(
                    "AZURE_TOKEN_CREDENTIALS {value:?} is not one of dev, prod, EnvironmentCredential, WorkloadIdentityCredential, ManagedIdentityCredential, AzureCliCredential"
                )));
            }
        })
    }

    fn includes(self, kind: Kind) -> bool {
        match self {
            Selection::All => true,
            Selection::Dev => kind == Kind::Cli,
            Selection::Prod => kind != Kind::Cli,
            Selection::Only(only) => kind == only,
        }
    }
}

/// The type name of a credential: the leading identifier of its `Debug` output, which for every
/// credential of this crate (and any `#[derive(Debug)]` type) is its type name.
fn credential_name(credential: &dyn TokenCredential) -> String {
    let debug = format!("{credential:?}");
    let name: String =
        debug.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    if name.is_empty() { "TokenCredential".to_owned() } else { name }
}

/// One message listing every attempt, azure-identity's wording in this crate's style.
fn summary(chain: &str, attempts: &[(String, String)]) -> String {
    let mut message = format!(
        "{chain} failed to retrieve a token from the included credentials; attempted credentials:"
    );
    for (name, reason) in attempts {
        message.push_str(&format!("\n\t{name}: {reason}"));
    }
    message
}

/// `error` with its message replaced by `message`, keeping its kind (and, for an
/// authentication error, its status and OAuth error code).
fn with_message(error: Error, message: String) -> Error {
    match error {
        Error::CredentialUnavailable(_) => Error::CredentialUnavailable(message),
        Error::Authentication { status, error, .. } => {
            Error::Authentication { status, error, description: message }
        }
        Error::Http(_) => Error::Http(message),
        Error::InvalidConfig(_) => Error::InvalidConfig(message),
        Error::InvalidScope(_) => Error::InvalidScope(message),
    }
}

#[cfg(test)]
mod tests;
