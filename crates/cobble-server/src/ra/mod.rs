//! The registration authority: between the routes (which parse and authenticate) and the
//! store, it decides whether an account may act and whether an order's names may be
//! certified, from the operator's records: the ACME account's approval and lifetime, its
//! external account's status, domain list, profile kind and credits, and its organization's
//! status and documents. Each refusal is a problem with its Certigna result code (the table
//! is data in `cobble_core::problem`), and those that ask a person to act carry an
//! `instance` page saying what the operator still needs.
//!
//! The checks here read the operator's records before the request's transaction; the
//! decisions that must be exact under concurrency are made inside a transaction by the
//! store: binding a single-use EAB key ([`cobble_store::Tx::bind_external_account`]) and
//! taking a credit ([`cobble_store::Tx::debit_credit`], in the transaction that stores the
//! certificate).

pub mod eab;
pub mod help;
pub mod limits;
pub mod profile;

pub use profile::profile_check;

use crate::error::AcmeResult;
use crate::state::{AppState, Urls};
use cobble_core::identifier::Identifier;
use cobble_core::operator::{
    Approval, DocumentKind, ExternalAccountStatus, OrganizationStatus, ProfileKind, best_entry,
};
use cobble_core::{Problem, ResultCode};
use cobble_store::{Account, ExternalAccount, Organization};

/// What the RA knows about an account that may act: its external account and organization.
#[derive(Debug, Clone, Default)]
pub struct Standing {
    /// The external account it is bound to.
    pub external: Option<ExternalAccount>,
    /// That external account's organization.
    pub organization: Option<Organization>,
}

/// The page that tells a person what an account still needs.
pub fn help_url(base: &str, account_id: &str) -> String {
    Urls(base).path(&format!("/help/account/{account_id}"))
}

/// The refusal for an external account that is not in use at `now_ms`, if it is not.
pub fn external_refusal(ea: &ExternalAccount, now_ms: i64) -> Option<Problem> {
    external_status_refusal(&ea.kid, ea.status_at(now_ms))
}

/// [`external_refusal`] for a key id and the status in effect.
pub fn external_status_refusal(kid: &str, status: ExternalAccountStatus) -> Option<Problem> {
    Some(match status {
        ExternalAccountStatus::Valid => return None,
        ExternalAccountStatus::Pending => Problem::coded(
            ResultCode::PendingExternalAccount,
            format!(
                "external account {kid} is pending: the operator has not validated it yet (documents missing, expired or being checked)"
            ),
        ),
        ExternalAccountStatus::Suspended => Problem::coded(
            ResultCode::SuspendedExternalAccount,
            format!("external account {kid} is suspended; ask the operator to reactivate it"),
        ),
        ExternalAccountStatus::Expired => Problem::coded(
            ResultCode::ExpiredExternalAccount,
            format!(
                "external account {kid} has expired; ask the operator to extend it (new documents may be needed)"
            ),
        ),
        ExternalAccountStatus::Revoked => Problem::coded(
            ResultCode::RevokedExternalAccount,
            format!(
                "external account {kid} is revoked; create a new external account and ACME account"
            ),
        ),
        ExternalAccountStatus::Deactivated => Problem::coded(
            ResultCode::DeactivatedExternalAccount,
            format!(
                "external account {kid} is deactivated; no ACME account bound to it can be used"
            ),
        ),
    })
}

/// The refusal for an organization that cannot have certificates issued at `now_ms`, if any.
/// Documents are checked only with `--require-documents`; the operator's status always.
pub fn organization_refusal(
    org: Option<&Organization>,
    require_documents: bool,
    now_ms: i64,
) -> Option<Problem> {
    let Some(org) = org else {
        return require_documents.then(|| {
            Problem::coded(
                ResultCode::NoValidOrganizationDocumentFound,
                "no organization is on record for this account, so none of its documents are; the operator must attach the account to an organization",
            )
        });
    };
    let name = &org.name;
    if require_documents {
        if !org.has_document(DocumentKind::RegistrationForm, now_ms) {
            return Some(Problem::coded(
                ResultCode::NoDocumentFormFound,
                format!(
                    "organization {name:?} has no valid registration form on record (missing or expired); the operator must record a new one"
                ),
            ));
        }
        if !org.has_document(DocumentKind::OrganizationProof, now_ms) {
            return Some(Problem::coded(
                ResultCode::NoValidOrganizationDocumentFound,
                format!(
                    "organization {name:?} has no valid proof of organization on record (missing or expired); the operator must record a new one"
                ),
            ));
        }
        if !org.has_document(DocumentKind::ManagerMandate, now_ms) {
            return Some(Problem::coded(
                ResultCode::OrganizationIsNotValid,
                format!(
                    "organization {name:?} has no valid mandate of its certificate manager on record (missing or expired)"
                ),
            ));
        }
    }
    if org.status != OrganizationStatus::Valid {
        return Some(Problem::coded(
            ResultCode::OrganizationIsNotValid,
            format!(
                "organization {name:?} is {}, not valid; the operator must validate it",
                org.status
            ),
        ));
    }
    None
}

/// Whether `account` may order, authorize or finalize now: the operator's approval, the
/// account's lifetime, its external account and its organization.
pub async fn may_act(s: &AppState, base: &str, account: &Account) -> AcmeResult<Standing> {
    let now = s.clock.now_ms();
    let help = || help_url(base, &account.id);
    if account.expires_ms.is_some_and(|e| e <= now) {
        return Err(Problem::coded(
            ResultCode::ExpiredAccount,
            format!(
                "account {} expired on {}; register a new account key",
                account.id,
                cobble_core::clock::rfc3339(account.expires_ms.unwrap_or(now))
            ),
        )
        .into());
    }
    match account.approval {
        Approval::Approved => {}
        Approval::Suspended => {
            return Err(Problem::coded(
                ResultCode::SuspendedAccount,
                format!(
                    "account {} is suspended by the operator; ask them to reactivate it",
                    account.id
                ),
            )
            .with_instance(help())
            .into());
        }
        Approval::Pending => {
            return Err(Problem::coded(
                ResultCode::PendingExternalAccount,
                format!(
                    "account {} is waiting for the operator's approval; see {}",
                    account.id,
                    help()
                ),
            )
            .with_instance(help())
            .into());
        }
    }
    let Some(kid) = account.external_kid.as_deref() else {
        if s.cfg.require_documents {
            return Err(organization_refusal(None, true, now)
                .expect("a refusal without an organization")
                .with_instance(help())
                .into());
        }
        return Ok(Standing::default());
    };
    let ea = s.store.external_account(kid).await?.ok_or_else(|| {
        Problem::coded(
            ResultCode::ExternalAccountNotFound,
            format!(
                "account {} is bound to external account {kid}, which is not on record",
                account.id
            ),
        )
    })?;
    if let Some(p) = external_refusal(&ea, now) {
        return Err(p.with_instance(help()).into());
    }
    let organization = match ea.organization_id.as_deref() {
        Some(id) => s.store.organization(id).await?,
        None => None,
    };
    if let Some(p) = organization_refusal(organization.as_ref(), s.cfg.require_documents, now) {
        return Err(p.with_instance(help()).into());
    }
    Ok(Standing {
        external: Some(ea),
        organization,
    })
}

/// Whether the names of an order (or a pre-authorization) may be certified for an account
/// in `standing`: the external account's profile kind and domain list (one subproblem per
/// refused name), one organization for all names, and a credit left.
pub async fn check_names(s: &AppState, standing: &Standing, ids: &[Identifier]) -> AcmeResult<()> {
    let Some(ea) = &standing.external else {
        return Ok(());
    };
    let mut refused = Vec::new();
    for id in ids {
        let value = id.value();
        let kind = id.kind();
        let wildcard = id.is_wildcard();
        let p = match ea.profile_kind {
            ProfileKind::Wildcard if !wildcard => Some(Problem::coded(
                ResultCode::InvalidDomainForWildcardProfile,
                format!(
                    "{value}: external account {} issues wildcard certificates only; it cannot be used for a non-wildcard name",
                    ea.kid
                ),
            )),
            ProfileKind::NonWildcard if wildcard => Some(Problem::coded(
                ResultCode::InvalidProfileForWildcard,
                format!(
                    "{value}: external account {} issues non-wildcard certificates only",
                    ea.kid
                ),
            )),
            _ if ea.domains.is_empty() => None,
            _ => match best_entry(&ea.domains, id) {
                None => Some(Problem::coded(
                    ResultCode::DomainNotFound,
                    format!(
                        "{value} is not in the domain list of external account {}",
                        ea.kid
                    ),
                )),
                Some(e) if !e.authorized => Some(Problem::coded(
                    ResultCode::UnauthorizedDomain,
                    format!(
                        "{value} is in the domain list of external account {} (as {}) but not authorized; the operator must authorize it",
                        ea.kid, e.name
                    ),
                )),
                Some(_) => None,
            },
        };
        if let Some(p) = p {
            refused.push(p.for_identifier(kind, &value));
        }
    }
    // Names owned by two organizations cannot share a certificate.
    let mut owners: Vec<(String, String)> = Vec::new();
    for id in ids {
        let value = id.value();
        let claims = s.store.domain_claims(&value).await?;
        let list: Vec<_> = claims
            .iter()
            .filter(|c| c.authorized)
            .map(|c| cobble_core::operator::DomainEntry {
                name: c.name.clone(),
                authorized: true,
            })
            .collect();
        if let Some(best) = best_entry(&list, id)
            && let Some(org) = claims
                .iter()
                .filter(|c| c.authorized && c.name == best.name)
                .find_map(|c| c.organization_id.clone())
        {
            owners.push((value, org));
        }
    }
    if let Some((first_name, first_org)) = owners.first()
        && let Some((other_name, other_org)) = owners.iter().find(|(_, o)| o != first_org)
    {
        return Err(Problem::coded(
            ResultCode::NotSameOrganization,
            format!("{first_name} belongs to organization {first_org} but {other_name} to organization {other_org}; one certificate cannot name both: order them separately"),
        )
        .into());
    }
    if !refused.is_empty() {
        return Err(Problem::combine(refused).into());
    }
    check_credit(ea)?;
    Ok(())
}

/// Refuses early when the external account's balance is zero (the debit itself happens in
/// the transaction that stores the certificate).
pub fn check_credit(ea: &ExternalAccount) -> Result<(), Problem> {
    if ea.credits == Some(0) {
        return Err(Problem::coded(
            ResultCode::OutOfCredit,
            format!(
                "external account {} has no credit left; one certificate takes one credit: ask the operator for more",
                ea.kid
            ),
        ));
    }
    Ok(())
}
