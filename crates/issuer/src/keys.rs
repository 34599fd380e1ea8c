//! Signing keys in memory: the parsed key set the hot path reads, and the conversions between
//! stored rows ([`store::SigningKeyRecord`], times in milliseconds) and parsed keys.
//!
//! A [`KeySet`] is immutable; a change (load, rotation, reload) builds a new one and swaps the
//! `Arc` the issuer holds, reusing the keys it already parsed.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crypto::envelope::MasterKey;
use crypto::jws::{Algorithm, Jwk, JwsHeader, RsaSigningKey, Signer};
use domain::UnixTime;
use store::SigningKeyRecord;

use crate::{Error, Result};

/// The only algorithm our keys sign with, as stored in `SigningKeyRecord::algorithm`.
pub(crate) const KEY_ALGORITHM: &str = "RS256";
/// Subject common name of the self-signed certificate published in `x5c`.
const CERTIFICATE_COMMON_NAME: &str = "Ambient token signing";
/// The certificate is valid from this long before the key's creation (verifiers with a slow
/// clock must not see it as not yet valid)...
const CERTIFICATE_BACKDATE_SECS: i64 = 24 * 3600;
/// ... until this long after it, which covers any signing and publication window generously.
const CERTIFICATE_VALIDITY_SECS: i64 = 2 * 365 * 24 * 3600;

/// The keys of one tenant that are still published, in the store's order (by `signs_from`).
pub(crate) struct KeySet {
    pub(crate) keys: Vec<Arc<LoadedKey>>,
}

/// One parsed signing key with its schedule.
pub(crate) struct LoadedKey {
    /// base64url SHA-1 thumbprint of the certificate; also the header's `x5t`.
    pub(crate) kid: String,
    /// Signs with the key under the header `{typ, alg, x5t, kid}`, encoded once.
    pub(crate) signer: Signer,
    /// The JWK published for the key, without `issuer` (the v1 key set's shape).
    pub(crate) jwk: Jwk,
    /// The stored row as last read or written; its private key is sealed.
    pub(crate) record: SigningKeyRecord,
    /// The parsed private key, shared with `signer`; kept to rebuild the signer when the
    /// schedule changes without parsing the key again.
    private_key: Arc<RsaSigningKey>,
}

impl KeySet {
    /// The key that signs at `now`: the one with the latest `signs_from <= now` whose
    /// `signs_until` is unset or after `now` (ties broken by kid, so every node agrees).
    pub(crate) fn active(&self, now: UnixTime) -> Option<&Arc<LoadedKey>> {
        self.keys
            .iter()
            .filter(|key| key.signs_at(now))
            .max_by(|a, b| (a.signs_from(), &a.kid).cmp(&(b.signs_from(), &b.kid)))
    }

    /// The keys published at `now`.
    pub(crate) fn published(&self, now: UnixTime) -> impl Iterator<Item = &Arc<LoadedKey>> {
        self.keys.iter().filter(move |key| key.published_at(now))
    }

    /// Whether a key is waiting to sign after `now`.
    pub(crate) fn has_pending(&self, now: UnixTime) -> bool {
        self.keys.iter().any(|key| key.signs_from() > now)
    }

    /// The rows this set was built from.
    pub(crate) fn records(&self) -> impl Iterator<Item = &SigningKeyRecord> {
        self.keys.iter().map(|key| &key.record)
    }

    /// A set of the `records` published at `now` or later, reusing keys of `self` with the same
    /// kid and opening the others with `master_key`.
    pub(crate) fn rebuild(
        &self,
        records: Vec<SigningKeyRecord>,
        master_key: &MasterKey,
        now: UnixTime,
    ) -> Result<KeySet> {
        let known: HashMap<&str, &Arc<LoadedKey>> =
            self.keys.iter().map(|key| (key.kid.as_str(), key)).collect();
        let mut keys = Vec::with_capacity(records.len());
        for record in records {
            if !published_at(&record, now) {
                continue;
            }
            let key = match known.get(record.kid.as_str()) {
                Some(key) if key.record == record => Arc::clone(key),
                Some(key) => Arc::new(key.with_record(record)?),
                None => Arc::new(LoadedKey::open(record, master_key)?),
            };
            keys.push(key);
        }
        Ok(KeySet { keys })
    }

    /// Whether `records`, after dropping those no longer published at `now`, are exactly the
    /// rows this set holds.
    pub(crate) fn is_current(&self, records: &[SigningKeyRecord], now: UnixTime) -> bool {
        let mut live = records.iter().filter(|record| published_at(record, now));
        let mut held = self.records();
        loop {
            match (live.next(), held.next()) {
                (None, None) => return true,
                (Some(a), Some(b)) if a == b => continue,
                _ => return false,
            }
        }
    }
}

impl LoadedKey {
    /// Generates a key row for `key`: a self-signed certificate, the kid from its thumbprint,
    /// and the private key sealed under `master_key` with the kid as associated data.
    pub(crate) fn create(
        key: RsaSigningKey,
        tenant_id: &str,
        master_key: &MasterKey,
        now: UnixTime,
        signs_from: UnixTime,
    ) -> Result<LoadedKey> {
        let certificate_der = crypto::jws::self_signed_certificate_der(
            &key,
            CERTIFICATE_COMMON_NAME,
            now.minus_secs(CERTIFICATE_BACKDATE_SECS),
            now.plus_secs(CERTIFICATE_VALIDITY_SECS),
        )
        .map_err(Error::Crypto)?;
        let kid = crypto::jws::x5t_sha1(&certificate_der);
        let pkcs8 = key.to_pkcs8_der().map_err(Error::Crypto)?;
        let private_key = master_key.seal(&pkcs8, sealing_aad(&kid).as_bytes());
        let record = SigningKeyRecord {
            kid,
            tenant_id: tenant_id.to_owned(),
            algorithm: KEY_ALGORITHM.to_owned(),
            private_key,
            certificate_der,
            created_at: now.millis(),
            signs_from: signs_from.millis(),
            signs_until: None,
            published_until: None,
        };
        LoadedKey::from_parts(record, Arc::new(key))
    }

    /// Opens a stored row: unseals the private key, parses it, and checks that the row's kid
    /// and certificate belong to it.
    pub(crate) fn open(record: SigningKeyRecord, master_key: &MasterKey) -> Result<LoadedKey> {
        let unusable =
            |kid: &str, reason, source| Error::UnusableKey { kid: kid.to_owned(), reason, source };
        if record.algorithm != KEY_ALGORITHM {
            return Err(unusable(&record.kid, "unsupported algorithm", None));
        }
        let pkcs8 =
            master_key.open(&record.private_key, sealing_aad(&record.kid).as_bytes()).map_err(
                |error| unusable(&record.kid, "does not open under the master key", Some(error)),
            )?;
        let key = RsaSigningKey::from_pkcs8_der(&pkcs8)
            .map_err(|error| unusable(&record.kid, "not an rsa private key", Some(error)))?;
        LoadedKey::from_parts(record, Arc::new(key))
    }

    /// The same key under a changed schedule.
    pub(crate) fn with_record(&self, record: SigningKeyRecord) -> Result<LoadedKey> {
        assert_eq!(record.kid, self.kid, "a key's schedule changes, never its kid");
        LoadedKey::from_parts(record, Arc::clone(&self.private_key))
    }

    pub(crate) fn signs_from(&self) -> UnixTime {
        UnixTime::from_millis(self.record.signs_from)
    }

    pub(crate) fn signs_until(&self) -> Option<UnixTime> {
        self.record.signs_until.map(UnixTime::from_millis)
    }

    pub(crate) fn signs_at(&self, now: UnixTime) -> bool {
        self.signs_from() <= now && self.signs_until().is_none_or(|until| now < until)
    }

    pub(crate) fn published_at(&self, now: UnixTime) -> bool {
        published_at(&self.record, now)
    }

    fn from_parts(record: SigningKeyRecord, key: Arc<RsaSigningKey>) -> Result<LoadedKey> {
        let unusable =
            |reason, source| Error::UnusableKey { kid: record.kid.clone(), reason, source };
        if crypto::jws::x5t_sha1(&record.certificate_der) != record.kid {
            return Err(unusable("kid is not the certificate's thumbprint", None));
        }
        let jwk = Jwk::from_certificate_der(&record.certificate_der, None)
            .map_err(|error| unusable("certificate does not parse", Some(error)))?;
        let certified = crypto::jws::RsaPublicKey::from_jwk(&jwk)
            .map_err(|error| unusable("certificate key is not rsa", Some(error)))?;
        if &certified != key.public_key() {
            return Err(unusable("certificate is for another key", None));
        }
        let header = JwsHeader::for_certificate(Algorithm::RS256, &record.certificate_der);
        let signer = Signer::new(Arc::clone(&key), header).map_err(Error::Crypto)?;
        assert_eq!(signer.header().kid.as_deref(), Some(record.kid.as_str()), "header kid");
        Ok(LoadedKey { kid: record.kid.clone(), signer, jwk, record, private_key: key })
    }
}

impl fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedKey")
            .field("kid", &self.kid)
            .field("signs_from", &self.record.signs_from)
            .field("signs_until", &self.record.signs_until)
            .field("published_until", &self.record.published_until)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.keys).finish()
    }
}

/// Associated data sealing a private key: binds the blob to its key id, so a blob copied into
/// another row does not open.
fn sealing_aad(kid: &str) -> String {
    format!("signing-key/{kid}")
}

/// Whether a stored key is still in the JWKS at `now`.
fn published_at(record: &SigningKeyRecord, now: UnixTime) -> bool {
    record.published_until.is_none_or(|until| now.millis() < until)
}
