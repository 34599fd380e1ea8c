//! What the token endpoint needs to know about a client, parsed once from its principal and
//! credential rows and cached briefly ([`Directory`]).

use std::sync::Arc;

use domain::TtlCache;
use store::{CredentialRecord, PrincipalRecord, Store};

/// How long a cached client entry is trusted before it is read again (other nodes may change
/// credentials; this node invalidates its own changes at once).
const CLIENT_CACHE_TTL_MILLIS: i64 = 5_000;
const CLIENT_CACHE_ENTRIES_MAX: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    ServicePrincipal,
    ManagedIdentity,
    Other,
}

/// What the token endpoint needs to know about a client, parsed once.
pub struct ClientEntry {
    pub object_id: String,
    pub app_id: String,
    pub display_name: String,
    pub kind: PrincipalKind,
    pub enabled: bool,
    pub secrets: Vec<SecretCredential>,
    pub certificates: Vec<CertificateCredential>,
}

pub struct SecretCredential {
    pub hash: Vec<u8>,
    pub expires_at: i64,
}

pub struct CertificateCredential {
    pub x5t_sha1: String,
    pub x5t_sha256: String,
    pub public_key: crypto::jws::RsaPublicKey,
}

/// Clients by app id, read through to the store (`None`: no such client, cached too).
pub struct Directory {
    store: Arc<dyn Store>,
    clock: Arc<dyn domain::Clock>,
    cache: TtlCache<String, Option<Arc<ClientEntry>>>,
}

impl Directory {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn domain::Clock>) -> Directory {
        Directory {
            store,
            clock,
            cache: TtlCache::new(CLIENT_CACHE_TTL_MILLIS, CLIENT_CACHE_ENTRIES_MAX),
        }
    }

    /// The client with this app id, or `None` when there is no such principal.
    pub async fn client(&self, app_id: &str) -> Result<Option<Arc<ClientEntry>>, store::Error> {
        if let Some(entry) = self.cache.get(&app_id.to_owned(), self.clock.now()) {
            return Ok(entry);
        }
        let entry = match self.store.get_principal_by_app_id(app_id).await? {
            Some(principal) => {
                let credentials = self.store.list_credentials(&principal.object_id).await?;
                Some(Arc::new(client_entry(principal, &credentials)))
            }
            None => {
                // The same two queries as for a known client: how long a lookup takes does not
                // tell whether the client exists.
                self.store.list_credentials(app_id).await?;
                None
            }
        };
        self.cache.insert(app_id.to_owned(), entry.clone(), self.clock.now());
        Ok(entry)
    }

    /// Forgets everything cached (after a change to principals or credentials on this node).
    pub fn invalidate(&self) {
        self.cache.clear();
    }

    /// Whether tokens for `resource` are v2: the resource is an app registered here, named by
    /// its app id or `api://{appId}`.
    pub async fn accepts_v2(&self, resource: &str) -> bool {
        let app_id = resource.strip_prefix("api://").unwrap_or(resource);
        if app_id.parse::<domain::Guid>().is_err() {
            return false;
        }
        matches!(self.client(app_id).await, Ok(Some(entry)) if entry.kind == PrincipalKind::ServicePrincipal)
    }
}

fn client_entry(principal: PrincipalRecord, credentials: &[CredentialRecord]) -> ClientEntry {
    let kind = match principal.kind.as_str() {
        "ServicePrincipal" => PrincipalKind::ServicePrincipal,
        "ManagedIdentity" => PrincipalKind::ManagedIdentity,
        _ => PrincipalKind::Other,
    };
    let mut secrets = Vec::new();
    let mut certificates = Vec::new();
    for credential in credentials {
        match (credential.kind.as_str(), &credential.secret_hash, &credential.certificate_der) {
            ("secret", Some(hash), _) => secrets
                .push(SecretCredential { hash: hash.clone(), expires_at: credential.expires_at }),
            ("certificate", _, Some(der)) => {
                match crypto::jws::RsaPublicKey::from_certificate_der(der) {
                    Ok(public_key) => certificates.push(CertificateCredential {
                        x5t_sha1: crypto::jws::x5t_sha1(der),
                        x5t_sha256: crypto::jws::x5t_sha256(der),
                        public_key,
                    }),
                    Err(error) => {
                        tracing::warn!(credential = %credential.id, %error, "unusable certificate credential")
                    }
                }
            }
            _ => {}
        }
    }
    ClientEntry {
        object_id: principal.object_id,
        app_id: principal.app_id,
        display_name: principal.display_name,
        kind,
        enabled: principal.enabled,
        secrets,
        certificates,
    }
}
