//! The web console: server-rendered pages for the portal's tasks (resources and their
//! identities, managed identities, access control, enterprise applications, logs, Key Vault
//! secrets, hosts and a token inspector), served by the server at `/console/`.
//!
//! The console is a client of the public API like any other: [`router`] builds an axum
//! `Router` that the `ambient` binary hands to the server, and every page calls the server's
//! HTTPS API ([`api::Api`]) with the signed-in principal's own token, so RBAC is enforced by the
//! server exactly as for the CLI or an SDK. The console holds no state but the key its session
//! cookies are sealed with ([`session`]).
//!
//! Call sequence: the binary builds a [`ConsoleConfig`] from what the server says about its
//! listener, calls [`router`], and the server nests the router at `/console` inside its own
//! layers (request id, panic catching, body limit). Modules: `api` (HTTP to the server),
//! `session` (cookies, CSRF), `html` (page shell and pieces), `pages` (one module per area),
//! `access` (Check access with the `rbac` decision function), `jwt` (the token inspector),
//! `multipart` (the sign-in form's certificate upload), `assets` (CSS, JS, icon, embedded).

mod access;
mod api;
mod assets;
mod html;
mod jwt;
mod multipart;
mod pages;
mod session;
mod web;

use std::net::SocketAddr;

use domain::Secret;

/// What the console needs to know about the server it is served by.
pub struct ConsoleConfig {
    /// `https://{public_host}:{port}`: the issuer's authority, and the host name the server's
    /// certificate is checked against.
    pub public_url: String,
    /// Where the server is bound; the console's API calls connect here.
    pub local_addr: SocketAddr,
    /// The server's CA (PEM): the only root the console trusts.
    pub ca_pem: String,
    pub tenant_id: String,
    /// Vaults are `{name}.vault.{dns_suffix}`.
    pub dns_suffix: String,
    /// The console's own key (derived from the master key): seals session cookies.
    pub key: Secret<[u8; 32]>,
}

/// The console's router, to be nested at `/console`.
///
/// Panics when the CA in `config` is not PEM: the server made it, so that is a bug.
pub fn router(config: ConsoleConfig) -> axum::Router {
    web::router(config)
}

#[cfg(test)]
mod tests;
