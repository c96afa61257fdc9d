//! Request-rate limits per client address (Buypass: 20/s on "new-reg", "new-authz" and
//! "new-cert", 40/s on the directory), with `governor`'s keyed GCRA buckets. By default they
//! live in this process: N instances behind a balancer admit N times the rate (the counting
//! limits, in the store, are exact across instances). With `shared-request-rates` the
//! buckets live in the store instead (the same GCRA, one statement per limited request), so
//! a fleet admits the rate once. Also the `/rate-limits` page that refusals link to as
//! `rel="help"`.

use crate::error::problem_response;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cobble_core::ratelimit::{Limit, Rate, RateLimits, window_words};
use cobble_core::{Problem, ProblemType};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

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

/// One keyed bucket per class; `None` where the rate is 0 (off).
pub struct RequestLimiters {
    buckets: Vec<(Class, Rate, DefaultKeyedRateLimiter<IpAddr>)>,
}

fn bucket(r: Rate) -> Option<DefaultKeyedRateLimiter<IpAddr>> {
    let per = NonZeroU32::new(r.per_second)?;
    let burst = NonZeroU32::new(r.burst.max(1)).expect("at least 1");
    Some(RateLimiter::keyed(
        Quota::per_second(per).allow_burst(burst),
    ))
}

impl RequestLimiters {
    /// The buckets `limits` describe.
    pub fn new(limits: &RateLimits) -> Self {
        let mut buckets = Vec::new();
        for (c, r) in [
            (Class::NewAccount, limits.new_account),
            (Class::NewOrder, limits.new_order),
            (Class::Finalize, limits.finalize),
            (Class::Directory, limits.directory),
        ] {
            if let Some(b) = bucket(r) {
                buckets.push((c, r, b));
            }
        }
        RequestLimiters { buckets }
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
    let Some((_, rate, b)) = limiters.buckets.iter().find(|(c, _, _)| *c == class) else {
        return next.run(req).await;
    };
    let ip = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let wait = if s.cfg.rate_limits.shared_request_rates {
        shared_wait(&s, class, ip, *rate).await
    } else {
        b.check_key(&ip)
            .err()
            .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
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
            "{t}<p>Renewals (the same names as an earlier certificate of the account, or an order with <code>replaces</code>) {} the certificates-per-domain limit. A refused request gets <code>rateLimited</code> (HTTP 429) with <code>Retry-After</code>: the time at which the oldest counted event leaves the window. The operator may override a counting limit for one account, external account or registered domain (<code>cobble admin limits set</code>); the refusal's detail names the override that applied.</p>\n",
            if l.renewals_exempt {
                "do not count against"
            } else {
                "count against"
            }
        )
    };
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Rate limits</title></head>\n<body><h1>Rate limits</h1>\n{body}</body></html>\n"
        ),
    )
        .into_response()
}
