//! The wire contract: request and response bodies, error bodies and their codes, for every
//! public endpoint. Serde only; no crate of ours. Clients build from this without server code.
//!
//! Modules follow the protocols they describe: [`arm`] (Resource Manager envelope and errors),
//! [`oauth`] (the token service's error shape), [`health`] (liveness and readiness).

#![warn(missing_docs)]

pub mod arm;
pub mod health;
pub mod hosting;
pub mod oauth;
pub mod profile;
