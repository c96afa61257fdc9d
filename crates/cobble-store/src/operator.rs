//! The operator's records (issue 11): organizations and their documents, external accounts
//! (the EAB keys a customer binds ACME accounts with) with their domain lists and credits,
//! the operator's decisions on ACME accounts, and the audit log. Reads go to the pool;
//! every change is a [`Tx`] method, so an operator change and its audit row commit together.

use crate::account::{COLUMNS as ACCOUNT_COLUMNS, from_row as account_from_row};
use crate::{Account, Store, StoreError, Tx, on_tx, read_pool};
use cobble_core::operator::{
    Approval, DocumentKind, DomainEntry, ExternalAccountStatus, OrganizationStatus, ProfileKind,
};
use sqlx::Row;

/// An organization (the customer), with its documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// UUID v4.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The status the operator set.
    pub status: OrganizationStatus,
    /// Its documents, newest first.
    pub documents: Vec<Document>,
    /// Unix ms.
    pub created_ms: i64,
}

/// A document on record for an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// UUID v4.
    pub id: String,
    /// The organization it belongs to.
    pub organization_id: String,
    /// What it is.
    pub kind: DocumentKind,
    /// The end of its validity, Unix ms.
    pub valid_until_ms: i64,
    /// The uploaded file's name in the data directory, if one was uploaded.
    pub file_name: Option<String>,
    /// Unix ms.
    pub created_ms: i64,
}

impl Organization {
    /// Whether an in-date document of `kind` is on record at `now_ms`.
    pub fn has_document(&self, kind: DocumentKind, now_ms: i64) -> bool {
        self.documents
            .iter()
            .any(|d| d.kind == kind && d.valid_until_ms > now_ms)
    }
}

/// An external account: the operator's record of a customer, which ACME accounts bind to
/// with EAB (RFC 8555 §7.3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalAccount {
    /// The EAB key id (UUID v4).
    pub kid: String,
    /// The HMAC key, base64url without padding.
    pub hmac_key: String,
    /// Status.
    pub status: ExternalAccountStatus,
    /// End date, Unix ms.
    pub expires_ms: Option<i64>,
    /// The organization it belongs to.
    pub organization_id: Option<String>,
    /// Which names its certificates may carry.
    pub profile_kind: ProfileKind,
    /// Certificates it may still have issued; `None` is unlimited.
    pub credits: Option<i64>,
    /// Contact emails.
    pub contact: Vec<String>,
    /// How many ACME accounts bound to it.
    pub bindings: i64,
    /// Its domain list; empty means no list (any name the CA's policy allows).
    pub domains: Vec<DomainEntry>,
    /// Unix ms.
    pub created_ms: i64,
}

impl ExternalAccount {
    /// The status in effect at `now_ms`: a passed end date makes it `expired`.
    pub fn status_at(&self, now_ms: i64) -> ExternalAccountStatus {
        status_at(self.status, self.expires_ms, now_ms)
    }
}

/// A stored status and end date as in effect at `now_ms`.
fn status_at(
    status: ExternalAccountStatus,
    expires_ms: Option<i64>,
    now_ms: i64,
) -> ExternalAccountStatus {
    match (status, expires_ms) {
        (ExternalAccountStatus::Valid | ExternalAccountStatus::Pending, Some(e)) if e <= now_ms => {
            ExternalAccountStatus::Expired
        }
        (s, _) => s,
    }
}

/// What [`Tx::issuance_standing`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuanceStanding {
    /// The ACME account's status.
    pub account_status: cobble_core::account::AccountStatus,
    /// Its external account, if bound to one (a vanished one reads as deactivated).
    pub external: Option<ExternalStanding>,
}

/// An external account's status as the issuance transaction read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalStanding {
    /// The key id.
    pub kid: String,
    /// Its stored status.
    pub status: ExternalAccountStatus,
    /// Its end date, Unix ms.
    pub expires_ms: Option<i64>,
}

impl ExternalStanding {
    /// The status in effect at `now_ms`, as [`ExternalAccount::status_at`].
    pub fn status_at(&self, now_ms: i64) -> ExternalAccountStatus {
        status_at(self.status, self.expires_ms, now_ms)
    }
}

/// What [`Tx::create_external_account`] stores.
#[derive(Debug, Clone)]
pub struct NewExternalAccount {
    /// The key id; made (UUID v4) when `None`.
    pub kid: Option<String>,
    /// The HMAC key (base64url); made (32 random bytes) when `None`.
    pub hmac_key: Option<String>,
    /// Initial status.
    pub status: ExternalAccountStatus,
    /// End date, Unix ms.
    pub expires_ms: Option<i64>,
    /// Organization id.
    pub organization_id: Option<String>,
    /// Profile kind.
    pub profile_kind: ProfileKind,
    /// Credits; `None` unlimited.
    pub credits: Option<i64>,
    /// Contact emails.
    pub contact: Vec<String>,
    /// The domain list.
    pub domains: Vec<DomainEntry>,
    /// Now, Unix ms.
    pub now_ms: i64,
}

/// A change to an external account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ExternalAccountUpdate {
    /// New status.
    pub status: Option<ExternalAccountStatus>,
    /// New end date (`Some(None)` removes it).
    pub expires_ms: Option<Option<i64>>,
    /// New organization (`Some(None)` removes it).
    pub organization_id: Option<Option<String>>,
    /// New profile kind.
    pub profile_kind: Option<ProfileKind>,
    /// New balance (`Some(None)` makes it unlimited).
    pub credits: Option<Option<i64>>,
    /// Credits to add to a metered balance (may be negative; the balance stays >= 0).
    pub add_credits: Option<i64>,
    /// New contact list.
    pub contact: Option<Vec<String>>,
    /// The whole new domain list.
    pub domains: Option<Vec<DomainEntry>>,
}

/// The outcome of [`Tx::debit_credit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Debit {
    /// The order's account has no metered external account.
    Unmetered,
    /// One credit taken; this many left.
    Debited(i64),
    /// The balance is zero: nothing taken.
    OutOfCredit,
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// Unix ms.
    pub at_ms: i64,
    /// Who (the admin token's name).
    pub actor: String,
    /// What, e.g. `external-account.update`.
    pub action: String,
    /// On what (an id, kid or serial).
    pub target: String,
    /// JSON before the change.
    pub before: Option<String>,
    /// JSON after the change.
    pub after: Option<String>,
}

/// A claim on a name by an external account's domain-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainClaim {
    /// The entry's name.
    pub name: String,
    /// The external account.
    pub kid: String,
    /// Whether the entry is authorized.
    pub authorized: bool,
    /// The external account's organization.
    pub organization_id: Option<String>,
}

/// Filters and paging of the operator's lists; `None` means any. Pages run newest first;
/// `after` is the cursor the previous page returned.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Status (of the listed kind).
    pub status: Option<String>,
    /// Owning account id.
    pub account: Option<String>,
    /// External account kid.
    pub kid: Option<String>,
    /// Organization id.
    pub organization: Option<String>,
    /// An identifier value the item must carry (orders, certificates).
    pub name: Option<String>,
    /// A certificate serial (hex).
    pub serial: Option<String>,
    /// Created at or after, Unix ms.
    pub since_ms: Option<i64>,
    /// Created before, Unix ms.
    pub until_ms: Option<i64>,
    /// Page size (capped at 500).
    pub limit: usize,
    /// Cursor: `<created_ms>.<id>` of the last item of the previous page.
    pub after: Option<String>,
}

impl ListQuery {
    fn limit(&self) -> i64 {
        self.limit.clamp(1, 500) as i64
    }

    fn cursor(&self) -> Result<Option<(i64, String)>, StoreError> {
        match self.after.as_deref() {
            None => Ok(None),
            Some(c) => c
                .split_once('.')
                .and_then(|(ms, id)| Some((ms.parse().ok()?, id.to_owned())))
                .map(Some)
                .ok_or_else(|| StoreError::BadCursor(c.to_owned())),
        }
    }
}

/// A page of a list, and the cursor of the next page.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// A value bound to a dynamic list query.
enum Bind {
    Text(String),
    Int(i64),
}

/// `WHERE ...` conditions with numbered placeholders, built from a [`ListQuery`].
struct Where {
    conds: Vec<String>,
    binds: Vec<Bind>,
}

impl Where {
    fn new() -> Self {
        Where {
            conds: Vec::new(),
            binds: Vec::new(),
        }
    }
    fn push(&mut self, cond: &str, b: Bind) {
        self.binds.push(b);
        self.conds
            .push(cond.replace('?', &format!("${}", self.binds.len())));
    }
    fn text(&mut self, cond: &str, v: &Option<String>) {
        if let Some(v) = v {
            self.push(cond, Bind::Text(v.clone()));
        }
    }
    fn int(&mut self, cond: &str, v: Option<i64>) {
        if let Some(v) = v {
            self.push(cond, Bind::Int(v));
        }
    }
    /// Keyset paging on (`created`, `id`), newest first.
    fn page(&mut self, q: &ListQuery, created: &str, id: &str) -> Result<String, StoreError> {
        if let Some((ms, after)) = q.cursor()? {
            self.binds.push(Bind::Int(ms));
            let a = self.binds.len();
            self.binds.push(Bind::Text(after));
            let b = self.binds.len();
            self.conds.push(format!(
                "({created} < ${a} OR ({created} = ${a} AND {id} < ${b}))"
            ));
        }
        let w = if self.conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conds.join(" AND "))
        };
        self.binds.push(Bind::Int(q.limit() + 1));
        Ok(format!(
            "{w} ORDER BY {created} DESC, {id} DESC LIMIT ${}",
            self.binds.len()
        ))
    }
}

/// Runs a dynamic list query and decodes each row with `$decode`.
macro_rules! fetch_list {
    ($db:expr, $sql:expr, $binds:expr, $decode:expr) => {{
        let sql = sqlx::AssertSqlSafe($sql);
        read_pool!($db, p => {
            let mut q = sqlx::query(sql);
            for b in $binds {
                q = match b {
                    Bind::Text(t) => q.bind(t),
                    Bind::Int(i) => q.bind(i),
                };
            }
            let rows = q.fetch_all(p).await?;
            rows.iter().map($decode).collect::<Result<Vec<_>, StoreError>>()
        })?
    }};
}

fn page_of<T>(mut items: Vec<T>, q: &ListQuery, key: impl Fn(&T) -> String) -> Page<T> {
    let next = if items.len() as i64 > q.limit() {
        items.truncate(q.limit() as usize);
        items.last().map(key)
    } else {
        None
    };
    Page { items, next }
}

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {v:?}"))
}

const EA_COLS: &str = "kid, hmac_key, status, expires_ms, organization_id, profile_kind, credits, contact, bindings, created_ms";
const ORG_COLS: &str = "id, name, status, created_ms";
const DOC_COLS: &str = "id, organization_id, kind, valid_until_ms, file_name, created_ms";

fn ea_from_row<R: Row>(row: &R) -> Result<ExternalAccount, StoreError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    let status: String = row.try_get("status")?;
    let kind: String = row.try_get("profile_kind")?;
    let contact: String = row.try_get("contact")?;
    Ok(ExternalAccount {
        kid: row.try_get("kid")?,
        hmac_key: row.try_get("hmac_key")?,
        status: ExternalAccountStatus::parse(&status)
            .ok_or_else(|| corrupt("external account status", &status))?,
        expires_ms: row.try_get("expires_ms")?,
        organization_id: row.try_get("organization_id")?,
        profile_kind: ProfileKind::parse(&kind).ok_or_else(|| corrupt("profile kind", &kind))?,
        credits: row.try_get("credits")?,
        contact: serde_json::from_str(&contact).map_err(|_| corrupt("contact", &contact))?,
        bindings: row.try_get("bindings")?,
        domains: Vec::new(),
        created_ms: row.try_get("created_ms")?,
    })
}

fn org_from_row<R: Row>(row: &R) -> Result<Organization, StoreError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    let status: String = row.try_get("status")?;
    Ok(Organization {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        status: OrganizationStatus::parse(&status)
            .ok_or_else(|| corrupt("organization status", &status))?,
        documents: Vec::new(),
        created_ms: row.try_get("created_ms")?,
    })
}

fn doc_from_row<R: Row>(row: &R) -> Result<Document, StoreError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    let kind: String = row.try_get("kind")?;
    Ok(Document {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        kind: DocumentKind::parse(&kind).ok_or_else(|| corrupt("document kind", &kind))?,
        valid_until_ms: row.try_get("valid_until_ms")?,
        file_name: row.try_get("file_name")?,
        created_ms: row.try_get("created_ms")?,
    })
}

fn audit_from_row<R: Row>(row: &R) -> Result<AuditEntry, StoreError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at_ms: row.try_get("at_ms")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        before: row.try_get("before")?,
        after: row.try_get("after")?,
    })
}

fn domains_from_rows<R: Row>(rows: &[R]) -> Result<Vec<DomainEntry>, StoreError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    rows.iter()
        .map(|r| {
            Ok(DomainEntry {
                name: r.try_get("name")?,
                authorized: r.try_get::<i64, _>("authorized")? != 0,
            })
        })
        .collect()
}

/// A random UUID v4 (RFC 9562 §5.4), as external accounts and organizations are named.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("the system RNG works");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A fresh EAB HMAC key: 32 random bytes, base64url without padding.
pub fn new_hmac_key() -> String {
    let mut b = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("the system RNG works");
    cobble_core::b64::encode(b)
}

/// The domain-list entry names that could cover `value`: the name itself, and the
/// subtree entry of it and of every parent (`*.a.example.com`, `*.example.com`, `*.com`).
pub fn candidate_entries(value: &str) -> Vec<String> {
    let v = value.to_ascii_lowercase();
    let base = v.strip_prefix("*.").unwrap_or(&v).to_owned();
    let mut out = vec![v.clone()];
    let mut rest = base.as_str();
    loop {
        out.push(format!("*.{rest}"));
        match rest.split_once('.') {
            Some((_, parent)) => rest = parent,
            None => break,
        }
    }
    out.dedup();
    out
}

impl Store {
    /// An external account with its domain list.
    pub async fn external_account(&self, kid: &str) -> Result<Option<ExternalAccount>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {EA_COLS} FROM external_accounts WHERE kid = $1"
        ));
        read_pool!(&self.db, p => {
            let Some(row) = sqlx::query(sql).bind(kid).fetch_optional(&mut *p).await? else {
                return Ok(None);
            };
            let mut ea = ea_from_row(&row)?;
            let rows = sqlx::query("SELECT name, authorized FROM external_account_domains WHERE kid = $1 ORDER BY name")
                .bind(kid)
                .fetch_all(p)
                .await?;
            ea.domains = domains_from_rows(&rows)?;
            Ok(Some(ea))
        })
    }

    /// A page of external accounts (filters: status, organization).
    pub async fn external_accounts(
        &self,
        q: &ListQuery,
    ) -> Result<Page<ExternalAccount>, StoreError> {
        let mut w = Where::new();
        w.text("status = ?", &q.status);
        w.text("organization_id = ?", &q.organization);
        let tail = w.page(q, "created_ms", "kid")?;
        let items = fetch_list!(
            &self.db,
            format!("SELECT {EA_COLS} FROM external_accounts {tail}"),
            w.binds,
            ea_from_row
        );
        let mut page = page_of(items, q, |e: &ExternalAccount| {
            format!("{}.{}", e.created_ms, e.kid)
        });
        for ea in &mut page.items {
            if let Some(full) = self.external_account(&ea.kid).await? {
                ea.domains = full.domains;
            }
        }
        Ok(page)
    }

    /// The domain-list entries, of every external account, that could cover `value`.
    pub async fn domain_claims(&self, value: &str) -> Result<Vec<DomainClaim>, StoreError> {
        let names = candidate_entries(value);
        let marks: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT d.name, d.kid, d.authorized, e.organization_id FROM external_account_domains d \
             JOIN external_accounts e ON e.kid = d.kid WHERE d.name IN ({})",
            marks.join(", ")
        ));
        read_pool!(&self.db, p => {
            let mut q = sqlx::query(sql);
            for n in &names {
                q = q.bind(n);
            }
            let rows = q.fetch_all(p).await?;
            rows.iter()
                .map(|r| {
                    Ok(DomainClaim {
                        name: r.try_get("name")?,
                        kid: r.try_get("kid")?,
                        authorized: r.try_get::<i64, _>("authorized")? != 0,
                        organization_id: r.try_get("organization_id")?,
                    })
                })
                .collect()
        })
    }

    /// An organization with its documents.
    pub async fn organization(&self, id: &str) -> Result<Option<Organization>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ORG_COLS} FROM organizations WHERE id = $1 OR name = $1"
        ));
        let docs = sqlx::AssertSqlSafe(format!(
            "SELECT {DOC_COLS} FROM organization_documents WHERE organization_id = $1 ORDER BY created_ms DESC, id DESC"
        ));
        read_pool!(&self.db, p => {
            let Some(row) = sqlx::query(sql).bind(id).fetch_optional(&mut *p).await? else {
                return Ok(None);
            };
            let mut org = org_from_row(&row)?;
            let rows = sqlx::query(docs).bind(&org.id).fetch_all(p).await?;
            org.documents = rows.iter().map(doc_from_row).collect::<Result<_, _>>()?;
            Ok(Some(org))
        })
    }

    /// A page of organizations (filter: status).
    pub async fn organizations(&self, q: &ListQuery) -> Result<Page<Organization>, StoreError> {
        let mut w = Where::new();
        w.text("status = ?", &q.status);
        let tail = w.page(q, "created_ms", "id")?;
        let items = fetch_list!(
            &self.db,
            format!("SELECT {ORG_COLS} FROM organizations {tail}"),
            w.binds,
            org_from_row
        );
        let mut page = page_of(items, q, |o: &Organization| {
            format!("{}.{}", o.created_ms, o.id)
        });
        for o in &mut page.items {
            if let Some(full) = self.organization(&o.id).await? {
                o.documents = full.documents;
            }
        }
        Ok(page)
    }

    /// A page of ACME accounts (filters: status or approval, external account).
    pub async fn accounts(&self, q: &ListQuery) -> Result<Page<Account>, StoreError> {
        let mut w = Where::new();
        if let Some(s) = &q.status {
            if Approval::parse(s).is_some() && s != "approved" {
                w.push("approval = ? AND status = 'valid'", Bind::Text(s.clone()));
            } else {
                w.push("status = ?", Bind::Text(s.clone()));
            }
        }
        w.text("external_kid = ?", &q.kid);
        let tail = w.page(q, "created_ms", "id")?;
        let items = fetch_list!(
            &self.db,
            format!("SELECT {ACCOUNT_COLUMNS} FROM accounts {tail}"),
            w.binds,
            account_from_row
        );
        Ok(page_of(items, q, |a: &Account| {
            format!("{}.{}", a.created_ms, a.id)
        }))
    }

    /// A page of orders (filters: account, stored status, name).
    pub async fn orders_page(&self, q: &ListQuery) -> Result<Page<crate::Order>, StoreError> {
        let mut w = Where::new();
        w.text("account_id = ?", &q.account);
        w.text("status = ?", &q.status);
        w.text(
            "identifiers LIKE ?",
            &q.name
                .as_ref()
                .map(|n| format!("%\"{}\"%", n.to_ascii_lowercase())),
        );
        w.int("created_ms >= ?", q.since_ms);
        w.int("created_ms < ?", q.until_ms);
        let tail = w.page(q, "created_ms", "id")?;
        let ids: Vec<(String, i64)> = fetch_list!(
            &self.db,
            format!("SELECT id, created_ms FROM orders {tail}"),
            w.binds,
            |r| Ok((r.try_get("id")?, r.try_get("created_ms")?))
        );
        let page = page_of(ids, q, |(id, ms)| format!("{ms}.{id}"));
        let mut items = Vec::with_capacity(page.items.len());
        for (id, _) in &page.items {
            if let Some(o) = self.order(id).await? {
                items.push(o);
            }
        }
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// A page of certificates (filters: account, serial, name, status `valid` / `revoked` /
    /// `expired` at `now_ms`, issued since / until).
    pub async fn certificates_page(
        &self,
        q: &ListQuery,
        now_ms: i64,
    ) -> Result<Page<crate::Certificate>, StoreError> {
        let mut w = Where::new();
        w.text("account_id = ?", &q.account);
        w.text(
            "serial = ?",
            &q.serial.as_ref().map(|s| s.to_ascii_lowercase()),
        );
        w.text(
            "identifiers LIKE ?",
            &q.name
                .as_ref()
                .map(|n| format!("%\"{}\"%", n.to_ascii_lowercase())),
        );
        w.int("created_ms >= ?", q.since_ms);
        w.int("created_ms < ?", q.until_ms);
        match q.status.as_deref() {
            None => {}
            Some("revoked") => w.conds.push("revoked_ms IS NOT NULL".into()),
            Some("valid") => w.int("revoked_ms IS NULL AND not_after_ms > ?", Some(now_ms)),
            Some("expired") => w.int("revoked_ms IS NULL AND not_after_ms <= ?", Some(now_ms)),
            Some(other) => {
                return Err(StoreError::BadFilter(format!(
                    "certificate status {other:?} is not one of valid, revoked, expired"
                )));
            }
        }
        let tail = w.page(q, "created_ms", "id")?;
        let rows: Vec<(crate::Certificate, i64)> = fetch_list!(
            &self.db,
            format!(
                "SELECT {}, created_ms FROM certificates {tail}",
                crate::cert::CERT_COLS
            ),
            w.binds,
            |r| Ok((crate::cert::cert_from_row(r)?, r.try_get("created_ms")?))
        );
        let page = page_of(rows, q, |(c, ms)| format!("{ms}.{}", c.id));
        Ok(Page {
            items: page.items.into_iter().map(|(c, _)| c).collect(),
            next: page.next,
        })
    }

    /// A page of the audit log, newest first (filter: target).
    pub async fn audit_log(&self, q: &ListQuery) -> Result<Page<AuditEntry>, StoreError> {
        let mut w = Where::new();
        w.text("target = ?", &q.name);
        let cursor: Option<i64> = match q.after.as_deref() {
            None => None,
            Some(c) => Some(c.parse().map_err(|_| StoreError::BadCursor(c.to_owned()))?),
        };
        w.int("id < ?", cursor);
        let cond = if w.conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", w.conds.join(" AND "))
        };
        w.binds.push(Bind::Int(q.limit() + 1));
        let items = fetch_list!(
            &self.db,
            format!(
                "SELECT id, at_ms, actor, action, target, before, after FROM audit_log {cond} ORDER BY id DESC LIMIT ${}",
                w.binds.len()
            ),
            w.binds,
            audit_from_row
        );
        Ok(page_of(items, q, |e: &AuditEntry| e.id.to_string()))
    }
}

impl Tx {
    /// Writes an audit row (who, what, on what, JSON before and after) in this transaction.
    pub async fn audit(
        &mut self,
        actor: &str,
        action: &str,
        target: &str,
        before: Option<&serde_json::Value>,
        after: Option<&serde_json::Value>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO audit_log (at_ms, actor, action, target, before, after) VALUES ($1, $2, $3, $4, $5, $6)";
        if let Some(c) = self.direct() {
            let (before, after) = (before.map(|v| v.to_string()), after.map(|v| v.to_string()));
            crate::direct::exec(
                c,
                SQL,
                &[&now_ms, &actor, &action, &target, &before, &after],
            )?;
            return Ok(());
        }
        on_tx!(self, tx => {
            sqlx::query(SQL)
                .bind(now_ms)
                .bind(actor)
                .bind(action)
                .bind(target)
                .bind(before.map(|v| v.to_string()))
                .bind(after.map(|v| v.to_string()))
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
    }

    /// Creates an organization (status as given).
    pub async fn create_organization(
        &mut self,
        name: &str,
        status: OrganizationStatus,
        now_ms: i64,
    ) -> Result<Organization, StoreError> {
        let id = uuid_v4();
        on_tx!(self, tx => {
            sqlx::query("INSERT INTO organizations (id, name, status, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $4)")
                .bind(&id)
                .bind(name)
                .bind(status.as_str())
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(|e| match e.as_database_error() {
                    Some(d) if d.is_unique_violation() => StoreError::Duplicate(format!("organization {name:?} exists")),
                    _ => StoreError::Database(e),
                })?;
            Ok::<_, StoreError>(())
        })?;
        Ok(Organization {
            id,
            name: name.to_owned(),
            status,
            documents: Vec::new(),
            created_ms: now_ms,
        })
    }

    /// Sets an organization's status; false when there is no such organization.
    pub async fn set_organization_status(
        &mut self,
        id: &str,
        status: OrganizationStatus,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        on_tx!(self, tx => {
            let n = sqlx::query("UPDATE organizations SET status = $2, updated_ms = $3 WHERE id = $1")
                .bind(id)
                .bind(status.as_str())
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }

    /// Records a document for an organization.
    pub async fn add_document(
        &mut self,
        organization_id: &str,
        kind: DocumentKind,
        valid_until_ms: i64,
        file_name: Option<&str>,
        now_ms: i64,
    ) -> Result<Document, StoreError> {
        let id = uuid_v4();
        on_tx!(self, tx => {
            sqlx::query("INSERT INTO organization_documents (id, organization_id, kind, valid_until_ms, file_name, created_ms) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&id)
                .bind(organization_id)
                .bind(kind.as_str())
                .bind(valid_until_ms)
                .bind(file_name)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            Ok::<_, StoreError>(())
        })?;
        Ok(Document {
            id,
            organization_id: organization_id.to_owned(),
            kind,
            valid_until_ms,
            file_name: file_name.map(str::to_owned),
            created_ms: now_ms,
        })
    }

    /// Creates an external account with its domain list; returns its kid.
    pub async fn create_external_account(
        &mut self,
        new: &NewExternalAccount,
    ) -> Result<String, StoreError> {
        let kid = new.kid.clone().unwrap_or_else(uuid_v4);
        let key = new.hmac_key.clone().unwrap_or_else(new_hmac_key);
        on_tx!(self, tx => {
            sqlx::query(
                "INSERT INTO external_accounts (kid, hmac_key, status, expires_ms, organization_id, profile_kind, credits, contact, bindings, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9)",
            )
            .bind(&kid)
            .bind(&key)
            .bind(new.status.as_str())
            .bind(new.expires_ms)
            .bind(&new.organization_id)
            .bind(new.profile_kind.as_str())
            .bind(new.credits)
            .bind(serde_json::to_string(&new.contact).expect("strings serialize"))
            .bind(new.now_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| match e.as_database_error() {
                Some(d) if d.is_unique_violation() => StoreError::Duplicate(format!("external account {kid} exists")),
                _ => StoreError::Database(e),
            })?;
            Ok::<_, StoreError>(())
        })?;
        self.replace_domains(&kid, &new.domains).await?;
        Ok(kid)
    }

    /// Creates a valid, unrestricted external account with a given key unless the kid
    /// exists (pre-made keys from the config, as Pebble's `externalAccountMACKeys`).
    /// True when it was created.
    pub async fn ensure_external_account(
        &mut self,
        kid: &str,
        hmac_key: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        on_tx!(self, tx => {
            let n = sqlx::query(
                "INSERT INTO external_accounts (kid, hmac_key, status, profile_kind, contact, bindings, created_ms, updated_ms) \
                 VALUES ($1, $2, 'valid', 'any', '[]', 0, $3, $3) ON CONFLICT (kid) DO NOTHING",
            )
            .bind(kid)
            .bind(hmac_key)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
    }

    async fn replace_domains(&mut self, kid: &str, list: &[DomainEntry]) -> Result<(), StoreError> {
        on_tx!(self, tx => {
            sqlx::query("DELETE FROM external_account_domains WHERE kid = $1")
                .bind(kid)
                .execute(&mut *tx)
                .await?;
            for d in list {
                sqlx::query("INSERT INTO external_account_domains (kid, name, authorized) VALUES ($1, $2, $3) \
                             ON CONFLICT (kid, name) DO UPDATE SET authorized = excluded.authorized")
                    .bind(kid)
                    .bind(&d.name)
                    .bind(d.authorized as i64)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(())
        })
    }

    /// Applies `u` to external account `kid`; false when there is no such account.
    pub async fn update_external_account(
        &mut self,
        kid: &str,
        u: &ExternalAccountUpdate,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self, tx => {
            sqlx::query(
                "UPDATE external_accounts SET \
                 status = COALESCE($2, status), \
                 expires_ms = CASE WHEN $3 = 1 THEN $4 ELSE expires_ms END, \
                 organization_id = CASE WHEN $5 = 1 THEN $6 ELSE organization_id END, \
                 profile_kind = COALESCE($7, profile_kind), \
                 credits = CASE WHEN $8 = 1 THEN $9 ELSE credits END, \
                 contact = COALESCE($10, contact), \
                 updated_ms = $11 \
                 WHERE kid = $1",
            )
            .bind(kid)
            .bind(u.status.map(|s| s.as_str()))
            .bind(u.expires_ms.is_some() as i64)
            .bind(u.expires_ms.flatten())
            .bind(u.organization_id.is_some() as i64)
            .bind(u.organization_id.clone().flatten())
            .bind(u.profile_kind.map(|k| k.as_str()))
            .bind(u.credits.is_some() as i64)
            .bind(u.credits.flatten())
            .bind(u.contact.as_ref().map(|c| serde_json::to_string(c).expect("strings serialize")))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        });
        if n == 0 {
            return Ok(false);
        }
        if let Some(add) = u.add_credits {
            on_tx!(self, tx => {
                sqlx::query("UPDATE external_accounts SET credits = CASE WHEN credits + $2 < 0 THEN 0 ELSE credits + $2 END WHERE kid = $1 AND credits IS NOT NULL")
                    .bind(kid)
                    .bind(add)
                    .execute(&mut *tx)
                    .await?;
            });
        }
        if let Some(d) = &u.domains {
            self.replace_domains(kid, d).await?;
        }
        Ok(true)
    }

    /// Counts one more ACME account bound to external account `kid`, unless it already has
    /// one and keys are single-use (`reusable` false). False when the binding is refused.
    /// The row lock (PostgreSQL) or the single writer (SQLite) makes concurrent bindings
    /// take turns, so a single-use key binds exactly one account.
    pub async fn bind_external_account(
        &mut self,
        kid: &str,
        reusable: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        on_tx!(self, tx => {
            let n = sqlx::query("UPDATE external_accounts SET bindings = bindings + 1, updated_ms = $3 WHERE kid = $1 AND (bindings = 0 OR $2 = 1)")
                .bind(kid)
                .bind(reusable as i64)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }

    /// Sets an ACME account's approval (the operator's approve / suspend / reactivate);
    /// `None` when there is no such account or it is no longer valid.
    pub async fn set_account_approval(
        &mut self,
        id: &str,
        approval: Approval,
        now_ms: i64,
    ) -> Result<Option<Account>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE accounts SET approval = $2, updated_ms = $3 WHERE id = $1 AND status = 'valid' RETURNING {ACCOUNT_COLUMNS}"
        ));
        on_tx!(self, tx => {
            let row = sqlx::query(sql)
                .bind(id)
                .bind(approval.as_str())
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await?;
            row.as_ref().map(account_from_row).transpose()
        })
    }

    /// Revokes an ACME account (the operator's decision; final) and every unexpired,
    /// unrevoked certificate issued to it, with `reason`. Returns the account and how many
    /// certificates were revoked; `None` when there is no such account.
    pub async fn revoke_account(
        &mut self,
        id: &str,
        reason: i64,
        now_ms: i64,
    ) -> Result<Option<(Account, u64)>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE accounts SET status = 'revoked', updated_ms = $2 WHERE id = $1 RETURNING {ACCOUNT_COLUMNS}"
        ));
        let account = on_tx!(self, tx => {
            let row = sqlx::query(sql).bind(id).bind(now_ms).fetch_optional(&mut *tx).await?;
            row.as_ref().map(account_from_row).transpose()?
        });
        let Some(account) = account else {
            return Ok(None);
        };
        let n = self
            .revoke_certificates_where("account_id = $1", id, reason, now_ms)
            .await?;
        Ok(Some((account, n)))
    }

    /// Revokes every unexpired, unrevoked certificate of every ACME account bound to
    /// external account `kid`; returns how many.
    pub async fn revoke_external_account_certificates(
        &mut self,
        kid: &str,
        reason: i64,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        self.revoke_certificates_where(
            "account_id IN (SELECT id FROM accounts WHERE external_kid = $1)",
            kid,
            reason,
            now_ms,
        )
        .await
    }

    async fn revoke_certificates_where(
        &mut self,
        cond: &'static str,
        value: &str,
        reason: i64,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE certificates SET revoked_ms = $2, revoked_reason = $3 WHERE {cond} AND revoked_ms IS NULL AND not_after_ms > $2"
        ));
        let n = on_tx!(self, tx => {
            sqlx::query(sql)
                .bind(value)
                .bind(now_ms)
                .bind(reason)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        if n > 0 {
            self.bump_revocation_generation().await?;
        }
        Ok(n)
    }

    /// The standing of the order's ACME account and of its external account, read in the
    /// issuance transaction so that a certificate is never stored for an account that the
    /// operator closed meanwhile. On PostgreSQL the account's row is locked (`FOR SHARE`)
    /// by a statement of its own, and the external account is read by the next statement:
    /// an operator's cascade ([`Tx::revoke_account`], [`Tx::touch_bound_accounts`]) either
    /// waits for this transaction, and then revokes its certificate too, or commits first,
    /// and then this read sees the closed status. `None` when the order does not exist.
    pub async fn issuance_standing(
        &mut self,
        order_id: &str,
    ) -> Result<Option<IssuanceStanding>, StoreError> {
        const ACCOUNT: &str = "SELECT a.status, a.external_kid FROM orders o JOIN accounts a ON a.id = o.account_id WHERE o.id = $1";
        const LOCKED: &str = "SELECT a.status, a.external_kid FROM orders o JOIN accounts a ON a.id = o.account_id WHERE o.id = $1 FOR SHARE OF a";
        const EXTERNAL: &str = "SELECT status, expires_ms FROM external_accounts WHERE kid = $1";
        let account: Option<(String, Option<String>)> = if let Some(c) = self.direct() {
            crate::direct::row(c, ACCOUNT, &[&order_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        } else if let Some(c) = self.pg() {
            sqlx::query_as(LOCKED)
                .bind(order_id)
                .fetch_optional(&mut *c)
                .await?
        } else {
            on_tx!(self, tx => {
                sqlx::query_as(ACCOUNT).bind(order_id).fetch_optional(&mut *tx).await?
            })
        };
        let Some((status, kid)) = account else {
            return Ok(None);
        };
        let account_status = cobble_core::account::AccountStatus::parse(&status)
            .ok_or_else(|| corrupt("account status", &status))?;
        let Some(kid) = kid else {
            return Ok(Some(IssuanceStanding {
                account_status,
                external: None,
            }));
        };
        let ea: Option<(String, Option<i64>)> = if let Some(c) = self.direct() {
            crate::direct::row(c, EXTERNAL, &[&kid], |r| Ok((r.get(0)?, r.get(1)?)))?
        } else {
            on_tx!(self, tx => {
                sqlx::query_as(EXTERNAL).bind(&kid).fetch_optional(&mut *tx).await?
            })
        };
        let external = match ea {
            Some((st, expires_ms)) => Some(ExternalStanding {
                status: ExternalAccountStatus::parse(&st)
                    .ok_or_else(|| corrupt("external account status", &st))?,
                expires_ms,
                kid,
            }),
            None => Some(ExternalStanding {
                kid,
                status: ExternalAccountStatus::Deactivated,
                expires_ms: None,
            }),
        };
        Ok(Some(IssuanceStanding {
            account_status,
            external,
        }))
    }

    /// Touches every ACME account bound to external account `kid`, first in an operator's
    /// change of that external account's status: on PostgreSQL this waits for issuance
    /// transactions that hold those accounts' rows ([`Tx::issuance_standing`]), so that the
    /// cascade that follows sees their certificates, and makes later ones wait for it.
    pub async fn touch_bound_accounts(
        &mut self,
        kid: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        const SQL: &str = "UPDATE accounts SET updated_ms = $2 WHERE external_kid = $1";
        Ok(on_tx!(self, tx => {
            sqlx::query(SQL).bind(kid).bind(now_ms).execute(&mut *tx).await?.rows_affected()
        }))
    }

    /// Takes one credit from the metered external account of the order's ACME account, in
    /// this transaction (the one that stores the certificate). The conditional update
    /// re-reads the balance under the row lock, so concurrent issuances on any number of
    /// instances never take it below zero.
    pub async fn debit_credit(&mut self, order_id: &str) -> Result<Debit, StoreError> {
        const METER: &str = "SELECT e.kid, e.credits FROM orders o JOIN accounts a ON a.id = o.account_id \
             JOIN external_accounts e ON e.kid = a.external_kid WHERE o.id = $1";
        const DEBIT: &str = "UPDATE external_accounts SET credits = credits - 1 WHERE kid = $1 AND credits > 0 RETURNING credits";
        if let Some(c) = self.direct() {
            let meter = crate::direct::row(c, METER, &[&order_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
            })?;
            let Some((kid, Some(_))) = meter else {
                return Ok(Debit::Unmetered);
            };
            return Ok(
                match crate::direct::row(c, DEBIT, &[&kid], |r| r.get::<_, i64>(0))? {
                    Some(n) => Debit::Debited(n),
                    None => Debit::OutOfCredit,
                },
            );
        }
        if let Some(c) = self.pg() {
            // The meter's read and the debit in one round trip. The debit re-checks the
            // balance under the row lock, as the two statements below do.
            const PG: &str = "WITH m AS (SELECT e.kid, e.credits FROM orders o JOIN accounts a ON a.id = o.account_id \
                 JOIN external_accounts e ON e.kid = a.external_kid WHERE o.id = $1), \
                 d AS (UPDATE external_accounts SET credits = credits - 1 \
                     WHERE kid IN (SELECT kid FROM m WHERE credits IS NOT NULL) AND credits > 0 RETURNING credits) \
                 SELECT (SELECT credits FROM m) AS metered, (SELECT credits FROM d) AS left_after";
            let row = sqlx::query(PG).bind(order_id).fetch_one(&mut *c).await?;
            let metered: Option<i64> = row.try_get("metered")?;
            let left: Option<i64> = row.try_get("left_after")?;
            return Ok(match (metered, left) {
                (None, _) => Debit::Unmetered,
                (Some(_), Some(n)) => Debit::Debited(n),
                (Some(_), None) => Debit::OutOfCredit,
            });
        }
        on_tx!(self, tx => {
            let row = sqlx::query(METER)
            .bind(order_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { return Ok(Debit::Unmetered) };
            let kid: String = row.try_get("kid")?;
            let credits: Option<i64> = row.try_get("credits")?;
            if credits.is_none() {
                return Ok(Debit::Unmetered);
            }
            let left: Option<i64> = sqlx::query_scalar(DEBIT)
            .bind(&kid)
            .fetch_optional(&mut *tx)
            .await?;
            Ok(match left {
                Some(n) => Debit::Debited(n),
                None => Debit::OutOfCredit,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        assert_ne!(u, uuid_v4());
        assert_eq!(new_hmac_key().len(), 43);
    }

    #[test]
    fn candidates_walk_up_the_tree() {
        assert_eq!(
            candidate_entries("A.b.Example.com"),
            vec![
                "a.b.example.com",
                "*.a.b.example.com",
                "*.b.example.com",
                "*.example.com",
                "*.com"
            ]
        );
        assert_eq!(
            candidate_entries("*.example.com"),
            vec!["*.example.com", "*.com"]
        );
    }
}
