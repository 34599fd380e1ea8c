//! What every handler shares: the store, the clock, the deployment's identity, the token
//! issuer, the sign-in log, the client directory and the keys derived from the master key.
//! Built once at start-up; cheap to clone.

use std::sync::Arc;

use crate::bootstrap::Deployment;
use crate::directory::Directory;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn store::Store>,
    pub clock: Arc<dyn domain::Clock>,
    pub deployment: Arc<Deployment>,
    pub hasher: Arc<crypto::hash::SecretHasher>,
    pub issuer: Arc<issuer::Issuer>,
    pub sign_in_log: issuer::SignInLog,
    pub directory: Arc<Directory>,
    /// `https://{public_host}:{port}` without a trailing slash.
    pub base_url: Arc<str>,
    pub dns_suffix: Arc<str>,
}
