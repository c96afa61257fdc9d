//! `cobble admin`: the operator's commands over the admin API (HTTPS on the management
//! listener, with the admin token). `--admin-url`, `--token` and the trust root default
//! from the data directory, so on the machine that runs `cobble serve` no flag is needed.
//! Output is a table for people, or the API's JSON with `--json`.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;

/// Options of `cobble admin`.
#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Management listener URL [default: the one in <data-dir>/admin-url, written by
    /// `cobble serve`, else https://127.0.0.1:15000].
    #[arg(long, env = "COBBLE_ADMIN_URL", global = true)]
    admin_url: Option<String>,
    /// Admin token [default: the one in <data-dir>/admin-token].
    #[arg(
        long,
        env = "COBBLE_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    token: Option<String>,
    /// The server's data directory (token and HTTPS trust root) [default: ./cobble-data].
    #[arg(long, env = "COBBLE_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Trust root of the management listener [default: <data-dir>/tls/ca.pem].
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// External Account Binding keys.
    Eab {
        #[command(subcommand)]
        command: EabCommand,
    },
    /// External accounts (the operator's record of a customer).
    #[command(name = "external-accounts")]
    ExternalAccounts {
        #[command(subcommand)]
        command: EaCommand,
    },
    /// Organizations and their documents.
    Organizations {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// ACME accounts.
    Accounts {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Orders.
    Orders {
        #[command(subcommand)]
        command: ListOnly,
    },
    /// Certificates.
    Certificates {
        #[command(subcommand)]
        command: CertCommand,
    },
    /// The audit log, newest first.
    Audit(ListArgs),
    /// Rate limits: usage against every counting limit, and overrides.
    Limits {
        #[command(subcommand)]
        command: LimitsCommand,
    },
}

#[derive(Subcommand, Debug)]
enum LimitsCommand {
    /// Usage against every counting limit (overrides applied) and when each window frees a
    /// slot, for one account or one registered domain.
    Show(Whom),
    /// List the overrides: those made with `set` and those in the configuration.
    Overrides,
    /// Override a counting limit for one account, external account or registered domain.
    Set {
        #[command(flatten)]
        whom: Whom,
        /// certificates-per-domain, duplicate-certificates, failed-validations or
        /// pending-authorizations.
        #[arg(long)]
        limit: String,
        /// Events allowed per window [default: the limit's].
        #[arg(long)]
        count: Option<u32>,
        /// The window in seconds [default: the limit's].
        #[arg(long)]
        window: Option<u64>,
        /// Exempt the subject from the limit instead.
        #[arg(long)]
        off: bool,
        /// Why (kept with the override).
        #[arg(long)]
        comment: Option<String>,
    },
    /// Remove an override made with `set`.
    Unset {
        #[command(flatten)]
        whom: Whom,
        #[arg(long)]
        limit: String,
    },
}

/// Whose limits: exactly one of these.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct Whom {
    /// An ACME account id.
    #[arg(long, allow_hyphen_values = true)]
    account: Option<String>,
    /// An external account (EAB kid); not for `show`.
    #[arg(long = "external-account", allow_hyphen_values = true)]
    external_account: Option<String>,
    /// A registered domain (a longer name counts as its registered domain).
    #[arg(long)]
    domain: Option<String>,
}

impl Whom {
    fn scope_subject(&self) -> (&'static str, String) {
        match (&self.account, &self.external_account, &self.domain) {
            (Some(a), _, _) => ("account", a.clone()),
            (_, Some(k), _) => ("external-account", k.clone()),
            (_, _, Some(d)) => ("domain", d.clone()),
            // clap's group makes one of them required.
            _ => ("account", String::new()),
        }
    }
}

#[derive(Subcommand, Debug)]
enum EabCommand {
    /// Create an external account and print its kid and HMAC key (shown only this once).
    Create(EaFields),
}

#[derive(Args, Debug, Default)]
struct EaFields {
    /// Organization (id or name; a new name creates it).
    #[arg(long, allow_hyphen_values = true)]
    org: Option<String>,
    /// Domain-list entry: a name, or *.name for its whole subtree (repeatable).
    #[arg(long = "domain")]
    domains: Vec<String>,
    /// Certificates it may have issued (unlimited when not given).
    #[arg(long)]
    credits: Option<i64>,
    /// any, wildcard or non-wildcard.
    #[arg(long)]
    profile_kind: Option<String>,
    /// End date (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    expires: Option<String>,
    /// Contact email (repeatable).
    #[arg(long = "contact")]
    contacts: Vec<String>,
    /// Initial status (pending or valid) [default: valid].
    #[arg(long)]
    status: Option<String>,
}

#[derive(Subcommand, Debug)]
enum EaCommand {
    /// List external accounts.
    List(ListArgs),
    /// Show one.
    Show {
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// Change one: status, domains, credits, profile kind, expiry, organization.
    Update {
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// New status (pending, valid, suspended, expired, revoked, deactivated).
        #[arg(long)]
        status: Option<String>,
        /// Add a domain-list entry (repeatable).
        #[arg(long = "add-domain")]
        add_domains: Vec<String>,
        /// Add an entry kept on record but not authorized (repeatable).
        #[arg(long = "add-unauthorized-domain")]
        add_unauthorized: Vec<String>,
        /// Remove a domain-list entry (repeatable).
        #[arg(long = "remove-domain")]
        remove_domains: Vec<String>,
        /// Set the credit balance.
        #[arg(long)]
        credits: Option<i64>,
        /// Add (or, negative, take) credits.
        #[arg(long, allow_hyphen_values = true)]
        add_credits: Option<i64>,
        /// any, wildcard or non-wildcard.
        #[arg(long)]
        profile_kind: Option<String>,
        /// End date (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        expires: Option<String>,
        /// Organization id or name.
        #[arg(long, allow_hyphen_values = true)]
        org: Option<String>,
        /// Reason for the certificates a revocation or deactivation revokes.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum OrgCommand {
    /// Create an organization.
    Create {
        name: String,
        #[arg(long)]
        status: Option<String>,
    },
    /// List organizations.
    List(ListArgs),
    /// Show one, with its documents.
    Show {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Set its status (valid, pending, suspended).
    Update {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long)]
        status: String,
    },
    /// Record a document: registration-form, organization-proof or manager-mandate.
    AddDocument {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long)]
        kind: String,
        /// End of validity (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        valid_until: String,
        /// The file to store with it.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum AccountCommand {
    /// List ACME accounts (--status valid, deactivated, revoked, pending or suspended).
    List(ListArgs),
    /// Show one.
    Show {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Approve a pending account.
    Approve {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Suspend an account.
    Suspend {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Reactivate a suspended account.
    Reactivate {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Revoke an account and all its unexpired certificates.
    Revoke {
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// RFC 5280 reason [default: cessationOfOperation].
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ListOnly {
    /// List them.
    List(ListArgs),
}

#[derive(Subcommand, Debug)]
enum CertCommand {
    /// List certificates.
    List(ListArgs),
    /// Show one by serial.
    Show {
        #[arg(allow_hyphen_values = true)]
        serial: String,
    },
    /// Revoke one by serial.
    Revoke {
        #[arg(allow_hyphen_values = true)]
        serial: String,
        /// RFC 5280 reason (number or name, e.g. keyCompromise) [default: unspecified].
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Args, Debug, Default)]
struct ListArgs {
    #[arg(long)]
    status: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    account: Option<String>,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    serial: Option<String>,
    #[arg(long)]
    organization: Option<String>,
    #[arg(long = "external-account", allow_hyphen_values = true)]
    external_account: Option<String>,
    #[arg(long)]
    since: Option<String>,
    #[arg(long)]
    until: Option<String>,
    #[arg(long)]
    limit: Option<usize>,
    /// Cursor from the previous page.
    #[arg(long, allow_hyphen_values = true)]
    after: Option<String>,
}

impl ListArgs {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        let mut add = |k: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        };
        add("status", &self.status);
        add("account", &self.account);
        add("name", &self.name);
        add("serial", &self.serial);
        add("organization", &self.organization);
        add("external_account", &self.external_account);
        add("since", &self.since);
        add("until", &self.until);
        add("after", &self.after);
        if let Some(l) = self.limit {
            q.push(("limit", l.to_string()));
        }
        q
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let qs: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", percent(v)))
            .collect();
        let url = if qs.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{}", self.base, qs.join("&"))
        };
        let mut req = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("reaching the admin API at {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let detail = v["detail"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or(v.to_string());
            bail!("{status}: {detail}");
        }
        Ok(v)
    }
}

/// Where `cobble serve` listens for management by default.
const DEFAULT_ADMIN_URL: &str = "https://127.0.0.1:15000";

/// The management URL `cobble serve` recorded in `<data-dir>/admin-url` at its start, if
/// the file exists (it is absent when the management listener is off).
fn recorded_admin_url(data_dir: &std::path::Path) -> anyhow::Result<Option<String>> {
    let path = data_dir.join("admin-url");
    match std::fs::read_to_string(&path) {
        Ok(u) if !u.trim().is_empty() => Ok(Some(u.trim().to_owned())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Runs `cobble admin ...`; returns the process exit code.
pub async fn run(a: AdminArgs) -> anyhow::Result<()> {
    let data_dir = a
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("cobble-data"));
    let token = match &a.token {
        Some(t) => t.clone(),
        None => std::fs::read_to_string(data_dir.join("admin-token"))
            .with_context(|| {
                format!(
                    "reading the admin token from {} (give --token or --data-dir)",
                    data_dir.join("admin-token").display()
                )
            })?
            .trim()
            .to_owned(),
    };
    let base = match &a.admin_url {
        Some(u) => u.clone(),
        None => recorded_admin_url(&data_dir)?.unwrap_or_else(|| DEFAULT_ADMIN_URL.into()),
    }
    .trim_end_matches('/')
    .to_owned();
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30));
    let ca =
        a.ca.clone()
            .unwrap_or_else(|| data_dir.join("tls").join("ca.pem"));
    if base.starts_with("https://") {
        let pem = std::fs::read(&ca).with_context(|| {
            format!(
                "reading the trust root {} (give --ca or --data-dir)",
                ca.display()
            )
        })?;
        for c in reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("parsing {}", ca.display()))?
        {
            b = b.add_root_certificate(c);
        }
    }
    let api = Api {
        http: b.build()?,
        base,
        token,
    };
    use reqwest::Method as M;
    let (v, table): (Value, Table) = match a.command {
        AdminCommand::Eab {
            command: EabCommand::Create(f),
        } => {
            let body = json!({
                "organization": f.org,
                "domains": f.domains,
                "credits": f.credits,
                "profile_kind": f.profile_kind,
                "expires": f.expires,
                "contact": f.contacts,
                "status": f.status,
            });
            let v = api
                .call(
                    M::POST,
                    "/admin/external-accounts",
                    &[],
                    Some(strip_nulls(body)),
                )
                .await?;
            (v, Table::Created)
        }
        AdminCommand::ExternalAccounts { command } => match command {
            EaCommand::List(l) => (
                api.call(M::GET, "/admin/external-accounts", &l.query(), None)
                    .await?,
                Table::ExternalAccounts,
            ),
            EaCommand::Show { kid } => (
                api.call(
                    M::GET,
                    &format!("/admin/external-accounts/{kid}"),
                    &[],
                    None,
                )
                .await?,
                Table::One,
            ),
            EaCommand::Update {
                kid,
                status,
                add_domains,
                add_unauthorized,
                remove_domains,
                credits,
                add_credits,
                profile_kind,
                expires,
                org,
                reason,
            } => {
                let mut adds: Vec<Value> = add_domains.iter().map(|d| json!(d)).collect();
                adds.extend(
                    add_unauthorized
                        .iter()
                        .map(|d| json!({"name": d, "authorized": false})),
                );
                let body = json!({
                    "status": status,
                    "add_domains": (!adds.is_empty()).then_some(adds),
                    "remove_domains": (!remove_domains.is_empty()).then_some(remove_domains),
                    "credits": credits,
                    "add_credits": add_credits,
                    "profile_kind": profile_kind,
                    "expires": expires,
                    "organization": org,
                    "reason": reason,
                });
                (
                    api.call(
                        M::PATCH,
                        &format!("/admin/external-accounts/{kid}"),
                        &[],
                        Some(strip_nulls(body)),
                    )
                    .await?,
                    Table::One,
                )
            }
        },
        AdminCommand::Organizations { command } => match command {
            OrgCommand::Create { name, status } => (
                api.call(
                    M::POST,
                    "/admin/organizations",
                    &[],
                    Some(strip_nulls(json!({"name": name, "status": status}))),
                )
                .await?,
                Table::One,
            ),
            OrgCommand::List(l) => (
                api.call(M::GET, "/admin/organizations", &l.query(), None)
                    .await?,
                Table::Organizations,
            ),
            OrgCommand::Show { id } => (
                api.call(M::GET, &format!("/admin/organizations/{id}"), &[], None)
                    .await?,
                Table::One,
            ),
            OrgCommand::Update { id, status } => (
                api.call(
                    M::PATCH,
                    &format!("/admin/organizations/{id}"),
                    &[],
                    Some(json!({"status": status})),
                )
                .await?,
                Table::One,
            ),
            OrgCommand::AddDocument {
                id,
                kind,
                valid_until,
                file,
            } => {
                let mut body = json!({"kind": kind, "valid_until": valid_until});
                if let Some(f) = file {
                    use base64::Engine;
                    let bytes =
                        std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
                    body["content_base64"] = base64::engine::general_purpose::STANDARD
                        .encode(bytes)
                        .into();
                    body["file_name"] = f
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .into();
                }
                (
                    api.call(
                        M::POST,
                        &format!("/admin/organizations/{id}/documents"),
                        &[],
                        Some(body),
                    )
                    .await?,
                    Table::One,
                )
            }
        },
        AdminCommand::Accounts { command } => match command {
            AccountCommand::List(l) => (
                api.call(M::GET, "/admin/accounts", &l.query(), None)
                    .await?,
                Table::Accounts,
            ),
            AccountCommand::Show { id } => (
                api.call(M::GET, &format!("/admin/accounts/{id}"), &[], None)
                    .await?,
                Table::One,
            ),
            AccountCommand::Approve { id } => (
                api.call(M::POST, &format!("/admin/accounts/{id}/approve"), &[], None)
                    .await?,
                Table::One,
            ),
            AccountCommand::Suspend { id } => (
                api.call(M::POST, &format!("/admin/accounts/{id}/suspend"), &[], None)
                    .await?,
                Table::One,
            ),
            AccountCommand::Reactivate { id } => (
                api.call(
                    M::POST,
                    &format!("/admin/accounts/{id}/reactivate"),
                    &[],
                    None,
                )
                .await?,
                Table::One,
            ),
            AccountCommand::Revoke { id, reason } => (
                api.call(
                    M::POST,
                    &format!("/admin/accounts/{id}/revoke"),
                    &[],
                    Some(strip_nulls(json!({"reason": reason}))),
                )
                .await?,
                Table::One,
            ),
        },
        AdminCommand::Orders {
            command: ListOnly::List(l),
        } => (
            api.call(M::GET, "/admin/orders", &l.query(), None).await?,
            Table::Orders,
        ),
        AdminCommand::Certificates { command } => match command {
            CertCommand::List(l) => (
                api.call(M::GET, "/admin/certificates", &l.query(), None)
                    .await?,
                Table::Certificates,
            ),
            CertCommand::Show { serial } => (
                api.call(M::GET, &format!("/admin/certificates/{serial}"), &[], None)
                    .await?,
                Table::One,
            ),
            CertCommand::Revoke { serial, reason } => (
                api.call(
                    M::POST,
                    &format!("/admin/certificates/{serial}/revoke"),
                    &[],
                    Some(strip_nulls(json!({"reason": reason}))),
                )
                .await?,
                Table::One,
            ),
        },
        AdminCommand::Limits { command } => match command {
            LimitsCommand::Show(w) => {
                let (scope, subject) = w.scope_subject();
                if scope == "external-account" {
                    bail!("`limits show` takes --account or --domain");
                }
                (
                    api.call(M::GET, "/admin/limits", &[(scope, subject)], None)
                        .await?,
                    Table::Usage,
                )
            }
            LimitsCommand::Overrides => (
                api.call(M::GET, "/admin/limit-overrides", &[], None)
                    .await?,
                Table::Overrides,
            ),
            LimitsCommand::Set {
                whom,
                limit,
                count,
                window,
                off,
                comment,
            } => {
                let (scope, subject) = whom.scope_subject();
                let body = json!({
                    "scope": scope,
                    "subject": subject,
                    "limit": limit,
                    "count": count,
                    "window_secs": window,
                    "enabled": !off,
                    "comment": comment,
                });
                (
                    api.call(
                        M::PUT,
                        "/admin/limit-overrides",
                        &[],
                        Some(strip_nulls(body)),
                    )
                    .await?,
                    Table::One,
                )
            }
            LimitsCommand::Unset { whom, limit } => {
                let (scope, subject) = whom.scope_subject();
                (
                    api.call(
                        M::DELETE,
                        &format!(
                            "/admin/limit-overrides/{scope}/{}/{}",
                            percent(&subject),
                            percent(&limit)
                        ),
                        &[],
                        None,
                    )
                    .await?,
                    Table::One,
                )
            }
        },
        AdminCommand::Audit(l) => {
            let mut q = l.query();
            for (k, _) in q.iter_mut() {
                if *k == "name" {
                    *k = "target";
                }
            }
            (
                api.call(M::GET, "/admin/audit", &q, None).await?,
                Table::Audit,
            )
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render(&v, table));
    }
    Ok(())
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
fn percent(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Drops null members, so that options not given leave fields as they are.
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

#[derive(Debug, Clone, Copy)]
enum Table {
    Usage,
    Overrides,
    Created,
    One,
    ExternalAccounts,
    Organizations,
    Accounts,
    Orders,
    Certificates,
    Audit,
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        Value::Object(o) if o.contains_key("name") => cell(&o["name"]),
        other => other.to_string(),
    }
}

fn columns(rows: &[Value], cols: &[(&str, &str)]) -> String {
    let mut grid: Vec<Vec<String>> = vec![cols.iter().map(|(h, _)| h.to_uppercase()).collect()];
    for r in rows {
        grid.push(
            cols.iter()
                .map(|(_, k)| {
                    let c = cell(&r[*k]);
                    if c.chars().count() > 60 {
                        format!("{}...", c.chars().take(57).collect::<String>())
                    } else {
                        c
                    }
                })
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..cols.len())
        .map(|i| {
            grid.iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in grid {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn render(v: &Value, t: Table) -> String {
    let list = |cols: &[(&str, &str)]| {
        let rows = v["items"].as_array().cloned().unwrap_or_default();
        let mut s = columns(&rows, cols);
        if let Some(n) = v["next"].as_str() {
            s.push_str(&format!("(more: --after {n})\n"));
        }
        s
    };
    match t {
        Table::Created => {
            let mut s = String::new();
            s.push_str(&format!("kid:      {}\n", cell(&v["kid"])));
            s.push_str(&format!("hmac_key: {}\n", cell(&v["hmac_key"])));
            s.push_str(&format!("status:   {}\n", cell(&v["status"])));
            s.push_str(&format!("domains:  {}\n", cell(&v["domains"])));
            s.push_str(&format!("credits:  {}\n", cell(&v["credits"])));
            s.push_str("\nThe HMAC key is shown only now. For the customer:\n");
            s.push_str(&format!("  {}\n", cell(&v["certbot"])));
            s
        }
        Table::Usage => {
            let mut s = String::new();
            for k in ["account", "external_account", "domain"] {
                if let Some(x) = v[k].as_str() {
                    s.push_str(&format!("{k}: {x}\n"));
                }
            }
            if v["rate_limits"] == false {
                s.push_str("(this server runs with --no-rate-limits: nothing is enforced)\n");
            }
            let rows: Vec<Value> = v["limits"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut r| {
                    r["max"] = if r["enabled"] == false {
                        "off".into()
                    } else {
                        r["max"].clone()
                    };
                    r["override"] = match r["override"].as_object() {
                        Some(o) => format!("{} {}", cell(&o["scope"]), cell(&o["subject"])).into(),
                        None => Value::Null,
                    };
                    r
                })
                .collect();
            s + &columns(
                &rows,
                &[
                    ("limit", "limit"),
                    ("key", "key"),
                    ("count", "count"),
                    ("max", "max"),
                    ("window s", "window_secs"),
                    ("frees at", "frees_at"),
                    ("override", "override"),
                ],
            )
        }
        Table::Overrides => list(&[
            ("scope", "scope"),
            ("subject", "subject"),
            ("limit", "limit"),
            ("count", "count"),
            ("window s", "window_secs"),
            ("enabled", "enabled"),
            ("source", "source"),
            ("comment", "comment"),
        ]),
        Table::One => match v.as_object() {
            Some(o) => o
                .iter()
                .map(|(k, v)| format!("{k:<22}{}\n", cell(v)))
                .collect(),
            None => format!("{v}\n"),
        },
        Table::ExternalAccounts => list(&[
            ("kid", "kid"),
            ("status", "status"),
            ("organization", "organization"),
            ("credits", "credits"),
            ("profile", "profile_kind"),
            ("bindings", "bindings"),
            ("domains", "domains"),
        ]),
        Table::Organizations => list(&[
            ("id", "id"),
            ("name", "name"),
            ("status", "status"),
            ("issuing", "issuing"),
            ("needs", "needs"),
        ]),
        Table::Accounts => list(&[
            ("id", "id"),
            ("status", "status"),
            ("approval", "approval"),
            ("external account", "external_account"),
            ("created", "created"),
        ]),
        Table::Orders => list(&[
            ("id", "id"),
            ("account", "account"),
            ("status", "status"),
            ("identifiers", "identifiers"),
            ("created", "created"),
        ]),
        Table::Certificates => list(&[
            ("serial", "serial"),
            ("status", "status"),
            ("account", "account"),
            ("identifiers", "identifiers"),
            ("not after", "not_after"),
        ]),
        Table::Audit => list(&[
            ("id", "id"),
            ("at", "at"),
            ("actor", "actor"),
            ("action", "action"),
            ("target", "target"),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_truncate() {
        let v = json!({"items": [{"kid": "k1", "status": "valid", "domains": [{"name": "a.test", "authorized": true}]}], "next": "5.x"});
        let out = render(&v, Table::ExternalAccounts);
        assert!(out.starts_with("KID"), "{out}");
        assert!(out.contains("a.test"), "{out}");
        assert!(out.contains("--after 5.x"), "{out}");
        assert_eq!(strip_nulls(json!({"a": null, "b": 1})), json!({"b": 1}));
        assert_eq!(percent("*.a b&c"), "%2A.a%20b%26c");
    }

    /// Account ids, kids and cursors are base64url and may begin with `-`: the commands
    /// take them as values, not as unknown flags, while `--help` and real flags still work.
    #[test]
    fn ids_may_begin_with_a_hyphen() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            admin: AdminArgs,
        }
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("admin").chain(args.iter().copied()))
        };
        let c = parse(&["accounts", "approve", "-1kDJLBDPKr-LkopE1cYcA"]).unwrap();
        assert!(matches!(
            c.admin.command,
            AdminCommand::Accounts { command: AccountCommand::Approve { ref id } } if id == "-1kDJLBDPKr-LkopE1cYcA"
        ));
        let c = parse(&[
            "--json",
            "certificates",
            "list",
            "--account",
            "-x",
            "--after",
            "-3.y",
        ])
        .unwrap();
        match c.admin.command {
            AdminCommand::Certificates {
                command: CertCommand::List(l),
            } => {
                assert_eq!(l.account.as_deref(), Some("-x"));
                assert_eq!(l.after.as_deref(), Some("-3.y"));
            }
            other => panic!("{other:?}"),
        }
        assert!(c.admin.json);
        let help = parse(&["accounts", "approve", "--help"]).err().unwrap();
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(
            parse(&["accounts", "approve"]).is_err(),
            "the id is required"
        );
    }
}
