//! Pebble's environment knobs (`PEBBLE_WFE_NONCEREJECT`, `PEBBLE_VA_NOSLEEP`, ...), with
//! Pebble's meaning, where Cobble's own setting was not given: read by `cobble serve` and by
//! the `pebble` drop-in.
//!
//! A value Pebble 2.4 does not take (not a number, out of its range) is ignored by Pebble,
//! which keeps its default; the drop-in does the same with a warning, while `cobble serve`
//! refuses to start, so that an operator's typo is not silently dropped. Pebble's own rules,
//! as observed with Debian's 2.4: a nonce-reject percentage below 0 is 0 and above 100 is
//! 99; the authorization-reuse percentage must be 0-100; the sleep time and orders per page
//! must be positive; the chain length is at least 1 intermediate; alternate roots are 0 or more.

use crate::serve::ServeArgs;
use cobble_server::config::ServerConfig;

/// What becomes of a knob's value Pebble would ignore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadKnob {
    /// Refuse to start, naming the knob (`cobble serve`).
    Refuse,
    /// Log it and keep the default, as Pebble does (the drop-in).
    Ignore,
}

/// A boolean knob: on for `1` or `true` (Pebble's spellings: `true`, `TRUE`, `True`).
fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "True"))
}

/// An integer knob through `read` (Pebble's rule; `None` when Pebble would not take it);
/// `want` says what it takes, for the refusal or the warning.
fn env_number<T>(
    name: &str,
    bad: BadKnob,
    want: &str,
    read: impl Fn(i64) -> Option<T>,
) -> anyhow::Result<Option<T>> {
    let Ok(raw) = std::env::var(name) else {
        return Ok(None);
    };
    match raw.trim().parse::<i64>().ok().and_then(read) {
        Some(v) => Ok(Some(v)),
        None if bad == BadKnob::Ignore => {
            tracing::warn!("{name}={raw:?} is not {want}: ignored, as Pebble does");
            Ok(None)
        }
        None => anyhow::bail!("{name}={raw:?} is not {want}"),
    }
}

/// Reads Pebble's knobs into `c` where `a` (Cobble's own flags) did not set the same thing.
pub(crate) fn pebble_knobs(
    a: &ServeArgs,
    c: &mut ServerConfig,
    bad: BadKnob,
) -> anyhow::Result<()> {
    if a.nonce_reject_percent.is_none() {
        let read = |p: i64| match bad {
            // Pebble clamps: below 0 is 0, above 100 is 99 (observed with 2.4).
            BadKnob::Ignore => Some(if p < 0 {
                0
            } else if p > 100 {
                99
            } else {
                p as u8
            }),
            BadKnob::Refuse => u8::try_from(p).ok().filter(|p| *p <= 100),
        };
        if let Some(p) = env_number("PEBBLE_WFE_NONCEREJECT", bad, "a percentage 0-100", read)? {
            c.nonce_reject_percent = p;
        }
    }
    let positive = |n: i64| usize::try_from(n).ok().filter(|n| *n > 0);
    if let Some(n) = env_number(
        "PEBBLE_WFE_ORDERS_PER_PAGE",
        bad,
        "a positive integer",
        positive,
    )? {
        c.orders_per_page = n;
    }
    if a.va_always_valid.is_none() && env_flag("PEBBLE_VA_ALWAYS_VALID") {
        c.va_always_valid = true;
    }
    if a.va_sleep_max_secs.is_none() {
        let secs = |n: i64| u64::try_from(n).ok().filter(|n| *n > 0);
        if let Some(secs) = env_number(
            "PEBBLE_VA_SLEEPTIME",
            bad,
            "a positive number of seconds",
            secs,
        )? {
            c.va_sleep_max_secs = secs;
        }
        if env_flag("PEBBLE_VA_NOSLEEP") {
            c.va_sleep_max_secs = 0;
        }
    }
    let count = |n: i64| usize::try_from(n).ok();
    if a.chain_length.is_none()
        && let Some(n) = env_number(
            "PEBBLE_CHAIN_LENGTH",
            bad,
            "a number of intermediates",
            count,
        )?
    {
        // Pebble: the number of intermediates, default and minimum 1.
        c.ca.chain_length = n.max(1);
    }
    if a.alternate_roots.is_none()
        && let Some(n) = env_number("PEBBLE_ALTERNATE_ROOTS", bad, "a number of roots", count)?
    {
        c.ca.alternate_roots = n;
    }
    if a.authz_reuse_percent.is_none() {
        let read = |p: i64| u8::try_from(p).ok().filter(|p| *p <= 100);
        if let Some(p) = env_number("PEBBLE_AUTHZREUSE", bad, "a percentage 0-100", read)? {
            c.authz_reuse_percent = p;
        }
    }
    Ok(())
}
