//! Key Vault semantics for secrets: versions, attributes (`enabled`, `nbf`, `exp`), tags,
//! soft delete with recovery and purge, backup and restore, and encryption at rest.
//!
//! [`Vault`] works on one vault at a time: `Vault::new(store, master_key, vault_key, policy,
//! now)`, then `set`, `get`, `update`, `list`, `delete`, `recover`, `purge`, `backup`, `restore`.
//! Values are sealed with the master key (AES-256-GCM envelope, AAD binding vault, name and
//! version) before they reach the store, and opened only by `get`. Authorization is the
//! caller's business (the server checks RBAC data actions first).

use base64::Engine as _;
use domain::{Guid, Secret, UnixTime};
use serde::{Deserialize, Serialize};
use store::{Store, VaultSecretRecord, VaultSecretVersionRecord, Write};

/// Key Vault's limit on a secret value.
pub const VALUE_BYTES_MAX: usize = domain::limits::SECRET_VALUE_BYTES_MAX;
const NAME_CHARS_MAX: usize = 127;
const TAGS_MAX: usize = 15;

/// What went wrong, in Key Vault's terms.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `SecretNotFound` (404).
    #[error(
        "A secret with (name/id) {0} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
    )]
    NotFound(String),
    /// `BadParameter` (400).
    #[error("{0}")]
    BadParameter(String),
    /// `Conflict` (409) with the inner code.
    #[error("{message}")]
    Conflict { inner: &'static str, message: String },
    /// `Forbidden` (403) with the inner code: `SecretDisabled`, `SecretExpired`, `SecretNotYetValid`.
    #[error("{message}")]
    Forbidden { inner: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] store::Error),
    /// A stored value did not decrypt: wrong master key or damaged row.
    #[error("a stored secret could not be decrypted")]
    Crypto(#[source] crypto::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The vault's deletion policy (from its control-plane properties).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub soft_delete: bool,
    pub retention_days: i64,
}

/// Attributes a caller may set.
#[derive(Debug, Clone, Default)]
pub struct AttributesInput {
    pub enabled: Option<bool>,
    pub not_before: Option<Option<i64>>,
    pub expires: Option<Option<i64>>,
}

/// One secret version as Key Vault shows it. `value` is present only from `get`.
#[derive(Debug, Clone)]
pub struct SecretView {
    pub name: String,
    pub version: String,
    pub value: Option<Secret<String>>,
    pub content_type: Option<String>,
    /// JSON object text.
    pub tags: String,
    pub enabled: bool,
    pub not_before: Option<i64>,
    pub expires: Option<i64>,
    /// Unix seconds.
    pub created: i64,
    pub updated: i64,
    /// `(deleted, scheduled purge)` in Unix seconds, for deleted secrets.
    pub deleted: Option<(i64, i64)>,
    pub recovery_level: &'static str,
    pub recoverable_days: i64,
}

/// The operations on one vault's secrets.
pub struct Vault<'a> {
    store: &'a dyn Store,
    master_key: &'a crypto::envelope::MasterKey,
    vault_key: String,
    policy: Policy,
    now: UnixTime,
}

/// Checks a secret name: 1 to 127 letters, digits and `-` (`^[0-9a-zA-Z-]+$`, Key Vault's
/// rule), not starting with `-` (issue 17: such a name reads as an option to every CLI; Azure's
/// documented rule does not say, so this is the stricter reading).
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > NAME_CHARS_MAX
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        || name.starts_with('-')
    {
        let shown: String = name.chars().take(NAME_CHARS_MAX).collect();
        return Err(Error::BadParameter(format!(
            "The request URI contains an invalid name: {shown}. Secret names are 1 to 127 characters of letters, digits and '-', and do not start with '-'."
        )));
    }
    Ok(())
}

/// Checks a version segment: 32 hex digits.
pub fn check_version(version: &str) -> Result<()> {
    if version.len() != 32 || !version.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::BadParameter(format!(
            "The version '{version}' is not valid: versions are 32 hexadecimal digits."
        )));
    }
    Ok(())
}

fn check_tags(tags: &serde_json::Value) -> Result<String> {
    match tags {
        serde_json::Value::Object(map)
            if map.len() <= TAGS_MAX && map.values().all(serde_json::Value::is_string) =>
        {
            Ok(tags.to_string())
        }
        serde_json::Value::Null => Ok("{}".to_owned()),
        _ => Err(Error::BadParameter(format!("Tags must be at most {TAGS_MAX} string values."))),
    }
}

impl<'a> Vault<'a> {
    pub fn new(
        store: &'a dyn Store,
        master_key: &'a crypto::envelope::MasterKey,
        vault_key: &str,
        policy: Policy,
        now: UnixTime,
    ) -> Vault<'a> {
        Vault { store, master_key, vault_key: vault_key.to_ascii_lowercase(), policy, now }
    }

    fn aad(&self, name_key: &str, version: &str) -> Vec<u8> {
        format!("vault-secret/{}/{name_key}/{version}", self.vault_key).into_bytes()
    }

    fn recovery(&self) -> (&'static str, i64) {
        if self.policy.soft_delete {
            if self.policy.retention_days < 90 {
                ("CustomizedRecoverable+Purgeable", self.policy.retention_days)
            } else {
                ("Recoverable+Purgeable", 90)
            }
        } else {
            ("Purgeable", 0)
        }
    }

    fn view(
        &self,
        secret: &VaultSecretRecord,
        version: &VaultSecretVersionRecord,
        value: Option<Secret<String>>,
    ) -> SecretView {
        let (recovery_level, recoverable_days) = self.recovery();
        SecretView {
            name: secret.name.clone(),
            version: version.version.clone(),
            value,
            content_type: version.content_type.clone(),
            tags: version.tags.clone(),
            enabled: version.enabled,
            not_before: version.not_before,
            expires: version.expires,
            created: version.created_at / 1000,
            updated: version.updated_at / 1000,
            deleted: secret
                .deleted_at
                .map(|at| (at / 1000, secret.scheduled_purge_at.unwrap_or(at) / 1000)),
            recovery_level,
            recoverable_days,
        }
    }

    async fn live(&self, name: &str) -> Result<VaultSecretRecord> {
        check_name(name)?;
        match self.store.get_vault_secret(&self.vault_key, &name.to_ascii_lowercase()).await? {
            Some(secret) if secret.deleted_at.is_none() => Ok(secret),
            _ => Err(Error::NotFound(name.to_owned())),
        }
    }

    async fn deleted(&self, name: &str) -> Result<VaultSecretRecord> {
        check_name(name)?;
        match self.store.get_vault_secret(&self.vault_key, &name.to_ascii_lowercase()).await? {
            Some(secret) if secret.deleted_at.is_some() => Ok(secret),
            _ => Err(Error::NotFound(name.to_owned())),
        }
    }

    async fn version_of(
        &self,
        secret: &VaultSecretRecord,
        version: Option<&str>,
    ) -> Result<VaultSecretVersionRecord> {
        let wanted = match version {
            Some(version) if !version.is_empty() => {
                check_version(version)?;
                version.to_ascii_lowercase()
            }
            _ => secret.current_version.clone(),
        };
        self.store
            .get_vault_secret_version(&self.vault_key, &secret.name_key, &wanted)
            .await?
            .ok_or_else(|| Error::NotFound(format!("{}/{wanted}", secret.name)))
    }

    /// Sets a new version (creating the secret on first use).
    pub async fn set(
        &self,
        name: &str,
        value: &str,
        content_type: Option<String>,
        tags: &serde_json::Value,
        attributes: &AttributesInput,
    ) -> Result<SecretView> {
        check_name(name)?;
        if value.len() > VALUE_BYTES_MAX {
            return Err(Error::BadParameter(format!(
                "The secret value is larger than {VALUE_BYTES_MAX} bytes."
            )));
        }
        let tags = check_tags(tags)?;
        let name_key = name.to_ascii_lowercase();
        let existing = self.store.get_vault_secret(&self.vault_key, &name_key).await?;
        if existing.as_ref().is_some_and(|secret| secret.deleted_at.is_some()) {
            return Err(Error::Conflict {
                inner: "ObjectIsDeletedButRecoverable",
                message: format!(
                    "Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged."
                ),
            });
        }
        let now = self.now.millis();
        let version = Guid::new_random().simple();
        let record = VaultSecretVersionRecord {
            vault_key: self.vault_key.clone(),
            name_key: name_key.clone(),
            version: version.clone(),
            value: self.master_key.seal(value.as_bytes(), &self.aad(&name_key, &version)),
            content_type,
            tags,
            enabled: attributes.enabled.unwrap_or(true),
            not_before: attributes.not_before.flatten(),
            expires: attributes.expires.flatten(),
            created_at: now,
            updated_at: now,
        };
        let secret = VaultSecretRecord {
            vault_key: self.vault_key.clone(),
            name_key,
            name: existing.as_ref().map_or_else(|| name.to_owned(), |secret| secret.name.clone()),
            current_version: version,
            deleted_at: None,
            scheduled_purge_at: None,
            created_at: existing.as_ref().map_or(now, |secret| secret.created_at),
            updated_at: now,
        };
        // The secret row first: versions reference it.
        self.store
            .apply(vec![
                Write::PutVaultSecret(secret.clone()),
                Write::PutVaultSecretVersion(record.clone()),
            ])
            .await?;
        Ok(self.view(&secret, &record, Some(Secret::new(value.to_owned()))))
    }

    /// The value of a version (the current one when `version` is `None` or empty). Disabled,
    /// expired and not-yet-valid versions are refused, as Key Vault documents.
    pub async fn get(&self, name: &str, version: Option<&str>) -> Result<SecretView> {
        let (secret, record) = self.load(name, version).await?;
        self.reveal(&secret, &record)
    }

    /// The rows behind a `get`, for callers that cache them (values stay sealed in them).
    pub async fn load(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<(VaultSecretRecord, VaultSecretVersionRecord)> {
        let secret = self.live(name).await?;
        let record = self.version_of(&secret, version).await?;
        Ok((secret, record))
    }

    /// Checks a version's attributes and opens its value.
    pub fn reveal(
        &self,
        secret: &VaultSecretRecord,
        record: &VaultSecretVersionRecord,
    ) -> Result<SecretView> {
        let now = self.now.secs();
        if !record.enabled {
            return Err(Error::Forbidden {
                inner: "SecretDisabled",
                message: "Operation get is not allowed on a disabled secret.".to_owned(),
            });
        }
        if record.expires.is_some_and(|exp| exp <= now) {
            return Err(Error::Forbidden {
                inner: "SecretExpired",
                message: "Operation get is not allowed on an expired secret.".to_owned(),
            });
        }
        if record.not_before.is_some_and(|nbf| nbf > now) {
            return Err(Error::Forbidden {
                inner: "SecretNotYetValid",
                message: "Operation get is not allowed on a secret that is not yet valid."
                    .to_owned(),
            });
        }
        let plain = self
            .master_key
            .open(&record.value, &self.aad(&secret.name_key, &record.version))
            .map_err(Error::Crypto)?;
        let value = String::from_utf8(plain.to_vec())
            .map_err(|_| Error::BadParameter("the stored value is not UTF-8".to_owned()))?;
        Ok(self.view(secret, record, Some(Secret::new(value))))
    }

    /// Changes attributes, tags or content type of a version; never the value.
    pub async fn update(
        &self,
        name: &str,
        version: Option<&str>,
        content_type: Option<Option<String>>,
        tags: Option<&serde_json::Value>,
        attributes: &AttributesInput,
    ) -> Result<SecretView> {
        let secret = self.live(name).await?;
        let mut record = self.version_of(&secret, version).await?;
        if let Some(content_type) = content_type {
            record.content_type = content_type;
        }
        if let Some(tags) = tags {
            record.tags = check_tags(tags)?;
        }
        if let Some(enabled) = attributes.enabled {
            record.enabled = enabled;
        }
        if let Some(not_before) = attributes.not_before {
            record.not_before = not_before;
        }
        if let Some(expires) = attributes.expires {
            record.expires = expires;
        }
        record.updated_at = self.now.millis();
        self.store.apply(vec![Write::PutVaultSecretVersion(record.clone())]).await?;
        Ok(self.view(&secret, &record, None))
    }

    /// Live secrets by name (properties of their current versions), after `after` (a name key).
    pub async fn list(&self, after: Option<&str>, limit: i64) -> Result<Vec<SecretView>> {
        self.list_where(false, after, limit).await
    }

    /// Soft-deleted secrets.
    pub async fn list_deleted(&self, after: Option<&str>, limit: i64) -> Result<Vec<SecretView>> {
        self.list_where(true, after, limit).await
    }

    async fn list_where(
        &self,
        deleted: bool,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SecretView>> {
        let mut views = Vec::new();
        for secret in self.store.list_vault_secrets(&self.vault_key, deleted, after, limit).await? {
            if let Ok(record) = self.version_of(&secret, None).await {
                views.push(self.view(&secret, &record, None));
            }
        }
        Ok(views)
    }

    /// Every version of a live secret, oldest first.
    pub async fn versions(&self, name: &str) -> Result<Vec<SecretView>> {
        let secret = self.live(name).await?;
        let records =
            self.store.list_vault_secret_versions(&self.vault_key, &secret.name_key).await?;
        Ok(records.iter().map(|record| self.view(&secret, record, None)).collect())
    }

    /// Deletes a secret: soft when the vault keeps deleted secrets, else for good.
    pub async fn delete(&self, name: &str) -> Result<SecretView> {
        let mut secret = self.live(name).await?;
        let record = self.version_of(&secret, None).await?;
        if !self.policy.soft_delete {
            self.store
                .apply(vec![Write::PurgeVaultSecret {
                    vault_key: self.vault_key.clone(),
                    name_key: secret.name_key.clone(),
                }])
                .await?;
            let mut view = self.view(&secret, &record, None);
            view.deleted = Some((self.now.secs(), self.now.secs()));
            return Ok(view);
        }
        let now = self.now.millis();
        secret.deleted_at = Some(now);
        secret.scheduled_purge_at = Some(now + self.policy.retention_days * 86_400 * 1000);
        secret.updated_at = now;
        self.store.apply(vec![Write::PutVaultSecret(secret.clone())]).await?;
        Ok(self.view(&secret, &record, None))
    }

    pub async fn get_deleted(&self, name: &str) -> Result<SecretView> {
        let secret = self.deleted(name).await?;
        let record = self.version_of(&secret, None).await?;
        Ok(self.view(&secret, &record, None))
    }

    /// Brings a soft-deleted secret back.
    pub async fn recover(&self, name: &str) -> Result<SecretView> {
        let mut secret = self.deleted(name).await?;
        secret.deleted_at = None;
        secret.scheduled_purge_at = None;
        secret.updated_at = self.now.millis();
        self.store.apply(vec![Write::PutVaultSecret(secret.clone())]).await?;
        let record = self.version_of(&secret, None).await?;
        Ok(self.view(&secret, &record, None))
    }

    /// Deletes a soft-deleted secret for good.
    pub async fn purge(&self, name: &str) -> Result<()> {
        let secret = self.deleted(name).await?;
        self.store
            .apply(vec![Write::PurgeVaultSecret {
                vault_key: self.vault_key.clone(),
                name_key: secret.name_key,
            }])
            .await?;
        Ok(())
    }

    /// A protected blob with every version of a secret, restorable into a vault of this deployment.
    pub async fn backup(&self, name: &str) -> Result<String> {
        let secret = self.live(name).await?;
        let mut versions = Vec::new();
        for record in
            self.store.list_vault_secret_versions(&self.vault_key, &secret.name_key).await?
        {
            let plain = self
                .master_key
                .open(&record.value, &self.aad(&secret.name_key, &record.version))
                .map_err(Error::Crypto)?;
            versions.push(BackupVersion {
                version: record.version,
                value: base64::engine::general_purpose::STANDARD.encode(plain.as_slice()),
                content_type: record.content_type,
                tags: record.tags,
                enabled: record.enabled,
                not_before: record.not_before,
                expires: record.expires,
                created_at: record.created_at,
                updated_at: record.updated_at,
            });
        }
        let backup = Backup {
            name: secret.name.clone(),
            current_version: secret.current_version.clone(),
            versions,
        };
        let json =
            serde_json::to_vec(&backup).map_err(|error| Error::BadParameter(error.to_string()))?;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.master_key.seal(&json, BACKUP_AAD)))
    }

    /// Restores a backup; the name must not exist in this vault (live or deleted).
    pub async fn restore(&self, blob: &str) -> Result<SecretView> {
        let bad = || {
            Error::BadParameter(
                "The backup blob is malformed or was not made by this deployment.".to_owned(),
            )
        };
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(blob.trim().trim_end_matches('='))
            .map_err(|_| bad())?;
        let json = self.master_key.open(&sealed, BACKUP_AAD).map_err(|_| bad())?;
        let backup: Backup = serde_json::from_slice(&json).map_err(|_| bad())?;
        check_name(&backup.name)?;
        let name_key = backup.name.to_ascii_lowercase();
        if self.store.get_vault_secret(&self.vault_key, &name_key).await?.is_some() {
            return Err(Error::Conflict {
                inner: "Conflict",
                message: format!("Secret {} already exists in this vault.", backup.name),
            });
        }
        let mut writes = Vec::new();
        let mut current = None;
        for version in backup.versions {
            let plain = base64::engine::general_purpose::STANDARD
                .decode(&version.value)
                .map_err(|_| bad())?;
            let record = VaultSecretVersionRecord {
                vault_key: self.vault_key.clone(),
                name_key: name_key.clone(),
                value: self.master_key.seal(&plain, &self.aad(&name_key, &version.version)),
                version: version.version,
                content_type: version.content_type,
                tags: version.tags,
                enabled: version.enabled,
                not_before: version.not_before,
                expires: version.expires,
                created_at: version.created_at,
                updated_at: version.updated_at,
            };
            if record.version == backup.current_version {
                current = Some(record.clone());
            }
            writes.push(Write::PutVaultSecretVersion(record));
        }
        let current = current.ok_or_else(bad)?;
        let now = self.now.millis();
        let secret = VaultSecretRecord {
            vault_key: self.vault_key.clone(),
            name_key,
            name: backup.name,
            current_version: backup.current_version,
            deleted_at: None,
            scheduled_purge_at: None,
            created_at: now,
            updated_at: now,
        };
        // The secret row first: versions reference it.
        writes.insert(0, Write::PutVaultSecret(secret.clone()));
        self.store.apply(writes).await?;
        Ok(self.view(&secret, &current, None))
    }
}

const BACKUP_AAD: &[u8] = b"ambient-keyvault-secret-backup/v1";

#[derive(Serialize, Deserialize)]
struct Backup {
    name: String,
    current_version: String,
    versions: Vec<BackupVersion>,
}

#[derive(Serialize, Deserialize)]
struct BackupVersion {
    version: String,
    value: String,
    content_type: Option<String>,
    tags: String,
    enabled: bool,
    not_before: Option<i64>,
    expires: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

/// Purges soft-deleted secrets whose retention ended; returns how many.
pub async fn purge_due(store: &dyn Store, now: UnixTime) -> Result<usize> {
    let due = store.list_vault_secrets_due(now.millis(), 500).await?;
    let count = due.len();
    if count > 0 {
        store
            .apply(
                due.into_iter()
                    .map(|secret| Write::PurgeVaultSecret {
                        vault_key: secret.vault_key,
                        name_key: secret.name_key,
                    })
                    .collect(),
            )
            .await?;
    }
    Ok(count)
}

#[cfg(test)]
mod tests;
