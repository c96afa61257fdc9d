//! Accounts (RFC 8555 §7.3): creation keyed by the key thumbprint, look-up, update.

use crate::{Store, StoreError, Tx, on_tx, random_id, read_pool};
use cobble_core::account::AccountStatus;
use cobble_core::operator::Approval;
use sqlx::Row;

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Random id, the last segment of the account URL.
    pub id: String,
    /// RFC 7638 thumbprint of the account key; unique.
    pub key_thumbprint: String,
    /// The account key as canonical public JWK text.
    pub jwk: String,
    /// Current status.
    pub status: AccountStatus,
    /// `mailto:` contacts.
    pub contact: Vec<String>,
    /// Whether the holder agreed to the terms of service.
    pub tos_agreed: bool,
    /// The address the account was created from.
    pub initial_ip: String,
    /// Creation time, Unix ms.
    pub created_ms: i64,
    /// The external account (EAB `kid`) it is bound to.
    pub external_kid: Option<String>,
    /// Whether the operator lets it order.
    pub approval: Approval,
    /// When it expires (EXPIRED_ACCOUNT), Unix ms.
    pub expires_ms: Option<i64>,
}

/// What newAccount stores.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    /// Key thumbprint.
    pub key_thumbprint: String,
    /// Canonical public JWK text.
    pub jwk: String,
    /// Checked contacts.
    pub contact: Vec<String>,
    /// Terms of service agreed.
    pub tos_agreed: bool,
    /// Client address.
    pub initial_ip: String,
    /// Now, Unix ms.
    pub now_ms: i64,
    /// The external account it binds to (EAB), already checked and counted by
    /// [`Tx::bind_external_account`].
    pub external_kid: Option<String>,
    /// Its approval state at creation.
    pub approval: Option<Approval>,
    /// When it expires, Unix ms.
    pub expires_ms: Option<i64>,
}

/// The outcome of [`Tx::create_account`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCreated {
    /// A new account.
    New(Account),
    /// The key already had an account (RFC 8555 §7.3.1: answer 200 with its URL).
    Existing(Account),
}

/// The outcome of [`Tx::change_account_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChanged {
    /// The account now uses the new key.
    Changed(Account),
    /// Another account already has the new key (RFC 8555 §7.3.5: 409 with its URL).
    Conflict(String),
    /// The account is no longer valid, or its key changed meanwhile.
    Stale,
}

/// A change to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountUpdate {
    /// New contact list.
    pub contact: Option<Vec<String>>,
    /// New status.
    pub status: Option<AccountStatus>,
    /// Set terms-of-service agreement.
    pub tos_agreed: Option<bool>,
}

pub(crate) const COLUMNS: &str = "id, key_thumbprint, jwk, status, contact, tos_agreed, initial_ip, created_ms, external_kid, approval, expires_ms";

pub(crate) fn from_row<R: Row>(row: &R) -> Result<Account, StoreError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    let status: String = row.try_get("status")?;
    let contact: String = row.try_get("contact")?;
    let id: String = row.try_get("id")?;
    let approval: String = row.try_get("approval")?;
    Ok(Account {
        approval: Approval::parse(&approval).ok_or_else(|| {
            StoreError::Corrupt(format!("account {id} has approval {approval:?}"))
        })?,
        external_kid: row.try_get("external_kid")?,
        expires_ms: row.try_get("expires_ms")?,
        status: AccountStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("account {id} has status {status:?}")))?,
        contact: serde_json_contact(&contact)
            .ok_or_else(|| StoreError::Corrupt(format!("account {id} has contact {contact:?}")))?,
        key_thumbprint: row.try_get("key_thumbprint")?,
        jwk: row.try_get("jwk")?,
        tos_agreed: row.try_get::<i64, _>("tos_agreed")? != 0,
        initial_ip: row.try_get("initial_ip")?,
        created_ms: row.try_get("created_ms")?,
        id,
    })
}

/// Contacts are stored as a JSON array of strings.
pub(crate) fn serde_json_contact(text: &str) -> Option<Vec<String>> {
    serde_json::from_str(text).ok()
}

fn contact_json(contact: &[String]) -> String {
    serde_json::to_string(contact).expect("strings serialize")
}

impl Store {
    /// Looks an account up by id.
    pub async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        if let Some(r) = self.fast() {
            return r.account("id", id).await;
        }
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM accounts WHERE id = $1"));
        read_pool!(&self.db, p => {
            let row = sqlx::query(sql).bind(id).fetch_optional(p).await?;
            row.as_ref().map(from_row).transpose()
        })
    }

    /// Looks an account up by its key thumbprint.
    pub async fn account_by_thumbprint(&self, thumb: &str) -> Result<Option<Account>, StoreError> {
        if let Some(r) = self.fast() {
            return r.account("key_thumbprint", thumb).await;
        }
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM accounts WHERE key_thumbprint = $1"
        ));
        read_pool!(&self.db, p => {
            let row = sqlx::query(sql).bind(thumb).fetch_optional(p).await?;
            row.as_ref().map(from_row).transpose()
        })
    }
}

impl Tx {
    /// Creates the account, or returns the key's existing account
    /// (a concurrent newAccount with the same key cannot make a second one).
    pub async fn create_account(&mut self, new: NewAccount) -> Result<AccountCreated, StoreError> {
        let id = random_id();
        let insert = sqlx::AssertSqlSafe(format!(
            "INSERT INTO accounts ({COLUMNS}, updated_ms) VALUES ($1, $2, $3, 'valid', $4, $5, $6, $7, $8, $9, $10, $7) \
             ON CONFLICT (key_thumbprint) DO NOTHING RETURNING {COLUMNS}"
        ));
        let select = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM accounts WHERE key_thumbprint = $1"
        ));
        on_tx!(self, tx => {
            let row = sqlx::query(insert)
                .bind(&id)
                .bind(&new.key_thumbprint)
                .bind(&new.jwk)
                .bind(contact_json(&new.contact))
                .bind(new.tos_agreed as i64)
                .bind(&new.initial_ip)
                .bind(new.now_ms)
                .bind(&new.external_kid)
                .bind(new.approval.unwrap_or(Approval::Approved).as_str())
                .bind(new.expires_ms)
                .fetch_optional(&mut *tx)
                .await?;
            let out = match row {
                Some(r) => AccountCreated::New(from_row(&r)?),
                None => {
                    let r = sqlx::query(select).bind(&new.key_thumbprint).fetch_one(&mut *tx).await?;
                    AccountCreated::Existing(from_row(&r)?)
                }
            };
            Ok(out)
        })
    }

    /// Applies `update` to account `id` if it is still `valid`.
    /// Returns the updated account, or `None` when it is no longer valid (or gone).
    pub async fn update_account(
        &mut self,
        id: &str,
        update: &AccountUpdate,
        now_ms: i64,
    ) -> Result<Option<Account>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE accounts SET contact = COALESCE($2, contact), status = COALESCE($3, status), \
             tos_agreed = COALESCE($4, tos_agreed), updated_ms = $5 \
             WHERE id = $1 AND status = 'valid' RETURNING {COLUMNS}"
        ));
        on_tx!(self, tx => {
            let row = sqlx::query(sql)
                .bind(id)
                .bind(update.contact.as_deref().map(contact_json))
                .bind(update.status.map(|s| s.as_str()))
                .bind(update.tos_agreed.map(|b| b as i64))
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await?;
            let out = row.as_ref().map(from_row).transpose()?;
            Ok(out)
        })
    }

    /// Rolls account `id` over from `old_thumbprint` to a new key (RFC 8555 §7.3.5),
    /// unless another account holds the new key. A holder that appears between the check
    /// and the update (a race lost at the unique index) is [`StoreError::KeyInUse`].
    pub async fn change_account_key(
        &mut self,
        id: &str,
        old_thumbprint: &str,
        new_thumbprint: &str,
        new_jwk: &str,
        now_ms: i64,
    ) -> Result<KeyChanged, StoreError> {
        let update = sqlx::AssertSqlSafe(format!(
            "UPDATE accounts SET key_thumbprint = $2, jwk = $3, updated_ms = $4 \
             WHERE id = $1 AND key_thumbprint = $5 AND status = 'valid' RETURNING {COLUMNS}"
        ));
        on_tx!(self, tx => {
            let holder: Option<String> = sqlx::query_scalar("SELECT id FROM accounts WHERE key_thumbprint = $1")
                .bind(new_thumbprint)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(other) = holder {
                return Ok(KeyChanged::Conflict(other));
            }
            let row = sqlx::query(update)
                .bind(id)
                .bind(new_thumbprint)
                .bind(new_jwk)
                .bind(now_ms)
                .bind(old_thumbprint)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| match e.as_database_error() {
                    Some(d) if d.is_unique_violation() => StoreError::KeyInUse,
                    _ => StoreError::Database(e),
                })?;
            match row {
                Some(r) => Ok(KeyChanged::Changed(from_row(&r)?)),
                None => Ok(KeyChanged::Stale),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_json_round_trips() {
        for c in [
            vec![],
            vec!["mailto:a@example.com".to_string()],
            vec!["mailto:a@x.org".into(), "mailto:b@y.org".into()],
        ] {
            assert_eq!(serde_json_contact(&contact_json(&c)), Some(c));
        }
        assert_eq!(serde_json_contact("nope"), None);
    }
}
