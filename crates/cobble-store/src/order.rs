//! Orders, authorizations and challenges (RFC 8555 §7.1.3-§7.1.5, §7.4, §7.5).

use crate::nonce::REDEEM_CTE;
use crate::{Db, Store, StoreError, Tx, on_tx, random_id, read_pool};
use cobble_core::challenge::ChallengeType;
use cobble_core::identifier::Identifier;
use cobble_core::nonce::OpenedNonce;
use cobble_core::status::{AuthzStatus, ChallengeStatus, OrderStatus};
use sqlx::Row;

/// A stored order. Its `status` is derived: see [`Order::status_at`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Random id.
    pub id: String,
    /// Owner.
    pub account_id: String,
    /// The status finalization recorded (`pending` until then).
    pub stored_status: OrderStatus,
    /// Identifiers as ordered.
    pub identifiers: Vec<Identifier>,
    /// Requested certificate notBefore, Unix ms.
    pub not_before_ms: Option<i64>,
    /// Requested certificate notAfter, Unix ms.
    pub not_after_ms: Option<i64>,
    /// Order expiry, Unix ms.
    pub expires_ms: i64,
    /// Problem JSON when the order failed.
    pub error: Option<String>,
    /// Certificate profile name.
    pub profile: Option<String>,
    /// Creation time.
    pub created_ms: i64,
    /// The issued certificate's id, once valid.
    pub certificate_id: Option<String>,
    /// ARI certID of the certificate this order replaces (RFC 9773 §5).
    pub replaces: Option<String>,
    /// The order's authorizations, in identifier order: (id, status, expires_ms).
    pub authzs: Vec<(String, AuthzStatus, i64)>,
}

impl Order {
    /// The order's status at `now_ms` (RFC 8555 §7.1.6).
    pub fn status_at(&self, now_ms: i64) -> OrderStatus {
        let a: Vec<AuthzStatus> = self
            .authzs
            .iter()
            .map(|(_, s, exp)| s.at(*exp, now_ms))
            .collect();
        OrderStatus::derive(self.stored_status, &a, self.expires_ms, now_ms)
    }
}

/// A stored authorization with its challenges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authz {
    /// Random id.
    pub id: String,
    /// Owner.
    pub account_id: String,
    /// The identifier validated (a wildcard's base name).
    pub identifier: Identifier,
    /// For a wildcard order (RFC 8555 §7.1.4 `wildcard`).
    pub wildcard: bool,
    /// Created through newAuthz (pre-authorization, §7.4.1).
    pub preauth: bool,
    /// Stored status; see [`AuthzStatus::at`] for expiry.
    pub status: AuthzStatus,
    /// Expiry, Unix ms.
    pub expires_ms: i64,
    /// Challenges offered.
    pub challenges: Vec<Challenge>,
}

/// A stored challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Random id.
    pub id: String,
    /// Its authorization.
    pub authz_id: String,
    /// Validation method.
    pub kind: ChallengeType,
    /// Random token (RFC 8555 §8.1: 128 bits, base64url).
    pub token: String,
    /// Status.
    pub status: ChallengeStatus,
    /// When it became valid, Unix ms.
    pub validated_ms: Option<i64>,
    /// Problem JSON when invalid.
    pub error: Option<String>,
    /// Validation record JSON.
    pub validation_record: Option<String>,
}

/// How newOrder gets each authorization.
#[derive(Debug, Clone)]
pub enum AuthzPlan {
    /// Reuse this valid (or pending) authorization of the same account.
    Reuse(String),
    /// Make a new pending authorization.
    New {
        /// Base identifier.
        identifier: Identifier,
        /// Wildcard order.
        wildcard: bool,
        /// Challenge types to offer.
        challenges: Vec<ChallengeType>,
        /// Expiry.
        expires_ms: i64,
    },
}

/// What newOrder stores.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// Owner.
    pub account_id: String,
    /// Checked identifiers.
    pub identifiers: Vec<Identifier>,
    /// Requested notBefore.
    pub not_before_ms: Option<i64>,
    /// Requested notAfter.
    pub not_after_ms: Option<i64>,
    /// Expiry.
    pub expires_ms: i64,
    /// Profile.
    pub profile: Option<String>,
    /// One plan per identifier.
    pub authzs: Vec<AuthzPlan>,
    /// ARI certID of a certificate this order replaces; it must not be replaced already.
    pub replaces: Option<String>,
    /// Now.
    pub now_ms: i64,
}

macro_rules! row_bounds {
    ($($item:item)*) => {$(
        #[allow(clippy::extra_unused_type_parameters)]
        $item
    )*};
}

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {v:?}"))
}

row_bounds! {
fn order_from_row<R: Row>(row: &R) -> Result<Order, StoreError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    let status: String = row.try_get("status")?;
    let ids: String = row.try_get("identifiers")?;
    let parsed: Vec<(String, String)> = serde_json::from_str(&ids).map_err(|_| corrupt("order identifiers", &ids))?;
    let identifiers = parsed
        .iter()
        .map(|(k, v)| Identifier::from_wire(k, v).map_err(|_| corrupt("identifier", v)))
        .collect::<Result<_, _>>()?;
    Ok(Order {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        stored_status: OrderStatus::parse(&status).ok_or_else(|| corrupt("order status", &status))?,
        identifiers,
        not_before_ms: row.try_get("not_before_ms")?,
        not_after_ms: row.try_get("not_after_ms")?,
        expires_ms: row.try_get("expires_ms")?,
        error: row.try_get("error")?,
        profile: row.try_get("profile")?,
        created_ms: row.try_get("created_ms")?,
        certificate_id: row.try_get("certificate_id")?,
        replaces: row.try_get("replaces")?,
        authzs: Vec::new(),
    })
}

fn authz_from_row<R: Row>(row: &R) -> Result<Authz, StoreError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    let status: String = row.try_get("status")?;
    let kind: String = row.try_get("identifier_type")?;
    let value: String = row.try_get("identifier_value")?;
    Ok(Authz {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        identifier: Identifier::from_wire(&kind, &value).map_err(|_| corrupt("identifier", &value))?,
        wildcard: row.try_get::<i64, _>("wildcard")? != 0,
        preauth: row.try_get::<i64, _>("preauth")? != 0,
        status: AuthzStatus::parse(&status).ok_or_else(|| corrupt("authz status", &status))?,
        expires_ms: row.try_get("expires_ms")?,
        challenges: Vec::new(),
    })
}

/// A challenge from columns named with `prefix` (`""`, or `"c_"` in a join with its authz).
fn challenge_from_row<R: Row>(row: &R, prefix: &str) -> Result<Challenge, StoreError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    let col = |c: &str| format!("{prefix}{c}");
    let status: String = row.try_get(col("status").as_str())?;
    let kind: String = row.try_get(col("type").as_str())?;
    Ok(Challenge {
        id: row.try_get(col("id").as_str())?,
        authz_id: row.try_get(col("authz_id").as_str())?,
        kind: ChallengeType::parse(&kind).ok_or_else(|| corrupt("challenge type", &kind))?,
        token: row.try_get(col("token").as_str())?,
        status: ChallengeStatus::parse(&status).ok_or_else(|| corrupt("challenge status", &status))?,
        validated_ms: row.try_get(col("validated_ms").as_str())?,
        error: row.try_get(col("error").as_str())?,
        validation_record: row.try_get(col("validation_record").as_str())?,
    })
}
}

pub(crate) const ORDER_COLS: &str = "id, account_id, status, identifiers, not_before_ms, not_after_ms, expires_ms, error, profile, created_ms, certificate_id, replaces";
pub(crate) const AUTHZ_COLS: &str =
    "id, account_id, identifier_type, identifier_value, wildcard, preauth, status, expires_ms";
pub(crate) const CHALL_COLS: &str =
    "id, authz_id, type, token, status, validated_ms, error, validation_record";

fn identifiers_json(ids: &[Identifier]) -> String {
    let pairs: Vec<(&str, String)> = ids.iter().map(|i| (i.kind(), i.value())).collect();
    serde_json::to_string(&pairs).expect("strings serialize")
}

/// Which authorization a read names: its id, or the id of one of its challenges (the
/// challenge route and the validation worker start from a challenge).
#[derive(Debug, Clone, Copy)]
pub(crate) enum AuthzKey<'a> {
    Id(&'a str),
    Challenge(&'a str),
}

impl<'a> AuthzKey<'a> {
    /// The SQL condition on the authorization's id column `column`, with the key's value as
    /// parameter `param`.
    pub(crate) fn condition(self, column: &str, param: &str) -> String {
        match self {
            Self::Id(_) => format!("{column} = {param}"),
            Self::Challenge(_) => {
                format!("{column} = (SELECT authz_id FROM challenges WHERE id = {param})")
            }
        }
    }

    pub(crate) fn value(self) -> &'a str {
        match self {
            Self::Id(v) | Self::Challenge(v) => v,
        }
    }
}

const INSERT_ORDER: &str = "INSERT INTO orders (id, account_id, status, identifiers, not_before_ms, not_after_ms, expires_ms, profile, created_ms, updated_ms, replaces) \
     VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $8, $9)";
const REPLACES: &str =
    "UPDATE certificates SET replaced_by = $2 WHERE ari_id = $1 AND replaced_by IS NULL";
const ORDER_AUTHZ: &str = "INSERT INTO order_authzs (order_id, authz_id, position) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
const INSERT_AUTHZ: &str = "INSERT INTO authzs (id, account_id, identifier_type, identifier_value, wildcard, preauth, status, expires_ms, created_ms, updated_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $8)";
const INSERT_CHALLENGE: &str =
    "INSERT INTO challenges (id, authz_id, type, token, status) VALUES ($1, $2, $3, $4, 'pending')";

/// [`INSERT_CHALLENGE`] for `n` challenges in one statement: `n` rows of four parameters.
fn insert_challenges_sql(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let b = i * 4;
            format!(
                "(${}, ${}, ${}, ${}, 'pending')",
                b + 1,
                b + 2,
                b + 3,
                b + 4
            )
        })
        .collect();
    format!(
        "INSERT INTO challenges (id, authz_id, type, token, status) VALUES {}",
        rows.join(", ")
    )
}

/// [`Tx::create_order`] on the hop-free SQLite writer (direct.rs): the same statements.
fn create_order_direct(
    c: &rusqlite::Connection,
    order_id: &str,
    new: &NewOrder,
) -> Result<(), StoreError> {
    use crate::direct::exec;
    exec(
        c,
        INSERT_ORDER,
        &[
            &order_id,
            &new.account_id,
            &identifiers_json(&new.identifiers),
            &new.not_before_ms,
            &new.not_after_ms,
            &new.expires_ms,
            &new.profile,
            &new.now_ms,
            &new.replaces,
        ],
    )?;
    if let Some(ari) = &new.replaces
        && exec(c, REPLACES, &[ari, &order_id])? == 0
    {
        return Err(StoreError::AlreadyReplaced);
    }
    for (pos, plan) in new.authzs.iter().enumerate() {
        let authz_id = match plan {
            AuthzPlan::Reuse(id) => id.clone(),
            AuthzPlan::New {
                identifier,
                wildcard,
                challenges,
                expires_ms,
            } => {
                let id = random_id();
                exec(
                    c,
                    INSERT_AUTHZ,
                    &[
                        &id,
                        &new.account_id,
                        &identifier.kind(),
                        &identifier.value(),
                        &(*wildcard as i64),
                        &0i64,
                        expires_ms,
                        &new.now_ms,
                    ],
                )?;
                for kind in challenges {
                    exec(
                        c,
                        INSERT_CHALLENGE,
                        &[&random_id(), &id, &kind.as_str(), &random_id()],
                    )?;
                }
                id
            }
        };
        exec(c, ORDER_AUTHZ, &[&order_id, &authz_id, &(pos as i64)])?;
    }
    Ok(())
}

/// Inserts a new authorization and its challenges inside transaction `$tx`.
macro_rules! insert_authz_in {
    ($tx:expr, $id:expr, $account:expr, $identifier:expr, $wildcard:expr, $preauth:expr, $challenges:expr, $expires:expr, $now:expr) => {{
        sqlx::query(INSERT_AUTHZ)
            .bind($id)
            .bind($account)
            .bind($identifier.kind())
            .bind($identifier.value())
            .bind($wildcard as i64)
            .bind($preauth as i64)
            .bind($expires)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        // Every challenge in one statement (one round trip on PostgreSQL).
        let kinds: &[ChallengeType] = &$challenges[..];
        if !kinds.is_empty() {
            let sql = sqlx::AssertSqlSafe(insert_challenges_sql(kinds.len()));
            let mut q = sqlx::query(sql);
            for kind in kinds {
                q = q
                    .bind(random_id())
                    .bind($id)
                    .bind(kind.as_str())
                    .bind(random_id());
            }
            q.execute(&mut *$tx).await?;
        }
    }};
}

impl Store {
    /// A newOrder's whole change, as one transaction: `nonce` redeemed
    /// ([`StoreError::NonceReused`] when it was used) and [`Tx::create_order`]; the new
    /// order's id. On PostgreSQL one statement: the redemption, the replaced certificate's
    /// mark, the order, its new authorizations, their challenges and the order's list are
    /// CTEs of it (one round trip instead of six); elsewhere a hot transaction. After an
    /// error (`AlreadyReplaced`) the nonce is used up on PostgreSQL and not elsewhere: the
    /// caller uses it up, as for any failed request (RFC 8555 §6.5).
    pub async fn create_order_redeeming(
        &self,
        nonce: &OpenedNonce,
        new: NewOrder,
    ) -> Result<String, StoreError> {
        let Db::Pg(_, conns) = &self.db else {
            let mut tx = self.begin_hot_redeeming(nonce).await?;
            let id = tx.create_order(new).await?;
            tx.commit().await?;
            return Ok(id);
        };
        // As INSERT_ORDER, REPLACES, INSERT_AUTHZ, INSERT_CHALLENGE and ORDER_AUTHZ, the rows
        // of the last three as arrays. The order is made only after its nonce was new and
        // the certificate it replaces (if any) was not replaced already.
        const SQL: &str = "WITH n AS (INSERT INTO used_nonces (nonce, expires_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1), \
             r AS (UPDATE certificates SET replaced_by = $3 WHERE ari_id = $11 AND replaced_by IS NULL AND EXISTS (SELECT 1 FROM n) RETURNING 1), \
             o AS (INSERT INTO orders (id, account_id, status, identifiers, not_before_ms, not_after_ms, expires_ms, profile, created_ms, updated_ms, replaces) \
                 SELECT $3, $4, 'pending', $5, $6, $7, $8, $9, $10, $10, $11 \
                 WHERE EXISTS (SELECT 1 FROM n) AND ($11::text IS NULL OR EXISTS (SELECT 1 FROM r)) RETURNING id), \
             a AS (INSERT INTO authzs (id, account_id, identifier_type, identifier_value, wildcard, preauth, status, expires_ms, created_ms, updated_ms) \
                 SELECT t.id, $4, t.kind, t.value, t.wildcard, 0, 'pending', t.expires, $10, $10 \
                 FROM unnest($12::text[], $13::text[], $14::text[], $15::bigint[], $16::bigint[]) AS t(id, kind, value, wildcard, expires) \
                 WHERE EXISTS (SELECT 1 FROM o) RETURNING 1), \
             c AS (INSERT INTO challenges (id, authz_id, type, token, status) \
                 SELECT t.id, t.authz, t.kind, t.token, 'pending' \
                 FROM unnest($17::text[], $18::text[], $19::text[], $20::text[]) AS t(id, authz, kind, token) \
                 WHERE EXISTS (SELECT 1 FROM o) RETURNING 1), \
             oa AS (INSERT INTO order_authzs (order_id, authz_id, position) \
                 SELECT o.id, t.authz, t.pos FROM o, unnest($21::text[], $22::bigint[]) AS t(authz, pos) \
                 ON CONFLICT DO NOTHING RETURNING 1) \
             SELECT (SELECT COUNT(*) FROM n) AS redeemed, (SELECT COUNT(*) FROM o) AS created";
        let order_id = random_id();
        let mut authzs = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::<i64>::new(),
            Vec::new(),
        );
        let mut challenges = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut listed = (Vec::new(), Vec::<i64>::new());
        for (pos, plan) in new.authzs.iter().enumerate() {
            let authz_id = match plan {
                AuthzPlan::Reuse(id) => id.clone(),
                AuthzPlan::New {
                    identifier,
                    wildcard,
                    challenges: kinds,
                    expires_ms,
                } => {
                    let id = random_id();
                    for kind in kinds {
                        challenges.0.push(random_id());
                        challenges.1.push(id.clone());
                        challenges.2.push(kind.as_str());
                        challenges.3.push(random_id());
                    }
                    authzs.0.push(id.clone());
                    authzs.1.push(identifier.kind());
                    authzs.2.push(identifier.value());
                    authzs.3.push(i64::from(*wildcard));
                    authzs.4.push(*expires_ms);
                    id
                }
            };
            listed.0.push(authz_id);
            listed.1.push(pos as i64);
        }
        let created = conns
            .with(async |c| {
                let row = sqlx::query(SQL)
                    .bind(&nonce.value)
                    .bind(nonce.expires_ms)
                    .bind(&order_id)
                    .bind(&new.account_id)
                    .bind(identifiers_json(&new.identifiers))
                    .bind(new.not_before_ms)
                    .bind(new.not_after_ms)
                    .bind(new.expires_ms)
                    .bind(&new.profile)
                    .bind(new.now_ms)
                    .bind(&new.replaces)
                    .bind(&authzs.0)
                    .bind(&authzs.1)
                    .bind(&authzs.2)
                    .bind(&authzs.3)
                    .bind(&authzs.4)
                    .bind(&challenges.0)
                    .bind(&challenges.1)
                    .bind(&challenges.2)
                    .bind(&challenges.3)
                    .bind(&listed.0)
                    .bind(&listed.1)
                    .fetch_one(c)
                    .await?;
                crate::nonce::redeemed(&row)?;
                Ok(row.try_get::<i64, _>("created")? == 1)
            })
            .await?;
        if !created {
            // The nonce was new, so only the replaced certificate can have stopped it.
            return Err(StoreError::AlreadyReplaced);
        }
        Ok(order_id)
    }

    /// The account's most recent authorization for `identifier` that is valid (or, with
    /// `include_pending`, pending) and unexpired at `now_ms`: the candidate for reuse.
    pub async fn reusable_authz(
        &self,
        account_id: &str,
        identifier: &Identifier,
        wildcard: bool,
        include_pending: bool,
        now_ms: i64,
    ) -> Result<Option<Authz>, StoreError> {
        if let Some(r) = self.fast() {
            return r
                .reusable_authz(account_id, identifier, wildcard, include_pending, now_ms)
                .await;
        }
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {AUTHZ_COLS} FROM authzs WHERE account_id = $1 AND identifier_type = $2 AND identifier_value = $3 \
             AND wildcard = $4 AND (status = 'valid' OR (status = 'pending' AND $5 = 1)) AND expires_ms > $6 \
             ORDER BY (status = 'valid') DESC, expires_ms DESC LIMIT 1"
        ));
        read_pool!(&self.db, p => {
            let row = sqlx::query(sql)
                .bind(account_id)
                .bind(identifier.kind())
                .bind(identifier.value())
                .bind(wildcard as i64)
                .bind(include_pending as i64)
                .bind(now_ms)
                .fetch_optional(p)
                .await?;
            row.as_ref().map(authz_from_row).transpose()
        })
    }

    /// An order with its authorizations' statuses.
    pub async fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        self.order_read(id, None).await
    }

    /// [`Store::order`] for a POST-as-GET, with the request's nonce redeemed on the same
    /// trip to the store (RFC 8555 §6.5): on a SQLite file in one hold of the write gate and
    /// one transaction, on PostgreSQL in the same statement. The nonce is used up whether
    /// or not the order exists; [`StoreError::NonceReused`] when it was used before.
    pub async fn order_redeeming(
        &self,
        id: &str,
        nonce: &OpenedNonce,
    ) -> Result<Option<Order>, StoreError> {
        if !self.redeems_in_read() {
            let order = self.order_read(id, None).await?;
            self.redeem_nonce(nonce).await?;
            return Ok(order);
        }
        self.order_read(id, Some(nonce)).await
    }

    async fn order_read(
        &self,
        id: &str,
        redeem: Option<&OpenedNonce>,
    ) -> Result<Option<Order>, StoreError> {
        if let Some(r) = self.fast() {
            return r.order(id, redeem).await;
        }
        // One statement (one round trip): the order on every row, one row per authorization;
        // on PostgreSQL with the nonce's redemption in front of it, which yields one row
        // (its count, the order's columns NULL) even when there is no such order.
        let cols: Vec<String> = ORDER_COLS.split(", ").map(|c| format!("o.{c}")).collect();
        let sql = sqlx::AssertSqlSafe(match redeem {
            None => format!(
                "SELECT {}, a.id AS a_id, a.status AS a_status, a.expires_ms AS a_expires_ms \
                 FROM orders o LEFT JOIN order_authzs oa ON oa.order_id = o.id LEFT JOIN authzs a ON a.id = oa.authz_id \
                 WHERE o.id = $1 ORDER BY oa.position",
                cols.join(", ")
            ),
            Some(_) => format!(
                "{REDEEM_CTE} SELECT (SELECT COUNT(*) FROM n) AS redeemed, {}, a.id AS a_id, a.status AS a_status, \
                 a.expires_ms AS a_expires_ms FROM (SELECT 1) one LEFT JOIN orders o ON o.id = $1 \
                 LEFT JOIN order_authzs oa ON oa.order_id = o.id LEFT JOIN authzs a ON a.id = oa.authz_id ORDER BY oa.position",
                cols.join(", ")
            ),
        });
        read_pool!(&self.db, p => {
            let mut q = sqlx::query(sql).bind(id);
            if let Some(n) = redeem {
                q = q.bind(&n.value).bind(n.expires_ms);
            }
            let rows = q.fetch_all(p).await?;
            let Some(first) = rows.first() else {
                return Ok(None);
            };
            if redeem.is_some() && !crate::nonce::redeemed_and_found(first)? {
                return Ok(None);
            }
            let mut order = order_from_row(first)?;
            for r in &rows {
                let Some(authz_id) = r.try_get::<Option<String>, _>("a_id")? else {
                    continue;
                };
                let status: String = r.try_get("a_status")?;
                order.authzs.push((
                    authz_id,
                    AuthzStatus::parse(&status).ok_or_else(|| corrupt("authz status", &status))?,
                    r.try_get("a_expires_ms")?,
                ));
            }
            Ok(Some(order))
        })
    }

    /// One page of the account's order ids, oldest first, after `cursor` (RFC 8555 §7.1.2.1).
    /// Returns the ids and the cursor of the next page, if any.
    pub async fn account_order_ids(
        &self,
        account_id: &str,
        cursor: Option<(i64, String)>,
        limit: usize,
    ) -> Result<(Vec<String>, Option<(i64, String)>), StoreError> {
        let (after_ms, after_id) = cursor.unwrap_or((i64::MIN, String::new()));
        read_pool!(&self.db, p => {
            let rows = sqlx::query(
                "SELECT id, created_ms FROM orders WHERE account_id = $1 AND (created_ms > $2 OR (created_ms = $2 AND id > $3)) \
                 ORDER BY created_ms, id LIMIT $4",
            )
            .bind(account_id)
            .bind(after_ms)
            .bind(&after_id)
            .bind(limit as i64 + 1)
            .fetch_all(p)
            .await?;
            let mut page: Vec<(String, i64)> = Vec::with_capacity(rows.len());
            for r in &rows {
                page.push((r.try_get("id")?, r.try_get("created_ms")?));
            }
            let next = if page.len() > limit {
                page.truncate(limit);
                page.last().map(|(id, ms)| (*ms, id.clone()))
            } else {
                None
            };
            Ok((page.into_iter().map(|(id, _)| id).collect(), next))
        })
    }

    /// An authorization with its challenges.
    pub async fn authz(&self, id: &str) -> Result<Option<Authz>, StoreError> {
        self.authz_read(AuthzKey::Id(id), None).await
    }

    /// [`Store::authz`] for a POST-as-GET, with the request's nonce redeemed on the same
    /// trip to the store, as [`Store::order_redeeming`].
    pub async fn authz_redeeming(
        &self,
        id: &str,
        nonce: &OpenedNonce,
    ) -> Result<Option<Authz>, StoreError> {
        self.authz_redeeming_read(AuthzKey::Id(id), nonce).await
    }

    /// The authorization a challenge belongs to, with its challenges, in one read (one
    /// statement on PostgreSQL); with `redeem`, the request's nonce redeemed on the same
    /// trip, as [`Store::order_redeeming`].
    pub async fn authz_of_challenge(
        &self,
        challenge_id: &str,
        redeem: Option<&OpenedNonce>,
    ) -> Result<Option<Authz>, StoreError> {
        let key = AuthzKey::Challenge(challenge_id);
        match redeem {
            None => self.authz_read(key, None).await,
            Some(n) => self.authz_redeeming_read(key, n).await,
        }
    }

    async fn authz_redeeming_read(
        &self,
        key: AuthzKey<'_>,
        nonce: &OpenedNonce,
    ) -> Result<Option<Authz>, StoreError> {
        if !self.redeems_in_read() {
            let authz = self.authz_read(key, None).await?;
            self.redeem_nonce(nonce).await?;
            return Ok(authz);
        }
        self.authz_read(key, Some(nonce)).await
    }

    async fn authz_read(
        &self,
        key: AuthzKey<'_>,
        redeem: Option<&OpenedNonce>,
    ) -> Result<Option<Authz>, StoreError> {
        if let Some(r) = self.fast() {
            return r.authz(key, redeem).await;
        }
        // One statement (one round trip): the authorization on every row, one row per
        // challenge; on PostgreSQL with the nonce's redemption in front, as in `order_read`.
        let a_cols: Vec<String> = AUTHZ_COLS.split(", ").map(|c| format!("a.{c}")).collect();
        let c_cols: Vec<String> = CHALL_COLS
            .split(", ")
            .map(|c| format!("c.{c} AS c_{c}"))
            .collect();
        let sql = sqlx::AssertSqlSafe(match redeem {
            None => format!(
                "SELECT {}, {} FROM authzs a LEFT JOIN challenges c ON c.authz_id = a.id WHERE {} ORDER BY c.type",
                a_cols.join(", "),
                c_cols.join(", "),
                key.condition("a.id", "$1")
            ),
            Some(_) => format!(
                "{REDEEM_CTE} SELECT (SELECT COUNT(*) FROM n) AS redeemed, {}, {} FROM (SELECT 1) one \
                 LEFT JOIN authzs a ON {} LEFT JOIN challenges c ON c.authz_id = a.id ORDER BY c.type",
                a_cols.join(", "),
                c_cols.join(", "),
                key.condition("a.id", "$1")
            ),
        });
        read_pool!(&self.db, p => {
            let mut q = sqlx::query(sql).bind(key.value());
            if let Some(n) = redeem {
                q = q.bind(&n.value).bind(n.expires_ms);
            }
            let rows = q.fetch_all(p).await?;
            let Some(first) = rows.first() else {
                return Ok(None);
            };
            if redeem.is_some() && !crate::nonce::redeemed_and_found(first)? {
                return Ok(None);
            }
            let mut a = authz_from_row(first)?;
            for r in &rows {
                if r.try_get::<Option<String>, _>("c_id")?.is_some() {
                    a.challenges.push(challenge_from_row(r, "c_")?);
                }
            }
            a.challenges.sort_by_key(|c| ChallengeType::ALL.iter().position(|t| *t == c.kind));
            Ok(Some(a))
        })
    }
}

impl Tx {
    /// Creates an order with its authorizations in one transaction.
    pub async fn create_order(&mut self, new: NewOrder) -> Result<String, StoreError> {
        let order_id = random_id();
        if let Some(c) = self.direct() {
            create_order_direct(c, &order_id, &new)?;
            return Ok(order_id);
        }
        on_tx!(self, tx => {
            sqlx::query(INSERT_ORDER)
            .bind(&order_id)
            .bind(&new.account_id)
            .bind(identifiers_json(&new.identifiers))
            .bind(new.not_before_ms)
            .bind(new.not_after_ms)
            .bind(new.expires_ms)
            .bind(&new.profile)
            .bind(new.now_ms)
            .bind(&new.replaces)
            .execute(&mut *tx)
            .await?;
            if let Some(ari) = &new.replaces {
                let n = sqlx::query(REPLACES)
                    .bind(ari)
                    .bind(&order_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 0 {
                    return Err(StoreError::AlreadyReplaced);
                }
            }
            for (pos, plan) in new.authzs.iter().enumerate() {
                let authz_id = match plan {
                    AuthzPlan::Reuse(id) => id.clone(),
                    AuthzPlan::New { identifier, wildcard, challenges, expires_ms } => {
                        let id = random_id();
                        insert_authz_in!(tx, &id, &new.account_id, identifier, *wildcard, false, challenges, *expires_ms, new.now_ms);
                        id
                    }
                };
                sqlx::query(ORDER_AUTHZ)
                    .bind(&order_id)
                    .bind(&authz_id)
                    .bind(pos as i64)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(order_id)
        })
    }

    /// Creates a pre-authorization (RFC 8555 §7.4.1).
    pub async fn create_preauthorization(
        &mut self,
        account_id: &str,
        identifier: &Identifier,
        challenges: &[ChallengeType],
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<String, StoreError> {
        let id = random_id();
        on_tx!(self, tx => {
            insert_authz_in!(tx, &id, account_id, identifier, false, true, challenges, expires_ms, now_ms);
            Ok(id)
        })
    }

    /// Deactivates a pending or valid authorization (RFC 8555 §7.5.2).
    /// Returns false when it was in another state.
    pub async fn deactivate_authz(&mut self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        on_tx!(self, tx => {
            let n = sqlx::query(
                "UPDATE authzs SET status = 'deactivated', updated_ms = $2 WHERE id = $1 AND status IN ('pending', 'valid') AND expires_ms >= $2",
            )
            .bind(id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
    }
}
