//! Server targets (feature `server`): the authentication step of every ACME POST (RFC 8555
//! §6.2-§6.5, `cobble_server::auth::verify_request`) and the TOML configuration loader of
//! `cobble serve --config` (`cobble_server::config::ServerConfig`). The server's decisions
//! past authentication are in [`crate::ra`].

use crate::jose::{NONCE_LIFETIME, NONCE_T0, check_reserializes, nonce_fixture};
use crate::{Input, keys};
use cobble_core::jwk::{KeyPolicy, PublicKey};
use cobble_core::jws::{Jws, KeyRef};
use cobble_core::nonce::OpenedNonce;
use cobble_core::{Problem, ProblemType};
use cobble_server::auth::{KeyMode, account_id_of_kid, stored_account_key, verify_request};
use cobble_server::config::ServerConfig;
use cobble_server::error::{AcmeError, AcmeResult};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// The base URL the fixed accounts live under: their kids are `BASE/acme/acct/<alg>`.
pub const BASE: &str = "https://cobble.test";

/// Request paths an input may be checked against (the first byte picks one).
pub const PATHS: [&str; 4] = [
    "/acme/new-acct",
    "/acme/new-order",
    "/acme/order/1",
    "/acme/revoke-cert",
];

/// Runs a future that never waits (the lookups here are in memory) to its end.
fn now<T>(f: impl Future<Output = T>) -> T {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("verify_request waited with nothing to wait for"),
    }
}

/// The fixed accounts as the store would give them: the id a kid names, and the key loaded
/// from its stored JWK text, as `AppState::authenticate` does.
async fn lookup(kid: String) -> AcmeResult<(String, PublicKey)> {
    let id = account_id_of_kid(BASE, &kid)?;
    let key = keys::public_key_for_kid(&kid).ok_or_else(|| {
        Problem::new(
            ProblemType::AccountDoesNotExist,
            format!("account {kid} does not exist"),
        )
    })?;
    let stored = stored_account_key(id, &key.to_jwk().to_string())?;
    assert_eq!(stored, key, "a stored account key loads back differently");
    Ok((id.to_owned(), stored))
}

/// One run of the authentication step on `body` for `url` in `mode` at time `at`; `nonce_ok`
/// false makes the nonce check refuse whatever the nonce is.
fn authenticate(
    body: &[u8],
    url: &str,
    mode: KeyMode,
    at: i64,
    nonce_ok: bool,
) -> AcmeResult<(Jws, OpenedNonce, PublicKey, Option<String>)> {
    let (sealer, _) = nonce_fixture();
    now(verify_request(
        body,
        url,
        mode,
        &KeyPolicy::default(),
        |text| {
            if !nonce_ok {
                return Err(Problem::bad_nonce("refused by the target").into());
            }
            sealer
                .open(text, at)
                .map_err(|e| AcmeError::from(Problem::bad_nonce(e.to_string())))
        },
        lookup,
    ))
}

/// Target `auth`: `[mode/path, time]` then a request body, through the server's whole
/// authentication step with the fixed nonce sealer and the fixed accounts. A request it
/// accepts really is for this URL, carries a nonce the sealer minted and still valid,
/// names its key as the endpoint requires, and verifies with that key (re-serialized too);
/// the same request for another URL, with its nonce refused, or in the other key mode is
/// refused with the right problem. Every refusal is a client error (4xx).
pub fn auth(data: &[u8]) {
    let _ = auth_outcome(data);
}

/// What target `auth` decided on `data`: `None` when the request was accepted (and passed
/// every check above), else the type of the problem it was refused with.
pub fn auth_outcome(data: &[u8]) -> Option<ProblemType> {
    let mut input = Input::new(data);
    let pick = input.byte();
    let mode = match pick & 3 {
        0 => KeyMode::Jwk,
        1 => KeyMode::Kid,
        _ => KeyMode::Either,
    };
    let url = format!("{BASE}{}", PATHS[usize::from(pick >> 2) % PATHS.len()]);
    let at = NONCE_T0 + i64::from(input.byte()) * 60_000;
    let body = input.rest();
    let (jws, nonce, key, account) = match authenticate(body, &url, mode, at, true) {
        Ok(ok) => ok,
        Err(e) => {
            assert!(
                (400..500).contains(&e.problem.status),
                "a refusal that is not a client error: {:?}",
                e.problem
            );
            return Some(e.problem.kind);
        }
    };
    assert_eq!(jws.protected.url, url, "accepted for another URL");
    assert_eq!(jws.protected.nonce.as_deref(), Some(nonce.value.as_str()));
    let (_, minted) = nonce_fixture();
    let (_, issued) = minted
        .iter()
        .find(|(n, _)| *n == nonce.value)
        .expect("accepted a nonce the sealer never minted");
    assert!(at - issued <= NONCE_LIFETIME, "accepted an expired nonce");
    match (&jws.protected.key, &account) {
        (KeyRef::Jwk(k), None) => {
            assert_ne!(mode, KeyMode::Kid, "a kid-only endpoint took a jwk");
            assert_eq!(*k, key);
        }
        (KeyRef::Kid(kid), Some(id)) => {
            assert_ne!(mode, KeyMode::Jwk, "a jwk-only endpoint took a kid");
            assert_eq!(keys::public_key_for_kid(kid).as_ref(), Some(&key));
            assert_eq!(format!("{BASE}/acme/acct/{id}"), *kid);
        }
        other => panic!("key reference and account disagree: {other:?}"),
    }
    jws.verify(&key).expect("an accepted request verifies");
    check_reserializes(body, &jws, &key);

    let refused = |url: &str, mode: KeyMode, nonce_ok: bool| {
        authenticate(body, url, mode, at, nonce_ok)
            .err()
            .map(|e| e.problem.kind)
    };
    assert_eq!(
        refused(&format!("{url}x"), mode, true),
        Some(ProblemType::Unauthorized),
        "accepted for another URL"
    );
    assert_eq!(
        refused(&url, mode, false),
        Some(ProblemType::BadNonce),
        "accepted with its nonce refused"
    );
    let other_mode = match jws.protected.key {
        KeyRef::Jwk(_) => KeyMode::Kid,
        KeyRef::Kid(_) => KeyMode::Jwk,
    };
    assert_eq!(
        refused(&url, other_mode, true),
        Some(ProblemType::Malformed),
        "accepted in the other key mode"
    );
    None
}

/// Target `server_config`: TOML text as `cobble serve --config` reads it. A config that
/// loads gives its policies, prints (`--print-config`) and reloads to the same value (the
/// admin token, never printed, aside), and printing it again gives the same text.
pub fn server_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = toml::from_str::<ServerConfig>(text) else {
        return;
    };
    assert!(!cfg.effective_database_url().is_empty());
    let _ = cfg.identifier_policy();
    let printed = toml::to_string(&cfg)
        .unwrap_or_else(|e| panic!("a config that loads does not print: {e}\n{text}"));
    let again: ServerConfig = toml::from_str(&printed)
        .unwrap_or_else(|e| panic!("a printed config does not load: {e}\n{printed}"));
    let mut want = cfg.clone();
    want.admin_token = None;
    assert_eq!(
        again, want,
        "printed config reloads differently:\n{printed}"
    );
    assert_eq!(
        toml::to_string(&again).expect("prints"),
        printed,
        "printing is not stable"
    );
}
