//! JOSE targets: the flattened JWS parser and verification (RFC 8555 §6.2, RFC 7515), JWK
//! parsing (RFC 7517, RFC 7638), nonce opening (RFC 8555 §6.5) and the endpoint payloads.

use crate::{Input, keys};
use cobble_core::b64;
use cobble_core::jwk::{KeyPolicy, PublicKey};
use cobble_core::jws::{Jws, KeyRef};
use cobble_core::nonce::NonceSealer;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::OnceLock;

/// The three members of a flattened JWS as sent, for the re-serialization check.
fn members(body: &[u8]) -> (String, String, String) {
    let v: Value = serde_json::from_slice(body).expect("a parsed JWS is JSON");
    let s = |name: &str| {
        v[name]
            .as_str()
            .expect("a parsed JWS has string members")
            .to_owned()
    };
    (s("protected"), s("payload"), s("signature"))
}

/// RFC 7515 §5.2 / RFC 8555 §6.2: the signature covers `protected "." payload` exactly as
/// sent. A JWS that verifies must carry canonical base64url (no second spelling of the same
/// bytes), and re-serialized from its decoded parts it must parse to the same header and
/// payload and verify with the same key.
pub(crate) fn check_reserializes(body: &[u8], jws: &Jws, key: &PublicKey) {
    let (protected_b64, payload_b64, signature_b64) = members(body);
    let protected_raw = b64::decode(&protected_b64).expect("parsed protected is base64url");
    assert_eq!(
        b64::encode(&protected_raw),
        protected_b64,
        "verified protected header is not canonical base64url"
    );
    assert_eq!(
        b64::encode(&jws.payload),
        payload_b64,
        "verified payload is not canonical base64url"
    );
    assert_eq!(jws.is_post_as_get(), payload_b64.is_empty());
    let again = json!({
        "protected": b64::encode(&protected_raw),
        "payload": b64::encode(&jws.payload),
        "signature": signature_b64,
    });
    let re = Jws::parse(again.to_string().as_bytes(), &KeyPolicy::default())
        .expect("a re-serialized verified JWS parses");
    assert_eq!(re.protected, jws.protected);
    assert_eq!(re.payload, jws.payload);
    re.verify(key)
        .expect("a re-serialized verified JWS still verifies");
}

/// Target `jws`: a request body through `Jws::parse`, then `verify` with the embedded key,
/// or for a `kid` with the fixed key it names (any other kid: every fixed key).
pub fn jws(data: &[u8]) {
    let Ok(jws) = Jws::parse(data, &KeyPolicy::default()) else {
        return;
    };
    let _ = jws.payload_json::<Value>();
    let candidates = match &jws.protected.key {
        KeyRef::Jwk(k) => vec![k.clone()],
        KeyRef::Kid(kid) => keys::public_key_for_kid(kid)
            .map(|k| vec![k])
            .unwrap_or_else(keys::public_keys),
    };
    for key in candidates {
        if jws.verify(&key).is_ok() {
            check_reserializes(data, &jws, &key);
        }
    }
}

/// Target `jws_sign`: builds a JWS from fuzz bytes (key, `jwk` or `kid`, url, nonce, raw
/// payload), signs it with a fixed key of every algorithm, and checks that it parses and
/// verifies, that no other key verifies it, and that one flipped bit anywhere in the
/// protected header, payload or signature makes it fail.
pub fn jws_sign(data: &[u8]) {
    let mut input = Input::new(data);
    let signers = keys::signers();
    let (kid, signer) = &signers[input.byte() as usize % signers.len()];
    let mode = input.byte();
    let flip = (input.byte() as usize) << 8 | input.byte() as usize;
    let url = String::from_utf8_lossy(input.until(0)).into_owned();
    let nonce = String::from_utf8_lossy(input.until(0)).into_owned();
    let payload = if mode & 1 == 1 {
        Vec::new()
    } else {
        input.rest().to_vec()
    };
    let mut header = json!({"alg": signer.alg(), "url": url, "nonce": nonce});
    if mode & 2 == 2 {
        header["jwk"] = signer.public_key().to_jwk();
    } else {
        header["kid"] = json!(kid);
    }
    let mut protected = header.to_string().into_bytes();
    let mut payload = payload;
    let mut signature = {
        let input = format!("{}.{}", b64::encode(&protected), b64::encode(&payload));
        signer.sign_raw(input.as_bytes())
    };
    let body = |p: &[u8], pl: &[u8], s: &[u8]| {
        json!({"protected": b64::encode(p), "payload": b64::encode(pl), "signature": b64::encode(s)})
            .to_string()
    };
    let good = body(&protected, &payload, &signature);
    let jws = Jws::parse(good.as_bytes(), &KeyPolicy::default())
        .unwrap_or_else(|p| panic!("a well-formed {} JWS is refused: {p}", signer.alg()));
    let key = signer.public_key();
    jws.verify(&key)
        .unwrap_or_else(|p| panic!("a good {} signature fails: {p}", signer.alg()));
    assert_eq!(jws.payload, payload);
    assert_eq!(jws.protected.url, url);
    assert_eq!(jws.protected.nonce.as_deref(), Some(nonce.as_str()));
    check_reserializes(good.as_bytes(), &jws, &key);
    for (_, other) in signers {
        let other_key = other.public_key();
        if other_key != key {
            assert!(
                jws.verify(&other_key).is_err(),
                "verified with the wrong key"
            );
        }
    }

    // One bit flipped in one of the three parts: the signature must no longer verify.
    let part = flip % 3;
    let target: &mut Vec<u8> = match part {
        0 => &mut protected,
        1 => &mut payload,
        _ => &mut signature,
    };
    if target.is_empty() {
        return;
    }
    let bit = (flip / 3) % (target.len() * 8);
    target[bit / 8] ^= 1 << (bit % 8);
    let bad = body(&protected, &payload, &signature);
    if let Ok(t) = Jws::parse(bad.as_bytes(), &KeyPolicy::default()) {
        assert!(
            t.verify(&key).is_err(),
            "{} verified after a bit flip in part {part}",
            signer.alg()
        );
    }
}

/// Target `jwk`: a JSON value through `PublicKey::from_jwk` (strict and Pebble-relaxed key
/// policy) and `from_stored_jwk`. A key that passes policy also loads as stored, the two
/// agree, and its canonical JWK (RFC 7638) parses back to the same key.
pub fn jwk(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let relaxed_policy = KeyPolicy {
        rsa_min_bits: 1024,
        ..KeyPolicy::default()
    };
    let strict = PublicKey::from_jwk(&v, &KeyPolicy::default()).ok();
    let relaxed = PublicKey::from_jwk(&v, &relaxed_policy).ok();
    let stored = PublicKey::from_stored_jwk(&v).ok();
    if let Some(k) = &strict {
        assert_eq!(
            relaxed.as_ref(),
            Some(k),
            "relaxed policy refused a strict key"
        );
    }
    if let Some(k) = &relaxed {
        assert_eq!(
            stored.as_ref(),
            Some(k),
            "stored form differs from the checked key"
        );
        let canonical = k.to_jwk();
        assert_eq!(
            PublicKey::from_jwk(&canonical, &relaxed_policy)
                .ok()
                .as_ref(),
            Some(k),
            "canonical JWK does not round-trip"
        );
        assert_eq!(k.thumbprint().len(), 43);
        assert!(!k.describe().is_empty());
    }
    if let Some(k) = &stored {
        assert_eq!(
            PublicKey::from_stored_jwk(&k.to_jwk()).ok().as_ref(),
            Some(k)
        );
        let _ = k.thumbprint();
    }
}

/// Nonce times: the fixed sealer's two nonces were minted at these instants.
pub const NONCE_T0: i64 = 1_700_000_000_000;
/// Nonce lifetime of the fixed sealer.
pub const NONCE_LIFETIME: i64 = 3_600_000;

/// The fixed sealer and the nonces it minted, with their issue times.
pub fn nonce_fixture() -> &'static (NonceSealer, Vec<(String, i64)>) {
    static F: OnceLock<(NonceSealer, Vec<(String, i64)>)> = OnceLock::new();
    F.get_or_init(|| {
        let s = NonceSealer::new(b"cobble-fuzz nonce key", 42, NONCE_LIFETIME);
        let minted = [NONCE_T0, NONCE_T0 + 1_000]
            .into_iter()
            .map(|t| (s.mint(t), t))
            .collect();
        (s, minted)
    })
}

/// Target `nonce`: `NonceSealer::open` at a fuzzed time on fuzzed text, or on one of its own
/// nonces with fuzzed edits. Opens only what it sealed (byte for byte), and only within
/// the lifetime and the allowed clock skew.
pub fn nonce(data: &[u8]) {
    let (sealer, minted) = nonce_fixture();
    let mut input = Input::new(data);
    let mode = input.byte();
    let offset = i32::from_be_bytes([input.byte(), input.byte(), input.byte(), input.byte()]);
    let now = NONCE_T0 + i64::from(offset) * 100;
    let text = if mode & 1 == 0 {
        String::from_utf8_lossy(input.rest()).into_owned()
    } else {
        // Edit a real nonce: (position, byte) pairs.
        let mut n = minted[usize::from(mode >> 7)].0.clone().into_bytes();
        while !input.is_empty() {
            let (pos, b) = (input.byte() as usize, input.byte());
            if pos < n.len() {
                n[pos] = b;
            } else {
                n.push(b);
            }
        }
        String::from_utf8_lossy(&n).into_owned()
    };
    if let Ok(opened) = sealer.open(&text, now) {
        assert_eq!(opened.value, text);
        let (_, issued) = minted
            .iter()
            .find(|(n, _)| *n == text)
            .unwrap_or_else(|| panic!("opened a nonce it never sealed: {text:?}"));
        assert!(now - issued <= NONCE_LIFETIME, "opened an expired nonce");
        assert!(*issued - now <= 60_000, "opened a nonce from the future");
        assert_eq!(opened.expires_ms, issued + NONCE_LIFETIME);
    }
}

// The request payload shapes of RFC 8555's endpoints, as the server's routes read them.

/// newAccount (§7.3), with External Account Binding (§7.3.4).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct NewAccount {
    #[serde(default)]
    contact: Option<Vec<String>>,
    #[serde(default)]
    terms_of_service_agreed: Option<bool>,
    #[serde(default)]
    only_return_existing: bool,
    #[serde(default)]
    external_account_binding: Option<Value>,
}

/// Account update and deactivation (§7.3.2, §7.3.6).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct AccountUpdate {
    #[serde(default)]
    contact: Option<Vec<String>>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    terms_of_service_agreed: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct WireIdentifier {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

/// newOrder (§7.4), with `profile` and RFC 9773 `replaces`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct NewOrder {
    identifiers: Vec<WireIdentifier>,
    #[serde(default)]
    not_before: Option<String>,
    #[serde(default)]
    not_after: Option<String>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    replaces: Option<String>,
}

/// newAuthz (§7.4.1).
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct NewAuthz {
    identifier: WireIdentifier,
}

/// Authorization deactivation (§7.5.2).
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct AuthzUpdate {
    status: Option<String>,
}

/// Challenge response (§7.5.1): an empty object.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeResponse {}

/// finalize (§7.4).
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Finalize {
    csr: String,
}

/// revokeCert (§7.6).
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Revoke {
    certificate: String,
    #[serde(default)]
    reason: Option<i64>,
}

/// keyChange's inner payload (§7.3.5).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct KeyChange {
    account: String,
    old_key: Value,
}

/// `payload_json::<T>` must refuse anything that is not a JSON object, whatever `T` is.
fn object_only<T: serde::de::DeserializeOwned>(jws: &Jws, is_object: bool) -> Option<T> {
    let got = jws.payload_json::<T>();
    if !is_object {
        assert!(got.is_err(), "a non-object payload was accepted");
    }
    got.ok()
}

/// Target `payload`: fuzz bytes as the payload of a `kid` JWS, read by `Jws::payload_json`
/// into each endpoint's payload shape. A payload that is not a JSON object is always
/// refused; POST-as-GET (empty) too. Embedded JWSs (EAB, keyChange's inner JWS) and keys
/// go through their parsers as the routes do.
pub fn payload(data: &[u8]) {
    let protected = json!({"alg": "ES256", "kid": "https://cobble.test/acme/acct/1",
        "url": "https://cobble.test/acme/new-order", "nonce": "n"});
    let body = json!({"protected": b64::encode(protected.to_string()),
        "payload": b64::encode(data), "signature": ""});
    let jws = Jws::parse(body.to_string().as_bytes(), &KeyPolicy::default())
        .expect("a kid JWS with any payload parses");
    let is_object =
        !data.is_empty() && serde_json::from_slice::<Value>(data).is_ok_and(|v| v.is_object());
    if data.is_empty() {
        assert!(jws.is_post_as_get());
    }
    if let Some(acct) = object_only::<NewAccount>(&jws, is_object) {
        if let Some(contact) = &acct.contact {
            let _ = cobble_core::contact::validate(contact);
        }
        if let Some(eab) = &acct.external_account_binding {
            let _ = Jws::parse(eab.to_string().as_bytes(), &KeyPolicy::default());
        }
    }
    if let Some(upd) = object_only::<AccountUpdate>(&jws, is_object)
        && let Some(contact) = &upd.contact
    {
        let _ = cobble_core::contact::validate(contact);
    }
    if let Some(order) = object_only::<NewOrder>(&jws, is_object) {
        for id in &order.identifiers {
            if let Ok(id) = cobble_core::identifier::Identifier::from_wire(&id.kind, &id.value) {
                let _ = cobble_core::policy::IdentifierPolicy::default().check(&id);
            }
        }
        if let Some(r) = &order.replaces {
            let _ = cobble_ca::parse_ari_cert_id(r);
        }
    }
    let _ = object_only::<NewAuthz>(&jws, is_object);
    let _ = object_only::<AuthzUpdate>(&jws, is_object);
    let _ = object_only::<ChallengeResponse>(&jws, is_object);
    if let Some(f) = object_only::<Finalize>(&jws, is_object) {
        let _ = b64::decode(&f.csr);
    }
    let _ = object_only::<Revoke>(&jws, is_object);
    let _ = object_only::<Value>(&jws, is_object);
    // keyChange: the outer payload is itself a JWS whose payload is the KeyChange object.
    if let Ok(inner) = Jws::parse(data, &KeyPolicy::default()) {
        let inner_is_object = !inner.payload.is_empty()
            && serde_json::from_slice::<Value>(&inner.payload).is_ok_and(|v| v.is_object());
        if let Some(kc) = object_only::<KeyChange>(&inner, inner_is_object) {
            let _ = PublicKey::from_jwk(&kc.old_key, &KeyPolicy::default());
        }
    }
}
