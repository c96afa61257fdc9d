//! The catalogue and the code list the same checks, and CATALOGUE.md is current.

use cobble_conformance::{catalogue, checks};
use std::collections::BTreeSet;

#[test]
fn code_and_catalogue_list_the_same_ids() {
    let entries = catalogue::entries();
    let cat: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    let cat_set: BTreeSet<&str> = cat.iter().copied().collect();
    assert_eq!(
        cat.len(),
        cat_set.len(),
        "duplicate ids in conformance/catalogue.toml"
    );
    let code: Vec<&str> = checks::registry().iter().map(|(id, _)| *id).collect();
    let code_set: BTreeSet<&str> = code.iter().copied().collect();
    assert_eq!(code.len(), code_set.len(), "duplicate ids in the registry");
    let missing: Vec<_> = cat_set.difference(&code_set).collect();
    let extra: Vec<_> = code_set.difference(&cat_set).collect();
    assert!(
        missing.is_empty(),
        "catalogue entries without code: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "code without a catalogue entry: {extra:?}"
    );
    for e in &entries {
        assert!(
            e.section.starts_with("RFC ") || e.section.starts_with("draft-"),
            "{}: section {:?}",
            e.id,
            e.section
        );
        assert!(
            !e.title.is_empty() && !e.sends.is_empty() && !e.expects.is_empty(),
            "{}",
            e.id
        );
        assert!(
            catalogue::area_title(e.id.split('.').next().unwrap_or_default()) != "Other",
            "{}: its area has no heading in catalogue::area_title",
            e.id
        );
    }
    // The cross-cutting checks judge every answer of the run, so they come last.
    let tail: Vec<&str> = cat[cat.len() - 5..].to_vec();
    assert_eq!(
        tail,
        [
            "prob.media-type",
            "prob.registered-type",
            "prob.status-member",
            "prob.detail",
            "robust.no-5xx"
        ]
    );
}

#[test]
fn at_least_150_checks() {
    assert!(catalogue::entries().len() >= 150);
}

#[test]
fn catalogue_md_is_current() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../conformance/CATALOGUE.md"
    );
    let want = catalogue::render_markdown();
    if std::env::var_os("UPDATE_CATALOGUE").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let got = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        got == want,
        "conformance/CATALOGUE.md is stale: run UPDATE_CATALOGUE=1 cargo test -p cobble-conformance catalogue_md"
    );
}

#[test]
fn selection_by_id_prefix_and_section() {
    let e = catalogue::entries()
        .into_iter()
        .find(|e| e.id == "kc.rollover")
        .unwrap();
    for t in ["kc.rollover", "kc", "7.3", "§7.3.5", "7.3.5"] {
        assert!(cobble_conformance::selects(t, &e), "{t}");
    }
    for t in ["kc.roll", "7.3.6", "6", "nonce", "7.3.50"] {
        assert!(!cobble_conformance::selects(t, &e), "{t}");
    }
}
