//! What the validation workers call: the network checks (cobble-va) or, with the
//! always-valid knob, nothing at all.

use cobble_core::Problem;
use cobble_core::challenge::ChallengeType;
use cobble_core::identifier::Identifier;
use std::future::Future;
use std::pin::Pin;

/// A boxed future, so the trait stays object-safe without a macro.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Decides challenges and CAA.
pub trait ChallengeValidator: Send + Sync {
    /// Runs one challenge (RFC 8555 §8); Ok is the validation record, Err the challenge's error.
    fn validate<'a>(
        &'a self,
        kind: ChallengeType,
        identifier: &'a Identifier,
        token: &'a str,
        key_authorization: &'a str,
    ) -> BoxFut<'a, Result<serde_json::Value, Problem>>;

    /// RFC 8659/8657 CAA check for one identifier.
    fn check_caa<'a>(
        &'a self,
        identifier: &'a Identifier,
        wildcard: bool,
        account_uri: &'a str,
        method: ChallengeType,
    ) -> BoxFut<'a, Result<(), Problem>>;
}

/// Passes every challenge and CAA check without touching the network (Pebble's
/// PEBBLE_VA_ALWAYS_VALID), for client tests that cannot serve challenges.
pub struct AlwaysValid;

impl ChallengeValidator for AlwaysValid {
    fn validate<'a>(
        &'a self,
        kind: ChallengeType,
        identifier: &'a Identifier,
        _token: &'a str,
        _key_authorization: &'a str,
    ) -> BoxFut<'a, Result<serde_json::Value, Problem>> {
        Box::pin(async move {
            Ok(
                serde_json::json!([{ "hostname": identifier.value(), "method": kind.as_str(), "alwaysValid": true }]),
            )
        })
    }

    fn check_caa<'a>(
        &'a self,
        _: &'a Identifier,
        _: bool,
        _: &'a str,
        _: ChallengeType,
    ) -> BoxFut<'a, Result<(), Problem>> {
        Box::pin(async { Ok(()) })
    }
}

/// The real checks: http-01, dns-01, tls-alpn-01 and CAA over the network (cobble-va).
impl ChallengeValidator for cobble_va::Validator {
    fn validate<'a>(
        &'a self,
        kind: ChallengeType,
        identifier: &'a Identifier,
        token: &'a str,
        key_authorization: &'a str,
    ) -> BoxFut<'a, Result<serde_json::Value, Problem>> {
        Box::pin(cobble_va::Validator::validate(
            self,
            kind,
            identifier,
            token,
            key_authorization,
        ))
    }

    fn check_caa<'a>(
        &'a self,
        identifier: &'a Identifier,
        wildcard: bool,
        account_uri: &'a str,
        method: ChallengeType,
    ) -> BoxFut<'a, Result<(), Problem>> {
        Box::pin(cobble_va::Validator::check_caa(
            self,
            identifier,
            wildcard,
            account_uri,
            method,
        ))
    }
}

/// Runs the inner validator's challenges but checks no CAA, for set-ups that turn CAA off
/// (the Pebble drop-in: Pebble checks none).
pub struct WithoutCaa(pub std::sync::Arc<dyn ChallengeValidator>);

impl ChallengeValidator for WithoutCaa {
    fn validate<'a>(
        &'a self,
        kind: ChallengeType,
        identifier: &'a Identifier,
        token: &'a str,
        key_authorization: &'a str,
    ) -> BoxFut<'a, Result<serde_json::Value, Problem>> {
        self.0.validate(kind, identifier, token, key_authorization)
    }

    fn check_caa<'a>(
        &'a self,
        _: &'a Identifier,
        _: bool,
        _: &'a str,
        _: ChallengeType,
    ) -> BoxFut<'a, Result<(), Problem>> {
        Box::pin(async { Ok(()) })
    }
}
