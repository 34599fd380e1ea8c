//! Sessions: what a signed-in browser carries, sealed in cookies, and the CSRF rules for forms.
//!
//! Sign-in trades the principal's credential for access tokens at the token endpoint; the
//! credential itself is never kept. The tokens and a little about the principal travel in
//! `__Host-` cookies (Secure, HttpOnly, SameSite=Strict, Path=/), sealed with AES-256-GCM under
//! a key derived from the console key, so no script can read them and the browser cannot read
//! or change them either. A session ends when its shortest-lived token expires (an hour for a
//! service principal), and at sign-out, which also remembers the session id on this node until
//! that time so a copied cookie stops working here.
//!
//! Why cookies rather than a table in memory: they survive a restart of the server and work
//! across the nodes of a deployment without shared state, and the server keeps nothing per
//! browser. The Key Vault token and the Graph token (the directory accepts Graph tokens only)
//! ride in cookies of their own (`__Host-ambient-vault`, `__Host-ambient-graph`) bound to the
//! session's id, because two tokens together come close to a browser's 4 KiB cookie limit.
//!
//! Every form carries the session's CSRF token; a POST is accepted only when it matches, and
//! when the browser's `Sec-Fetch-Site` and `Origin` headers, if sent, say the form came from
//! this origin. The sign-in form, before any session exists, uses a double-submitted cookie.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::hkdf;
use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::Secret;
use serde::{Deserialize, Serialize};

/// The session cookie: everything but the Key Vault token.
pub const SESSION_COOKIE: &str = "__Host-ambient-session";
/// The Key Vault token of the session.
pub const VAULT_COOKIE: &str = "__Host-ambient-vault";
/// The Graph token of the session (for the directory, `/v1.0/...`).
pub const GRAPH_COOKIE: &str = "__Host-ambient-graph";
/// The sign-in form's double-submitted CSRF token.
pub const SIGNIN_COOKIE: &str = "__Host-ambient-signin";
/// The longest a session lasts, whatever its tokens say.
pub const SESSION_SECS_MAX: i64 = 3600;
/// The sign-in form must be sent within this time of being shown.
pub const SIGNIN_FORM_SECS: i64 = 1800;
/// Sessions signed out on this node remembered at most (the oldest are dropped first).
const SIGNED_OUT_MAX: usize = 100_000;
/// A sealed cookie longer than this is refused before it is opened.
const COOKIE_CHARS_MAX: usize = 8192;

/// Who is signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub object_id: String,
    pub app_id: String,
    pub display_name: String,
}

/// A signed-in browser's session, as sealed in its cookies.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// A random id: binds the vault cookie and names the session at sign-out.
    pub id: String,
    /// The token every form of this session carries.
    pub csrf: String,
    /// Unix seconds; the session is gone from then on.
    pub expires: i64,
    pub tenant: String,
    /// The subscription the pages show (the first one the principal can see).
    pub subscription: Option<String>,
    pub principal: Principal,
    /// A token for the management audience (the control plane and the agents' API accept it).
    #[serde(with = "secret_string")]
    pub management_token: Secret<String>,
    /// A token for Key Vault, kept in its own cookie.
    #[serde(skip)]
    pub vault_token: Option<Secret<String>>,
    /// A token for the Graph audience (the directory accepts only those), in its own cookie.
    #[serde(skip)]
    pub graph_token: Option<Secret<String>>,
}

/// Why a request's session could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// No session cookie.
    Missing,
    /// A cookie that does not open under our key (tampered, or from another deployment).
    Invalid,
    /// The session's time is up.
    Expired,
    /// The session was signed out.
    SignedOut,
}

/// Why a form was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    #[error("the form came from another site")]
    CrossSite,
    #[error("the form's security token is missing or wrong; reload the page and try again")]
    BadToken,
}

/// The keys sessions are sealed with, and the sessions signed out on this node.
pub struct Sessions {
    session_key: RandomizedNonceKey,
    signed_out: Mutex<HashMap<String, i64>>,
}

impl Sessions {
    /// Keys derived from the console key with HKDF-SHA256.
    pub fn new(console_key: &Secret<[u8; 32]>) -> Sessions {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"ambient-console");
        let prk = salt.extract(console_key.expose());
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        prk.expand(&[b"session-cookie-v1"], hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(key.as_mut_slice()))
            .expect("HKDF-SHA256 can expand to 32 bytes");
        let session_key = RandomizedNonceKey::new(&AES_256_GCM, key.as_slice())
            .expect("a 32-byte key is a valid AES-256-GCM key");
        Sessions { session_key, signed_out: Mutex::new(HashMap::new()) }
    }

    /// The `Set-Cookie` values that carry `session`.
    pub fn set_cookies(&self, session: &Session, now_secs: i64) -> Vec<String> {
        let max_age = (session.expires - now_secs).max(0);
        let json = serde_json::to_vec(session).expect("a session serializes");
        let mut cookies =
            vec![cookie(SESSION_COOKIE, &self.seal(SESSION_COOKIE.as_bytes(), &json), max_age)];
        for (name, token) in
            [(VAULT_COOKIE, &session.vault_token), (GRAPH_COOKIE, &session.graph_token)]
        {
            if let Some(token) = token {
                let aad = format!("{name}|{}", session.id);
                cookies.push(cookie(
                    name,
                    &self.seal(aad.as_bytes(), token.expose().as_bytes()),
                    max_age,
                ));
            }
        }
        cookies
    }

    /// The session the request's cookies carry.
    pub fn open(&self, headers: &HeaderMap, now_secs: i64) -> Result<Session, SessionError> {
        let sealed = cookie_value(headers, SESSION_COOKIE).ok_or(SessionError::Missing)?;
        let json = self.unseal(SESSION_COOKIE.as_bytes(), &sealed).ok_or(SessionError::Invalid)?;
        let mut session: Session =
            serde_json::from_slice(&json).map_err(|_| SessionError::Invalid)?;
        if session.expires <= now_secs {
            return Err(SessionError::Expired);
        }
        if self
            .signed_out
            .lock()
            .expect("no panic while holding the lock")
            .contains_key(&session.id)
        {
            return Err(SessionError::SignedOut);
        }
        let token = |name: &str| {
            let sealed = cookie_value(headers, name)?;
            let aad = format!("{name}|{}", session.id);
            self.unseal(aad.as_bytes(), &sealed)
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .map(Secret::new)
        };
        session.vault_token = token(VAULT_COOKIE);
        session.graph_token = token(GRAPH_COOKIE);
        Ok(session)
    }

    /// Forgets `session` on this node: its cookies stop working here even if copied.
    pub fn sign_out(&self, session: &Session, now_secs: i64) {
        let mut signed_out = self.signed_out.lock().expect("no panic while holding the lock");
        signed_out.retain(|_, expires| *expires > now_secs);
        if signed_out.len() >= SIGNED_OUT_MAX
            && let Some(oldest) =
                signed_out.iter().min_by_key(|(_, expires)| **expires).map(|(id, _)| id.clone())
        {
            signed_out.remove(&oldest);
        }
        signed_out.insert(session.id.clone(), session.expires);
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> String {
        let mut in_out = plaintext.to_vec();
        let nonce = self
            .session_key
            .seal_in_place_append_tag(Aad::from(aad), &mut in_out)
            .expect("AES-GCM sealing does not fail for small inputs");
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&in_out);
        URL_SAFE_NO_PAD.encode(out)
    }

    fn unseal(&self, aad: &[u8], sealed: &str) -> Option<Vec<u8>> {
        if sealed.len() > COOKIE_CHARS_MAX {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self.session_key.open_in_place(nonce, Aad::from(aad), &mut in_out).ok()?;
        Some(plaintext.to_vec())
    }
}

/// `Set-Cookie` values that remove every cookie of the console.
pub fn clear_cookies() -> Vec<String> {
    [SESSION_COOKIE, VAULT_COOKIE, GRAPH_COOKIE, SIGNIN_COOKIE]
        .iter()
        .map(|name| cookie(name, "", 0))
        .collect()
}

/// A `Set-Cookie` value with the attributes every console cookie has.
pub fn cookie(name: &str, value: &str, max_age_secs: i64) -> String {
    format!("{name}={value}; Max-Age={max_age_secs}; Path=/; Secure; HttpOnly; SameSite=Strict")
}

/// The value of cookie `name` in the request.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// A random token for CSRF and session ids: 256 bits, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random source works");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Checks that a POST came from a page of this console: the browser's fetch metadata and
/// origin, when sent, name this origin, and the form's token equals `expected`.
pub fn check_form(
    headers: &HeaderMap,
    public_url: &str,
    expected: &str,
    sent: Option<&str>,
) -> Result<(), CsrfError> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(site) = header("sec-fetch-site")
        && site != "same-origin"
    {
        return Err(CsrfError::CrossSite);
    }
    if let Some(origin) = header("origin") {
        let own = header("host").map(|host| format!("https://{host}"));
        let allowed = origin == public_url.trim_end_matches('/') || Some(origin) == own.as_deref();
        if !allowed {
            return Err(CsrfError::CrossSite);
        }
    }
    match sent {
        Some(sent)
            if !expected.is_empty()
                && aws_lc_rs::constant_time::verify_slices_are_equal(
                    sent.as_bytes(),
                    expected.as_bytes(),
                )
                .is_ok() =>
        {
            Ok(())
        }
        _ => Err(CsrfError::BadToken),
    }
}

mod secret_string {
    use domain::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &Secret<String>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(value.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Secret<String>, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

#[cfg(test)]
mod tests;
