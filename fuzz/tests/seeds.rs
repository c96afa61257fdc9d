//! Writes the generated part of the seed corpora (JWS bodies signed by the fixed keys,
//! JWKs, nonces, payloads, identifiers, contacts, DNS queries, RFC examples). Run by hand
//! after a target's input format changes:
//! `cargo test -p cobble-fuzz --test seeds -- --ignored`.
//! The openssl-made CSR and OCSP seeds come from `fuzz/openssl-seeds.sh`.

use cobble_core::b64;
use cobble_fuzz::jose::nonce_fixture;
use cobble_fuzz::keys::signers;
use serde_json::json;
use std::path::PathBuf;

fn write(target: &str, name: &str, data: impl AsRef<[u8]>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), data).unwrap();
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A DNS query (RFC 1035 §4.1) for `name` and `qtype`, recursion desired.
fn dns_query(id: u16, name: &str, qtype: u16, edns: bool) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    for label in name.trim_end_matches('.').split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    if edns {
        // OPT RR: root name, type 41, UDP size 1232, no options.
        m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    m
}

/// Made the fixed P-256 and P-384 keys in fuzz/keys once (ring reads only its own PKCS#8
/// form, not openssl's). Rewriting them invalidates the signed seeds: run `write_seeds` after.
#[test]
#[ignore = "writes fuzz/keys; run by hand"]
fn write_keys() {
    use ring::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
    };
    let rng = ring::rand::SystemRandom::new();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keys");
    for (name, alg) in [
        ("p256", &ECDSA_P256_SHA256_FIXED_SIGNING),
        ("p384", &ECDSA_P384_SHA384_FIXED_SIGNING),
    ] {
        let der = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        std::fs::write(dir.join(format!("{name}.pkcs8.der")), der.as_ref()).unwrap();
    }
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_seeds() {
    let base = "https://cobble.test/acme";
    let new_acct =
        json!({"termsOfServiceAgreed": true, "contact": ["mailto:cert-admin@example.org"]});
    let new_order = json!({"identifiers": [{"type": "dns", "value": "www.example.org"},
        {"type": "dns", "value": "example.org"}], "notBefore": "2016-01-01T00:04:00+04:00"});

    // jws: newAccount with an embedded key for every algorithm, two kid requests.
    for (kid, s) in signers() {
        let body = s.sign_with_jwk(
            &format!("{base}/new-acct"),
            Some("oFvnlFP1wIhRlYS2jTaXbA"),
            Some(&new_acct),
        );
        write(
            "jws",
            &format!("new-account-{}.json", s.alg().to_lowercase()),
            body.to_string(),
        );
        if s.alg() == "RS256" {
            let g = s.sign_with_kid(kid, &format!("{base}/order/1"), "n2", None);
            write("jws", "post-as-get-rs256.json", g.to_string());
        }
        if s.alg() == "EdDSA" {
            let o = s.sign_with_kid(kid, &format!("{base}/new-order"), "n3", Some(&new_order));
            write("jws", "new-order-eddsa.json", o.to_string());
        }
    }

    // jws_sign: [key, mode, flip hi, flip lo] url \0 nonce \0 payload.
    for (i, payload) in [&b"{}"[..], b"", b"{\"csr\":\"MIIB\"}", b"[1]", b"\xff\x00"]
        .iter()
        .enumerate()
    {
        let input = cat(&[
            &[i as u8, (i as u8) << 1, i as u8, 7],
            b"https://cobble.test/acme/new-acct\0nonce\0",
            payload,
        ]);
        write("jws_sign", &format!("key{i}.bin"), input);
    }

    // jwk: the fixed keys and RFC examples (RFC 7638 §3.1, RFC 7517 A.1, RFC 8037 A.2).
    for (_, s) in signers() {
        write(
            "jwk",
            &format!("{}.json", s.alg().to_lowercase()),
            s.public_key().to_jwk().to_string(),
        );
    }
    write(
        "jwk",
        "rfc7638.json",
        r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
    );
    write(
        "jwk",
        "rfc7517-ec.json",
        r#"{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","use":"enc","kid":"1"}"#,
    );
    write(
        "jwk",
        "rfc8037-ed25519.json",
        r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
    );

    // nonce: [mode, offset (4 bytes, 100 ms units)] then text or (position, byte) edits.
    let (_, minted) = nonce_fixture();
    write(
        "nonce",
        "fresh.bin",
        cat(&[&[0, 0, 0, 0, 10], minted[0].0.as_bytes()]),
    );
    write(
        "nonce",
        "expired.bin",
        cat(&[&[0, 0, 0, 0x8c, 0xa1], minted[1].0.as_bytes()]),
    );
    write("nonce", "edited.bin", [1, 0, 0, 0, 1, 42, b'A']);
    write("nonce", "second.bin", [0x81, 0xff, 0xff, 0xff, 0x00]);

    // identifier: [policy flags] then type<TAB>value lines.
    write(
        "identifier",
        "dns.txt",
        b"\x07www.example.org\nexample.org\n*.example.net",
    );
    write(
        "identifier",
        "ip.txt",
        b"\x23ip\t192.0.2.1\nip\t2001:db8::1\nip\t::\nip\t224.0.0.1",
    );
    write("identifier", "idn.txt", b"\x1fxn--bcher-kva.example\nxn--p1ai\nWWW.Example.COM\nexample.com.\nsub.blocked.example.com");
    write("identifier", "bad.txt", b"\xe7*.*.example.com\na..b.example\n-a.example\nab--c.example\n1.2.3.4\nfoo\nlocal.local\nco.uk\nemail\texample.com");

    // contact: one contact per line.
    write(
        "contact",
        "ok.txt",
        "mailto:cert-admin@example.org\nmailto:admin@example.org",
    );
    write(
        "contact",
        "bad.txt",
        "mailto:a@example.com?subject=x\ntel:+12025550100\nmailto:a@b,c@d.example\nmailto:a..b@example.com",
    );

    // payload: RFC 8555 §7.3-§7.6 request payloads.
    write("payload", "new-account.json", new_acct.to_string());
    write("payload", "new-order.json", new_order.to_string());
    write(
        "payload",
        "finalize.json",
        r#"{"csr":"MIIBPTCBxAIBADBFMQswCQYDVQQGEwJBVTETMBEGA1UECBMKU29tZS1TdGF0ZTEhMB8GA1UEChMYSW50ZXJuZXQgV2lkZ2l0cyBQdHkgTHRk"}"#,
    );
    write(
        "payload",
        "revoke.json",
        r#"{"certificate":"MIIEDTCCAvegAwIBAgIRAP8","reason":4}"#,
    );
    write(
        "payload",
        "deactivate.json",
        r#"{"status":"deactivated","contact":[]}"#,
    );
    write("payload", "array.json", "[\"x\"]");
    let (kid, s) = &signers()[1];
    let inner = s.sign_with_jwk(
        &format!("{base}/key-change"),
        None,
        Some(&json!({"account": kid, "oldKey": signers()[0].1.public_key().to_jwk()})),
    );
    write("payload", "key-change-inner.json", inner.to_string());

    // ari: RFC 9773 §4.1's example certID.
    write("ari", "rfc9773.txt", "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    write(
        "ari",
        "long-serial.txt",
        format!("{}.{}", b64::encode([0x5a; 20]), b64::encode([0x01; 20])),
    );

    // challtestsrv_dns: the queries a validation sends.
    write(
        "challtestsrv_dns",
        "txt.bin",
        dns_query(0x1234, "_acme-challenge.example.com", 16, false),
    );
    write(
        "challtestsrv_dns",
        "caa-edns.bin",
        dns_query(0x4321, "Example.COM", 257, true),
    );
    write(
        "challtestsrv_dns",
        "a.bin",
        dns_query(7, "www.example.org", 1, false),
    );
    // challtestsrv_mgmt: [endpoint] then the JSON body pebble-challtestsrv's clients send.
    for (i, (name, body)) in [
        ("add-http01", r#"{"token":"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0","content":"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"}"#),
        ("add-redirect", r#"{"path":"/.well-known/acme-challenge/x","targetURL":"http://example.com:5002/y"}"#),
        ("add-tlsalpn01", r#"{"HOST":"example.com","content":"token.thumbprint"}"#),
        ("set-cname", r#"{"host":"_acme-challenge.example.com","target":"example.net."}"#),
        ("add-caa", r#"{"host":"example.com","policies":[{"tag":"issue","value":"cobble.test; validationmethods=dns-01"},{"flag":128,"tag":"tbs","value":"x"}]}"#),
        ("set-txt", r#"{"host":"_acme-challenge.example.com.","value":"LPsIwTo7o8BoG0-vjCyGQGBWSVIPxI-i_X336eUOQZo"}"#),
        ("add-a", r#"{"host":"example.com","value":"192.0.2.1, 10.0.0.1"}"#),
        ("history", r#"{"host":"example.com","type":"dns"}"#),
    ]
    .into_iter()
    .enumerate()
    {
        write(
            "challtestsrv_mgmt",
            &format!("{name}.bin"),
            cat(&[&[i as u8], body.as_bytes()]),
        );
    }
    write(
        "challtestsrv_dns",
        "aaaa.bin",
        dns_query(8, "x.y", 28, true),
    );
}

/// The server targets' seeds, apart from `write_seeds` so that writing them leaves the other
/// (randomly signed) seeds alone: `cargo test -p cobble-fuzz --test seeds write_server_seeds -- --ignored`.
#[cfg(feature = "server")]
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_server_seeds() {
    use cobble_fuzz::server::{BASE, PATHS};
    let (_, minted) = nonce_fixture();
    let nonce = minted[0].0.as_str();
    let url = |path: usize| format!("{BASE}{}", PATHS[path]);
    let new_acct = json!({"termsOfServiceAgreed": true});
    let new_order = json!({"identifiers": [{"type": "dns", "value": "example.org"}]});
    // auth: [mode (bits 0-1: jwk, kid, either) | path index << 2, minutes after the nonce
    // was minted] then the body.
    let auth = |name: &str, pick: u8, minutes: u8, body: serde_json::Value| {
        write(
            "auth",
            name,
            cat(&[&[pick, minutes], body.to_string().as_bytes()]),
        );
    };
    for (kid, s) in signers() {
        let alg = s.alg().to_lowercase();
        auth(
            &format!("new-account-{alg}.json"),
            0,
            1,
            s.sign_with_jwk(&url(0), Some(nonce), Some(&new_acct)),
        );
        auth(
            &format!("new-order-{alg}.json"),
            1 | 1 << 2,
            2,
            s.sign_with_kid(kid, &url(1), nonce, Some(&new_order)),
        );
    }
    let (kid, s) = &signers()[0];
    auth(
        "post-as-get-rs256.json",
        1 | 2 << 2,
        3,
        s.sign_with_kid(kid, &url(2), nonce, None),
    );
    let (kid, s) = &signers()[4];
    auth(
        "revoke-by-account-eddsa.json",
        2 | 3 << 2,
        4,
        s.sign_with_kid(kid, &url(3), nonce, Some(&json!({"certificate": "MIIB"}))),
    );
    let (_, s) = &signers()[2];
    auth(
        "revoke-by-cert-key-es384.json",
        3 | 3 << 2,
        4,
        s.sign_with_jwk(&url(3), Some(nonce), Some(&json!({"certificate": "MIIB"}))),
    );
    // Refused: expired nonce, wrong URL, unknown account, kid off this server, no nonce.
    auth(
        "expired-nonce.json",
        0,
        200,
        s.sign_with_jwk(&url(0), Some(nonce), Some(&new_acct)),
    );
    auth(
        "wrong-url.json",
        0,
        1,
        s.sign_with_jwk(&url(1), Some(nonce), Some(&new_acct)),
    );
    auth(
        "unknown-account.json",
        1 | 1 << 2,
        1,
        s.sign_with_kid(&format!("{BASE}/acme/acct/404"), &url(1), nonce, None),
    );
    auth(
        "foreign-kid.json",
        1 | 1 << 2,
        1,
        s.sign_with_kid("https://other.test/acme/acct/es384", &url(1), nonce, None),
    );
    auth(
        "no-nonce.json",
        0,
        1,
        s.sign_with_jwk(&url(0), None, Some(&new_acct)),
    );

    // server_config: the defaults as --print-config prints them, the README's key names,
    // and the optional tables and maps.
    use cobble_server::config::ServerConfig;
    write(
        "server_config",
        "defaults.toml",
        toml::to_string(&ServerConfig::default()).unwrap(),
    );
    write(
        "server_config",
        "small.toml",
        "listen = \"127.0.0.1:1\"\nnonce-lifetime-secs = 5\ndatabase-url = \"sqlite::memory:\"\n",
    );
    write(
        "server_config",
        "operator.toml",
        r#"external-url = "https://acme.example.test"
database-url = "postgres://cobble:secret@db.example.test/cobble"
tls-names = ["acme.example.test", "192.0.2.7"]
dns-server = "[::1]:8053"
admin-token = "s3cret"
blocked-domains = ["example.net"]
allowed-domains = ["example.org", "example.com"]
revocation-reasons = [0, 1, 4]
eab-required = true
terms-of-service = ""
website = "https://www.example.test/"

[eab-mac-keys]
kid-1 = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
"kid 2" = "b10e"

[ca]
key-type = "rsa3072"
chain-length = 2
alternate-roots = 1

[ca-files]
root = "/etc/cobble/root.pem"
issuer-key = "/etc/cobble/issuer.key"
"#,
    );
}

/// The RA targets' seeds (`eab`, `key_change`, `profile`):
/// `cargo test -p cobble-fuzz --test seeds write_ra_seeds -- --ignored`. The `eab` ones
/// are deterministic (HMAC), the `key_change` ones signed anew (ECDSA) on each run.
#[cfg(feature = "server")]
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_ra_seeds() {
    use cobble_fuzz::ra::{EAB_KEY, EAB_KID, EAB_URLS, KEY_CHANGE_URL, eab_account_key, eab_mac};
    use ring::hmac::{HMAC_SHA256, HMAC_SHA384, HMAC_SHA512};

    // eab: [url (bits 0-1), re-MAC (bits 2-3)] then the binding. certbot (josepy) writes
    // its JSON with Python's separators and the JWK's members in its own order;
    // instant-acme writes compact JSON, its JWK with `alg` and `use`.
    let jwk = eab_account_key().to_jwk();
    let (x, y) = (jwk["x"].as_str().unwrap(), jwk["y"].as_str().unwrap());
    let certbot_jwk = format!(r#"{{"crv": "P-256", "x": "{x}", "y": "{y}", "kty": "EC"}}"#);
    let instant_jwk =
        format!(r#"{{"alg":"ES256","crv":"P-256","kty":"EC","use":"sig","x":"{x}","y":"{y}"}}"#);
    let url = EAB_URLS[0];
    let certbot_header =
        |alg: &str, kid: &str| format!(r#"{{"alg": "{alg}", "kid": "{kid}", "url": "{url}"}}"#);
    let instant_header =
        |alg: &str, kid: &str| format!(r#"{{"alg":"{alg}","kid":"{kid}","url":"{url}"}}"#);
    // A binding of `header` and `payload` MACed with `alg` and `key`.
    let bind = |header: &str, payload: &str, alg, key: &[u8]| {
        let (p, q) = (b64::encode(header), b64::encode(payload));
        json!({"signature": eab_mac(alg, key, &p, &q), "protected": p, "payload": q})
    };
    let eab = |name: &str, pick: u8, binding: &serde_json::Value| {
        write("eab", name, cat(&[&[pick], binding.to_string().as_bytes()]));
    };
    let valid = [
        (
            "certbot-hs256.json",
            certbot_header("HS256", EAB_KID),
            &certbot_jwk,
            HMAC_SHA256,
        ),
        (
            "instant-acme-hs256.json",
            instant_header("HS256", EAB_KID),
            &instant_jwk,
            HMAC_SHA256,
        ),
        (
            "certbot-hs384.json",
            certbot_header("HS384", EAB_KID),
            &certbot_jwk,
            HMAC_SHA384,
        ),
        (
            "instant-acme-hs512.json",
            instant_header("HS512", EAB_KID),
            &instant_jwk,
            HMAC_SHA512,
        ),
    ];
    for (name, header, payload, alg) in &valid {
        eab(name, 0, &bind(header, payload, *alg, EAB_KEY));
    }
    let good = bind(
        &instant_header("HS256", EAB_KID),
        &instant_jwk,
        HMAC_SHA256,
        EAB_KEY,
    );
    // The harness MACs it with HS384 itself.
    let mut unsigned = bind(
        &instant_header("HS384", EAB_KID),
        &instant_jwk,
        HMAC_SHA384,
        b"",
    );
    unsigned["signature"] = json!("");
    eab("remac-hs384.json", 2 << 2, &unsigned);
    // Refused, one per check in the order eab::parse_binding and verify_mac make them.
    let with = |member: &str, value: serde_json::Value| {
        let mut b = good.clone();
        b[member] = value;
        b
    };
    let refused = [
        (
            "refused-not-flattened.json",
            json!({"protected": good["protected"], "payload": good["payload"]}),
        ),
        (
            "refused-extra-member.json",
            with("header", json!({"kid": EAB_KID})),
        ),
        (
            "refused-protected-not-base64url.json",
            with("protected", json!("eyJ+")),
        ),
        (
            "refused-header-without-kid.json",
            bind(
                &format!(r#"{{"alg":"HS256","url":"{url}"}}"#),
                &instant_jwk,
                HMAC_SHA256,
                EAB_KEY,
            ),
        ),
        (
            "refused-alg-rs256.json",
            bind(
                &instant_header("RS256", EAB_KID),
                &instant_jwk,
                HMAC_SHA256,
                EAB_KEY,
            ),
        ),
        (
            "refused-nonce.json",
            bind(
                &format!(r#"{{"alg":"HS256","kid":"{EAB_KID}","nonce":"n","url":"{url}"}}"#),
                &instant_jwk,
                HMAC_SHA256,
                EAB_KEY,
            ),
        ),
        (
            "refused-payload-not-base64url.json",
            with("payload", json!("e30=")),
        ),
        (
            "refused-payload-not-json.json",
            bind(&instant_header("HS256", EAB_KID), "{", HMAC_SHA256, EAB_KEY),
        ),
        (
            "refused-payload-not-a-key.json",
            bind(
                &instant_header("HS256", EAB_KID),
                r#"{"kty":"oct","k":"AAAA"}"#,
                HMAC_SHA256,
                EAB_KEY,
            ),
        ),
        (
            "refused-other-key.json",
            bind(
                &instant_header("HS256", EAB_KID),
                &signers()[0].1.public_key().to_jwk().to_string(),
                HMAC_SHA256,
                EAB_KEY,
            ),
        ),
        (
            "refused-unknown-kid.json",
            bind(
                &instant_header("HS256", "6136f1b5-39c8-4417-b8a7-c4114b092be6"),
                &instant_jwk,
                HMAC_SHA256,
                EAB_KEY,
            ),
        ),
        (
            "refused-signature-not-base64url.json",
            with("signature", json!("AA+/")),
        ),
        (
            "refused-bad-mac.json",
            bind(
                &instant_header("HS256", EAB_KID),
                &instant_jwk,
                HMAC_SHA256,
                &[7; 32],
            ),
        ),
        (
            "refused-mac-of-another-alg.json",
            bind(
                &instant_header("HS384", EAB_KID),
                &instant_jwk,
                HMAC_SHA256,
                EAB_KEY,
            ),
        ),
    ];
    for (name, b) in &refused {
        eab(name, 0, b);
    }
    eab("refused-wrong-url.json", 1, &good);
    // The finding: a `null` nonce was read as no nonce (MACed by the harness, HS256).
    let header = format!(r#"{{"alg":"HS256","kid":"{EAB_KID}","nonce":null,"url":"{url}"}}"#);
    eab(
        "regress-nonce-null.json",
        1 << 2,
        &bind(&header, &instant_jwk, HMAC_SHA256, b""),
    );

    // key_change: the inner JWS, for the fixed RS256 account.
    let (kid, old) = &signers()[0];
    let old_jwk = old.public_key().to_jwk();
    let inner = |new: &cobble_core::sign::Signer, url: &str, account: &str, old_key| {
        new.sign(
            json!({"jwk": new.public_key().to_jwk(), "url": url}),
            Some(&json!({"account": account, "oldKey": old_key})),
        )
    };
    let key_change =
        |name: &str, body: serde_json::Value| write("key_change", name, body.to_string());
    for (_, new) in &signers()[1..] {
        key_change(
            &format!("new-key-{}.json", new.alg().to_lowercase()),
            inner(new, KEY_CHANGE_URL, kid, old_jwk.clone()),
        );
    }
    let new = &signers()[1].1;
    let mut forged = inner(new, KEY_CHANGE_URL, kid, old_jwk.clone());
    forged["signature"] = inner(new, KEY_CHANGE_URL, kid, json!({"x": 1}))["signature"].clone();
    let refused = [
        ("refused-not-a-jws.json", json!({"not": "a jws"})),
        (
            "refused-nonce.json",
            new.sign(
                json!({"jwk": new.public_key().to_jwk(), "url": KEY_CHANGE_URL, "nonce": "n"}),
                Some(&json!({"account": kid, "oldKey": old_jwk})),
            ),
        ),
        (
            "refused-by-kid.json",
            new.sign(
                json!({"kid": kid, "url": KEY_CHANGE_URL}),
                Some(&json!({"account": kid, "oldKey": old_jwk})),
            ),
        ),
        ("refused-forged-signature.json", forged),
        (
            "refused-other-url.json",
            inner(
                new,
                "https://cobble.test/acme/new-acct",
                kid,
                old_jwk.clone(),
            ),
        ),
        (
            "refused-payload-not-an-object.json",
            new.sign(
                json!({"jwk": new.public_key().to_jwk(), "url": KEY_CHANGE_URL}),
                Some(&json!([kid])),
            ),
        ),
        (
            "refused-other-account.json",
            inner(new, KEY_CHANGE_URL, signers()[2].0, old_jwk.clone()),
        ),
        (
            "refused-old-key-not-a-key.json",
            inner(new, KEY_CHANGE_URL, kid, json!({"kty": "EC"})),
        ),
        (
            "refused-old-key-not-current.json",
            inner(
                new,
                KEY_CHANGE_URL,
                kid,
                signers()[3].1.public_key().to_jwk(),
            ),
        ),
        (
            "refused-same-key.json",
            inner(old, KEY_CHANGE_URL, kid, old_jwk.clone()),
        ),
    ];
    for (name, body) in refused {
        key_change(name, body);
    }

    // profile: [profiles (bits 0-1: built-in, built-in + strict, strict, none), a profile
    // asked for (bit 2)] then its name and identifier lines.
    let profile = |name: &str, pick: u8, text: &str| {
        write("profile", name, cat(&[&[pick], text.as_bytes()]));
    };
    profile(
        "default.txt",
        0,
        "example.com\n*.example.com\nip\t192.0.2.1\nip\t2001:db8::1",
    );
    profile(
        "shortlived.txt",
        4,
        "shortlived\nwww.example.org\n*.example.org",
    );
    profile(
        "certigna-dns.txt",
        4,
        "certigna\nexample.com\n*.example.com\nExample.COM",
    );
    profile(
        "noip-wildcard.txt",
        1 | 4,
        "noip\n*.example.net\nexample.net",
    );
    profile("no-profiles.txt", 3, "example.com\nip\t192.0.2.1");
    profile(
        "refused-certigna-ip.txt",
        4,
        "certigna\nexample.com\nip\t192.0.2.1\nip\t2001:db8::1",
    );
    profile(
        "refused-dnsonly.txt",
        1 | 4,
        "dnsonly\n*.example.com\nexample.com\nip\t192.0.2.1",
    );
    profile(
        "refused-default-nowildcard.txt",
        2,
        "*.example.com\nip\t192.0.2.1\n*.a.example",
    );
    profile("refused-unknown-profile.txt", 4, "tlsserver\nexample.com");
    profile("refused-none-offered.txt", 3 | 4, "classic\nexample.com");
}
