//! Request-rate limits per client address (Buypass: 20/s on "new-reg", "new-authz" and
//! "new-cert", 40/s on the directory), with `governor`'s keyed GCRA buckets. By default they
//! live in this process: N instances behind a balancer admit N times the rate (the counting
//! limits, in the store, are exact across instances). With `shared-request-rates` the
//! buckets live in the store instead (the same GCRA, one statement per limited request), so
//! a fleet admits the rate once. The key is the client address: the TCP peer, or behind a
//! trusted proxy the address it forwards (see `proxy::client_addr`). The in-process
//! buckets of clients gone quiet are dropped once a minute. Also the `/rate-limits` page
//! that refusals link to as `rel="help"`.

use crate::error::problem_response;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cobble_core::ratelimit::{Limit, Rate, RateLimits, window_words};
use cobble_core::{Problem, ProblemType};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Which bucket a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    NewAccount,
    NewOrder,
    Finalize,
    Directory,
}

impl Class {
    fn of(method: &Method, path: &str) -> Option<Class> {
        match (method.as_str(), path) {
            ("GET" | "POST", "/dir" | "/directory") => Some(Class::Directory),
            ("POST", "/acme/new-acct") => Some(Class::NewAccount),
            ("POST", "/acme/new-order" | "/acme/new-authz") => Some(Class::NewOrder),
            ("POST", p) if p.starts_with("/acme/order/") && p.ends_with("/finalize") => {
                Some(Class::Finalize)
            }
            _ => None,
        }
    }

    /// The bucket key's prefix in the shared store.
    fn key(self) -> &'static str {
        match self {
            Class::NewAccount => "new-reg",
            Class::NewOrder => "new-authz",
            Class::Finalize => "new-cert",
            Class::Directory => "directory",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Class::NewAccount => "new-reg (newAccount)",
            Class::NewOrder => "new-authz (newOrder, newAuthz)",
            Class::Finalize => "new-cert (finalize)",
            Class::Directory => "directory",
        }
    }
}

/// One class's keyed GCRA buckets, on clock `C`.
type Bucket<C> =
    RateLimiter<IpAddr, HashMapStateStore<IpAddr>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One keyed bucket per class; none where the rate is 0 (off).
pub struct RequestLimiters<C: Clock = DefaultClock> {
    /// Shared with the pruning task, which holds it weakly and ends once it is dropped.
    buckets: Arc<Vec<(Class, Rate, Bucket<C>)>>,
}

fn bucket<C: Clock + Clone>(r: Rate, clock: &C) -> Option<Bucket<C>> {
    let per = NonZeroU32::new(r.per_second)?;
    let burst = NonZeroU32::new(r.burst.max(1)).expect("at least 1");
    Some(RateLimiter::hashmap_with_clock(
        Quota::per_second(per).allow_burst(burst),
        clock.clone(),
    ))
}

/// How often the buckets of clients gone quiet are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

impl RequestLimiters {
    /// The buckets `limits` describe, on the wall clock; when a Tokio runtime is running,
    /// with a task that prunes them every minute for as long as they live.
    pub fn new(limits: &RateLimits) -> Self {
        let l = Self::with_clock(limits, DefaultClock::default());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&l.buckets);
            rt.spawn(async move {
                let mut tick = tokio::time::interval(PRUNE_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(buckets) = weak.upgrade() else {
                        return;
                    };
                    // Pruning holds each map's lock while it walks it: off the reactor.
                    let _ = tokio::task::spawn_blocking(move || prune(&buckets)).await;
                }
            });
        }
        l
    }
}

impl<C: Clock + Clone> RequestLimiters<C> {
    /// The buckets `limits` describe, on `clock`.
    fn with_clock(limits: &RateLimits, clock: C) -> Self {
        let mut buckets = Vec::new();
        for (c, r) in [
            (Class::NewAccount, limits.new_account),
            (Class::NewOrder, limits.new_order),
            (Class::Finalize, limits.finalize),
            (Class::Directory, limits.directory),
        ] {
            if let Some(b) = bucket(r, &clock) {
                buckets.push((c, r, b));
            }
        }
        RequestLimiters {
            buckets: Arc::new(buckets),
        }
    }

    /// The rate of `class` and, when `ip` is over it, how long until its next request fits;
    /// `None` when the class is not limited.
    fn check(&self, class: Class, ip: IpAddr) -> Option<(Rate, Option<Duration>)> {
        let (_, rate, b) = self.buckets.iter().find(|(c, _, _)| *c == class)?;
        let wait = b
            .check_key(&ip)
            .err()
            .map(|not_until| not_until.wait_time_from(b.clock().now()));
        Some((*rate, wait))
    }
}

/// Drops the buckets that have refilled (a missing bucket is a full one), so the maps hold
/// only the clients seen within about a bucket's refill time, not every address ever seen.
fn prune<C: Clock>(buckets: &[(Class, Rate, Bucket<C>)]) {
    for (_, _, b) in buckets {
        b.retain_recent();
        b.shrink_to_fit();
    }
}

/// The layer: a request over its class's rate gets `rateLimited` (429) with `Retry-After`
/// and `Link: rel="help"`, before any handler work.
pub async fn layer(
    State((s, limiters)): State<(AppState, Arc<RequestLimiters>)>,
    req: Request,
    next: Next,
) -> Response {
    if s.cfg.no_rate_limits {
        return next.run(req).await;
    }
    let Some(class) = Class::of(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let ip = crate::proxy::client_addr(peer, req.headers(), &s.cfg.trusted_proxies);
    let (rate, wait) = if s.cfg.rate_limits.shared_request_rates {
        let Some((_, rate, _)) = limiters.buckets.iter().find(|(c, _, _)| *c == class) else {
            return next.run(req).await;
        };
        (*rate, shared_wait(&s, class, ip, *rate).await)
    } else {
        let Some((rate, wait)) = limiters.check(class, ip) else {
            return next.run(req).await;
        };
        (rate, wait)
    };
    let Some(wait) = wait else {
        return next.run(req).await;
    };
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let base = s.base_url(req.headers(), req.uri());
    let mut r = problem_response(&Problem::new(
        ProblemType::RateLimited,
        format!(
            "rate limit reached: too many requests to {} from {ip}: the limit is {} per second{}; retry after {secs} s",
            class.name(),
            rate.per_second,
            if s.cfg.rate_limits.shared_request_rates {
                " across every instance"
            } else {
                ""
            }
        ),
    ));
    let h = r.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "<{}>;rel=\"help\"",
        crate::ra::limits::help_url(&base)
    )) {
        h.append(header::LINK, v);
    }
    r
}

/// The shared bucket of `class` and `ip` in the store: `None` admits the request, else the
/// time until it would be. A store failure admits it (logged): the limiter must not turn a
/// database hiccup into refusals, and the request's own work will meet the same failure.
async fn shared_wait(
    s: &AppState,
    class: Class,
    ip: IpAddr,
    rate: Rate,
) -> Option<std::time::Duration> {
    let interval_us = 1_000_000 / i64::from(rate.per_second.max(1));
    let tolerance_us = interval_us * i64::from(rate.burst.max(1));
    let key = format!("{}|{ip}", class.key());
    let now_us = s.clock.now_ms().saturating_mul(1000);
    match s
        .store
        .take_request_token(&key, now_us, interval_us, tolerance_us)
        .await
    {
        Ok(None) => None,
        Ok(Some(us)) => Some(std::time::Duration::from_micros(us.max(0) as u64)),
        Err(e) => {
            tracing::warn!(error = %e, %key, "the shared request-rate bucket could not be read; admitting the request");
            None
        }
    }
}

fn limit_row(name: &str, l: &Limit, per: &str) -> String {
    if !l.enabled {
        return format!("<tr><td>{name}</td><td>off</td></tr>\n");
    }
    if l.window_secs == 0 {
        return format!("<tr><td>{name}</td><td>{} {per}</td></tr>\n", l.count);
    }
    format!(
        "<tr><td>{name}</td><td>{} {per} per {}</td></tr>\n",
        l.count,
        window_words(l.window_secs)
    )
}

fn rate_row(name: &str, r: &Rate, shared: bool) -> String {
    if r.per_second == 0 {
        return format!("<tr><td>{name}</td><td>off</td></tr>\n");
    }
    format!(
        "<tr><td>{name}</td><td>{} requests per second per client address (burst {}){}</td></tr>\n",
        r.per_second,
        r.burst,
        if shared {
            ", across every instance"
        } else {
            ", per instance"
        }
    )
}

/// GET /rate-limits: the limits in effect, where a `rateLimited` problem's help link points.
pub async fn page(State(s): State<AppState>) -> Response {
    let l = &s.cfg.rate_limits;
    let body = if s.cfg.no_rate_limits {
        "<p>This server runs with <code>--no-rate-limits</code>: no rate limit applies.</p>\n"
            .to_owned()
    } else {
        let mut t = String::from("<table>\n<tr><th>limit</th><th>value</th></tr>\n");
        t += &limit_row(
            "Certificates per registered domain (eTLD+1)",
            &l.certificates_per_domain,
            "certificates",
        );
        t += &limit_row(
            "Duplicate certificates (the same set of names)",
            &l.duplicate_certificates,
            "certificates",
        );
        t += &limit_row(
            "Failed validations per account and hostname",
            &l.failed_validations,
            "failures",
        );
        t += &limit_row(
            "Pending authorizations per account",
            &l.pending_authorizations,
            "authorizations",
        );
        t += &rate_row(
            "new-reg (newAccount)",
            &l.new_account,
            l.shared_request_rates,
        );
        t += &rate_row(
            "new-authz (newOrder, newAuthz)",
            &l.new_order,
            l.shared_request_rates,
        );
        t += &rate_row("new-cert (finalize)", &l.finalize, l.shared_request_rates);
        t += &rate_row("directory", &l.directory, l.shared_request_rates);
        t += "</table>\n";
        format!(
            "{t}<p>Renewals (the same names as an earlier certificate of the account, or an order with <code>replaces</code>) count towards the certificates-per-domain limit{}. A refused request gets <code>rateLimited</code> (HTTP 429) with <code>Retry-After</code>: the time at which enough counted events have left the window for the count to drop below the limit, or at which the request bucket refills. The operator may override a counting limit for one account, external account or registered domain (<code>cobble admin limits set</code>); the refusal's detail names the override that applied.</p>\n",
            if l.renewals_exempt {
                " but are never refused by it"
            } else {
                " and are refused by it like any other certificate"
            }
        )
    };
    let body = format!(
        "{body}<p>How each limit is counted, overridden and turned off: the <em>Rate limits</em> section of Cobble's README (<code>README.md#rate-limits</code>).</p>\n"
    );
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Rate limits</title></head>\n<body><h1>Rate limits</h1>\n{body}</body></html>\n"
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    /// Which endpoint draws from which bucket (Buypass's names); one row per case.
    #[test]
    fn endpoints_map_to_their_classes() {
        use Class::*;
        let rows: &[(&str, &str, Option<Class>)] = &[
            ("GET", "/dir", Some(Directory)),
            ("POST", "/dir", Some(Directory)),
            ("GET", "/directory", Some(Directory)),
            ("POST", "/acme/new-acct", Some(NewAccount)),
            ("POST", "/acme/new-order", Some(NewOrder)),
            ("POST", "/acme/new-authz", Some(NewOrder)),
            ("POST", "/acme/order/abc/finalize", Some(Finalize)),
            // Everything else is not request-rate limited.
            ("GET", "/acme/new-acct", None),
            ("HEAD", "/dir", None),
            ("POST", "/acme/order/abc", None),
            ("POST", "/acme/chall/abc", None),
            ("POST", "/acme/authz/abc", None),
            ("HEAD", "/acme/new-nonce", None),
            ("POST", "/acme/revoke-cert", None),
            ("GET", "/rate-limits", None),
        ];
        for (method, path, want) in rows {
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            assert_eq!(Class::of(&m, path), *want, "{method} {path}");
        }
        assert_eq!(
            [NewAccount, NewOrder, Finalize, Directory].map(Class::key),
            ["new-reg", "new-authz", "new-cert", "directory"]
        );
    }

    /// Buypass's numbers are the defaults: 20 per second with a burst of 20 on new-reg,
    /// new-authz and new-cert, 40 and 40 on the directory; each bucket admits its burst,
    /// then one request per interval.
    #[test]
    fn the_default_request_rates_are_buypass_numbers() {
        let clock = FakeRelativeClock::default();
        let l = RequestLimiters::with_clock(&RateLimits::default(), clock.clone());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for (class, per_second, burst) in [
            (Class::NewAccount, 20, 20),
            (Class::NewOrder, 20, 20),
            (Class::Finalize, 20, 20),
            (Class::Directory, 40, 40),
        ] {
            let (rate, _) = l.check(class, "198.51.100.1".parse().unwrap()).unwrap();
            assert_eq!(
                (rate.per_second, rate.burst),
                (per_second, burst),
                "{class:?}"
            );
            for i in 0..burst {
                assert_eq!(l.check(class, ip).unwrap().1, None, "{class:?} request {i}");
            }
            let interval = Duration::from_secs(1) / per_second;
            assert_eq!(
                l.check(class, ip).unwrap().1,
                Some(interval),
                "{class:?}: over the burst"
            );
            clock.advance(interval);
            assert_eq!(l.check(class, ip).unwrap().1, None, "{class:?}: refilled");
        }
    }

    /// A rate of 0 turns its class off.
    #[test]
    fn a_zero_rate_is_no_bucket() {
        let limits = RateLimits {
            finalize: Rate {
                per_second: 0,
                burst: 0,
            },
            ..RateLimits::default()
        };
        let l = RequestLimiters::with_clock(&limits, FakeRelativeClock::default());
        assert!(
            l.check(Class::Finalize, "192.0.2.1".parse().unwrap())
                .is_none()
        );
        assert!(
            l.check(Class::NewOrder, "192.0.2.1".parse().unwrap())
                .is_some()
        );
    }

    /// Pruning drops the buckets that have refilled and keeps the ones still in use.
    #[test]
    fn pruning_forgets_refilled_buckets() {
        let clock = FakeRelativeClock::default();
        let l = RequestLimiters::with_clock(&RateLimits::default(), clock.clone());
        let dir = &l
            .buckets
            .iter()
            .find(|b| b.0 == Class::Directory)
            .unwrap()
            .2;
        for i in 0..1000u32 {
            let ip = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            assert_eq!(l.check(Class::Directory, ip).unwrap().1, None);
        }
        let busy: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(dir.len(), 1000);
        prune(&l.buckets);
        assert_eq!(dir.len(), 1000, "no bucket has refilled yet");
        // A second later every bucket that took one request is full again; the busy
        // client's, emptied just now, is not.
        clock.advance(Duration::from_secs(1));
        for _ in 0..40 {
            l.check(Class::Directory, busy).unwrap();
        }
        prune(&l.buckets);
        assert_eq!(dir.len(), 1, "only the busy client's bucket is left");
        clock.advance(Duration::from_secs(2));
        prune(&l.buckets);
        assert!(dir.is_empty());
    }
}
