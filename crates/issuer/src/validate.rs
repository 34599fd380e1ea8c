//! Validating access tokens this issuer signed, for the resource servers (control plane, Key
//! Vault): algorithm allow-list, key by `kid` (or `x5t`) among the published keys, signature,
//! time window with leeway, audience and issuer. Every check the caller relies on is passed in
//! explicitly through [`ValidationOptions`]; nothing falls back to a default.

use crypto::jws::{Algorithm, JwsHeader};
use serde::Deserialize;

use crate::token::Issuer;

/// What a token must satisfy. All of it is explicit at the call site: an empty list accepts
/// nothing.
#[derive(Clone, Copy, Debug)]
pub struct ValidationOptions<'a> {
    /// Accepted `aud` values, compared exactly: list both `https://management.azure.com` and
    /// `https://management.azure.com/` to accept both; `https://management.azure.com//` is
    /// neither.
    pub audiences: &'a [String],
    /// Accepted `iss` values, compared exactly (see [`Issuer::issuer_v1`], [`Issuer::issuer_v2`]).
    pub issuers: &'a [String],
    /// Clock skew tolerated on `exp` and `nbf`, in seconds (negative counts as zero); usually
    /// `domain::limits::CLOCK_LEEWAY_SECS`.
    pub leeway_secs: i64,
    /// Accepted signature algorithms; `RS256` for our tokens.
    pub algorithms: &'a [Algorithm],
}

/// The claims of a valid token that callers use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    /// The audience, as written in the token.
    pub aud: String,
    /// The issuer.
    pub iss: String,
    /// The principal's object id.
    pub oid: String,
    /// The subject (equals `oid` for app tokens).
    pub sub: String,
    /// The tenant.
    pub tid: String,
    /// The client's app id: `appid` (v1) or `azp` (v2).
    pub app_id: String,
    /// `app` for app-only tokens.
    pub idtyp: Option<String>,
    /// The managed identity's ARM id, for managed-identity tokens.
    pub xms_mirid: Option<String>,
    /// `1.0` or `2.0`.
    pub ver: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Not before, seconds since the epoch.
    pub nbf: i64,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// The token's unique id.
    pub uti: Option<String>,
}

/// Why a token was rejected. Each check has its own variant, with a stable [`code`].
///
/// [`code`]: ValidationError::code
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Not a compact JWS with a JSON header and JSON claims of the right types.
    #[error("token is malformed")]
    Malformed,
    /// The header names an algorithm that is not implemented (`none`, `HS256`, ...).
    #[error("token algorithm is not supported")]
    UnsupportedAlgorithm,
    /// The algorithm is implemented but not in the caller's allow-list.
    #[error("token algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// No published key has the token's `kid` (or `x5t`).
    #[error("token signing key is unknown")]
    UnknownKey,
    /// The signature does not verify under the published key.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp`, plus leeway, has passed.
    #[error("token has expired")]
    Expired,
    /// `nbf`, minus leeway, is still ahead.
    #[error("token is not yet valid")]
    NotYetValid,
    /// `aud` is not an accepted audience.
    #[error("token audience is not accepted")]
    WrongAudience,
    /// `iss` is not an accepted issuer.
    #[error("token issuer is not accepted")]
    WrongIssuer,
    /// A required claim is absent.
    #[error("token lacks the {0} claim")]
    MissingClaim(&'static str),
}

/// The claims as read from the payload; presence is checked after the signature.
#[derive(Deserialize)]
struct RawClaims {
    aud: Option<String>,
    iss: Option<String>,
    oid: Option<String>,
    sub: Option<String>,
    tid: Option<String>,
    appid: Option<String>,
    azp: Option<String>,
    idtyp: Option<String>,
    xms_mirid: Option<String>,
    ver: Option<String>,
    iat: Option<i64>,
    nbf: Option<i64>,
    exp: Option<i64>,
    uti: Option<String>,
}

impl ValidationError {
    /// A stable machine-readable code (`token.expired`, ...). Never renamed or reused.
    pub fn code(&self) -> &'static str {
        match self {
            ValidationError::Malformed => "token.malformed",
            ValidationError::UnsupportedAlgorithm => "token.unsupported_algorithm",
            ValidationError::AlgorithmNotAllowed => "token.algorithm_not_allowed",
            ValidationError::UnknownKey => "token.unknown_key",
            ValidationError::BadSignature => "token.bad_signature",
            ValidationError::Expired => "token.expired",
            ValidationError::NotYetValid => "token.not_yet_valid",
            ValidationError::WrongAudience => "token.wrong_audience",
            ValidationError::WrongIssuer => "token.wrong_issuer",
            ValidationError::MissingClaim(_) => "token.missing_claim",
        }
    }
}

impl Issuer {
    /// Validates a token, in this order: shape; `alg` implemented and in
    /// `options.algorithms`; a key published now with the header's `kid` (or `x5t`); the
    /// signature; `exp` and `nbf` with `options.leeway_secs`; `aud` in `options.audiences`
    /// (exactly); `iss` in `options.issuers`; then the
    /// presence of `oid`, `sub`, `tid`, `ver`, `iat` and `appid` or `azp`. CPU only.
    pub fn validate(
        &self,
        token: &str,
        options: &ValidationOptions<'_>,
    ) -> Result<Claims, ValidationError> {
        let header = crypto::jws::decode_header(token).map_err(from_crypto)?;
        let alg = header.algorithm().map_err(from_crypto)?;
        if !options.algorithms.contains(&alg) {
            return Err(ValidationError::AlgorithmNotAllowed);
        }

        let now = self.clock.now();
        let keys = self.key_set();
        let key = keys
            .published(now)
            .find(|key| header_names_key(&header, &key.kid))
            .ok_or(ValidationError::UnknownKey)?;
        let verified =
            crypto::jws::verify(token, options.algorithms, key.signer.key().public_key())
                .map_err(from_crypto)?;
        let raw: RawClaims = verified.claims().map_err(|_| ValidationError::Malformed)?;

        let leeway_secs = options.leeway_secs.max(0);
        let now_secs = now.secs();
        let exp = raw.exp.ok_or(ValidationError::MissingClaim("exp"))?;
        let nbf = raw.nbf.ok_or(ValidationError::MissingClaim("nbf"))?;
        if now_secs >= exp.saturating_add(leeway_secs) {
            return Err(ValidationError::Expired);
        }
        if now_secs < nbf.saturating_sub(leeway_secs) {
            return Err(ValidationError::NotYetValid);
        }

        let aud = raw.aud.ok_or(ValidationError::MissingClaim("aud"))?;
        if !options.audiences.contains(&aud) {
            return Err(ValidationError::WrongAudience);
        }
        let iss = raw.iss.ok_or(ValidationError::MissingClaim("iss"))?;
        if !options.issuers.contains(&iss) {
            return Err(ValidationError::WrongIssuer);
        }

        let claims = Claims {
            aud,
            iss,
            oid: raw.oid.ok_or(ValidationError::MissingClaim("oid"))?,
            sub: raw.sub.ok_or(ValidationError::MissingClaim("sub"))?,
            tid: raw.tid.ok_or(ValidationError::MissingClaim("tid"))?,
            app_id: raw.appid.or(raw.azp).ok_or(ValidationError::MissingClaim("appid"))?,
            idtyp: raw.idtyp,
            xms_mirid: raw.xms_mirid,
            ver: raw.ver.ok_or(ValidationError::MissingClaim("ver"))?,
            iat: raw.iat.ok_or(ValidationError::MissingClaim("iat"))?,
            nbf,
            exp,
            uti: raw.uti,
        };
        // Postconditions of the checks above, stated once more where a bug would be silent.
        assert!(now_secs < claims.exp + leeway_secs, "accepted token is not expired");
        assert!(now_secs >= claims.nbf - leeway_secs, "accepted token is valid already");
        Ok(claims)
    }
}

/// Whether the token header names the key `kid`, by `kid` or else by `x5t`.
fn header_names_key(header: &JwsHeader, kid: &str) -> bool {
    match (&header.kid, &header.x5t) {
        (Some(token_kid), _) => token_kid == kid,
        (None, Some(x5t)) => crypto::jws::thumbprint_matches(x5t, kid),
        (None, None) => false,
    }
}

fn from_crypto(error: crypto::Error) -> ValidationError {
    match error {
        crypto::Error::UnsupportedAlgorithm(_) => ValidationError::UnsupportedAlgorithm,
        crypto::Error::AlgorithmNotAllowed(_) => ValidationError::AlgorithmNotAllowed,
        crypto::Error::InvalidSignature => ValidationError::BadSignature,
        _ => ValidationError::Malformed,
    }
}
