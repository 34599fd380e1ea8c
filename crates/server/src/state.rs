//! What every handler shares: the store, the clock, the deployment's identity and the keys
//! derived from the master key. Built once at start-up; cheap to clone.

use std::sync::Arc;

use crate::bootstrap::Deployment;

// The token service and control plane read the fields the health routes do not.
#[allow(dead_code)]
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn store::Store>,
    pub clock: Arc<dyn domain::Clock>,
    pub deployment: Arc<Deployment>,
    pub hasher: Arc<crypto::hash::SecretHasher>,
    pub master_key: Arc<crypto::envelope::MasterKey>,
    /// `https://{public_host}:{port}` without a trailing slash.
    pub base_url: Arc<str>,
    pub dns_suffix: Arc<str>,
}
