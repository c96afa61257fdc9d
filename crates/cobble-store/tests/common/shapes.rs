//! The store calls of one whole ACME order as `cobble serve` makes them, request by request
//! (crates/cobble-server/src/routes and the workers), with no HTTP or crypto around them:
//! shared by the query-plan test and the criterion bench of the store's hot request shapes.
//! Keep it in step with the server when a route changes how it uses the store.

use cobble_core::challenge::ChallengeType;
use cobble_core::identifier::Identifier;
use cobble_core::nonce::OpenedNonce;
use cobble_core::status::ChallengeStatus;
use cobble_store::{
    AccountCreated, AuthzPlan, NewAccount, NewCertificate, NewOrder, Store, ValidationOutcome,
};
use std::sync::atomic::{AtomicU64, Ordering};

static NONCES: AtomicU64 = AtomicU64::new(0);

fn nonce() -> OpenedNonce {
    OpenedNonce {
        value: format!(
            "n{}-{}",
            std::process::id(),
            NONCES.fetch_add(1, Ordering::Relaxed)
        ),
        expires_ms: i64::MAX / 2,
    }
}

/// Makes an account to order with; returns its id.
pub async fn account(store: &Store, thumb: &str, now: i64) -> String {
    let mut tx = store.begin().await.unwrap();
    let a = match tx
        .create_account(NewAccount {
            key_thumbprint: thumb.to_owned(),
            jwk: "{}".to_owned(),
            contact: vec![],
            tos_agreed: true,
            initial_ip: "127.0.0.1".to_owned(),
            now_ms: now,
            ..Default::default()
        })
        .await
        .unwrap()
    {
        AccountCreated::New(a) | AccountCreated::Existing(a) => a,
    };
    tx.commit().await.unwrap();
    a.id
}

/// Every request's start: the account a `kid` names (auth.rs `account_for_kid`).
async fn authenticate(store: &Store, account_id: &str) {
    store.account(account_id).await.unwrap().unwrap();
}

/// One whole order for `name` (the flow of `cobble load`): newOrder, POST-as-GET authz,
/// challenge, the validation worker, one authz poll, one order poll, finalize with the
/// issuance job, certificate download. `serial` must be unique.
pub async fn one_order(store: &Store, account_id: &str, name: &str, serial: &str, now: i64) {
    let worker = format!("w-{serial}");
    let id = Identifier::from_wire("dns", name).unwrap();
    // newOrder
    authenticate(store, account_id).await;
    store
        .reusable_authz(account_id, &id, false, false, now)
        .await
        .unwrap();
    let order_id = store
        .create_order_redeeming(
            &nonce(),
            NewOrder {
                account_id: account_id.to_owned(),
                identifiers: vec![id.clone()],
                not_before_ms: None,
                not_after_ms: None,
                expires_ms: now + 604_800_000,
                profile: None,
                authzs: vec![AuthzPlan::New {
                    identifier: id,
                    wildcard: false,
                    challenges: vec![
                        ChallengeType::Http01,
                        ChallengeType::Dns01,
                        ChallengeType::TlsAlpn01,
                    ],
                    expires_ms: now + 604_800_000,
                }],
                replaces: None,
                now_ms: now,
            },
        )
        .await
        .unwrap();
    let order = store.order(&order_id).await.unwrap().unwrap();
    let authz_id = order.authzs[0].0.clone();
    // POST-as-GET authz
    authenticate(store, account_id).await;
    let authz = store
        .authz_redeeming(&authz_id, &nonce())
        .await
        .unwrap()
        .unwrap();
    // POST challenge {}
    let challenge_id = authz.challenges[0].id.clone();
    authenticate(store, account_id).await;
    store
        .authz_of_challenge(&challenge_id, None)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .start_challenge_redeeming(&nonce(), &challenge_id, now, now, None)
            .await
            .unwrap()
    );
    // The validation workers: claim a due job (with orders running side by side, maybe
    // another order's), read, record; until this order's authorization is valid. (A job
    // handed over in process skips the claim and the two reads: the server's usual path.)
    let outcome = ValidationOutcome {
        status: ChallengeStatus::Valid,
        valid_authz_expires_ms: now + 2_592_000_000,
        error: None,
        record: Some("[]".to_owned()),
    };
    loop {
        let mut tx = store.begin_hot().await.unwrap();
        let job = tx.claim_validation_job(&worker, now, 60_000).await.unwrap();
        tx.commit().await.unwrap();
        if let Some(job) = job {
            let authz = store
                .authz_of_challenge(&job.challenge_id, None)
                .await
                .unwrap()
                .unwrap();
            store.account(&authz.account_id).await.unwrap().unwrap();
            assert!(
                store
                    .finish_validation(&worker, &job.challenge_id, &outcome, now)
                    .await
                    .unwrap()
            );
        }
        let mine = store.authz(&authz_id).await.unwrap().unwrap();
        if mine.status == cobble_core::status::AuthzStatus::Valid {
            break;
        }
        tokio::task::yield_now().await;
    }
    // Polls: the authorization (its read is the loop's last), then the order.
    authenticate(store, account_id).await;
    store.redeem_nonce(&nonce()).await.unwrap();
    authenticate(store, account_id).await;
    store
        .order_redeeming(&order_id, &nonce())
        .await
        .unwrap()
        .unwrap();
    // finalize: checks, the move to processing with the job, signing, the certificate.
    authenticate(store, account_id).await;
    store.order(&order_id).await.unwrap().unwrap();
    store.is_key_blocked(serial).await.unwrap();
    store.authz(&authz_id).await.unwrap().unwrap();
    assert!(
        store
            .finalize_redeeming(&nonce(), &order_id, "{}", &worker, now, 60_000)
            .await
            .unwrap()
    );
    // The issuance transaction records rate-limit events (not modelled here) beside the
    // credit and the certificate, so it runs on `begin`, as in crates/cobble-server's issuer.
    let mut tx = store.begin().await.unwrap();
    tx.debit_credit(&order_id).await.unwrap();
    let cert_id = tx
        .finish_issuance(
            &order_id,
            &worker,
            &NewCertificate {
                serial: serial.to_owned(),
                pem: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".to_owned(),
                spki_sha256: serial.to_owned(),
                ari_id: format!("ari.{serial}"),
                not_before_ms: now,
                not_after_ms: now + 7_776_000_000,
            },
            now,
        )
        .await
        .unwrap()
        .expect("the job is held");
    tx.commit().await.unwrap();
    // (finalize answers with the order the issuance stored: no read.)
    // Download.
    authenticate(store, account_id).await;
    store
        .certificate_redeeming(&cert_id, &nonce())
        .await
        .unwrap()
        .unwrap();
}
