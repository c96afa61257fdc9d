//! The operator's admin API (JSON, on the management listener, behind the admin token):
//! external accounts, organizations and their documents, ACME accounts, orders,
//! certificates and the audit log. Every change writes its audit row (who, what, on what,
//! before and after) in the transaction that makes it. The routes are one table,
//! [`ROUTES`], from which both the router and the OpenAPI document (`/admin/openapi.json`)
//! are made, so the document cannot drift from what is served.

use crate::error::store_problem;
use crate::state::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use cobble_core::clock::rfc3339;
use cobble_core::operator::{
    Approval, DocumentKind, DomainEntry, ExternalAccountStatus, OrganizationStatus, ProfileKind,
};
use cobble_core::ratelimit::{LimitName, Override, Scope};
use cobble_core::{Problem, contact};
use cobble_store::{
    Account, AuditEntry, Certificate, ExternalAccount, ExternalAccountUpdate, ListQuery,
    NewExternalAccount, Order, Organization, Page, StoreError,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Who the audit log names for changes made with the admin token.
pub const ACTOR: &str = "admin-token";

type ApiResult = Result<Response, crate::error::AcmeError>;

fn ok(status: StatusCode, v: Value) -> ApiResult {
    Ok((status, axum::Json(v)).into_response())
}

fn bad(detail: impl Into<String>) -> Problem {
    Problem::malformed(detail)
}

fn se(e: StoreError) -> Problem {
    match e {
        StoreError::BadCursor(_) | StoreError::BadFilter(_) => bad(e.to_string()),
        StoreError::Duplicate(d) => Problem::malformed(d).with_status(409),
        other => store_problem(other),
    }
}

fn body<T: serde::de::DeserializeOwned>(b: &Bytes) -> Result<T, Problem> {
    let b: &[u8] = if b.is_empty() { b"{}" } else { b };
    serde_json::from_slice(b)
        .map_err(|e| bad(format!("the request body is not the expected JSON: {e}")))
}

/// Parses `2027-01-31` (end of that day, UTC) or an RFC 3339 timestamp into Unix ms.
pub fn parse_date(field: &str, v: &str) -> Result<i64, Problem> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(v, &Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(v, &fmt).map_err(|_| {
        bad(format!(
            "{field} {v:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 timestamp"
        ))
    })?;
    let end = d.with_hms(23, 59, 59).expect("valid time").assume_utc();
    Ok(end.unix_timestamp() * 1000 + 999)
}

/// RFC 5280 §5.3.1 reason codes by number or name.
pub fn parse_reason(v: &Value) -> Result<i64, Problem> {
    const NAMES: &[(&str, i64)] = &[
        ("unspecified", 0),
        ("keyCompromise", 1),
        ("affiliationChanged", 3),
        ("superseded", 4),
        ("cessationOfOperation", 5),
        ("privilegeWithdrawn", 9),
    ];
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|(_, n)| *n)
            .or_else(|| s.parse().ok()),
        _ => None,
    };
    n.filter(|n| NAMES.iter().any(|(_, c)| c == n))
        .ok_or_else(|| {
            bad(format!(
                "reason {v} is not one of {}",
                NAMES
                    .iter()
                    .map(|(name, n)| format!("{n} ({name})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

fn domain_list(v: &[Value]) -> Result<Vec<DomainEntry>, Problem> {
    v.iter()
        .map(|d| {
            let (name, authorized) = match d {
                Value::String(s) => (s.as_str(), true),
                Value::Object(o) => (
                    o.get("name").and_then(Value::as_str).unwrap_or(""),
                    o.get("authorized").and_then(Value::as_bool).unwrap_or(true),
                ),
                _ => ("", true),
            };
            DomainEntry::parse(name, authorized).map_err(bad)
        })
        .collect()
}

fn opt_ms(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |m| rfc3339(m).into())
}

fn ea_json(ea: &ExternalAccount, now: i64) -> Value {
    json!({
        "kid": ea.kid,
        "status": ea.status_at(now).as_str(),
        "expires": opt_ms(ea.expires_ms),
        "organization": ea.organization_id,
        "profile_kind": ea.profile_kind.as_str(),
        "credits": ea.credits,
        "contact": ea.contact,
        "bindings": ea.bindings,
        "domains": ea.domains.iter().map(|d| json!({"name": d.name, "authorized": d.authorized})).collect::<Vec<_>>(),
        "created": rfc3339(ea.created_ms),
    })
}

fn org_json(o: &Organization, s: &AppState, now: i64) -> Value {
    let refusal = crate::ra::organization_refusal(Some(o), s.cfg.require_documents, now);
    json!({
        "id": o.id,
        "name": o.name,
        "status": o.status.as_str(),
        "issuing": refusal.is_none(),
        "needs": refusal.map(|p| p.detail),
        "documents": o.documents.iter().map(|d| json!({
            "id": d.id,
            "kind": d.kind.as_str(),
            "valid_until": rfc3339(d.valid_until_ms),
            "in_date": d.valid_until_ms > now,
            "file": d.file_name,
            "created": rfc3339(d.created_ms),
        })).collect::<Vec<_>>(),
        "created": rfc3339(o.created_ms),
    })
}

fn account_json(a: &Account) -> Value {
    json!({
        "id": a.id,
        "status": a.status.as_str(),
        "approval": a.approval.as_str(),
        "external_account": a.external_kid,
        "contact": a.contact,
        "created": rfc3339(a.created_ms),
        "expires": opt_ms(a.expires_ms),
        "initial_ip": a.initial_ip,
        "key_thumbprint": a.key_thumbprint,
    })
}

fn order_json(o: &Order, now: i64) -> Value {
    json!({
        "id": o.id,
        "account": o.account_id,
        "status": o.status_at(now).as_str(),
        "identifiers": o.identifiers.iter().map(|i| json!({"type": i.kind(), "value": i.value()})).collect::<Vec<_>>(),
        "profile": o.profile,
        "certificate": o.certificate_id,
        "error": o.error.as_deref().and_then(|e| serde_json::from_str::<Value>(e).ok()),
        "created": rfc3339(o.created_ms),
        "expires": rfc3339(o.expires_ms),
    })
}

fn cert_json(c: &Certificate, now: i64) -> Value {
    let status = if c.revoked_ms.is_some() {
        "revoked"
    } else if c.not_after_ms <= now {
        "expired"
    } else {
        "valid"
    };
    json!({
        "id": c.id,
        "serial": c.serial,
        "account": c.account_id,
        "order": c.order_id,
        "status": status,
        "identifiers": c.identifiers.iter().map(|i| i.value()).collect::<Vec<_>>(),
        "not_before": rfc3339(c.not_before_ms),
        "not_after": rfc3339(c.not_after_ms),
        "revoked": opt_ms(c.revoked_ms),
        "revocation_reason": c.revoked_reason,
    })
}

fn audit_json(e: &AuditEntry) -> Value {
    let parse = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
    };
    json!({
        "id": e.id,
        "at": rfc3339(e.at_ms),
        "actor": e.actor,
        "action": e.action,
        "target": e.target,
        "before": parse(&e.before),
        "after": parse(&e.after),
    })
}

fn page_json<T>(p: &Page<T>, f: impl Fn(&T) -> Value) -> Value {
    json!({"items": p.items.iter().map(f).collect::<Vec<_>>(), "next": p.next})
}

/// Query parameters of the list routes.
fn list_query(q: &HashMap<String, String>) -> Result<ListQuery, Problem> {
    let get = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let date = |k: &str| get(k).map(|v| parse_date(k, &v)).transpose();
    Ok(ListQuery {
        status: get("status"),
        account: get("account"),
        kid: get("external_account"),
        organization: get("organization"),
        name: get("name").or_else(|| get("target")),
        serial: get("serial"),
        since_ms: date("since")?,
        until_ms: date("until")?,
        limit: match get("limit") {
            Some(l) => l
                .parse()
                .map_err(|_| bad(format!("limit {l:?} is not a number")))?,
            None => 50,
        },
        after: get("after"),
    })
}

async fn find_organization(s: &AppState, id_or_name: &str) -> Result<Organization, Problem> {
    s.store
        .organization(id_or_name)
        .await
        .map_err(se)?
        .ok_or_else(|| Problem::not_found(&format!("organization {id_or_name:?}")))
}

async fn find_ea(s: &AppState, kid: &str) -> Result<ExternalAccount, Problem> {
    s.store
        .external_account(kid)
        .await
        .map_err(se)?
        .ok_or_else(|| Problem::not_found(&format!("external account {kid}")))
}

async fn find_account(s: &AppState, id: &str) -> Result<Account, Problem> {
    s.store
        .account(id)
        .await
        .map_err(se)?
        .ok_or_else(|| Problem::not_found(&format!("account {id}")))
}

// ----- organizations -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrg {
    name: String,
    #[serde(default)]
    status: Option<String>,
}

fn org_status(v: &str) -> Result<OrganizationStatus, Problem> {
    OrganizationStatus::parse(v).ok_or_else(|| {
        bad(format!(
            "organization status {v:?} is not one of {}",
            OrganizationStatus::names()
        ))
    })
}

async fn create_org(State(s): State<AppState>, b: Bytes) -> ApiResult {
    let req: NewOrg = body(&b)?;
    let name = req.name.trim();
    if name.is_empty() {
        return Err(bad("an organization needs a name").into());
    }
    let status = org_status(req.status.as_deref().unwrap_or("valid"))?;
    let now = s.clock.now_ms();
    let mut tx = s.store.begin().await.map_err(se)?;
    let org = tx
        .create_organization(name, status, now)
        .await
        .map_err(se)?;
    let after = org_json(&org, &s, now);
    tx.audit(
        ACTOR,
        "organization.create",
        &org.id,
        None,
        Some(&after),
        now,
    )
    .await
    .map_err(se)?;
    tx.commit().await.map_err(se)?;
    ok(StatusCode::CREATED, after)
}

async fn list_orgs(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let page = s.store.organizations(&list_query(&q)?).await.map_err(se)?;
    let now = s.clock.now_ms();
    ok(StatusCode::OK, page_json(&page, |o| org_json(o, &s, now)))
}

async fn show_org(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let o = find_organization(&s, &id).await?;
    ok(StatusCode::OK, org_json(&o, &s, s.clock.now_ms()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgUpdate {
    status: String,
}

async fn update_org(State(s): State<AppState>, Path(id): Path<String>, b: Bytes) -> ApiResult {
    let req: OrgUpdate = body(&b)?;
    let status = org_status(&req.status)?;
    let before = find_organization(&s, &id).await?;
    let now = s.clock.now_ms();
    let mut tx = s.store.begin().await.map_err(se)?;
    tx.set_organization_status(&before.id, status, now)
        .await
        .map_err(se)?;
    let after = Organization {
        status,
        ..before.clone()
    };
    let (b, a) = (org_json(&before, &s, now), org_json(&after, &s, now));
    tx.audit(
        ACTOR,
        "organization.update",
        &before.id,
        Some(&b),
        Some(&a),
        now,
    )
    .await
    .map_err(se)?;
    tx.commit().await.map_err(se)?;
    ok(StatusCode::OK, a)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDocument {
    kind: String,
    valid_until: String,
    #[serde(default)]
    file_name: Option<String>,
    /// The file itself, base64 (standard or url-safe).
    #[serde(default)]
    content_base64: Option<String>,
}

async fn add_document(State(s): State<AppState>, Path(id): Path<String>, b: Bytes) -> ApiResult {
    let req: NewDocument = body(&b)?;
    let kind = DocumentKind::parse(&req.kind).ok_or_else(|| {
        bad(format!(
            "document kind {:?} is not one of {}",
            req.kind,
            DocumentKind::names()
        ))
    })?;
    let until = parse_date("valid_until", &req.valid_until)?;
    let org = find_organization(&s, &id).await?;
    let now = s.clock.now_ms();
    let stored_name = match &req.content_base64 {
        None => None,
        Some(content) => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(content.trim())
                .or_else(|_| cobble_core::b64::decode(content.trim().trim_end_matches('=')))
                .map_err(|_| bad("content_base64 is not base64"))?;
            let safe: String = req
                .file_name
                .as_deref()
                .unwrap_or("document")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .take(80)
                .collect();
            let name = format!(
                "{}-{}",
                cobble_store::uuid_v4(),
                safe.trim_start_matches('.')
            );
            let dir = s.cfg.data_dir.join("documents");
            let path = dir.join(&name);
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| crate::error::internal("storing the document", e))?;
            tokio::fs::write(&path, bytes)
                .await
                .map_err(|e| crate::error::internal("storing the document", e))?;
            Some(name)
        }
    };
    let mut tx = s.store.begin().await.map_err(se)?;
    let doc = tx
        .add_document(
            &org.id,
            kind,
            until,
            stored_name.as_deref().or(req.file_name.as_deref()),
            now,
        )
        .await
        .map_err(se)?;
    let before = org_json(&org, &s, now);
    let mut with_doc = org.clone();
    with_doc.documents.insert(0, doc);
    let after = org_json(&with_doc, &s, now);
    tx.audit(
        ACTOR,
        "organization.document.add",
        &org.id,
        Some(&before),
        Some(&after),
        now,
    )
    .await
    .map_err(se)?;
    tx.commit().await.map_err(se)?;
    ok(StatusCode::CREATED, after)
}

// ----- external accounts -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewEa {
    /// Organization id or name; a name not on record creates the organization.
    #[serde(default)]
    organization: Option<String>,
    #[serde(default)]
    domains: Vec<Value>,
    #[serde(default)]
    profile_kind: Option<String>,
    #[serde(default)]
    credits: Option<i64>,
    #[serde(default)]
    expires: Option<String>,
    #[serde(default)]
    contact: Vec<String>,
    #[serde(default)]
    status: Option<String>,
}

fn ea_status(v: &str) -> Result<ExternalAccountStatus, Problem> {
    ExternalAccountStatus::parse(v).ok_or_else(|| {
        bad(format!(
            "external account status {v:?} is not one of {}",
            ExternalAccountStatus::names()
        ))
    })
}

fn profile_kind(v: &str) -> Result<ProfileKind, Problem> {
    ProfileKind::parse(v).ok_or_else(|| {
        bad(format!(
            "profile kind {v:?} is not one of {}",
            ProfileKind::names()
        ))
    })
}

fn contacts(list: Vec<String>) -> Result<Vec<String>, Problem> {
    let list: Vec<String> = list
        .into_iter()
        .map(|c| {
            if c.contains(':') {
                c
            } else {
                format!("mailto:{c}")
            }
        })
        .collect();
    contact::validate(&list)?;
    Ok(list)
}

async fn create_ea(State(s): State<AppState>, b: Bytes) -> ApiResult {
    let req: NewEa = body(&b)?;
    let now = s.clock.now_ms();
    if req.credits.is_some_and(|c| c < 0) {
        return Err(bad("credits cannot be negative").into());
    }
    let domains = domain_list(&req.domains)?;
    let new = NewExternalAccount {
        kid: None,
        hmac_key: None,
        status: ea_status(req.status.as_deref().unwrap_or("valid"))?,
        expires_ms: req
            .expires
            .as_deref()
            .map(|e| parse_date("expires", e))
            .transpose()?,
        organization_id: None,
        profile_kind: profile_kind(req.profile_kind.as_deref().unwrap_or("any"))?,
        credits: req.credits,
        contact: contacts(req.contact)?,
        domains,
        now_ms: now,
    };
    let existing_org = match req.organization.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(o) => Some((o.to_owned(), s.store.organization(o).await.map_err(se)?)),
    };
    let new = NewExternalAccount {
        kid: Some(cobble_store::uuid_v4()),
        hmac_key: Some(cobble_store::new_hmac_key()),
        ..new
    };
    let mut tx = s.store.begin().await.map_err(se)?;
    let organization_id = match existing_org {
        None => None,
        Some((_, Some(found))) => Some(found.id),
        Some((name, None)) => {
            let org = tx
                .create_organization(&name, OrganizationStatus::Valid, now)
                .await
                .map_err(se)?;
            let after = org_json(&org, &s, now);
            tx.audit(
                ACTOR,
                "organization.create",
                &org.id,
                None,
                Some(&after),
                now,
            )
            .await
            .map_err(se)?;
            Some(org.id)
        }
    };
    let new = NewExternalAccount {
        organization_id,
        ..new
    };
    let kid = tx.create_external_account(&new).await.map_err(se)?;
    let ea = ExternalAccount {
        kid: kid.clone(),
        hmac_key: new.hmac_key.clone().unwrap_or_default(),
        status: new.status,
        expires_ms: new.expires_ms,
        organization_id: new.organization_id.clone(),
        profile_kind: new.profile_kind,
        credits: new.credits,
        contact: new.contact.clone(),
        bindings: 0,
        domains: new.domains.clone(),
        created_ms: now,
    };
    // The audit row never carries the HMAC key.
    let after = ea_json(&ea, now);
    tx.audit(
        ACTOR,
        "external-account.create",
        &kid,
        None,
        Some(&after),
        now,
    )
    .await
    .map_err(se)?;
    tx.commit().await.map_err(se)?;
    tracing::info!(kid = %kid, "external account created");
    let mut shown = after;
    shown["hmac_key"] = ea.hmac_key.clone().into();
    shown["certbot"] = format!(
        "certbot certonly --server {} --eab-kid {} --eab-hmac-key={} -d <name>",
        crate::state::Urls(&s.account_base()).directory(),
        ea.kid,
        ea.hmac_key
    )
    .into();
    ok(StatusCode::CREATED, shown)
}

async fn list_eas(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let mut lq = list_query(&q)?;
    if let Some(o) = lq.organization.clone() {
        lq.organization = Some(find_organization(&s, &o).await?.id);
    }
    let page = s.store.external_accounts(&lq).await.map_err(se)?;
    let now = s.clock.now_ms();
    ok(StatusCode::OK, page_json(&page, |e| ea_json(e, now)))
}

async fn show_ea(State(s): State<AppState>, Path(kid): Path<String>) -> ApiResult {
    let ea = find_ea(&s, &kid).await?;
    ok(StatusCode::OK, ea_json(&ea, s.clock.now_ms()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EaPatch {
    #[serde(default)]
    status: Option<String>,
    /// A date, or null to remove the end date.
    #[serde(default, with = "double_option")]
    expires: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    organization: Option<Option<String>>,
    #[serde(default)]
    profile_kind: Option<String>,
    /// A balance, or null for unlimited.
    #[serde(default, with = "double_option")]
    credits: Option<Option<i64>>,
    #[serde(default)]
    add_credits: Option<i64>,
    #[serde(default)]
    contact: Option<Vec<String>>,
    #[serde(default)]
    domains: Option<Vec<Value>>,
    #[serde(default)]
    add_domains: Option<Vec<Value>>,
    #[serde(default)]
    remove_domains: Option<Vec<String>>,
    /// Revocation reason for the certificates a revocation or deactivation revokes.
    #[serde(default)]
    reason: Option<Value>,
}

/// The external account as `u` leaves it (what the store's update does, for the answer
/// and the audit row, made without reading back inside the transaction).
fn apply(ea: &ExternalAccount, u: &ExternalAccountUpdate) -> ExternalAccount {
    let mut out = ea.clone();
    if let Some(s) = u.status {
        out.status = s;
    }
    if let Some(e) = u.expires_ms {
        out.expires_ms = e;
    }
    if let Some(o) = &u.organization_id {
        out.organization_id = o.clone();
    }
    if let Some(k) = u.profile_kind {
        out.profile_kind = k;
    }
    if let Some(c) = u.credits {
        out.credits = c;
    }
    if let (Some(add), Some(c)) = (u.add_credits, out.credits) {
        out.credits = Some((c + add).max(0));
    }
    if let Some(c) = &u.contact {
        out.contact = c.clone();
    }
    if let Some(d) = &u.domains {
        out.domains = d.clone();
        out.domains.sort_by(|a, b| a.name.cmp(&b.name));
    }
    out
}

/// Tells a missing field from an explicit `null`.
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

async fn update_ea(State(s): State<AppState>, Path(kid): Path<String>, b: Bytes) -> ApiResult {
    let req: EaPatch = body(&b)?;
    let before = find_ea(&s, &kid).await?;
    let now = s.clock.now_ms();
    let status = req.status.as_deref().map(ea_status).transpose()?;
    let reason = req
        .reason
        .as_ref()
        .map(parse_reason)
        .transpose()?
        .unwrap_or(5);
    let mut domains = match &req.domains {
        Some(d) => Some(domain_list(d)?),
        None => None,
    };
    if req.add_domains.is_some() || req.remove_domains.is_some() {
        let mut list = domains.take().unwrap_or_else(|| before.domains.clone());
        for d in domain_list(req.add_domains.as_deref().unwrap_or(&[]))? {
            list.retain(|e| e.name != d.name);
            list.push(d);
        }
        for r in req.remove_domains.as_deref().unwrap_or(&[]) {
            let r = DomainEntry::parse(r, true).map_err(bad)?;
            list.retain(|e| e.name != r.name);
        }
        domains = Some(list);
    }
    if req.credits.flatten().is_some_and(|c| c < 0) {
        return Err(bad("credits cannot be negative").into());
    }
    let organization_id = match req.organization {
        None => None,
        Some(None) => Some(None),
        Some(Some(o)) => Some(Some(find_organization(&s, &o).await?.id)),
    };
    let update = ExternalAccountUpdate {
        status,
        expires_ms: match req.expires {
            None => None,
            Some(None) => Some(None),
            Some(Some(e)) => Some(Some(parse_date("expires", &e)?)),
        },
        organization_id,
        profile_kind: req.profile_kind.as_deref().map(profile_kind).transpose()?,
        credits: req.credits,
        add_credits: req.add_credits,
        contact: req.contact.map(contacts).transpose()?,
        domains,
    };
    let after_ea = apply(&before, &update);
    let mut tx = s.store.begin().await.map_err(se)?;
    if status.is_some_and(|st| st != ExternalAccountStatus::Valid) {
        // First the bound accounts' rows: an issuance in flight for one of them finishes
        // before this change (and its certificate is revoked below), or sees it.
        tx.touch_bound_accounts(&kid, now).await.map_err(se)?;
    }
    tx.update_external_account(&kid, &update, now)
        .await
        .map_err(se)?;
    let revoked = if matches!(
        status,
        Some(ExternalAccountStatus::Revoked | ExternalAccountStatus::Deactivated)
    ) {
        tx.revoke_external_account_certificates(&kid, reason, now)
            .await
            .map_err(se)?
    } else {
        0
    };
    let (b, mut a) = (ea_json(&before, now), ea_json(&after_ea, now));
    if revoked > 0 {
        a["certificates_revoked"] = revoked.into();
    }
    tx.audit(
        ACTOR,
        "external-account.update",
        &kid,
        Some(&b),
        Some(&a),
        now,
    )
    .await
    .map_err(se)?;
    tx.commit().await.map_err(se)?;
    if revoked > 0 {
        tracing::info!(audit = "revocation", actor = ACTOR, kid = %kid, revoked, "external account closed: certificates of its accounts revoked");
    }
    ok(StatusCode::OK, a)
}

// ----- ACME accounts -----

async fn list_accounts(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let page = s.store.accounts(&list_query(&q)?).await.map_err(se)?;
    ok(StatusCode::OK, page_json(&page, account_json))
}

async fn show_account(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    ok(StatusCode::OK, account_json(&find_account(&s, &id).await?))
}

async fn set_approval(s: &AppState, id: &str, to: Approval, action: &str) -> ApiResult {
    let before = find_account(s, id).await?;
    let now = s.clock.now_ms();
    let mut tx = s.store.begin().await.map_err(se)?;
    let after = tx
        .set_account_approval(id, to, now)
        .await
        .map_err(se)?
        .ok_or_else(|| {
            bad(format!(
                "account {id} is {}: only a valid account can be approved, suspended or reactivated",
                before.status.as_str()
            ))
            .with_status(409)
        })?;
    let (b, a) = (account_json(&before), account_json(&after));
    tx.audit(ACTOR, action, id, Some(&b), Some(&a), now)
        .await
        .map_err(se)?;
    tx.commit().await.map_err(se)?;
    tracing::info!(account = %id, approval = to.as_str(), "operator decision");
    ok(StatusCode::OK, a)
}

async fn approve(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    set_approval(&s, &id, Approval::Approved, "account.approve").await
}

async fn suspend(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    set_approval(&s, &id, Approval::Suspended, "account.suspend").await
}

async fn reactivate(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    set_approval(&s, &id, Approval::Approved, "account.reactivate").await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    #[serde(default)]
    reason: Option<Value>,
}

async fn revoke_account(State(s): State<AppState>, Path(id): Path<String>, b: Bytes) -> ApiResult {
    let req: RevokeBody = body(&b)?;
    let reason = req
        .reason
        .as_ref()
        .map(parse_reason)
        .transpose()?
        .unwrap_or(5);
    let before = find_account(&s, &id).await?;
    let now = s.clock.now_ms();
    let mut tx = s.store.begin().await.map_err(se)?;
    let (after, n) = tx
        .revoke_account(&id, reason, now)
        .await
        .map_err(se)?
        .ok_or_else(|| Problem::not_found(&format!("account {id}")))?;
    let (b, mut a) = (account_json(&before), account_json(&after));
    a["certificates_revoked"] = n.into();
    tx.audit(ACTOR, "account.revoke", &id, Some(&b), Some(&a), now)
        .await
        .map_err(se)?;
    tx.commit().await.map_err(se)?;
    tracing::info!(audit = "revocation", actor = ACTOR, account = %id, certificates = n, reason, "account revoked by the operator");
    ok(StatusCode::OK, a)
}

// ----- orders, certificates, audit -----

async fn list_orders(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let page = s.store.orders_page(&list_query(&q)?).await.map_err(se)?;
    let now = s.clock.now_ms();
    ok(StatusCode::OK, page_json(&page, |o| order_json(o, now)))
}

async fn list_certs(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let now = s.clock.now_ms();
    let page = s
        .store
        .certificates_page(&list_query(&q)?, now)
        .await
        .map_err(se)?;
    ok(StatusCode::OK, page_json(&page, |c| cert_json(c, now)))
}

async fn show_cert(State(s): State<AppState>, Path(serial): Path<String>) -> ApiResult {
    let serial = serial.to_ascii_lowercase();
    let c = s
        .store
        .certificate_by_serial(serial.trim_start_matches("0x"))
        .await
        .map_err(se)?
        .ok_or_else(|| Problem::not_found(&format!("certificate with serial {serial}")))?;
    ok(StatusCode::OK, cert_json(&c, s.clock.now_ms()))
}

async fn revoke_cert(State(s): State<AppState>, Path(serial): Path<String>, b: Bytes) -> ApiResult {
    let req: RevokeBody = body(&b)?;
    let reason = req
        .reason
        .as_ref()
        .map(parse_reason)
        .transpose()?
        .unwrap_or(0);
    let serial = serial.to_ascii_lowercase();
    let c = s
        .store
        .certificate_by_serial(serial.trim_start_matches("0x"))
        .await
        .map_err(se)?
        .ok_or_else(|| Problem::not_found(&format!("certificate with serial {serial}")))?;
    let now = s.clock.now_ms();
    let mut tx = s.store.begin().await.map_err(se)?;
    if !tx
        .revoke_certificate(&c.id, reason, reason == 1, now)
        .await
        .map_err(se)?
    {
        return Err(Problem::new(
            cobble_core::ProblemType::AlreadyRevoked,
            format!("certificate {serial} is already revoked"),
        )
        .into());
    }
    let before = cert_json(&c, now);
    let after = cert_json(
        &Certificate {
            revoked_ms: Some(now),
            revoked_reason: Some(reason),
            ..c.clone()
        },
        now,
    );
    tx.audit(
        ACTOR,
        "certificate.revoke",
        &c.serial,
        Some(&before),
        Some(&after),
        now,
    )
    .await
    .map_err(se)?;
    tx.commit().await.map_err(se)?;
    tracing::info!(audit = "revocation", actor = ACTOR, serial = %c.serial, reason, "certificate revoked by the operator");
    ok(StatusCode::OK, after)
}

async fn audit(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let page = s.store.audit_log(&list_query(&q)?).await.map_err(se)?;
    ok(StatusCode::OK, page_json(&page, audit_json))
}

// ----- rate limits -----

async fn limits_usage(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    use crate::ra::limits::UsageOf;
    let of = match (q.get("account"), q.get("domain")) {
        (Some(a), None) => {
            find_account(&s, a).await?;
            UsageOf::Account(a)
        }
        (None, Some(d)) if !d.trim().is_empty() => UsageOf::Domain(d.trim()),
        _ => {
            return Err(bad(
                "give exactly one of ?account=ID or ?domain=NAME: whose usage to report",
            )
            .into());
        }
    };
    let v = crate::ra::limits::usage(&s, of).await.map_err(se)?;
    ok(StatusCode::OK, v)
}

/// An override as the admin API takes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideBody {
    scope: String,
    subject: String,
    limit: String,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    window_secs: Option<u64>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    comment: Option<String>,
}

fn limit_key(scope: &str, limit: &str) -> Result<(Scope, LimitName), Problem> {
    let scope = Scope::parse(scope).ok_or_else(|| {
        bad(format!(
            "scope {scope:?} is not one of account, external-account, domain"
        ))
    })?;
    let limit = LimitName::parse(limit).ok_or_else(|| {
        bad(format!(
            "limit {limit:?} is not one of {}",
            LimitName::ALL.map(LimitName::as_str).join(", ")
        ))
    })?;
    Ok((scope, limit))
}

async fn list_overrides(State(s): State<AppState>) -> ApiResult {
    let stored = s.store.limit_overrides().await.map_err(se)?;
    let mut items: Vec<Value> = stored
        .iter()
        .map(|o| {
            let mut v = crate::ra::limits::override_json(&o.rule);
            v["source"] = "admin-api".into();
            v["updated"] = rfc3339(o.created_ms).into();
            v
        })
        .collect();
    items.extend(s.cfg.rate_limits.overrides.iter().map(|o| {
        let mut v = crate::ra::limits::override_json(o);
        v["source"] = "config".into();
        v
    }));
    ok(StatusCode::OK, json!({ "items": items }))
}

async fn put_override(State(s): State<AppState>, b: Bytes) -> ApiResult {
    let b: OverrideBody = body(&b)?;
    let (scope, limit) = limit_key(&b.scope, &b.limit)?;
    let mut o = Override::for_subject(scope, &b.subject, limit);
    o.count = b.count;
    o.window_secs = b.window_secs;
    o.enabled = b.enabled.unwrap_or(true);
    o.comment = b.comment.filter(|c| !c.trim().is_empty());
    let (_, subject) = o.subject().map_err(|e| bad(e.to_string()))?;
    match scope {
        Scope::Account => drop(find_account(&s, &subject).await?),
        Scope::ExternalAccount => drop(find_ea(&s, &subject).await?),
        Scope::Domain => {}
    }
    let now = s.clock.now_ms();
    let after = crate::ra::limits::override_json(&o);
    let mut tx = s.store.begin().await.map_err(se)?;
    let before = tx.put_limit_override(&o, now).await.map_err(se)?;
    let before = before.map(|b| crate::ra::limits::override_json(&b.rule));
    let target = format!("{}:{subject}", scope.as_str());
    tx.audit(
        ACTOR,
        "limit-override.put",
        &target,
        before.as_ref(),
        Some(&after),
        now,
    )
    .await
    .map_err(se)?;
    tx.commit().await.map_err(se)?;
    tracing::info!(scope = scope.as_str(), %subject, limit = limit.as_str(), "rate-limit override set");
    let status = if before.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    ok(status, after)
}

async fn delete_override(
    State(s): State<AppState>,
    Path((scope, subject, limit)): Path<(String, String, String)>,
) -> ApiResult {
    let (scope, limit) = limit_key(&scope, &limit)?;
    let subject = match scope {
        Scope::Domain => cobble_core::ratelimit::registered_domain(&subject),
        _ => subject,
    };
    let now = s.clock.now_ms();
    let mut tx = s.store.begin().await.map_err(se)?;
    let Some(gone) = tx
        .delete_limit_override(scope, &subject, limit)
        .await
        .map_err(se)?
    else {
        return Err(Problem::not_found(&format!(
            "override of {} for {} {subject}",
            limit.as_str(),
            scope.as_str()
        ))
        .into());
    };
    let before = crate::ra::limits::override_json(&gone.rule);
    let target = format!("{}:{subject}", scope.as_str());
    tx.audit(
        ACTOR,
        "limit-override.delete",
        &target,
        Some(&before),
        None,
        now,
    )
    .await
    .map_err(se)?;
    tx.commit().await.map_err(se)?;
    ok(StatusCode::OK, before)
}

async fn openapi() -> ApiResult {
    ok(StatusCode::OK, openapi_document())
}

/// A route: method, path (axum syntax), summary, and whether it takes a JSON body.
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path, with `{param}` segments.
    pub path: &'static str,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
    /// Query parameters it reads.
    pub query: &'static [&'static str],
}

/// Every admin route: the router and the OpenAPI document are both made from this table.
pub const ROUTES: &[Route] = &[
    Route {
        method: Method::GET,
        path: "/admin/openapi.json",
        summary: "This document",
        query: &[],
    },
    Route {
        method: Method::POST,
        path: "/admin/external-accounts",
        summary: "Create an external account (EAB kid and HMAC key, shown once) with organization, domain list, profile kind, credits, expiry and contacts",
        query: &[],
    },
    Route {
        method: Method::GET,
        path: "/admin/external-accounts",
        summary: "List external accounts (filters: status, organization)",
        query: &["status", "organization", "limit", "after"],
    },
    Route {
        method: Method::GET,
        path: "/admin/external-accounts/{kid}",
        summary: "Show an external account",
        query: &[],
    },
    Route {
        method: Method::PATCH,
        path: "/admin/external-accounts/{kid}",
        summary: "Update status, domains (domains, add_domains, remove_domains), profile kind, credits (credits, add_credits), expiry, organization or contacts; revoking or deactivating revokes the certificates of every bound account",
        query: &[],
    },
    Route {
        method: Method::POST,
        path: "/admin/organizations",
        summary: "Create an organization",
        query: &[],
    },
    Route {
        method: Method::GET,
        path: "/admin/organizations",
        summary: "List organizations (filter: status)",
        query: &["status", "limit", "after"],
    },
    Route {
        method: Method::GET,
        path: "/admin/organizations/{id}",
        summary: "Show an organization (by id or name) with its documents and whether it may have certificates issued",
        query: &[],
    },
    Route {
        method: Method::PATCH,
        path: "/admin/organizations/{id}",
        summary: "Set an organization's status",
        query: &[],
    },
    Route {
        method: Method::POST,
        path: "/admin/organizations/{id}/documents",
        summary: "Record a document (kind, valid_until, optional file as content_base64)",
        query: &[],
    },
    Route {
        method: Method::GET,
        path: "/admin/accounts",
        summary: "List ACME accounts (filters: status valid/deactivated/revoked or pending/suspended, external_account)",
        query: &["status", "external_account", "limit", "after"],
    },
    Route {
        method: Method::GET,
        path: "/admin/accounts/{id}",
        summary: "Show an ACME account",
        query: &[],
    },
    Route {
        method: Method::POST,
        path: "/admin/accounts/{id}/approve",
        summary: "Approve a pending ACME account",
        query: &[],
    },
    Route {
        method: Method::POST,
        path: "/admin/accounts/{id}/suspend",
        summary: "Suspend an ACME account",
        query: &[],
    },
    Route {
        method: Method::POST,
        path: "/admin/accounts/{id}/reactivate",
        summary: "Reactivate a suspended ACME account",
        query: &[],
    },
    Route {
        method: Method::POST,
        path: "/admin/accounts/{id}/revoke",
        summary: "Revoke an ACME account and every unexpired certificate issued to it (reason, default cessationOfOperation)",
        query: &[],
    },
    Route {
        method: Method::GET,
        path: "/admin/orders",
        summary: "List orders (filters: account, status, name, since, until)",
        query: &[
            "account", "status", "name", "since", "until", "limit", "after",
        ],
    },
    Route {
        method: Method::GET,
        path: "/admin/certificates",
        summary: "List certificates (filters: account, serial, name, status valid/revoked/expired, since, until)",
        query: &[
            "account", "serial", "name", "status", "since", "until", "limit", "after",
        ],
    },
    Route {
        method: Method::GET,
        path: "/admin/certificates/{serial}",
        summary: "Show a certificate by serial (hex)",
        query: &[],
    },
    Route {
        method: Method::POST,
        path: "/admin/certificates/{serial}/revoke",
        summary: "Revoke a certificate by serial with a reason (number or RFC 5280 name)",
        query: &[],
    },
    Route {
        method: Method::GET,
        path: "/admin/limits",
        summary: "Usage against every counting rate limit (overrides applied) and when each window frees a slot, for one account or one registered domain",
        query: &["account", "domain"],
    },
    Route {
        method: Method::GET,
        path: "/admin/limit-overrides",
        summary: "List rate-limit overrides, those made here and those in the configuration",
        query: &[],
    },
    Route {
        method: Method::PUT,
        path: "/admin/limit-overrides",
        summary: "Make or replace an override: scope (account, external-account, domain), subject, limit, count, window_secs, enabled, comment",
        query: &[],
    },
    Route {
        method: Method::DELETE,
        path: "/admin/limit-overrides/{scope}/{subject}/{limit}",
        summary: "Remove an override made here",
        query: &[],
    },
    Route {
        method: Method::GET,
        path: "/admin/audit",
        summary: "Read the audit log, newest first (filter: target)",
        query: &["target", "limit", "after"],
    },
];

/// The handler of a route in [`ROUTES`].
fn handler(method: &Method, path: &str) -> MethodRouter<AppState> {
    match (method.as_str(), path) {
        ("GET", "/admin/openapi.json") => get(openapi),
        ("POST", "/admin/external-accounts") => post(create_ea),
        ("GET", "/admin/external-accounts") => get(list_eas),
        ("GET", "/admin/external-accounts/{kid}") => get(show_ea),
        ("PATCH", "/admin/external-accounts/{kid}") => patch(update_ea),
        ("POST", "/admin/organizations") => post(create_org),
        ("GET", "/admin/organizations") => get(list_orgs),
        ("GET", "/admin/organizations/{id}") => get(show_org),
        ("PATCH", "/admin/organizations/{id}") => patch(update_org),
        ("POST", "/admin/organizations/{id}/documents") => post(add_document),
        ("GET", "/admin/accounts") => get(list_accounts),
        ("GET", "/admin/accounts/{id}") => get(show_account),
        ("POST", "/admin/accounts/{id}/approve") => post(approve),
        ("POST", "/admin/accounts/{id}/suspend") => post(suspend),
        ("POST", "/admin/accounts/{id}/reactivate") => post(reactivate),
        ("POST", "/admin/accounts/{id}/revoke") => post(revoke_account),
        ("GET", "/admin/orders") => get(list_orders),
        ("GET", "/admin/certificates") => get(list_certs),
        ("GET", "/admin/certificates/{serial}") => get(show_cert),
        ("POST", "/admin/certificates/{serial}/revoke") => post(revoke_cert),
        ("GET", "/admin/audit") => get(audit),
        ("GET", "/admin/limits") => get(limits_usage),
        ("GET", "/admin/limit-overrides") => get(list_overrides),
        ("PUT", "/admin/limit-overrides") => put(put_override),
        ("DELETE", "/admin/limit-overrides/{scope}/{subject}/{limit}") => delete(delete_override),
        _ => unreachable!("every route in ROUTES has a handler: {method} {path}"),
    }
}

/// The admin routes (the caller puts them behind the token).
pub fn router() -> Router<AppState> {
    let mut by_path: Vec<(&str, MethodRouter<AppState>)> = Vec::new();
    for r in ROUTES {
        let h = handler(&r.method, r.path);
        match by_path.iter_mut().find(|(p, _)| *p == r.path) {
            Some((_, m)) => *m = std::mem::take(m).merge(h),
            None => by_path.push((r.path, h)),
        }
    }
    by_path
        .into_iter()
        .fold(Router::new(), |router, (p, m)| router.route(p, m))
}

/// The OpenAPI 3.1 document of [`ROUTES`].
pub fn openapi_document() -> Value {
    let mut paths = serde_json::Map::new();
    for r in ROUTES {
        let entry = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        let mut params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(r.query.iter().map(
            |q| json!({"name": q, "in": "query", "required": false, "schema": {"type": "string"}}),
        ));
        let mut op = json!({
            "summary": r.summary,
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {}}},
                "401": {"description": "No or wrong admin token", "content": {"application/problem+json": {}}},
                "4XX": {"description": "A problem (RFC 7807)", "content": {"application/problem+json": {}}},
            },
        });
        if matches!(r.method, Method::POST | Method::PATCH | Method::PUT) {
            op["requestBody"] = json!({"required": false, "content": {"application/json": {}}});
        }
        entry[r.method.as_str().to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Cobble admin API", "version": env!("CARGO_PKG_VERSION")},
        "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        "security": [{"token": []}],
        "paths": paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_a_handler_and_a_documented_path() {
        for r in ROUTES {
            let _ = handler(&r.method, r.path);
        }
        let doc = openapi_document();
        for r in ROUTES {
            assert!(
                doc["paths"][r.path][r.method.as_str().to_ascii_lowercase()].is_object(),
                "{} {}",
                r.method,
                r.path
            );
        }
        let _ = router();
    }

    #[test]
    fn dates_and_reasons_parse() {
        assert_eq!(parse_date("d", "1970-01-01").unwrap(), 86_399_999);
        assert_eq!(parse_date("d", "1970-01-02T00:00:00Z").unwrap(), 86_400_000);
        assert!(parse_date("d", "tomorrow").is_err());
        assert_eq!(parse_reason(&json!("keyCompromise")).unwrap(), 1);
        assert_eq!(parse_reason(&json!(5)).unwrap(), 5);
        assert!(parse_reason(&json!(2)).is_err());
        assert!(parse_reason(&json!("nope")).is_err());
    }
}
