//! Helpers shared by the `issue*` tests: openssl runs and temp files.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Runs `openssl args...` in `dir`, asserting success; returns stdout.
pub fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `openssl verify -CAfile root -untrusted chain leaf`; returns its stdout (`leaf.pem: OK`).
pub fn openssl_verify(dir: &Path, root_pem: &str, chain_pem: &str, leaf_pem: &str) -> String {
    std::fs::write(dir.join("v-root.pem"), root_pem).unwrap();
    std::fs::write(dir.join("v-chain.pem"), chain_pem).unwrap();
    std::fs::write(dir.join("v-leaf.pem"), leaf_pem).unwrap();
    let mut args = vec!["verify", "-CAfile", "v-root.pem"];
    if !chain_pem.is_empty() {
        args.extend(["-untrusted", "v-chain.pem"]);
    }
    args.push("v-leaf.pem");
    openssl(dir, &args)
}

/// A CSR made by rcgen for `names` with a fresh key of `alg`; returns (CSR DER, SPKI DER).
pub fn rcgen_csr(names: &[&str], alg: &'static rcgen::SignatureAlgorithm) -> (Vec<u8>, Vec<u8>) {
    use rcgen::PublicKeyData;
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).unwrap();
    (csr.der().to_vec(), key.subject_public_key_info())
}

/// A CSR made by `openssl req` with `key_args` (e.g. `-newkey rsa:2048`) and extra args.
pub fn openssl_csr(dir: &Path, tag: &str, key_args: &[&str], extra: &[&str]) -> Vec<u8> {
    let key = format!("{tag}.key");
    let csr = format!("{tag}.csr");
    let mut args = vec![
        "req", "-new", "-nodes", "-keyout", &key, "-outform", "DER", "-out", &csr,
    ];
    args.extend_from_slice(key_args);
    args.extend_from_slice(extra);
    openssl(dir, &args);
    std::fs::read(dir.join(&csr)).unwrap()
}
