//! The issuer's configuration: who it is (authority, tenant), how long tokens live and how keys
//! rotate.

use domain::limits::{
    CLIENT_CREDENTIAL_TOKEN_LIFETIME_SECS, KEY_ROTATION_SECS, MANAGED_IDENTITY_TOKEN_LIFETIME_SECS,
    TOKEN_LIFETIME_SECS_MAX,
};

use crate::{Error, Result};

/// Default for [`IssuerConfig::key_publish_lead_secs`]: a day, so every verifier that caches
/// the JWKS for up to a day has seen a key before the first token it signs.
pub(crate) const KEY_PUBLISH_LEAD_SECS_DEFAULT: i64 = 24 * 3600;

/// How one tenant's issuer behaves. Build it with [`IssuerConfig::new`] and change fields as
/// needed; [`crate::Issuer::load`] checks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerConfig {
    /// The token service's base URL, such as `https://localhost:8443`. A trailing slash is
    /// removed when the issuer loads.
    pub authority: String,
    /// The tenant whose tokens this issuer signs.
    pub tenant_id: String,
    /// Lifetime of tokens for client secrets, certificates and federated assertions.
    pub client_credential_lifetime_secs: i64,
    /// Lifetime of managed-identity tokens.
    pub managed_identity_lifetime_secs: i64,
    /// How long a scheduled new key is published before it starts signing.
    pub key_publish_lead_secs: i64,
    /// How long a key signs before the schedule replaces it.
    pub key_rotation_secs: i64,
}

impl IssuerConfig {
    /// The defaults from `domain::limits` for `authority` and `tenant_id`.
    pub fn new(authority: impl Into<String>, tenant_id: impl Into<String>) -> Self {
        IssuerConfig {
            authority: authority.into(),
            tenant_id: tenant_id.into(),
            client_credential_lifetime_secs: CLIENT_CREDENTIAL_TOKEN_LIFETIME_SECS,
            managed_identity_lifetime_secs: MANAGED_IDENTITY_TOKEN_LIFETIME_SECS,
            key_publish_lead_secs: KEY_PUBLISH_LEAD_SECS_DEFAULT,
            key_rotation_secs: KEY_ROTATION_SECS,
        }
    }

    /// The longest lifetime any token of this issuer gets: the longer configured lifetime.
    /// Retired keys stay published this long after they stop signing.
    pub(crate) fn token_lifetime_secs_max(&self) -> i64 {
        self.client_credential_lifetime_secs
            .max(self.managed_identity_lifetime_secs)
            .min(TOKEN_LIFETIME_SECS_MAX)
    }

    /// The configuration with the authority normalized, or why it is unusable.
    pub(crate) fn checked(mut self) -> Result<Self> {
        let invalid = |message: String| Err(Error::InvalidConfig(message));
        self.authority = self.authority.trim_end_matches('/').to_owned();
        if self.authority.is_empty() {
            return invalid("authority is empty".to_owned());
        }
        if self.tenant_id.is_empty() || self.tenant_id.contains('/') {
            return invalid(format!("tenant id {:?} is not a path segment", self.tenant_id));
        }
        for (name, value) in [
            ("client_credential_lifetime_secs", self.client_credential_lifetime_secs),
            ("managed_identity_lifetime_secs", self.managed_identity_lifetime_secs),
        ] {
            if !(1..=TOKEN_LIFETIME_SECS_MAX).contains(&value) {
                return invalid(format!(
                    "{name} is {value}, not between 1 and {TOKEN_LIFETIME_SECS_MAX}"
                ));
            }
        }
        if self.key_publish_lead_secs < 0 {
            return invalid("key_publish_lead_secs is negative".to_owned());
        }
        // A key must sign for longer than its successor's publication lead, or the schedule
        // would rotate again before the previous rotation took effect.
        if self.key_rotation_secs <= self.key_publish_lead_secs {
            return invalid("key_rotation_secs must exceed key_publish_lead_secs".to_owned());
        }
        if self.key_rotation_secs <= self.token_lifetime_secs_max() {
            return invalid("key_rotation_secs must exceed every token lifetime".to_owned());
        }
        Ok(self)
    }
}
