//! Shared fixtures for this crate's tests: a temporary SQLite store, a fixed signing key, a
//! fake clock and a loaded issuer.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use crypto::envelope::MasterKey;
use crypto::jws::RsaSigningKey;
use domain::FakeClock;
use store::Store;

use crate::{Issuer, IssuerConfig};

pub(crate) const AUTHORITY: &str = "https://localhost:8443";
pub(crate) const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// A SQLite store in a fresh temporary directory, removed on drop.
pub(crate) struct TempStore {
    pub(crate) store: Arc<dyn Store>,
    dir: PathBuf,
}

impl TempStore {
    pub(crate) async fn new() -> TempStore {
        let dir = std::env::temp_dir()
            .join(format!("ambient-issuer-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("t.db").display());
        let store: Arc<dyn Store> = Arc::from(store::open(&url).await.unwrap());
        TempStore { store, dir }
    }
}

impl TempStore {
    /// A file in the store's directory (`t.db`, `t.db-wal`).
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// The fixed RSA-2048 test key (the `crypto` crate's `rsa-a.pem`), as PKCS#8 DER.
pub(crate) fn fixed_key_pkcs8() -> Vec<u8> {
    let pem = include_str!("testdata/rsa-a.pem");
    let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).unwrap()
}

pub(crate) fn fixed_key() -> RsaSigningKey {
    RsaSigningKey::from_pkcs8_der(&fixed_key_pkcs8()).unwrap()
}

/// Everything an issuer test needs; the issuer starts with the fixed key.
pub(crate) struct Fixture {
    pub(crate) temp: TempStore,
    pub(crate) master_key: Arc<MasterKey>,
    pub(crate) clock: FakeClock,
    pub(crate) issuer: Issuer,
}

impl Fixture {
    pub(crate) async fn new() -> Fixture {
        Fixture::with_config(config()).await
    }

    pub(crate) async fn with_config(config: IssuerConfig) -> Fixture {
        let temp = TempStore::new().await;
        let master_key = Arc::new(MasterKey::generate());
        let clock = FakeClock::default();
        let issuer = Issuer::load_with_key(
            temp.store.clone(),
            master_key.clone(),
            Arc::new(clock.clone()),
            config,
            fixed_key(),
        )
        .await
        .unwrap();
        Fixture { temp, master_key, clock, issuer }
    }

    /// A second issuer over the same store, master key and clock (a restart or another node).
    pub(crate) async fn second_issuer(&self) -> Issuer {
        Issuer::load(
            self.temp.store.clone(),
            self.master_key.clone(),
            Arc::new(self.clock.clone()),
            config(),
        )
        .await
        .unwrap()
    }
}

pub(crate) fn config() -> IssuerConfig {
    IssuerConfig::new(AUTHORITY, TENANT)
}
