//! Every limit on something that grows, as a named constant, with the relations between them
//! checked at compile time.

/// Largest request body the server accepts (Key Vault allows 25 KB values plus JSON framing).
pub const REQUEST_BODY_BYTES_MAX: usize = 256 * 1024;
/// Largest secret value Key Vault accepts.
pub const SECRET_VALUE_BYTES_MAX: usize = 25 * 1024;
/// Largest page any list operation returns.
pub const PAGE_SIZE_MAX: usize = 1000;
/// Default page size for ARM list operations.
pub const PAGE_SIZE_DEFAULT: usize = 100;
/// Key Vault's `maxresults` upper bound.
pub const VAULT_PAGE_SIZE_MAX: usize = 25;

/// Lifetime of a client-credential access token.
pub const CLIENT_CREDENTIAL_TOKEN_LIFETIME_SECS: i64 = 3600;
/// Lifetime of a managed-identity access token (as on Azure).
pub const MANAGED_IDENTITY_TOKEN_LIFETIME_SECS: i64 = 24 * 3600;
/// No token, whatever the configuration, lives longer than this.
pub const TOKEN_LIFETIME_SECS_MAX: i64 = 48 * 3600;
/// A signing key signs for this long before the next one takes over.
pub const KEY_ROTATION_SECS: i64 = 14 * 24 * 3600;
/// Clock leeway allowed when checking `exp` and `nbf`.
pub const CLOCK_LEEWAY_SECS: i64 = 300;

/// Generated client secrets carry this many random bytes (256 bits).
pub const CLIENT_SECRET_BYTES: usize = 32;
/// Default lifetime of a generated client secret.
pub const CLIENT_SECRET_LIFETIME_SECS_DEFAULT: i64 = 365 * 24 * 3600;

/// Names of resources and resource groups (ARM allows up to 90 for groups).
pub const RESOURCE_NAME_CHARS_MAX: usize = 90;
/// Longest resource id accepted.
pub const RESOURCE_ID_CHARS_MAX: usize = 1024;
/// Federated identity credentials per user-assigned identity (as on Azure).
pub const FEDERATED_CREDENTIALS_PER_IDENTITY_MAX: usize = 20;
/// Tags on one resource (Azure's limit).
pub const TAGS_PER_RESOURCE_MAX: usize = 50;
/// Characters in a tag name (Azure's limit).
pub const TAG_NAME_CHARS_MAX: usize = 512;

/// Characters of free text (a failure reason, an audience, a display name, an address) one
/// field of a log event keeps; longer text is cut, with a marker and a digest of the whole.
pub const LOG_TEXT_CHARS_MAX: usize = 256;
/// Characters of a value that should be an id (a client id) but is not, kept as a preview
/// beside the marker and the digest.
pub const LOG_ID_PREVIEW_CHARS: usize = 16;
/// Longest audience (`resource`, or `scope` without `/.default`) a token request may name.
/// Entra's identifier URIs are at most 120 characters.
pub const AUDIENCE_CHARS_MAX: usize = 256;
/// Identical successful sign-ins (same principal, client, resource, address, outcome) within
/// this window are one sign-in event with a count.
pub const SIGN_IN_SUCCESS_WINDOW_SECS: i64 = 60;
/// Failed sign-ins from one caller for one reason within this window are one event with a count.
pub const SIGN_IN_FAILURE_WINDOW_SECS: i64 = 300;
/// Refused or failed control-plane writes of one caller, action, scope and reason within this
/// window are one activity event with a count.
pub const ACTIVITY_FAILURE_WINDOW_SECS: i64 = 300;
/// Distinct events one caller (an address for failed sign-ins, a principal otherwise) adds to a
/// log per window; what it does beyond lands in one summary event per caller and window.
pub const LOG_EVENTS_PER_CALLER_PER_WINDOW_MAX: usize = 20;
/// Callers a node tells apart per window; beyond, everyone's further events share one summary.
pub const LOG_CALLERS_PER_WINDOW_MAX: usize = 10_000;
/// Aggregated events a node holds in memory before writing their counts.
pub const LOG_PENDING_EVENTS_MAX: usize = 4096;
/// How long both logs keep events by default (Entra keeps sign-ins 30 days).
pub const LOG_RETENTION_DAYS_DEFAULT: i64 = 30;
/// The longest retention that may be configured.
pub const LOG_RETENTION_DAYS_MAX: i64 = 3650;
/// Events each log keeps at most by default; the oldest go first.
pub const LOG_EVENTS_MAX_DEFAULT: i64 = 1_000_000;
/// The fewest events a log may be capped at.
pub const LOG_EVENTS_MAX_MIN: i64 = 1000;
/// Failed client authentications one source address, or one client id, may make per window
/// before the token endpoint answers 429 for the rest of the window.
pub const CLIENT_AUTH_FAILURES_PER_WINDOW_DEFAULT: u32 = 60;
/// The throttling window of failed client authentications.
pub const CLIENT_AUTH_THROTTLE_WINDOW_SECS: i64 = 60;
/// Addresses and client ids the throttle counts at once.
pub const CLIENT_AUTH_THROTTLE_KEYS_MAX: usize = 10_000;

const _: () = assert!(CLIENT_CREDENTIAL_TOKEN_LIFETIME_SECS <= TOKEN_LIFETIME_SECS_MAX);
const _: () = assert!(MANAGED_IDENTITY_TOKEN_LIFETIME_SECS <= TOKEN_LIFETIME_SECS_MAX);
const _: () = assert!(TOKEN_LIFETIME_SECS_MAX < KEY_ROTATION_SECS);
const _: () = assert!(SECRET_VALUE_BYTES_MAX * 4 < REQUEST_BODY_BYTES_MAX);
const _: () = assert!(PAGE_SIZE_DEFAULT <= PAGE_SIZE_MAX);
const _: () = assert!(CLIENT_SECRET_BYTES >= 32);
const _: () = assert!(LOG_ID_PREVIEW_CHARS < LOG_TEXT_CHARS_MAX);
const _: () = assert!(AUDIENCE_CHARS_MAX <= LOG_TEXT_CHARS_MAX);
const _: () = assert!(SIGN_IN_SUCCESS_WINDOW_SECS <= SIGN_IN_FAILURE_WINDOW_SECS);
const _: () = assert!(LOG_EVENTS_MAX_MIN <= LOG_EVENTS_MAX_DEFAULT);
const _: () = assert!(LOG_RETENTION_DAYS_DEFAULT <= LOG_RETENTION_DAYS_MAX);
const _: () = assert!(LOG_EVENTS_PER_CALLER_PER_WINDOW_MAX < LOG_PENDING_EVENTS_MAX);

// Managed-identity flavours and fault injection (docs/flavours.md).

/// The shortest token lifetime a host may ask for (fault injection, workload assertions).
pub const TOKEN_LIFETIME_SECS_MIN: i64 = 60;
/// Lifetime of the federated token file `ambient run --flavour workload` writes, as Azure
/// Workload Identity's projected service-account tokens (one hour).
pub const WORKLOAD_ASSERTION_LIFETIME_SECS: i64 = 3600;
/// Longest latency a fault may add to a metadata answer.
pub const FAULT_LATENCY_MS_MAX: u64 = 60_000;
/// Longest `Retry-After` an injected error may carry.
pub const FAULT_RETRY_AFTER_SECS_MAX: u64 = 600;
/// Largest clock offset a fault may apply, either way.
pub const FAULT_CLOCK_OFFSET_SECS_MAX: i64 = 7 * 24 * 3600;
/// Resources of one host that may carry faults of their own.
pub const FAULTY_RESOURCES_PER_HOST_MAX: usize = 1000;

const _: () = assert!(TOKEN_LIFETIME_SECS_MIN < WORKLOAD_ASSERTION_LIFETIME_SECS);
const _: () = assert!(WORKLOAD_ASSERTION_LIFETIME_SECS <= MANAGED_IDENTITY_TOKEN_LIFETIME_SECS);
