//! newOrder (RFC 8555 §7.4), the order resource, finalize's state checks, and the
//! account's orders list (§7.1.2.1).

use crate::auth::KeyMode;
use crate::error::AcmeResult;
use crate::routes::{json_response, objects};
use crate::state::{AppState, Urls};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use cobble_core::challenge::ChallengeType;
use cobble_core::identifier::Identifier;
use cobble_core::nonce::OpenedNonce;
use cobble_core::status::OrderStatus;
use cobble_core::{Problem, ProblemType};
use cobble_store::{AuthzPlan, NewOrder, Order};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
struct WireIdentifier {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewOrderRequest {
    identifiers: Vec<WireIdentifier>,
    #[serde(default)]
    not_before: Option<String>,
    #[serde(default)]
    not_after: Option<String>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    replaces: Option<String>,
}

/// Parses wire identifiers and applies the policy; several failures become subproblems.
pub fn checked_identifiers(
    s: &AppState,
    wire: &[(String, String)],
) -> Result<Vec<Identifier>, Problem> {
    let mut ids = Vec::with_capacity(wire.len());
    let mut failures = Vec::new();
    for (k, v) in wire {
        match Identifier::from_wire(k, v) {
            Ok(id) if !ids.contains(&id) => ids.push(id),
            Ok(_) => {}
            Err(p) => failures.push(p),
        }
    }
    if (!ids.is_empty() || failures.is_empty())
        && let Err(p) = s.id_policy.check_all(&ids)
    {
        if p.subproblems.is_empty() {
            failures.push(p);
        } else {
            failures.extend(p.subproblems);
        }
    }
    if failures.is_empty() {
        Ok(ids)
    } else {
        Err(Problem::combine(failures))
    }
}

fn parse_time(field: &str, v: &str) -> Result<i64, Problem> {
    let t = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            Problem::malformed(format!("{field} {v:?} is not an RFC 3339 timestamp: {e}"))
        })?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// The challenge types offered for an identifier (RFC 8555 §7.1.4, RFC 8737 §3, RFC 8738 §7).
pub fn challenge_types(id: &Identifier, wildcard: bool) -> Vec<ChallengeType> {
    match id {
        Identifier::Ip(_) => vec![ChallengeType::Http01, ChallengeType::TlsAlpn01],
        Identifier::Dns(_) if wildcard => vec![ChallengeType::Dns01],
        Identifier::Dns(_) => ChallengeType::ALL.to_vec(),
    }
}

/// POST /acme/new-order.
pub async fn new_order(State(s): State<AppState>, req: Request) -> AcmeResult {
    let r = s.authenticate(req, KeyMode::Kid).await?;
    let body: NewOrderRequest = r.jws.payload_json()?;
    let wire: Vec<(String, String)> = body
        .identifiers
        .into_iter()
        .map(|i| (i.kind, i.value))
        .collect();
    let ids = checked_identifiers(&s, &wire)?;
    let now = s.clock.now_ms();
    let (not_before_ms, not_after_ms) =
        match (body.not_before.as_deref(), body.not_after.as_deref()) {
            (None, None) => (None, None),
            _ if !s.cfg.allow_order_validity => {
                return Err(Problem::malformed(
                    "this CA does not accept notBefore/notAfter in orders; leave them out",
                )
                .into());
            }
            (nb, na) => {
                let nb = nb.map(|v| parse_time("notBefore", v)).transpose()?;
                let na = na.map(|v| parse_time("notAfter", v)).transpose()?;
                if let (Some(b), Some(a)) = (nb, na)
                    && a <= b
                {
                    return Err(Problem::malformed("notAfter must be later than notBefore").into());
                }
                if na.is_some_and(|a| a <= now) {
                    return Err(Problem::malformed("notAfter is in the past").into());
                }
                (nb, na)
            }
        };
    let account = r.account();
    let standing = crate::ra::may_act(&s, &r.base, account).await?;
    crate::ra::check_names(&s, &standing, &ids).await?;
    if crate::ra::limits::on(&s) {
        crate::ra::limits::check_pending(&s, &r.base, &account.id, ids.len()).await?;
        crate::ra::limits::check_certificates(&s, &account.id, &ids, body.replaces.is_some())
            .await
            .map_err(|l| l.into_error(&r.base))?;
    }
    crate::ra::profile_check(&s.cfg.profiles, body.profile.as_deref(), &ids)?;
    if let Some(ari) = body.replaces.as_deref() {
        cobble_ca::ari::parse_ari_cert_id(ari)?;
        let old = s.store.certificate_by_ari_id(ari).await?.ok_or_else(|| {
            Problem::malformed(format!(
                "\"replaces\" names certificate {ari:?}, which this CA did not issue"
            ))
        })?;
        if old.account_id != account.id {
            return Err(Problem::unauthorized(
                "\"replaces\" names a certificate issued to another account",
            )
            .into());
        }
        if !old.identifiers.iter().any(|i| ids.contains(i)) {
            return Err(Problem::malformed("\"replaces\" names a certificate that shares no identifier with this order (RFC 9773 §5)").into());
        }
        if old.replaced_by.is_some() {
            return Err(Problem::new(
                ProblemType::AlreadyReplaced,
                format!("certificate {ari} already has a replacement order"),
            )
            .into());
        }
    }
    let mut plans = Vec::with_capacity(ids.len());
    for id in &ids {
        let wildcard = id.is_wildcard();
        let base = id.authz_identifier();
        let reuse = s
            .store
            .reusable_authz(&account.id, &base, wildcard, false, now)
            .await?;
        plans.push(match reuse {
            Some(a) if a.preauth || s.faults.roll(s.cfg.authz_reuse_percent as f64) => {
                AuthzPlan::Reuse(a.id)
            }
            _ => AuthzPlan::New {
                challenges: challenge_types(&base, wildcard),
                identifier: base,
                wildcard,
                expires_ms: now + s.cfg.pending_authz_lifetime_secs as i64 * 1000,
            },
        });
    }
    let order_id = s
        .store
        .create_order_redeeming(
            &r.nonce,
            NewOrder {
                account_id: account.id.clone(),
                identifiers: ids,
                not_before_ms,
                not_after_ms,
                expires_ms: now + s.cfg.order_lifetime_secs as i64 * 1000,
                profile: body.profile.clone(),
                replaces: body.replaces.clone(),
                authzs: plans,
                now_ms: now,
            },
        )
        .await?;
    let order = s
        .store
        .order(&order_id)
        .await?
        .ok_or_else(|| Problem::internal("the new order vanished"))?;
    tracing::Span::current().record("order", order_id.as_str());
    tracing::info!(order = %order_id, account = %account.id, "order created");
    Ok(json_response(
        StatusCode::CREATED,
        &objects::order(&r.base, &order, now),
        Some(&Urls(&r.base).order(&order_id)),
    ))
}

/// Loads an order the requesting account owns.
pub async fn owned_order(
    s: &AppState,
    account_id: &str,
    id: &str,
    redeem: Option<&OpenedNonce>,
) -> AcmeResult<Order> {
    let order = match redeem {
        None => s.store.order(id).await?,
        Some(n) => s.store.order_redeeming(id, n).await?,
    }
    .ok_or_else(|| Problem::not_found(&format!("order {id}")))?;
    tracing::Span::current().record("order", id);
    if order.account_id != account_id {
        return Err(Problem::unauthorized(format!("order {id} belongs to another account")).into());
    }
    Ok(order)
}

fn with_retry_after(mut r: Response, status: OrderStatus) -> Response {
    if matches!(status, OrderStatus::Processing) {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// POST-as-GET /acme/order/{id} (§7.1.3).
pub async fn order(State(s): State<AppState>, Path(id): Path<String>, req: Request) -> AcmeResult {
    let r = s.authenticate(req, KeyMode::Kid).await?;
    if !r.jws.is_post_as_get() {
        return Err(Problem::malformed("an order is read with POST-as-GET (empty payload)").into());
    }
    let order = owned_order(&s, &r.account().id, &id, Some(&r.nonce)).await?;
    let now = s.clock.now_ms();
    let status = order.status_at(now);
    let resp = json_response(
        StatusCode::OK,
        &objects::order(&r.base, &order, now),
        Some(&Urls(&r.base).order(&id)),
    );
    Ok(with_retry_after(resp, status))
}

/// `?cursor=<created_ms>.<order id>` of the orders list.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
}

/// POST-as-GET /acme/acct/{id}/orders (§7.1.2.1), paginated with `Link: rel="next"`.
pub async fn list(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
    req: Request,
) -> AcmeResult {
    let r = s.authenticate(req, KeyMode::Kid).await?;
    crate::routes::account::same_account(r.account(), &id)?;
    if !r.jws.is_post_as_get() {
        return Err(
            Problem::malformed("the orders list is read with POST-as-GET (empty payload)").into(),
        );
    }
    let cursor = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            c.split_once('.')
                .and_then(|(ms, oid)| Some((ms.parse::<i64>().ok()?, oid.to_owned())))
                .ok_or_else(|| {
                    Problem::malformed(format!("cursor {c:?} is not one this server made"))
                })?,
        ),
    };
    s.store.redeem_nonce(&r.nonce).await?;
    let (ids, next) = s
        .store
        .account_order_ids(&id, cursor, s.cfg.orders_per_page.max(1))
        .await?;
    let u = Urls(&r.base);
    let mut resp = json_response(
        StatusCode::OK,
        &json!({"orders": ids.iter().map(|o| u.order(o)).collect::<Vec<_>>()}),
        None,
    );
    if let Some((ms, oid)) = next {
        let link = format!("<{}?cursor={ms}.{oid}>;rel=\"next\"", u.account_orders(&id));
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().append(header::LINK, v);
        }
    }
    Ok(resp)
}
