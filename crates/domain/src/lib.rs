//! Vocabulary shared by every crate: identifiers, resource ids and scopes, the clock, limits and
//! the redacting wrapper for secret material.
//!
//! Nothing here does IO or is async. Types are parsed once by fallible constructors and trusted
//! afterwards ("parse, don't validate"): a [`ResourceId`] is known to follow the ARM grammar, a
//! [`Guid`] is known to be a canonical lower-case GUID.

pub mod aggregate;
pub mod cache;
pub mod clock;
pub mod ids;
pub mod limits;
pub mod resource_id;
pub mod secret;

pub use cache::TtlCache;
pub use clock::{Clock, FakeClock, SystemClock, UnixTime};
pub use ids::Guid;
pub use resource_id::{ResourceId, ResourceIdError};
pub use secret::Secret;
