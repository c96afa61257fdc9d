//! Every fuzz target on stable: its seed corpus (`fuzz/corpus/<target>/`), then a bounded
//! number of deterministic mutants. A target that panics, or takes more than a second on
//! one input, fails with the input in hex. `COBBLE_FUZZ_MUTANTS`, `COBBLE_FUZZ_SECS` and
//! `COBBLE_FUZZ_SEED` widen the run locally.

use cobble_fuzz::TARGETS;
use cobble_fuzz::driver::{self, Budget};
use std::path::PathBuf;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

fn run(target: &str, mutants: usize) {
    let f = TARGETS
        .iter()
        .find(|(n, _)| *n == target)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no target {target}"));
    let seeds: Vec<Vec<u8>> = driver::read_corpus(&corpus_dir(target))
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    assert!(!seeds.is_empty(), "target {target} has no seed corpus");
    let report = driver::run(target, f, &seeds, Budget::from_env(mutants));
    eprintln!(
        "{target}: {} seeds, {} mutants",
        report.seeds, report.mutants
    );
}

#[test]
fn every_corpus_directory_is_a_target() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for e in std::fs::read_dir(&root).expect("fuzz/corpus exists") {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            TARGETS.iter().any(|(n, _)| *n == name),
            "corpus/{name} has no target"
        );
    }
}

macro_rules! targets {
    ($($name:ident: $mutants:expr,)*) => {
        $(#[test] fn $name() { run(stringify!($name), $mutants); })*
        #[test]
        fn every_target_has_a_test() {
            let tested = [$(stringify!($name)),*];
            for (n, _) in TARGETS {
                assert!(tested.contains(n), "target {n} is not run by tests/corpus.rs");
            }
        }
    };
}

// Mutant counts keep each target near a second in a debug build. `jws_sign` (every input
// signs, P-521 in pure Rust included) gets few: its corpus holds the libFuzzer runs'
// inputs, which already reach more than random mutants do.
targets! {
    jws: 2000,
    jws_sign: 30,
    jwk: 3000,
    nonce: 5000,
    identifier: 5000,
    contact: 5000,
    payload: 3000,
    csr: 2000,
    ocsp: 5000,
    ocsp_get: 5000,
    ari: 5000,
    challtestsrv_dns: 1000,
    challtestsrv_mgmt: 1000,
    auth: 1000,
    server_config: 2000,
    pebble_config: 2000,
    eab: 3000,
    key_change: 1000,
    profile: 5000,
}

/// Whether a corpus file is an input the libFuzzer runs grew (`fuzz/merge-runs.sh` keeps
/// libFuzzer's name for it, the SHA-1 of its content) rather than a hand-made seed.
fn is_grown(name: &str) -> bool {
    name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A target's hand-made seeds (named for what they are), without the grown inputs.
fn hand_made(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut seeds = driver::read_corpus(&corpus_dir(target));
    seeds.retain(|(name, _)| !is_grown(name));
    seeds
}

/// The hand-made seeds reach the accepting paths, where the invariants are checked: signed JWSs
/// verify, CSRs pass for their order, nonces open, requests parse.
#[test]
fn seeds_reach_the_accepting_paths() {
    use cobble_core::jwk::KeyPolicy;
    use cobble_core::jws::{Jws, KeyRef};
    let seeds = hand_made;
    for (name, body) in seeds("jws") {
        let jws = Jws::parse(&body, &KeyPolicy::default()).expect(&name);
        let key = match &jws.protected.key {
            KeyRef::Jwk(k) => k.clone(),
            KeyRef::Kid(kid) => cobble_fuzz::keys::public_key_for_kid(kid).expect(&name),
        };
        jws.verify(&key).expect(&name);
    }
    let profiles = cobble_ca::Profile::defaults();
    let account = cobble_fuzz::keys::signers()[1].1.public_key();
    let mut accepted = 0;
    for (name, data) in seeds("csr") {
        let order: Vec<_> = cobble_fuzz::ca::ORDERS[usize::from(data[0] & 0x0f)]
            .iter()
            .map(|(k, v)| cobble_core::identifier::Identifier::from_wire(k, v).unwrap())
            .collect();
        let profile = &profiles[usize::from(data[0] >> 4) % profiles.len()];
        let got = cobble_ca::check_csr(&data[1..], &order, &account, profile, &|_| false);
        eprintln!(
            "csr {name}: {:?}",
            got.as_ref().map(|c| &c.names).map_err(|p| &p.detail)
        );
        accepted += usize::from(got.is_ok());
    }
    assert!(accepted >= 4, "only {accepted} CSR seeds pass the checker");
    let (sealer, minted) = cobble_fuzz::jose::nonce_fixture();
    assert!(
        sealer
            .open(&minted[0].0, cobble_fuzz::jose::NONCE_T0)
            .is_ok()
    );
    // `regress-*` seeds are findings, refused on purpose.
    let seeds = |t: &str| {
        let mut v = seeds(t);
        v.retain(|(name, _)| !name.starts_with("regress-"));
        v
    };
    for (name, der) in seeds("ocsp") {
        cobble_ca::ocsp::parse_request_with_nonce(&der).expect(&name);
    }
    for (name, path) in seeds("ocsp_get") {
        let der =
            cobble_ca::ocsp::parse_get_path(std::str::from_utf8(&path).unwrap()).expect(&name);
        cobble_ca::ocsp::parse_request(&der).expect(&name);
    }
    for (name, id) in seeds("ari") {
        cobble_ca::parse_ari_cert_id(std::str::from_utf8(&id).unwrap()).expect(&name);
    }
    #[cfg(feature = "server")]
    {
        use cobble_core::ProblemType;
        for (name, data) in seeds("auth") {
            let want = match name.as_str() {
                "expired-nonce.json" | "no-nonce.json" => Some(ProblemType::BadNonce),
                "wrong-url.json" => Some(ProblemType::Unauthorized),
                "unknown-account.json" => Some(ProblemType::AccountDoesNotExist),
                "foreign-kid.json" => Some(ProblemType::Malformed),
                _ => None,
            };
            assert_eq!(cobble_fuzz::server::auth_outcome(&data), want, "{name}");
        }
        for (name, text) in seeds("server_config") {
            let text = String::from_utf8(text).unwrap();
            toml::from_str::<cobble_server::config::ServerConfig>(&text).expect(&name);
        }
        // The RA targets: `refused-*` seeds are refused on purpose, with these problems.
        // `regress-*` included: the `eab` finding is a refusal (a `null` nonce).
        for (name, data) in hand_made("eab") {
            let got = cobble_fuzz::ra::eab_outcome(&data).expect(&name);
            let want = match name.as_str() {
                "refused-alg-rs256.json" => Some((ProblemType::BadSignatureAlgorithm, None)),
                "refused-other-key.json"
                | "refused-bad-mac.json"
                | "refused-mac-of-another-alg.json" => Some((ProblemType::Unauthorized, None)),
                "refused-unknown-kid.json" => Some((
                    ProblemType::Unauthorized,
                    Some(cobble_core::ResultCode::ExternalAccountNotFound),
                )),
                n if n.starts_with("refused-") || n.starts_with("regress-") => {
                    Some((ProblemType::Malformed, None))
                }
                _ => None,
            };
            assert_eq!(got.err().map(|p| (p.kind, p.code)), want, "{name}");
        }
        for (name, data) in seeds("key_change") {
            let got = cobble_fuzz::ra::key_change_outcome(&data);
            let want = name
                .starts_with("refused-")
                .then_some(ProblemType::Malformed);
            assert_eq!(got.err().map(|p| p.kind), want, "{name}");
        }
        for (name, data) in seeds("profile") {
            let got = cobble_fuzz::ra::profile_outcome(&data);
            let want = match name.as_str() {
                "refused-unknown-profile.txt" | "refused-none-offered.txt" => {
                    Some((ProblemType::InvalidProfile, 0))
                }
                "refused-certigna-ip.txt"
                | "refused-dnsonly.txt"
                | "refused-default-nowildcard.txt" => Some((ProblemType::RejectedIdentifier, 2)),
                _ => None,
            };
            assert_eq!(
                got.as_ref().err().map(|p| (p.kind, p.subproblems.len())),
                want,
                "{name}: {got:?}"
            );
        }
        // `bad-*` seeds are configs the drop-in refuses, on purpose.
        for (name, text) in seeds("pebble_config") {
            use cobble_server::pebble_config::PebbleConfig;
            let text = String::from_utf8(text).unwrap();
            let got = PebbleConfig::parse(&text)
                .and_then(|p| p.apply(cobble_server::config::ServerConfig::default()));
            assert_eq!(got.is_ok(), !name.starts_with("bad-"), "{name}: {got:?}");
        }
    }
}
