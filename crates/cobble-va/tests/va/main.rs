//! Integration tests of the validation authority against loopback servers
//! (one test binary, several modules, to keep link time down).

mod caa;
mod dns01;
#[allow(dead_code)] // shared by the test modules; not every one uses every helper
mod fixtures;
mod http01;
mod policy;
#[allow(dead_code)]
mod servers;
mod tlsalpn01;

use cobble_core::{Problem, ProblemType};

/// Asserts the problem type, a detail fragment and the identifier it names.
#[track_caller]
pub fn assert_problem(p: &Problem, kind: ProblemType, fragment: &str, ident: &str) {
    assert_eq!(p.kind, kind, "wrong type: {p}");
    assert!(
        p.detail.contains(fragment),
        "detail {:?} lacks {fragment:?}",
        p.detail
    );
    let id = p.identifier.as_ref().expect("problem names its identifier");
    assert_eq!(id.value, ident, "{p}");
}
