//! RA targets (feature `server`): the pure checks cobble-server makes once a request is
//! authenticated, each the function the route calls: newAccount's External Account Binding
//! (RFC 8555 §7.3.4, `cobble_server::ra::eab`), keyChange's inner JWS (§7.3.5,
//! `cobble_server::routes::key_change::check_inner`) and newOrder's profile
//! (`cobble_server::ra::profile_check`).

use crate::jose::check_reserializes;
use crate::{Input, keys};
use cobble_ca::Profile;
use cobble_core::identifier::Identifier;
use cobble_core::jwk::{KeyPolicy, PublicKey};
use cobble_core::jws::{Jws, KeyRef};
use cobble_core::{Problem, ProblemType, ResultCode, b64};
use cobble_server::ra::{eab, profile_check};
use cobble_server::routes::key_change::check_inner;
use ring::hmac;
use serde_json::Value;

/// The key id of the one external account target `eab` knows (the store's lookup finds
/// no other).
pub const EAB_KID: &str = "6f1c2b7e-3d4a-4e5f-9a8b-7c6d5e4f3a2b";

/// That external account's HMAC key: 32 bytes, as Cobble makes them.
pub const EAB_KEY: &[u8; 32] = b"cobble-fuzz-eab-hmac-key-32bytes";

/// newAccount URLs a binding may be checked against (bits 0-1 of the first byte): the
/// seeds name the first, so the others are refused for their `url`.
pub const EAB_URLS: [&str; 4] = [
    "https://cobble.test/acme/new-acct",
    "https://cobble.test:14000/acme/new-acct",
    "https://cobble.test/acme/new-account",
    "https://cobble.test/acme/new-acct/",
];

/// The account key of target `eab`'s newAccount request: the fixed ES256 key.
pub fn eab_account_key() -> PublicKey {
    keys::signers()[1].1.public_key()
}

/// The MAC algorithm of a JWS `alg` name (RFC 7518 §3.2), as this harness reads it.
fn hs_alg(name: &str) -> Option<hmac::Algorithm> {
    match name {
        "HS256" => Some(hmac::HMAC_SHA256),
        "HS384" => Some(hmac::HMAC_SHA384),
        "HS512" => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

/// The MAC of `protected.payload` with `key`, base64url.
pub fn eab_mac(alg: hmac::Algorithm, key: &[u8], protected: &str, payload: &str) -> String {
    let tag = hmac::sign(
        &hmac::Key::new(alg, key),
        format!("{protected}.{payload}").as_bytes(),
    );
    b64::encode(tag.as_ref())
}

/// Checks a refusal is a problem a client can act on: a 4xx whose type and status agree
/// with its result code (or its type's own status when it has none), with a detail.
fn check_refusal(p: &Problem) {
    assert!(
        (400..500).contains(&p.status),
        "a refusal that is not a client error: {p:?}"
    );
    match p.code {
        Some(code) => {
            assert_eq!(p.kind, code.problem_type(), "{p:?}");
            assert_eq!(p.status, code.status(), "{p:?}");
            assert!(p.detail.starts_with(code.as_str()), "{p:?}");
        }
        None => assert_eq!(p.status, p.kind.status(), "{p:?}"),
    }
    assert!(!p.detail.is_empty(), "{p:?}");
}

/// The server's `eab::verify` with the store lookup replaced by the one external account:
/// [`EAB_KID`] with [`EAB_KEY`].
fn eab_verify(
    binding: &Value,
    url: &str,
    account_key: &PublicKey,
    hmac_key: &[u8],
) -> Result<eab::Binding, Problem> {
    let b = eab::parse_binding(binding, url, account_key)?;
    if b.kid != EAB_KID {
        return Err(eab::not_found(&b.kid));
    }
    b.verify_mac(|| Ok(hmac_key.to_vec()))?;
    Ok(b)
}

/// Target `eab`: `[url (bits 0-1), re-MAC (bits 2-3: no, HS256, HS384, HS512)]` then the
/// JSON of a newAccount's `externalAccountBinding` (RFC 8555 §7.3.4), through
/// `cobble_server::ra::eab` for one external account and the fixed ES256 account key. With
/// re-MAC on, the harness first replaces the `signature` with the MAC of that algorithm, so
/// mutated headers and payloads reach the MAC check. An accepted binding names the
/// external account, carries the MAC of its `protected.payload` under the header's HS
/// algorithm and that account's key, binds the request's account key, is for the newAccount
/// URL and has no `nonce`; another URL, account key or HMAC key refuses it. Refusals are
/// client errors of the types §7.3.4 calls for.
pub fn eab(data: &[u8]) {
    let _ = eab_outcome(data);
}

/// What target `eab` decided on `data`: `None` when the input is not JSON (a newAccount
/// payload that is not JSON never reaches the binding), else the refusal, if any.
pub fn eab_outcome(data: &[u8]) -> Option<Result<(), Problem>> {
    let mut input = Input::new(data);
    let pick = input.byte();
    let url = EAB_URLS[usize::from(pick & 3)];
    let mut binding: Value = serde_json::from_slice(input.rest()).ok()?;
    let remac = match pick >> 2 & 3 {
        0 => None,
        1 => Some(hmac::HMAC_SHA256),
        2 => Some(hmac::HMAC_SHA384),
        _ => Some(hmac::HMAC_SHA512),
    };
    if let (Some(alg), Some(p), Some(q)) = (
        remac,
        binding["protected"].as_str(),
        binding["payload"].as_str(),
    ) {
        binding["signature"] = Value::String(eab_mac(alg, EAB_KEY, p, q));
    }
    let account_key = eab_account_key();
    let b = match eab_verify(&binding, url, &account_key, EAB_KEY) {
        Ok(b) => b,
        Err(p) => {
            check_refusal(&p);
            let allowed = matches!(
                p.kind,
                ProblemType::Malformed | ProblemType::BadSignatureAlgorithm
            ) || p.kind == ProblemType::Unauthorized
                && matches!(p.code, None | Some(ResultCode::ExternalAccountNotFound));
            assert!(allowed, "an EAB refusal of an unexpected type: {p:?}");
            return Some(Err(p));
        }
    };
    // Read the binding again, without the server's code, and check what it accepted.
    let members = binding
        .as_object()
        .expect("an accepted binding is an object");
    let text = |name: &str| {
        members[name]
            .as_str()
            .expect("an accepted binding's members are strings")
    };
    assert_eq!(members.len(), 3, "accepted a binding with extra members");
    let (protected, payload, signature) = (text("protected"), text("payload"), text("signature"));
    let header: Value = serde_json::from_slice(&b64::decode(protected).expect("base64url"))
        .expect("an accepted header is JSON");
    assert_eq!(
        header["kid"].as_str(),
        Some(EAB_KID),
        "accepted another kid"
    );
    assert_eq!(b.kid, EAB_KID);
    assert_eq!(
        header["url"].as_str(),
        Some(url),
        "accepted for another URL"
    );
    assert!(
        header.get("nonce").is_none(),
        "accepted a header with a nonce: {header}"
    );
    let alg = header["alg"]
        .as_str()
        .and_then(hs_alg)
        .expect("accepted an alg that is not HS256/384/512");
    assert_eq!(
        b.alg, alg,
        "verified with another algorithm than the header's"
    );
    assert_eq!(b.signing_input, format!("{protected}.{payload}"));
    assert_eq!(b.signature, signature);
    assert_eq!(
        eab_mac(alg, EAB_KEY, protected, payload),
        signature,
        "accepted a signature that is not the MAC of protected.payload"
    );
    let jwk: Value = serde_json::from_slice(&b64::decode(payload).expect("base64url"))
        .expect("an accepted payload is JSON");
    let permissive = KeyPolicy {
        rsa_min_bits: 0,
        rsa_max_bits: usize::MAX,
    };
    let bound = PublicKey::from_jwk(&jwk, &permissive).expect("an accepted payload is a JWK");
    assert_eq!(bound.thumbprint(), account_key.thumbprint());

    let kind = |r: Result<eab::Binding, Problem>| r.err().map(|p| p.kind);
    let other_url = EAB_URLS[usize::from(pick & 3) ^ 1];
    assert_eq!(
        kind(eab_verify(&binding, other_url, &account_key, EAB_KEY)),
        Some(ProblemType::Malformed),
        "accepted for another URL"
    );
    let other_key = keys::signers()[0].1.public_key();
    assert_eq!(
        kind(eab_verify(&binding, url, &other_key, EAB_KEY)),
        Some(ProblemType::Unauthorized),
        "accepted for another account key"
    );
    assert_eq!(
        kind(eab_verify(&binding, url, &account_key, &[0x5a; 32])),
        Some(ProblemType::Unauthorized),
        "accepted with another HMAC key"
    );
    Some(Ok(()))
}

/// The outer `url` of target `key_change`'s requests.
pub const KEY_CHANGE_URL: &str = "https://cobble.test/acme/key-change";

/// The account target `key_change` rolls over: the fixed RS256 key's (its kid, its key).
pub fn key_change_account() -> (&'static str, PublicKey) {
    let (kid, signer) = &keys::signers()[0];
    (kid, signer.public_key())
}

/// Target `key_change`: the payload of a keyChange request (RFC 8555 §7.3.5), the inner JWS,
/// through `cobble_server::routes::key_change::check_inner` for the fixed RS256 account and
/// [`KEY_CHANGE_URL`]. An accepted inner JWS verifies with the key returned (the `jwk` it
/// embeds; re-serialized too), is for the outer URL, has no `nonce`, names the account and
/// its current key as `oldKey`, and the new key is another; another outer URL, account or
/// current key refuses it. Refusals are client errors that say what was wrong.
pub fn key_change(data: &[u8]) {
    let _ = key_change_outcome(data);
}

/// What target `key_change` decided on `data`: the new key, or the refusal.
pub fn key_change_outcome(data: &[u8]) -> Result<PublicKey, Problem> {
    let (kid, old) = key_change_account();
    let thumb = old.thumbprint();
    let policy = KeyPolicy::default();
    let check = |url: &str, kid: &str, thumb: &str| {
        check_inner(data, url, kid, thumb, &policy).inspect_err(|p| {
            check_refusal(p);
            assert!(
                p.detail.starts_with("inner ") || p.detail.starts_with("the new key"),
                "a keyChange refusal that does not say what it is about: {p:?}"
            );
        })
    };
    let new = check(KEY_CHANGE_URL, kid, &thumb)?;
    let jws = Jws::parse(data, &policy).expect("an accepted inner JWS parses");
    assert_eq!(jws.protected.key, KeyRef::Jwk(new.clone()));
    jws.verify(&new)
        .expect("an accepted inner JWS verifies with the new key");
    check_reserializes(data, &jws, &new);
    assert_eq!(jws.protected.url, KEY_CHANGE_URL);
    assert_eq!(
        jws.protected.nonce, None,
        "accepted an inner JWS with a nonce"
    );
    let payload: Value = serde_json::from_slice(&jws.payload).expect("an accepted payload is JSON");
    assert_eq!(payload["account"].as_str(), Some(kid));
    let named = PublicKey::from_stored_jwk(&payload["oldKey"]).expect("oldKey is a key");
    assert_eq!(named.thumbprint(), thumb, "oldKey is not the account's key");
    assert_ne!(new.thumbprint(), thumb, "accepted the current key as new");
    assert_ne!(new, old);

    let malformed = |r: Result<PublicKey, Problem>| r.err().map(|p| p.kind);
    let other = |s: &str| format!("{s}x");
    for (what, r) in [
        ("another URL", check(&other(KEY_CHANGE_URL), kid, &thumb)),
        (
            "another account",
            check(KEY_CHANGE_URL, &other(kid), &thumb),
        ),
        (
            "another current key",
            check(KEY_CHANGE_URL, kid, &new.thumbprint()),
        ),
    ] {
        assert_eq!(
            malformed(r),
            Some(ProblemType::Malformed),
            "accepted for {what}"
        );
    }
    Ok(new)
}

/// The profile lists target `profile` checks orders against (bits 0-1 of the first byte):
/// the built-in ones; those and three that refuse wildcards, IP addresses or both; the
/// latter alone (so the default refuses wildcards); none.
pub fn profile_sets() -> [Vec<Profile>; 4] {
    let defaults = Profile::defaults();
    let strict = |name: &str, allow_wildcard: bool, allow_ip: bool| Profile {
        name: name.into(),
        allow_wildcard,
        allow_ip,
        ..defaults[0].clone()
    };
    let strict = vec![
        strict("nowildcard", false, true),
        strict("noip", true, false),
        strict("dnsonly", false, false),
    ];
    [
        defaults.clone(),
        [defaults, strict.clone()].concat(),
        strict,
        Vec::new(),
    ]
}

/// Target `profile`: `[profiles (bits 0-1), a profile asked for (bit 2)]`, then the name
/// asked for as the first line when there is one, then up to 16 identifier lines
/// (`type<TAB>value`, `dns` when no tab) parsed by `Identifier::from_wire` and deduplicated
/// as newOrder does, through `cobble_server::ra::profile_check`. It chooses the profile
/// asked for, or the first, and refuses a name not offered with `invalidProfile`; an
/// accepted order has no wildcard name unless its profile allows them, nor an IP address;
/// a refused one has one subproblem per identifier its profile does not take, in order,
/// naming it, with `INVALID_PROFILE_FOR_WILDCARD` for a wildcard and `rejectedIdentifier`
/// for an IP address.
pub fn profile(data: &[u8]) {
    let _ = profile_outcome(data);
}

/// What target `profile` decided on `data`: the chosen profile's name, or the refusal.
pub fn profile_outcome(data: &[u8]) -> Result<Option<String>, Problem> {
    let mut input = Input::new(data);
    let pick = input.byte();
    let profiles = &profile_sets()[usize::from(pick & 3)];
    let requested =
        (pick & 4 != 0).then(|| String::from_utf8_lossy(input.until(b'\n')).into_owned());
    let mut ids: Vec<Identifier> = Vec::new();
    for _ in 0..16 {
        if input.is_empty() {
            break;
        }
        let line = String::from_utf8_lossy(input.until(b'\n')).into_owned();
        let (kind, value) = line.split_once('\t').unwrap_or(("dns", &line));
        match Identifier::from_wire(kind, value) {
            Ok(id) if !ids.contains(&id) => ids.push(id),
            _ => {}
        }
    }
    let got = profile_check(profiles, requested.as_deref(), &ids);
    let chosen = match requested.as_deref() {
        None => profiles.first(),
        Some(name) => match profiles.iter().find(|p| p.name == name) {
            Some(p) => Some(p),
            None => {
                let p = got.expect_err("accepted a profile that is not offered");
                check_refusal(&p);
                assert_eq!(p.kind, ProblemType::InvalidProfile, "{p:?}");
                assert!(p.subproblems.is_empty() && p.identifier.is_none(), "{p:?}");
                assert!(p.detail.contains(&format!("{name:?}")), "{p:?}");
                return Err(p);
            }
        },
    };
    let refused: Vec<&Identifier> = match chosen {
        None => Vec::new(),
        Some(p) => ids
            .iter()
            .filter(|id| match id {
                Identifier::Dns(_) => id.is_wildcard() && !p.allow_wildcard,
                Identifier::Ip(_) => !p.allow_ip,
            })
            .collect(),
    };
    let p = match got {
        Ok(got) => {
            assert!(
                refused.is_empty(),
                "accepted {refused:?} for profile {:?}",
                chosen.map(|p| &p.name)
            );
            assert!(
                got.map(std::ptr::from_ref) == chosen.map(std::ptr::from_ref),
                "chose {:?}, not {:?}",
                got.map(|p| &p.name),
                chosen.map(|p| &p.name)
            );
            return Ok(got.map(|p| p.name.clone()));
        }
        Err(p) => p,
    };
    let profile = chosen.expect("refused identifiers without a profile");
    check_refusal(&p);
    assert_eq!(
        p.subproblems.len(),
        refused.len(),
        "not one subproblem per refused identifier: {p:?}"
    );
    for (sub, id) in p.subproblems.iter().zip(&refused) {
        check_refusal(sub);
        let named = sub
            .identifier
            .as_deref()
            .expect("a subproblem names its identifier");
        assert_eq!(
            (named.kind.as_str(), named.value.clone()),
            (id.kind(), id.value())
        );
        assert!(sub.subproblems.is_empty());
        assert!(sub.detail.contains(&profile.name), "{sub:?}");
        if id.is_wildcard() {
            assert_eq!(
                sub.code,
                Some(ResultCode::InvalidProfileForWildcard),
                "{sub:?}"
            );
        } else {
            assert_eq!(
                (sub.kind, sub.code),
                (ProblemType::RejectedIdentifier, None)
            );
        }
    }
    let common = p.subproblems[0].kind;
    let all_same = p.subproblems.iter().all(|s| s.kind == common);
    assert_eq!(
        p.kind,
        if all_same {
            common
        } else {
            ProblemType::Compound
        },
        "{p:?}"
    );
    Err(p)
}
