//! The [`Issuer`]: signing access tokens with the tenant's active key, publishing the JWKS, and
//! the key schedule (first key, on-demand and scheduled rotation, reload from the store).
//!
//! The hot path ([`Issuer::issue`], [`Issuer::jwks`], [`Issuer::validate`]) reads an
//! `Arc<KeySet>` under a read lock held for a pointer copy, then works without locks or IO.
//! Schedule changes take an async mutex, write the store, and swap in a new `KeySet`.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use crypto::envelope::MasterKey;
use crypto::jws::{Jwks, RsaSigningKey};
use domain::limits::{CLOCK_LEEWAY_SECS, TOKEN_LIFETIME_SECS_MAX};
use domain::{Clock, UnixTime};
use serde::Serialize;
use store::{Store, Write};

use crate::config::IssuerConfig;
use crate::keys::{KeySet, LoadedKey};
use crate::{Error, Result};

/// Signs access tokens for one tenant and manages its signing keys. `Send + Sync`; the server
/// holds it in an `Arc`.
pub struct Issuer {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) master_key: Arc<MasterKey>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Checked by [`IssuerConfig::checked`]; the authority has no trailing slash.
    pub(crate) config: IssuerConfig,
    /// `{authority}/{tenant}/`, built once.
    pub(crate) issuer_v1: String,
    /// `{authority}/{tenant}/v2.0`, built once.
    pub(crate) issuer_v2: String,
    /// The longest lifetime a token gets; retired keys stay published this long (plus leeway)
    /// after they stop signing, so no token outlives its key's publication.
    pub(crate) token_lifetime_secs_max: i64,
    /// The keys in memory. Writers swap the `Arc` while holding `update_lock`.
    pub(crate) keys: RwLock<Arc<KeySet>>,
    /// Serializes schedule changes (load, rotate, reload) within this process.
    update_lock: tokio::sync::Mutex<()>,
}

/// Which access-token format to issue. The resource decides (ARM and Key Vault take v1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenVersion {
    /// `ver` `1.0`, issuer `{authority}/{tenant}/`, `appid`/`appidacr`.
    V1,
    /// `ver` `2.0`, issuer `{authority}/{tenant}/v2.0`, `azp`/`azpacr`.
    V2,
}

/// How the principal authenticated; decides `appidacr`/`azpacr` and the default lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// A client secret: `appidacr` `1`.
    ClientSecret,
    /// A certificate assertion: `appidacr` `2`.
    ClientCertificate,
    /// A federated (workload identity) assertion: `appidacr` `2`.
    FederatedAssertion,
    /// A managed identity through the metadata endpoint: `appidacr` `2`, the longer lifetime.
    ManagedIdentity,
}

/// What to put in a token. The caller has authenticated the principal and checked the
/// audience; the issuer only applies the claim rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// The principal's object id: `oid` and `sub`.
    pub object_id: String,
    /// The principal's app (client) id: `appid` (v1) or `azp` (v2).
    pub app_id: String,
    /// `aud`, exactly as requested (`https://vault.azure.net`, `https://management.azure.com/`).
    pub audience: String,
    /// The token format.
    pub version: TokenVersion,
    /// How the principal authenticated.
    pub credential: CredentialKind,
    /// `xms_mirid`: the ARM id of the managed identity (or of its host for system-assigned).
    pub managed_identity_resource_id: Option<String>,
    /// `xms_az_rid`: the ARM id of the compute resource the token was requested from.
    pub compute_resource_id: Option<String>,
    /// Requested lifetime; `None` takes the configured default for the credential kind. Capped
    /// at the longest configured lifetime (itself at most `TOKEN_LIFETIME_SECS_MAX`).
    pub lifetime_secs: Option<i64>,
}

/// A signed access token and the numbers a token response reports.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The compact JWS. A bearer credential: redacted in `Debug`.
    pub access_token: String,
    /// The signing key's id.
    pub kid: String,
    /// `iat`, seconds since the epoch.
    pub issued_at: i64,
    /// `nbf`, seconds since the epoch.
    pub not_before: i64,
    /// `exp`, seconds since the epoch.
    pub expires_on: i64,
    /// Seconds from issue to expiry.
    pub expires_in: i64,
    /// `uti`, the token's unique id.
    pub token_id: String,
}

/// The outcome of a rotation: the new key and when it starts signing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotatedKey {
    /// The new key's id (published from now on).
    pub kid: String,
    /// When the new key starts signing and the previous one stops.
    pub signs_from: UnixTime,
}

/// The payload of an access token, in Entra's member order. Optional members are left out.
#[derive(Serialize)]
struct AccessTokenClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    aio: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    appid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    appidacr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    azp: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    azpacr: Option<&'a str>,
    idp: &'a str,
    idtyp: &'a str,
    oid: &'a str,
    rh: &'a str,
    sub: &'a str,
    tid: &'a str,
    uti: &'a str,
    ver: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    xms_az_rid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    xms_mirid: Option<&'a str>,
}

impl Issuer {
    /// Loads the tenant's signing keys from the store (decrypting private keys with the master
    /// key, the associated data binding the kid), generating and storing a first RSA-2048 key
    /// when none signs now.
    ///
    /// Two nodes starting together on an empty store may each create a key; both are published,
    /// and after the next [`Issuer::reload`] both nodes sign with the same one.
    pub async fn load(
        store: Arc<dyn Store>,
        master_key: Arc<MasterKey>,
        clock: Arc<dyn Clock>,
        config: IssuerConfig,
    ) -> Result<Issuer> {
        Self::load_inner(store, master_key, clock, config, None).await
    }

    /// [`Issuer::load`], but a first key, if one has to be created, is `first_key` instead of a
    /// generated one. For tests that want stable key material.
    #[doc(hidden)]
    pub async fn load_with_key(
        store: Arc<dyn Store>,
        master_key: Arc<MasterKey>,
        clock: Arc<dyn Clock>,
        config: IssuerConfig,
        first_key: RsaSigningKey,
    ) -> Result<Issuer> {
        Self::load_inner(store, master_key, clock, config, Some(first_key)).await
    }

    /// Signs a token with the key that is active now. CPU only: no IO, no key parsing.
    pub fn issue(&self, request: &TokenRequest) -> Result<IssuedToken> {
        let lifetime_secs = self.lifetime_secs(request)?;
        let now = self.clock.now();
        let keys = self.key_set();
        let key = keys.active(now).ok_or(Error::NoActiveKey)?;

        let issued_at = now.secs();
        let not_before = issued_at;
        let expires_on = issued_at + lifetime_secs;
        let token_id = crypto::random::random_token(16);
        let aio = crypto::random::random_token(48);
        let rh = format!("0.{}", crypto::random::random_token(32));
        let acr = match request.credential {
            CredentialKind::ClientSecret => "1",
            CredentialKind::ClientCertificate
            | CredentialKind::FederatedAssertion
            | CredentialKind::ManagedIdentity => "2",
        };
        let (iss, ver, appid, appidacr, azp, azpacr) = match request.version {
            TokenVersion::V1 => {
                (&self.issuer_v1, "1.0", Some(request.app_id.as_str()), Some(acr), None, None)
            }
            TokenVersion::V2 => {
                (&self.issuer_v2, "2.0", None, None, Some(request.app_id.as_str()), Some(acr))
            }
        };
        let claims = AccessTokenClaims {
            aud: &request.audience,
            iss,
            iat: issued_at,
            nbf: not_before,
            exp: expires_on,
            aio: &aio,
            appid,
            appidacr,
            azp,
            azpacr,
            idp: &self.issuer_v1,
            idtyp: "app",
            oid: &request.object_id,
            rh: &rh,
            sub: &request.object_id,
            tid: &self.config.tenant_id,
            uti: &token_id,
            ver,
            xms_az_rid: request.compute_resource_id.as_deref(),
            xms_mirid: request.managed_identity_resource_id.as_deref(),
        };

        assert!(expires_on > not_before, "a token expires after it becomes valid");
        assert!(expires_on - issued_at <= TOKEN_LIFETIME_SECS_MAX, "token lifetime is capped");
        assert!(key.signs_at(now), "the signing key is active");
        debug_assert!(
            key.record.published_until.is_none_or(|until| expires_on * 1000 <= until),
            "the key stays published until the token expires"
        );
        let access_token = key.signer.sign_json(&claims).map_err(Error::Crypto)?;
        Ok(IssuedToken {
            access_token,
            kid: key.kid.clone(),
            issued_at,
            not_before,
            expires_on,
            expires_in: expires_on - issued_at,
            token_id,
        })
    }

    /// The keys to publish now, as Entra's JWKS: every key whose publication window includes
    /// now (pre-published next keys, the active key, retired keys until their last token
    /// expired), each with `kty`, `use` `sig`, `kid` = `x5t` (base64url SHA-1 of the key's
    /// self-signed certificate), `n`, `e` and `x5c`. `issuer` is set only when `v2` is true.
    pub fn jwks(&self, v2: bool) -> Jwks {
        let now = self.clock.now();
        let keys = self.key_set();
        let issuer = v2.then_some(&self.issuer_v2);
        Jwks {
            keys: keys
                .published(now)
                .map(|key| {
                    let mut jwk = key.jwk.clone();
                    jwk.issuer = issuer.cloned();
                    jwk
                })
                .collect(),
        }
    }

    /// The v1 issuer, `{authority}/{tenant}/`.
    pub fn issuer_v1(&self) -> String {
        self.issuer_v1.clone()
    }

    /// The v2 issuer, `{authority}/{tenant}/v2.0`.
    pub fn issuer_v2(&self) -> String {
        self.issuer_v2.clone()
    }

    /// The configuration in use (authority without trailing slash).
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// On-demand rotation: generates a new key that is published now and signs from
    /// now + `activate_in_secs` (0 to `key_rotation_secs`). Every key that would still sign
    /// then stops signing at that time and stays published until that time plus the longest
    /// token lifetime plus `CLOCK_LEEWAY_SECS`. All key rows change in one `apply`.
    pub async fn rotate(&self, activate_in_secs: i64) -> Result<RotatedKey> {
        if !(0..=self.config.key_rotation_secs).contains(&activate_in_secs) {
            return Err(Error::InvalidRequest("activation must be between now and one rotation"));
        }
        let _guard = self.update_lock.lock().await;
        self.reload_locked().await?;
        self.rotate_locked(activate_in_secs).await
    }

    /// Re-reads the keys from the store (another node may have rotated) and drops keys past
    /// their publication. Cheap when nothing changed: one query, no decryption.
    pub async fn reload(&self) -> Result<()> {
        let _guard = self.update_lock.lock().await;
        self.reload_locked().await
    }

    /// One step of the scheduled rotation: reloads the keys (picking up other nodes' rotations,
    /// dropping keys past publication), then rotates when the active key has signed for
    /// `key_rotation_secs - key_publish_lead_secs` and no next key is pending; the new key
    /// signs after `key_publish_lead_secs`. Returns whether it rotated.
    ///
    /// Call it about every minute on the one node that runs the deployment's background jobs
    /// (the server holds a database lease for that); other nodes call [`Issuer::reload`].
    pub async fn rotate_if_due(&self) -> Result<bool> {
        let _guard = self.update_lock.lock().await;
        self.reload_locked().await?;
        let now = self.clock.now();
        let keys = self.key_set();
        if keys.has_pending(now) {
            return Ok(false);
        }
        let active = keys.active(now).ok_or(Error::NoActiveKey)?;
        let rotate_at = active
            .signs_from()
            .plus_secs(self.config.key_rotation_secs - self.config.key_publish_lead_secs);
        if now < rotate_at {
            return Ok(false);
        }
        let rotated = self.rotate_locked(self.config.key_publish_lead_secs).await?;
        tracing::info!(
            kid = %rotated.kid,
            signs_from = rotated.signs_from.secs(),
            "scheduled signing key rotation"
        );
        Ok(true)
    }

    async fn load_inner(
        store: Arc<dyn Store>,
        master_key: Arc<MasterKey>,
        clock: Arc<dyn Clock>,
        config: IssuerConfig,
        first_key: Option<RsaSigningKey>,
    ) -> Result<Issuer> {
        let config = config.checked()?;
        let issuer = Issuer {
            issuer_v1: format!("{}/{}/", config.authority, config.tenant_id),
            issuer_v2: format!("{}/{}/v2.0", config.authority, config.tenant_id),
            token_lifetime_secs_max: config.token_lifetime_secs_max(),
            store,
            master_key,
            clock,
            config,
            keys: RwLock::new(Arc::new(KeySet { keys: Vec::new() })),
            update_lock: tokio::sync::Mutex::new(()),
        };
        {
            let _guard = issuer.update_lock.lock().await;
            issuer.reload_locked().await?;
            if issuer.key_set().active(issuer.clock.now()).is_none() {
                let key = match first_key {
                    Some(key) => key,
                    None => generate_key().await?,
                };
                let now = issuer.clock.now();
                let key =
                    LoadedKey::create(key, &issuer.config.tenant_id, &issuer.master_key, now, now)?;
                issuer.store.apply(vec![Write::PutSigningKey(key.record.clone())]).await?;
                tracing::info!(kid = %key.kid, tenant = %issuer.config.tenant_id, "created signing key");
                let mut keys = issuer.key_set().keys.clone();
                keys.push(Arc::new(key));
                issuer.install(keys);
            }
        }
        Ok(issuer)
    }

    /// The lifetime a request gets, or why it cannot have one.
    fn lifetime_secs(&self, request: &TokenRequest) -> Result<i64> {
        let default = match request.credential {
            CredentialKind::ManagedIdentity => self.config.managed_identity_lifetime_secs,
            CredentialKind::ClientSecret
            | CredentialKind::ClientCertificate
            | CredentialKind::FederatedAssertion => self.config.client_credential_lifetime_secs,
        };
        let requested = request.lifetime_secs.unwrap_or(default);
        if requested <= 0 {
            return Err(Error::InvalidRequest("token lifetime must be positive"));
        }
        Ok(requested.min(self.token_lifetime_secs_max))
    }

    /// The current key set (a pointer copy under the read lock).
    pub(crate) fn key_set(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the key set, ordered by (`signs_from`, kid). Call with `update_lock` held.
    fn install(&self, mut keys: Vec<Arc<LoadedKey>>) {
        keys.sort_by(|a, b| (a.signs_from(), &a.kid).cmp(&(b.signs_from(), &b.kid)));
        // The lock guards only a pointer swap, so a panic elsewhere cannot leave it half done.
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(KeySet { keys });
    }

    async fn reload_locked(&self) -> Result<()> {
        let records = self.store.list_signing_keys(&self.config.tenant_id).await?;
        let now = self.clock.now();
        let current = self.key_set();
        if current.is_current(&records, now) {
            return Ok(());
        }
        for record in &records {
            assert_eq!(record.tenant_id, self.config.tenant_id, "the store filters by tenant");
        }
        let next = current.rebuild(records, &self.master_key, now)?;
        tracing::debug!(keys = next.keys.len(), "signing keys reloaded");
        self.install(next.keys);
        Ok(())
    }

    async fn rotate_locked(&self, activate_in_secs: i64) -> Result<RotatedKey> {
        let new_key = generate_key().await?;
        // Read the clock after generating: that can take a moment.
        let now = self.clock.now();
        let activation = now.plus_secs(activate_in_secs);
        let retired_published_until =
            activation.plus_secs(self.token_lifetime_secs_max + CLOCK_LEEWAY_SECS);
        let current = self.key_set();

        let mut keys = Vec::with_capacity(current.keys.len() + 1);
        let mut writes = Vec::with_capacity(current.keys.len() + 1);
        for key in &current.keys {
            if key.signs_until().is_some_and(|until| until <= activation) {
                keys.push(Arc::clone(key));
                continue;
            }
            // The key would still sign at activation: it stops then (a pending key that has
            // not started by then never signs) and stays published until its last token died.
            let mut record = key.record.clone();
            record.signs_until = Some(activation.max(key.signs_from()).millis());
            record.published_until = Some(retired_published_until.millis());
            writes.push(Write::PutSigningKey(record.clone()));
            keys.push(Arc::new(key.with_record(record)?));
        }
        let new_key =
            LoadedKey::create(new_key, &self.config.tenant_id, &self.master_key, now, activation)?;
        writes.push(Write::PutSigningKey(new_key.record.clone()));
        let rotated = RotatedKey { kid: new_key.kid.clone(), signs_from: activation };
        keys.push(Arc::new(new_key));

        self.store.apply(writes).await?;
        self.install(keys);
        tracing::info!(kid = %rotated.kid, signs_from = activation.secs(), "signing key rotated");
        Ok(rotated)
    }
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("config", &self.config)
            .field("store", &self.store.backend())
            .field("master_key", &self.master_key)
            .field("keys", &self.key_set())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("access_token", &format_args!("[redacted]"))
            .field("kid", &self.kid)
            .field("issued_at", &self.issued_at)
            .field("not_before", &self.not_before)
            .field("expires_on", &self.expires_on)
            .field("expires_in", &self.expires_in)
            .field("token_id", &self.token_id)
            .finish()
    }
}

/// A new RSA-2048 key, generated on a blocking thread (it takes tens of milliseconds).
async fn generate_key() -> Result<RsaSigningKey> {
    tokio::task::spawn_blocking(RsaSigningKey::generate_2048)
        .await
        .map_err(Error::Task)?
        .map_err(Error::Crypto)
}

#[cfg(test)]
mod tests;
