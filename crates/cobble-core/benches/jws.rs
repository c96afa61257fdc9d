//! JWS parse + verify per algorithm: the CPU cost every ACME POST pays.

use cobble_core::jwk::{Curve, KeyPolicy};
use cobble_core::jws::Jws;
use cobble_core::sign::Signer;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

fn bench(c: &mut Criterion) {
    let signers = [
        Signer::generate_ec(Curve::P256).unwrap(),
        Signer::generate_ec(Curve::P384).unwrap(),
        Signer::generate_ec(Curve::P521).unwrap(),
        Signer::generate_ed25519().unwrap(),
        Signer::rsa_from_pkcs8(cobble_core::testkeys::RSA2048_PKCS8).unwrap(),
    ];
    let policy = KeyPolicy::default();
    let mut g = c.benchmark_group("jws_parse_verify");
    for s in &signers {
        let body = s
            .sign_with_jwk(
                "https://localhost:14000/acme/new-acct",
                Some("AAABogaZqo53igREdM064Yed42aBMHsUBhZrAUSVTGU"),
                Some(&json!({"termsOfServiceAgreed": true, "contact": ["mailto:a@example.com"]})),
            )
            .to_string();
        let key = s.public_key();
        g.bench_function(format!("jwk/{}", s.alg()), |b| {
            b.iter(|| {
                let jws = Jws::parse(body.as_bytes(), &policy).unwrap();
                jws.verify(&key).unwrap();
            })
        });
        // The hot path: a kid request verified with the stored account key.
        let kid = "https://localhost:14000/acme/acct/AAAAAAAAAAAAAAAAAAAAAA";
        let body = s
            .sign_with_kid(
                kid,
                kid,
                "AAABogaZqo53igREdM064Yed42aBMHsUBhZrAUSVTGU",
                None,
            )
            .to_string();
        let stored = key.to_jwk();
        g.bench_function(format!("kid/{}", s.alg()), |b| {
            b.iter(|| {
                let jws = Jws::parse(body.as_bytes(), &policy).unwrap();
                let key = cobble_core::jwk::PublicKey::from_stored_jwk(&stored).unwrap();
                jws.verify(&key).unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
