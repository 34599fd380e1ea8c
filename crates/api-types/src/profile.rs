//! The CLI profile: where the server is and which credential to use, kept under the data
//! directory the way `az` keeps `~/.azure`. `ambient dev` writes one for its admin; `ambient
//! login` writes one for the principal that logs in.

use serde::{Deserialize, Serialize};

/// `profile.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The server's base URL, `https://host:port`.
    pub server: String,
    /// The tenant id.
    pub tenant: String,
    /// The default subscription id, if the principal has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// A PEM file with the CA that signed the server's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// The credential the CLI signs in with.
    pub credential: ProfileCredential,
}

/// How the CLI proves who it is. Secrets are never stored in the profile itself, only a
/// reference to a file (mode 0600) that holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ProfileCredential {
    /// A client secret kept in `secretFile` (a JSON file with a `password` field, or the bare
    /// secret).
    #[serde(rename_all = "camelCase")]
    Secret {
        /// The application (client) id.
        app_id: String,
        /// Path of the file with the secret.
        secret_file: String,
    },
    /// A certificate and private key in one PEM file.
    #[serde(rename_all = "camelCase")]
    Certificate {
        /// The application (client) id.
        app_id: String,
        /// Path of the PEM file.
        certificate_file: String,
    },
}
