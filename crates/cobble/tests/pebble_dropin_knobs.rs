//! Pebble's environment knobs in the drop-in `pebble`, beside Debian's Pebble 2.4: values
//! Pebble does not take (not a number, out of range) are ignored or clamped as Pebble does,
//! never fatal, and the drop-in prints Pebble's start-up lines for them (`Configured to reject
//! N% of good nonces`, ...). The expected lines were observed with Debian's 2.4 and are
//! checked against both servers; without Debian's `pebble` only the drop-in is checked.

mod common;

use common::dropin::{Proc, pebble_config, symlinks, workspace_root};
use common::ports::free_port;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Every knob, removed from the inherited environment so that only a case's own apply.
const KNOBS: &[&str] = &[
    "PEBBLE_VA_NOSLEEP",
    "PEBBLE_VA_SLEEPTIME",
    "PEBBLE_VA_ALWAYS_VALID",
    "PEBBLE_WFE_NONCEREJECT",
    "PEBBLE_WFE_ORDERS_PER_PAGE",
    "PEBBLE_AUTHZREUSE",
    "PEBBLE_CHAIN_LENGTH",
    "PEBBLE_ALTERNATE_ROOTS",
];

/// Starts `program` with Pebble's config on free ports and `env`, waits (at most 60 s) for
/// its directory line, stops it, and returns its knob lines without Go's log prefix.
async fn knob_lines(program: &Path, dir: &Path, tag: &str, env: &[(&str, &str)]) -> Vec<String> {
    let cfg = pebble_config(dir, &format!("{tag}.json"), free_port(), free_port(), |c| {
        c["httpPort"] = free_port().into();
        c["tlsPort"] = free_port().into();
    });
    let log = dir.join(format!("{tag}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(program);
    cmd.args(["-config", cfg.to_str().unwrap()])
        .current_dir(workspace_root())
        .env("TMPDIR", dir)
        .env("COBBLE_LOG", "warn")
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    for k in KNOBS {
        cmd.env_remove(k);
    }
    let mut proc = Proc(cmd.envs(env.iter().copied()).spawn().unwrap());
    let mut text = String::new();
    for _ in 0..600 {
        text = std::fs::read_to_string(&log).unwrap();
        if text.contains("ACME directory available at") {
            break;
        }
        assert!(proc.0.try_wait().unwrap().is_none(), "{tag} exited: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        text.contains("ACME directory available at"),
        "{tag}: {text}"
    );
    proc.terminate();
    text.lines()
        .filter_map(|l| l.strip_prefix("Pebble "))
        .filter_map(|l| l.splitn(3, ' ').nth(2))
        .filter(|l| {
            ["Configured to", "Disabling", "Setting maximum"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knobs_read_as_pebble_2_4_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let (drop_in, _) = symlinks(dir.path());
    let mut programs = vec![("drop-in", drop_in)];
    let debian = Path::new("/usr/bin/pebble");
    if debian.exists() {
        programs.push(("debian", debian.to_owned()));
    }
    let reuse =
        |p: u8| format!("Configured to attempt authz reuse for each identifier {p}% of the time");
    // (environment, Pebble 2.4's lines)
    type Case<'a> = (&'a [(&'a str, &'a str)], Vec<String>);
    let cases: [Case; 3] = [
        (
            // Out of range or not numbers: a nonce percentage above 100 is 99, the rest
            // keep their defaults; none is fatal.
            &[
                ("PEBBLE_WFE_NONCEREJECT", "101"),
                ("PEBBLE_AUTHZREUSE", "150"),
                ("PEBBLE_VA_SLEEPTIME", "0"),
                ("PEBBLE_WFE_ORDERS_PER_PAGE", "abc"),
                ("PEBBLE_ALTERNATE_ROOTS", "-1"),
                ("PEBBLE_CHAIN_LENGTH", "abc"),
            ],
            vec![
                "Configured to reject 99% of good nonces".into(),
                reuse(50),
                "Configured to show 3 orders per page".into(),
            ],
        ),
        (
            &[
                ("PEBBLE_WFE_NONCEREJECT", "-5"),
                ("PEBBLE_AUTHZREUSE", "100"),
                ("PEBBLE_VA_SLEEPTIME", "3"),
                ("PEBBLE_WFE_ORDERS_PER_PAGE", "7"),
                ("PEBBLE_VA_ALWAYS_VALID", "1"),
            ],
            vec![
                "Setting maximum random VA sleep time to 3 seconds".into(),
                "Disabling VA challenge requests. VA always returns valid".into(),
                "Configured to reject 0% of good nonces".into(),
                reuse(100),
                "Configured to show 7 orders per page".into(),
            ],
        ),
        (
            &[
                ("PEBBLE_VA_NOSLEEP", "true"),
                ("PEBBLE_WFE_NONCEREJECT", "abc"),
            ],
            vec![
                "Disabling random VA sleeps".into(),
                "Configured to reject 5% of good nonces".into(),
                reuse(50),
                "Configured to show 3 orders per page".into(),
            ],
        ),
    ];
    for (n, (env, want)) in cases.iter().enumerate() {
        for (name, program) in &programs {
            let got = knob_lines(program, dir.path(), &format!("{name}-{n}"), env).await;
            assert_eq!(&got, want, "{name}, case {n}: {env:?}");
        }
    }
}

/// `cobble serve` reads the same knobs but refuses a value Pebble would ignore, naming it.
#[test]
fn cobble_serve_refuses_a_bad_knob() {
    for (knob, value, want) in [
        (
            "PEBBLE_AUTHZREUSE",
            "150",
            "PEBBLE_AUTHZREUSE=\"150\" is not a percentage 0-100",
        ),
        (
            "PEBBLE_WFE_NONCEREJECT",
            "abc",
            "PEBBLE_WFE_NONCEREJECT=\"abc\" is not a percentage",
        ),
        (
            "PEBBLE_WFE_ORDERS_PER_PAGE",
            "0",
            "is not a positive integer",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cobble"))
            .args(["serve", "--print-config"])
            .env(knob, value)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{knob}={value}");
        assert!(err.contains(want), "{knob}={value}: {err}");
    }
}
