//! The transaction API: what a request composes on one [`Tx`] commits together or not at
//! all, on SQLite and (with COBBLE_TEST_PG_URL, as scripts/test.sh sets) on PostgreSQL.

use cobble_core::account::AccountStatus;
use cobble_core::identifier::Identifier;
use cobble_core::nonce::OpenedNonce;
use cobble_store::{
    AccountCreated, AccountUpdate, AuthzPlan, NewAccount, NewOrder, Store, StoreError,
};

/// One store per engine available: a SQLite file, and a fresh PostgreSQL database.
async fn stores(dir: &std::path::Path) -> Vec<Store> {
    let mut urls = vec![format!("sqlite://{}", dir.join("tx.db").display())];
    match std::env::var("COBBLE_TEST_PG_URL") {
        Ok(admin) => {
            urls.push(
                cobble_store::testdb::fresh_postgres_database(&admin, "tx")
                    .await
                    .unwrap(),
            );
        }
        Err(_) => assert!(
            std::env::var("CI").is_err(),
            "COBBLE_TEST_PG_URL is not set: run the tests with scripts/test.sh"
        ),
    }
    let mut out = Vec::new();
    for u in urls {
        out.push(Store::connect(&u, &Default::default()).await.unwrap());
    }
    out
}

/// [`stores`] and a memory database (whose reads run on its one connection).
async fn every_engine(dir: &std::path::Path) -> Vec<Store> {
    let mut all = stores(dir).await;
    all.push(
        Store::connect("sqlite::memory:", &Default::default())
            .await
            .unwrap(),
    );
    all
}

/// A new account in `store`, keyed by `thumb`.
async fn new_account_in(store: &Store, thumb: &str) -> cobble_store::Account {
    let mut tx = store.begin().await.unwrap();
    let AccountCreated::New(a) = tx.create_account(new_account(thumb)).await.unwrap() else {
        panic!("a new account");
    };
    tx.commit().await.unwrap();
    a
}

fn nonce(v: &str) -> OpenedNonce {
    OpenedNonce {
        value: v.to_owned(),
        expires_ms: i64::MAX / 2,
    }
}

/// A newOrder for one DNS name with one pending http-01 authorization.
fn one_name_order(account: &str, name: &str, order_expires: i64, authz_expires: i64) -> NewOrder {
    let id = Identifier::from_wire("dns", name).unwrap();
    NewOrder {
        account_id: account.to_owned(),
        identifiers: vec![id.clone()],
        not_before_ms: None,
        not_after_ms: None,
        expires_ms: order_expires,
        profile: None,
        authzs: vec![AuthzPlan::New {
            identifier: id,
            wildcard: false,
            challenges: vec![cobble_core::challenge::ChallengeType::Http01],
            expires_ms: authz_expires,
        }],
        replaces: None,
        now_ms: 1_000,
    }
}

fn new_account(thumb: &str) -> NewAccount {
    NewAccount {
        key_thumbprint: thumb.to_owned(),
        jwk: "{}".to_owned(),
        contact: vec![],
        tos_agreed: true,
        initial_ip: "127.0.0.1".to_owned(),
        now_ms: 1_000,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_dropped_transaction_leaves_nothing_and_a_committed_one_everything() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()).await {
        let engine = store.engine();
        // Dropped: neither the nonce nor the account is kept.
        let mut tx = store.begin().await.unwrap();
        tx.redeem_nonce(&nonce("n1")).await.unwrap();
        tx.create_account(new_account("t1")).await.unwrap();
        drop(tx);
        assert_eq!(store.used_nonce_count().await.unwrap(), 0, "{engine:?}");
        assert!(store.account_by_thumbprint("t1").await.unwrap().is_none());

        // Committed: account, order and nonce land together.
        let mut tx = store.begin().await.unwrap();
        tx.redeem_nonce(&nonce("n1")).await.unwrap();
        let AccountCreated::New(a) = tx.create_account(new_account("t1")).await.unwrap() else {
            panic!("a new account");
        };
        let order_id = tx
            .create_order(one_name_order(&a.id, "tx.example.com", 10_000, 10_000))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.used_nonce_count().await.unwrap(), 1, "{engine:?}");
        let order = store.order(&order_id).await.unwrap().unwrap();
        assert_eq!(order.account_id, a.id);
        assert_eq!(order.authzs.len(), 1);

        // A second use of the nonce fails the whole transaction: the update is not kept.
        let mut tx = store.begin().await.unwrap();
        let update = AccountUpdate {
            status: Some(AccountStatus::Deactivated),
            ..Default::default()
        };
        tx.update_account(&a.id, &update, 2_000).await.unwrap();
        let err = tx.redeem_nonce(&nonce("n1")).await.unwrap_err();
        assert!(matches!(err, StoreError::NonceReused), "{err:?}");
        drop(tx);
        let stored = store.account(&a.id).await.unwrap().unwrap();
        assert_eq!(stored.status, AccountStatus::Valid, "{engine:?}");
        store.close().await;
    }
}

/// The hot transaction (`begin_hot`, on a SQLite file the hop-free writer) keeps the same
/// promises as `begin`: dropped it leaves nothing, committed everything, a reused nonce fails
/// it; methods outside its shapes refuse to run on it; and it takes turns with `begin`'s
/// transactions and single-statement redemptions without deadlock or lost writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_transaction_commits_or_rolls_back_like_any_other() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()).await {
        let engine = store.engine();
        let mut tx = store.begin().await.unwrap();
        let AccountCreated::New(a) = tx.create_account(new_account("hot")).await.unwrap() else {
            panic!("a new account");
        };
        tx.commit().await.unwrap();
        let new_order = || one_name_order(&a.id, "hot.example.com", 10_000, 10_000);
        // Dropped: neither the nonce nor the order is kept.
        let mut tx = store.begin_hot().await.unwrap();
        tx.redeem_nonce(&nonce("h1")).await.unwrap();
        let dropped = tx.create_order(new_order()).await.unwrap();
        drop(tx);
        assert_eq!(store.used_nonce_count().await.unwrap(), 0, "{engine:?}");
        assert!(store.order(&dropped).await.unwrap().is_none(), "{engine:?}");
        // Committed: both.
        let mut tx = store.begin_hot().await.unwrap();
        tx.redeem_nonce(&nonce("h1")).await.unwrap();
        let kept = tx.create_order(new_order()).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.used_nonce_count().await.unwrap(), 1, "{engine:?}");
        let order = store.order(&kept).await.unwrap().unwrap();
        assert_eq!(order.authzs.len(), 1, "{engine:?}");
        // The nonce again, in a hot transaction and on its own: refused.
        let mut tx = store.begin_hot().await.unwrap();
        let err = tx.redeem_nonce(&nonce("h1")).await.unwrap_err();
        assert!(matches!(err, StoreError::NonceReused), "{err:?}");
        drop(tx);
        let err = store.redeem_nonce(&nonce("h1")).await.unwrap_err();
        assert!(matches!(err, StoreError::NonceReused), "{err:?}");
        // A method outside the hot shapes: refused on the hop-free writer, fine elsewhere.
        let mut tx = store.begin_hot().await.unwrap();
        let r = tx.deactivate_authz(&order.authzs[0].0, 2_000).await;
        match engine {
            cobble_store::Engine::Sqlite => {
                assert!(matches!(r, Err(StoreError::NotHopFree)), "{r:?}")
            }
            cobble_store::Engine::Postgres => assert!(r.unwrap()),
        }
        drop(tx);
        // Side by side: hot transactions, `begin` transactions and lone redemptions from
        // several tasks take turns; every one of them lands.
        let mut tasks = Vec::new();
        for t in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    let n = nonce(&format!("side-{t}-{i}"));
                    match i % 3 {
                        0 => {
                            let mut tx = store.begin_hot().await.unwrap();
                            tx.redeem_nonce(&n).await.unwrap();
                            tx.commit().await.unwrap();
                        }
                        1 => {
                            let mut tx = store.begin().await.unwrap();
                            tx.redeem_nonce(&n).await.unwrap();
                            tx.commit().await.unwrap();
                        }
                        _ => store.redeem_nonce(&n).await.unwrap(),
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(store.used_nonce_count().await.unwrap(), 101, "{engine:?}");
        store.close().await;
    }
}

/// Finalize decides on fresh state (RFC 8555 §7.1.6): the move to `processing` re-checks
/// the order's expiry and every authorization in the same statement.
#[tokio::test]
async fn begin_finalize_requires_every_authorization_valid_now() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()).await {
        let engine = store.engine();
        let mut tx = store.begin().await.unwrap();
        let AccountCreated::New(a) = tx.create_account(new_account("f1")).await.unwrap() else {
            panic!("a new account");
        };
        tx.commit().await.unwrap();
        // One order per case; its single authorization made valid by a validation.
        let mut orders = Vec::new();
        for (i, order_expires) in [10_000i64, 10_000, 10_000, 1_500].into_iter().enumerate() {
            let authz_expires = if i == 2 { 1_800 } else { 10_000 };
            let name = format!("f{i}.example.com");
            orders.push(valid_order(&store, &a.id, &name, order_expires, authz_expires).await);
        }
        // 0: ready -> processing, once.
        let mut tx = store.begin().await.unwrap();
        assert!(
            tx.begin_finalize(&orders[0].0, 2_000).await.unwrap(),
            "{engine:?}"
        );
        assert!(
            !tx.begin_finalize(&orders[0].0, 2_000).await.unwrap(),
            "twice"
        );
        tx.commit().await.unwrap();
        // 1: its authorization deactivated after the client saw `ready`.
        let mut tx = store.begin().await.unwrap();
        assert!(tx.deactivate_authz(&orders[1].1, 1_900).await.unwrap());
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert!(
            !tx.begin_finalize(&orders[1].0, 2_000).await.unwrap(),
            "{engine:?}"
        );
        // 2: its authorization expired (at 1_800); 3: the order itself expired (at 1_500).
        assert!(
            !tx.begin_finalize(&orders[2].0, 2_000).await.unwrap(),
            "{engine:?}"
        );
        assert!(
            !tx.begin_finalize(&orders[3].0, 2_000).await.unwrap(),
            "{engine:?}"
        );
        tx.commit().await.unwrap();
        for (order_id, _) in &orders[1..] {
            let o = store.order(order_id).await.unwrap().unwrap();
            assert_eq!(o.stored_status, cobble_core::status::OrderStatus::Pending);
        }
        store.close().await;
    }
}

/// An order for `name` whose one authorization a validation made valid; (order, authz).
async fn valid_order(
    store: &Store,
    account: &str,
    name: &str,
    order_expires: i64,
    authz_expires: i64,
) -> (String, String) {
    let mut tx = store.begin().await.unwrap();
    let order_id = tx
        .create_order(one_name_order(account, name, order_expires, authz_expires))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let order = store.order(&order_id).await.unwrap().unwrap();
    let authz = store.authz(&order.authzs[0].0).await.unwrap().unwrap();
    let ch = &authz.challenges[0].id;
    let mut tx = store.begin().await.unwrap();
    assert!(tx.start_challenge(ch, 1_000, 1_000).await.unwrap());
    let worker = format!("w-{ch}");
    assert!(
        tx.claim_validation_job(&worker, 1_000, 60_000)
            .await
            .unwrap()
            .is_some()
    );
    let outcome = cobble_store::ValidationOutcome {
        status: cobble_core::status::ChallengeStatus::Valid,
        valid_authz_expires_ms: authz_expires,
        error: None,
        record: None,
    };
    assert!(
        tx.finish_validation(&worker, ch, &outcome, 1_000)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    (order_id, authz.id)
}

/// An order with one pending http-01 authorization for `name`; its challenge's id.
async fn pending_challenge(store: &Store, account: &str, name: &str) -> String {
    let mut tx = store.begin().await.unwrap();
    let order_id = tx
        .create_order(one_name_order(account, name, 500_000, 500_000))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let order = store.order(&order_id).await.unwrap().unwrap();
    let authz = store.authz(&order.authzs[0].0).await.unwrap().unwrap();
    authz.challenges[0].id.clone()
}

/// The in-process handoff: a validation job queued already claimed is its holder's until
/// the lease runs out (no other worker claims it, the holder records the outcome); should
/// the holder die, any worker takes it after the lease, and the late holder's outcome is
/// then discarded.
#[tokio::test]
async fn a_job_claimed_as_it_is_queued_is_its_holders_until_the_lease_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()).await {
        let engine = store.engine();
        let mut tx = store.begin().await.unwrap();
        let AccountCreated::New(a) = tx.create_account(new_account("handoff")).await.unwrap()
        else {
            panic!("a new account");
        };
        tx.commit().await.unwrap();
        let outcome = cobble_store::ValidationOutcome {
            status: cobble_core::status::ChallengeStatus::Valid,
            valid_authz_expires_ms: 400_000,
            error: None,
            record: None,
        };
        let queue = |ch: String| {
            let store = store.clone();
            async move {
                let mut tx = store.begin_hot().await.unwrap();
                let claim = cobble_store::Claim {
                    worker: "mine",
                    lease_until_ms: 61_000,
                };
                assert!(
                    tx.start_challenge_claimed(&ch, 1_000, 1_000, Some(claim))
                        .await
                        .unwrap()
                );
                tx.commit().await.unwrap();
            }
        };
        let claim = |worker: &'static str, now: i64| {
            let store = store.clone();
            async move {
                let mut tx = store.begin_hot().await.unwrap();
                let job = tx.claim_validation_job(worker, now, 60_000).await.unwrap();
                tx.commit().await.unwrap();
                job
            }
        };
        // The holder finishes in time.
        let ch = pending_challenge(&store, &a.id, "held.example.com").await;
        queue(ch.clone()).await;
        assert_eq!(claim("other", 2_000).await, None, "{engine:?}");
        let mut tx = store.begin_hot().await.unwrap();
        assert!(
            tx.finish_validation("mine", &ch, &outcome, 3_000)
                .await
                .unwrap(),
            "{engine:?}"
        );
        tx.commit().await.unwrap();
        assert_eq!(store.validation_jobs_pending().await.unwrap(), 0);
        // The holder dies: after the lease another worker takes the job (second attempt).
        let ch = pending_challenge(&store, &a.id, "lost.example.com").await;
        queue(ch.clone()).await;
        assert_eq!(claim("other", 60_999).await, None, "{engine:?}");
        let job = claim("other", 61_001).await.expect("the lease ran out");
        assert_eq!((job.challenge_id.as_str(), job.attempts), (ch.as_str(), 2));
        let mut tx = store.begin_hot().await.unwrap();
        assert!(
            !tx.finish_validation("mine", &ch, &outcome, 61_002)
                .await
                .unwrap(),
            "the late holder's outcome is discarded ({engine:?})"
        );
        assert!(
            tx.finish_validation("other", &ch, &outcome, 61_002)
                .await
                .unwrap()
        );
        tx.commit().await.unwrap();
        store.close().await;
    }
}

/// Bounded growth: nonces go once expired; orders and authorizations go the retention
/// after they expired; a certificate keeps its order until the retention after its own
/// expiry. Each kind goes in batches.
#[tokio::test]
async fn prune_removes_what_expired_past_the_retention_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()).await {
        let engine = store.engine();
        let mut tx = store.begin().await.unwrap();
        for i in 0..1_200 {
            tx.redeem_nonce(&OpenedNonce {
                value: format!("old{i}"),
                expires_ms: 5_000,
            })
            .await
            .unwrap();
        }
        tx.redeem_nonce(&nonce("fresh")).await.unwrap();
        let AccountCreated::New(a) = tx.create_account(new_account("p1")).await.unwrap() else {
            panic!("a new account");
        };
        tx.commit().await.unwrap();
        let (gone, gone_authz) =
            valid_order(&store, &a.id, "gone.example.com", 10_000, 10_000).await;
        let (kept, kept_authz) =
            valid_order(&store, &a.id, "kept.example.com", 10_000, 10_000).await;
        let (live, _) = valid_order(
            &store,
            &a.id,
            "live.example.com",
            i64::MAX / 4,
            i64::MAX / 4,
        )
        .await;
        // `kept` gets a certificate valid until 50_000.
        let mut tx = store.begin().await.unwrap();
        assert!(tx.begin_finalize(&kept, 2_000).await.unwrap());
        tx.enqueue_issuance(&kept, "{}", "issuer", 2_000, 60_000)
            .await
            .unwrap();
        let cert = cobble_store::NewCertificate {
            serial: format!("01{}", engine as u8),
            pem: "PEM".into(),
            spki_sha256: "00".into(),
            ari_id: format!("ari.{}", engine as u8),
            not_before_ms: 2_000,
            not_after_ms: 50_000,
        };
        assert!(
            tx.finish_issuance(&kept, "issuer", &cert, 2_000)
                .await
                .unwrap()
                .is_some()
        );
        tx.commit().await.unwrap();

        // At 20_000 with a 5_000 retention: the cut-off is 15_000.
        let p = store.prune(20_000, 5_000, 500).await.unwrap();
        assert_eq!(p.nonces, 1_200, "{engine:?}: in three batches");
        assert_eq!(store.used_nonce_count().await.unwrap(), 1);
        assert_eq!(
            (p.orders, p.authzs, p.certificates),
            (1, 1, 0),
            "{engine:?}"
        );
        assert!(store.order(&gone).await.unwrap().is_none());
        assert!(store.authz(&gone_authz).await.unwrap().is_none());
        assert!(
            store.order(&kept).await.unwrap().is_some(),
            "its certificate keeps it"
        );
        assert!(store.authz(&kept_authz).await.unwrap().is_some());

        // Past the certificate's expiry plus the retention, it goes, and its order with it.
        let p = store.prune(60_000, 5_000, 500).await.unwrap();
        assert_eq!(
            (p.certificates, p.orders, p.authzs),
            (1, 1, 1),
            "{engine:?}"
        );
        assert!(store.order(&kept).await.unwrap().is_none());
        assert!(store.authz(&kept_authz).await.unwrap().is_none());
        assert!(
            store.order(&live).await.unwrap().is_some(),
            "unexpired stays"
        );
        assert_eq!(
            store.prune(60_000, 5_000, 500).await.unwrap(),
            Default::default()
        );
        store.close().await;
    }
}

/// Rate-limit overrides: made, replaced, found by account and registered domain (one
/// statement), removed; the shared request bucket admits the burst, refuses with the wait,
/// and refills; pruning drops old events and drained buckets.
#[tokio::test]
async fn limit_overrides_and_shared_request_buckets() {
    use cobble_core::ratelimit::{LimitName, Override, Scope};
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()).await {
        let engine = store.engine();
        let mut tx = store.begin().await.unwrap();
        let AccountCreated::New(a) = tx.create_account(new_account("lim")).await.unwrap() else {
            panic!("a new account");
        };
        tx.commit().await.unwrap();
        let cert = LimitName::CertificatesPerDomain;
        let mut o = Override::for_subject(Scope::Account, &a.id, cert);
        o.count = Some(100);
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.put_limit_override(&o, 1).await.unwrap(), None);
        tx.commit().await.unwrap();
        o.count = Some(200);
        o.comment = Some("a big customer".into());
        let mut tx = store.begin().await.unwrap();
        let before = tx.put_limit_override(&o, 2).await.unwrap().unwrap();
        assert_eq!(before.rule.count, Some(100), "{engine:?}");
        let mut d = Override::for_subject(Scope::Domain, "www.example.co.uk", cert);
        d.enabled = false;
        tx.put_limit_override(&d, 3).await.unwrap();
        let other = Override::for_subject(Scope::Domain, "example.org", cert);
        tx.put_limit_override(&other, 4).await.unwrap();
        let bad = Override::for_subject(
            Scope::Domain,
            "example.org",
            LimitName::PendingAuthorizations,
        );
        assert!(tx.put_limit_override(&bad, 5).await.is_err(), "{engine:?}");
        tx.commit().await.unwrap();

        let all = store.limit_overrides().await.unwrap();
        assert_eq!(all.len(), 3, "{engine:?}: replaced, not added: {all:?}");
        let found = store
            .limit_overrides_for(Some(&a.id), &["example.co.uk".to_owned()])
            .await
            .unwrap();
        assert_eq!(found.len(), 2, "{engine:?}: {found:?}");
        let mine = found.iter().find(|f| f.rule.account.is_some()).unwrap();
        assert_eq!(mine.rule.count, Some(200));
        assert_eq!(mine.rule.comment.as_deref(), Some("a big customer"));
        assert_eq!(mine.created_ms, 2);
        let dom = found.iter().find(|f| f.rule.domain.is_some()).unwrap();
        assert_eq!(
            dom.rule.domain.as_deref(),
            Some("example.co.uk"),
            "stored as the registered domain"
        );
        assert!(!dom.rule.enabled);
        let mut tx = store.begin().await.unwrap();
        let in_tx = tx.limit_overrides_for(Some("nobody"), &[]).await.unwrap();
        assert!(in_tx.is_empty(), "{engine:?}");
        drop(tx);
        let mut tx = store.begin().await.unwrap();
        let gone = tx.delete_limit_override(Scope::Account, &a.id, cert).await;
        assert_eq!(gone.unwrap().unwrap().rule.count, Some(200));
        let again = tx.delete_limit_override(Scope::Account, &a.id, cert).await;
        assert!(again.unwrap().is_none());
        tx.commit().await.unwrap();
        assert_eq!(store.limit_overrides().await.unwrap().len(), 2);

        // 10 per second (100 ms apart), burst 3 (tolerance 300 ms).
        let (t, tol) = (100_000, 300_000);
        let now = 1_000_000_000;
        for i in 0..3 {
            assert_eq!(
                store.take_request_token("k", now, t, tol).await.unwrap(),
                None,
                "{engine:?} #{i}"
            );
        }
        let wait = store.take_request_token("k", now, t, tol).await.unwrap();
        assert_eq!(
            wait,
            Some(100_000),
            "{engine:?}: one interval until the next slot"
        );
        assert_eq!(
            store
                .take_request_token("other", now, t, tol)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .take_request_token("k", now + 100_000, t, tol)
                .await
                .unwrap(),
            None
        );
        assert!(
            store
                .take_request_token("k", now + 100_000, t, tol)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            store
                .take_request_token("k", now + 10_000_000, t, tol)
                .await
                .unwrap(),
            None,
            "refilled"
        );

        let (events, buckets) = store
            .prune_rate_limit_state(0, now + 20_000_000, 10)
            .await
            .unwrap();
        assert_eq!(
            (events, buckets),
            (0, 2),
            "{engine:?}: both buckets drained"
        );
    }
}

/// `begin_redeeming` and `begin_hot_redeeming` (on PostgreSQL `BEGIN` and the redemption in
/// one round trip, the transaction ended by hand): a dropped transaction leaves neither its
/// nonce nor its change and hands back a connection outside any transaction, a committed one
/// keeps both, a used nonce is refused; a nonce that cannot be a SQL literal takes the
/// two-statement path and is kept verbatim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_begun_with_its_nonce_commits_or_rolls_back_like_any_other() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()).await {
        let engine = store.engine();
        // Dropped and committed in turn: if a dropped transaction's connection came back to
        // the pool still inside it, the next commit would keep the dropped nonce too.
        for i in 0..20 {
            let tx = store
                .begin_redeeming(&nonce(&format!("dropped{i}")))
                .await
                .unwrap();
            drop(tx);
            let tx = store
                .begin_hot_redeeming(&nonce(&format!("dropped-hot{i}")))
                .await
                .unwrap();
            drop(tx);
            let tx = store
                .begin_redeeming(&nonce(&format!("kept{i}")))
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        let mut kept = 20;
        assert_eq!(store.used_nonce_count().await.unwrap(), kept, "{engine:?}");
        // With a change: dropped, nothing; committed, both.
        let mut tx = store.begin_redeeming(&nonce("acct")).await.unwrap();
        tx.create_account(new_account("redeeming")).await.unwrap();
        drop(tx);
        let mut tx = store.begin_redeeming(&nonce("acct")).await.unwrap();
        let AccountCreated::New(a) = tx.create_account(new_account("redeeming")).await.unwrap()
        else {
            panic!("the dropped account was not kept ({engine:?})");
        };
        tx.commit().await.unwrap();
        kept += 1;
        let mut tx = store.begin_hot_redeeming(&nonce("order")).await.unwrap();
        let order = tx
            .create_order(one_name_order(
                &a.id,
                "redeeming.example.com",
                10_000,
                10_000,
            ))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        kept += 1;
        assert!(store.order(&order).await.unwrap().is_some(), "{engine:?}");
        // An authorization's challenges go in one multi-row statement (sqlx's writer here):
        // each its own row, id and token.
        use cobble_core::challenge::ChallengeType;
        let kinds = [
            ChallengeType::Http01,
            ChallengeType::Dns01,
            ChallengeType::TlsAlpn01,
        ];
        let mut tx = store.begin_redeeming(&nonce("preauth")).await.unwrap();
        let id = Identifier::from_wire("dns", "three.example.com").unwrap();
        let pre = tx
            .create_preauthorization(&a.id, &id, &kinds, 10_000, 1_000)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        kept += 1;
        let authz = store.authz(&pre).await.unwrap().unwrap();
        let got: Vec<ChallengeType> = authz.challenges.iter().map(|c| c.kind).collect();
        assert_eq!(got, kinds, "{engine:?}");
        let ids: std::collections::BTreeSet<&str> =
            authz.challenges.iter().map(|c| c.id.as_str()).collect();
        let tokens: std::collections::BTreeSet<&str> =
            authz.challenges.iter().map(|c| c.token.as_str()).collect();
        assert_eq!((ids.len(), tokens.len()), (3, 3), "{engine:?}");
        assert!(
            authz.challenges.iter().all(|c| c.authz_id == pre),
            "{engine:?}"
        );
        // Used: refused both ways, and nothing more is kept.
        for used in ["acct", "order", "kept3"] {
            let err = store.begin_redeeming(&nonce(used)).await.unwrap_err();
            assert!(matches!(err, StoreError::NonceReused), "{engine:?} {err:?}");
            let err = store.begin_hot_redeeming(&nonce(used)).await.unwrap_err();
            assert!(matches!(err, StoreError::NonceReused), "{engine:?} {err:?}");
        }
        // Not plain base64url: the parameterized path, verbatim, refused the second time.
        let odd = nonce("it's; DROP TABLE used_nonces; --");
        store
            .begin_redeeming(&odd)
            .await
            .unwrap()
            .commit()
            .await
            .unwrap();
        kept += 1;
        let err = store.begin_redeeming(&odd).await.unwrap_err();
        assert!(matches!(err, StoreError::NonceReused), "{engine:?} {err:?}");
        assert_eq!(store.used_nonce_count().await.unwrap(), kept, "{engine:?}");
        store.close().await;
    }
}

/// A POST-as-GET's read with its nonce redeemed on the same trip (one hold of the SQLite
/// writer, one PostgreSQL statement; a memory database reads, then redeems): the same
/// object as the plain read, the nonce used up whether or not the object exists, and a used
/// nonce refused without reading.
#[tokio::test]
async fn a_read_that_redeems_its_nonce_uses_it_up_found_or_not() {
    let dir = tempfile::tempdir().unwrap();
    for (i, store) in every_engine(dir.path()).await.into_iter().enumerate() {
        let engine = store.engine();
        let a = new_account_in(&store, "g1").await;
        let (order_id, authz_id) =
            valid_order(&store, &a.id, "get.example.com", i64::MAX / 4, i64::MAX / 4).await;
        let mut tx = store.begin().await.unwrap();
        assert!(tx.begin_finalize(&order_id, 2_000).await.unwrap());
        tx.enqueue_issuance(&order_id, "{}", "issuer", 2_000, 60_000)
            .await
            .unwrap();
        let new_cert = cobble_store::NewCertificate {
            serial: format!("02{i}"),
            pem: "PEM".into(),
            spki_sha256: "00".into(),
            ari_id: format!("ari.get.{i}"),
            not_before_ms: 2_000,
            not_after_ms: 50_000,
        };
        let cert_id = tx
            .finish_issuance(&order_id, "issuer", &new_cert, 2_000)
            .await
            .unwrap()
            .expect("issued");
        tx.commit().await.unwrap();
        let before = store.used_nonce_count().await.unwrap();

        // Found: the same objects as the plain reads.
        let order = store
            .order_redeeming(&order_id, &nonce("o1"))
            .await
            .unwrap();
        let plain = store.order(&order_id).await.unwrap();
        assert_eq!(order, plain, "{engine:?}");
        let authz = store
            .authz_redeeming(&authz_id, &nonce("a1"))
            .await
            .unwrap();
        let plain = store.authz(&authz_id).await.unwrap();
        assert_eq!(authz, plain, "{engine:?}");
        let authz = authz.unwrap();
        assert_eq!(authz.challenges.len(), 1, "{engine:?}");
        // By one of its challenges: the same authorization, plain or redeeming.
        let ch = authz.challenges[0].id.clone();
        let by_ch = store.authz_of_challenge(&ch, None).await.unwrap();
        assert_eq!(by_ch.as_ref(), Some(&authz), "{engine:?}");
        let by_ch = store
            .authz_of_challenge(&ch, Some(&nonce("a3")))
            .await
            .unwrap();
        assert_eq!(by_ch.as_ref(), Some(&authz), "{engine:?}");
        assert!(
            store
                .authz_of_challenge("nope", None)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .authz_of_challenge("nope", Some(&nonce("a4")))
                .await
                .unwrap()
                .is_none()
        );
        let err = store
            .authz_of_challenge(&ch, Some(&nonce("a3")))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NonceReused), "{engine:?} {err:?}");
        let cert = store
            .certificate_redeeming(&cert_id, &nonce("c1"))
            .await
            .unwrap()
            .expect("the certificate");
        assert_eq!(
            (cert.id.as_str(), cert.pem.as_str()),
            (cert_id.as_str(), "PEM")
        );

        // Missing: nothing, and the nonce is used up all the same.
        assert!(
            store
                .order_redeeming("nope", &nonce("o2"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .authz_redeeming("nope", &nonce("a2"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .certificate_redeeming("nope", &nonce("c2"))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store.used_nonce_count().await.unwrap(),
            before + 8,
            "{engine:?}"
        );

        // Used: refused, whichever read it comes with.
        for used in ["o1", "a2", "c1"] {
            let err = store
                .order_redeeming(&order_id, &nonce(used))
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::NonceReused), "{engine:?} {err:?}");
            let err = store
                .authz_redeeming("nope", &nonce(used))
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::NonceReused), "{engine:?} {err:?}");
            let err = store
                .certificate_redeeming(&cert_id, &nonce(used))
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::NonceReused), "{engine:?} {err:?}");
        }
        assert_eq!(
            store.used_nonce_count().await.unwrap(),
            before + 8,
            "{engine:?}"
        );
        // A hot write transaction still begins: the redeeming reads left none open.
        let tx = store.begin_hot_redeeming(&nonce("after")).await.unwrap();
        tx.commit().await.unwrap();
        store.close().await;
    }
}

/// The request shapes that are one statement on PostgreSQL (newOrder, the challenge, the
/// validation's outcome, finalize) change everything or nothing, with their nonce, on every
/// engine: a replayed nonce changes nothing, a state that does not allow the change leaves
/// only the nonce used (an error such as `AlreadyReplaced` may leave it unused: the server
/// uses it up then), and what they make reads back whole.
#[tokio::test]
async fn one_statement_request_shapes_change_all_or_nothing() {
    use cobble_core::challenge::ChallengeType;
    use cobble_core::status::{AuthzStatus, ChallengeStatus, OrderStatus};
    let dir = tempfile::tempdir().unwrap();
    for (i, store) in every_engine(dir.path()).await.into_iter().enumerate() {
        let engine = store.engine();
        let a = new_account_in(&store, "s1").await;
        let orders = async || store.account_order_ids(&a.id, None, 50).await.unwrap().0;

        // newOrder: a new authorization with three challenges beside a reused one, in order.
        let (_, reused) = valid_order(&store, &a.id, "kept.example.com", 1 << 40, 1 << 40).await;
        let fresh = Identifier::from_wire("dns", "fresh.example.com").unwrap();
        let kept = Identifier::from_wire("dns", "kept.example.com").unwrap();
        let new = |replaces: Option<String>| NewOrder {
            identifiers: vec![fresh.clone(), kept.clone()],
            authzs: vec![
                AuthzPlan::New {
                    identifier: fresh.clone(),
                    wildcard: false,
                    challenges: vec![
                        ChallengeType::Http01,
                        ChallengeType::Dns01,
                        ChallengeType::TlsAlpn01,
                    ],
                    expires_ms: 1 << 40,
                },
                AuthzPlan::Reuse(reused.clone()),
            ],
            replaces,
            ..one_name_order(&a.id, "fresh.example.com", 1 << 40, 1 << 40)
        };
        let before = orders().await.len();
        let order_id = store
            .create_order_redeeming(&nonce("s-new"), new(None))
            .await
            .unwrap();
        let order = store.order(&order_id).await.unwrap().unwrap();
        assert_eq!(
            order.identifiers,
            vec![fresh.clone(), kept.clone()],
            "{engine:?}"
        );
        assert_eq!(order.authzs.len(), 2);
        assert_eq!(order.authzs[1].0, reused, "{engine:?}: positions kept");
        let made = store.authz(&order.authzs[0].0).await.unwrap().unwrap();
        assert_eq!(
            (made.identifier.clone(), made.status),
            (fresh.clone(), AuthzStatus::Pending)
        );
        let mut kinds: Vec<_> = made.challenges.iter().map(|c| c.kind).collect();
        kinds.sort_by_key(|k| k.as_str());
        assert_eq!(
            kinds,
            vec![
                ChallengeType::Dns01,
                ChallengeType::Http01,
                ChallengeType::TlsAlpn01
            ]
        );
        assert!(matches!(
            store
                .create_order_redeeming(&nonce("s-new"), new(None))
                .await,
            Err(StoreError::NonceReused)
        ));
        assert_eq!(
            orders().await.len(),
            before + 1,
            "{engine:?}: a replay makes nothing"
        );

        // The challenge: started once; a replay and a second start change nothing.
        let ch = made.challenges[0].id.clone();
        let worker = format!("w{i}");
        let claim = cobble_store::Claim {
            worker: &worker,
            lease_until_ms: 1 << 40,
        };
        assert!(matches!(
            store
                .start_challenge_redeeming(&nonce("s-ch"), &ch, 1_000, 1_000, Some(claim))
                .await,
            Ok(true)
        ));
        assert!(matches!(
            store
                .start_challenge_redeeming(&nonce("s-ch"), &ch, 1_000, 1_000, Some(claim))
                .await,
            Err(StoreError::NonceReused)
        ));
        assert!(
            !store
                .start_challenge_redeeming(&nonce("s-ch2"), &ch, 1_000, 1_000, None)
                .await
                .unwrap(),
            "{engine:?}: already processing"
        );
        assert_eq!(store.validation_jobs_pending().await.unwrap(), 1);

        // The outcome: refused to a worker that does not hold the job, then recorded.
        let outcome = cobble_store::ValidationOutcome {
            status: ChallengeStatus::Valid,
            valid_authz_expires_ms: 1 << 41,
            error: None,
            record: Some("[]".into()),
        };
        assert!(
            !store
                .finish_validation("other", &ch, &outcome, 2_000)
                .await
                .unwrap()
        );
        let still = store.authz(&made.id).await.unwrap().unwrap();
        assert_eq!(still.status, AuthzStatus::Pending, "{engine:?}");
        assert_eq!(still.challenges[0].status, ChallengeStatus::Processing);
        assert!(
            store
                .finish_validation(&worker, &ch, &outcome, 2_000)
                .await
                .unwrap()
        );
        let done = store.authz(&made.id).await.unwrap().unwrap();
        assert_eq!(
            (done.status, done.expires_ms),
            (AuthzStatus::Valid, 1 << 41),
            "{engine:?}"
        );
        let valid = done.challenges.iter().find(|c| c.id == ch).unwrap();
        assert_eq!(
            (valid.status, valid.validated_ms),
            (ChallengeStatus::Valid, Some(2_000))
        );
        assert_eq!(store.validation_jobs_pending().await.unwrap(), 0);

        // finalize: queued once; a replay and a second finalize change nothing more.
        let fin = async |n: &str| {
            store
                .finalize_redeeming(&nonce(n), &order_id, "{}", "f", 3_000, 60_000)
                .await
        };
        assert!(fin("s-fin").await.unwrap(), "{engine:?}");
        assert!(matches!(fin("s-fin").await, Err(StoreError::NonceReused)));
        assert!(
            !fin("s-fin2").await.unwrap(),
            "{engine:?}: processing already"
        );
        assert!(
            matches!(
                store.redeem_nonce(&nonce("s-fin2")).await,
                Err(StoreError::NonceReused)
            ),
            "{engine:?}: a refused finalize's nonce is used up"
        );
        assert_eq!(store.issuance_jobs_pending().await.unwrap(), 1);
        let order = store.order(&order_id).await.unwrap().unwrap();
        assert_eq!(order.stored_status, OrderStatus::Processing);

        // The certificate, then orders that replace it (RFC 9773): the first one only.
        let mut tx = store.begin().await.unwrap();
        let cert = cobble_store::NewCertificate {
            serial: format!("0a{i}"),
            pem: "PEM".into(),
            spki_sha256: "00".into(),
            ari_id: format!("ari.s.{i}"),
            not_before_ms: 3_000,
            not_after_ms: 1 << 40,
        };
        assert!(
            tx.finish_issuance(&order_id, "f", &cert, 3_000)
                .await
                .unwrap()
                .is_some()
        );
        tx.commit().await.unwrap();
        let before = orders().await.len();
        let replacing = store
            .create_order_redeeming(&nonce("s-r1"), new(Some(cert.ari_id.clone())))
            .await
            .unwrap();
        let replaced = store
            .certificate_by_ari_id(&cert.ari_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            replaced.replaced_by.as_deref(),
            Some(replacing.as_str()),
            "{engine:?}"
        );
        assert!(matches!(
            store
                .create_order_redeeming(&nonce("s-r2"), new(Some(cert.ari_id.clone())))
                .await,
            Err(StoreError::AlreadyReplaced)
        ));
        assert_eq!(
            orders().await.len(),
            before + 1,
            "{engine:?}: the second made nothing"
        );
        store.close().await;
    }
}

/// An order of `account` in `processing` (finalized, its issuance job queued).
async fn processing_order(store: &Store, account: &str, name: &str) -> String {
    let (order_id, _) = valid_order(store, account, name, i64::MAX / 4, i64::MAX / 4).await;
    let mut tx = store.begin().await.unwrap();
    assert!(tx.begin_finalize(&order_id, 2_000).await.unwrap());
    tx.enqueue_issuance(&order_id, "{}", "issuer", 2_000, 60_000)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    order_id
}

fn cert_for(serial: &str) -> cobble_store::NewCertificate {
    cobble_store::NewCertificate {
        serial: serial.to_owned(),
        pem: "PEM".into(),
        spki_sha256: "00".into(),
        ari_id: format!("ari.{serial}"),
        not_before_ms: 2_000,
        not_after_ms: 50_000,
    }
}

/// The issuance transaction reads the account's standing where an operator's cascade cannot
/// miss its certificate: a closure committed first is seen; on PostgreSQL, a closure that
/// comes while the issuance holds the account waits for it and then revokes the new
/// certificate too (the ACME account's own revocation, and its external account's).
#[tokio::test]
async fn an_operator_cascade_never_misses_a_certificate_in_flight() {
    use cobble_core::account::AccountStatus;
    use cobble_core::operator::{ExternalAccountStatus, ProfileKind};
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()).await {
        let engine = store.engine();
        let e = engine as u8;
        // Closed first: the issuance sees it.
        let a = new_account_in(&store, &format!("c1-{e}")).await;
        let order_id = processing_order(&store, &a.id, "closed.example.com").await;
        let mut tx = store.begin().await.unwrap();
        tx.revoke_account(&a.id, 5, 3_000).await.unwrap().unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin_hot().await.unwrap();
        let st = tx.issuance_standing(&order_id).await.unwrap().unwrap();
        assert_eq!(st.account_status, AccountStatus::Revoked, "{engine:?}");
        assert_eq!(st.external, None);
        drop(tx);

        let mut tx = store.begin().await.unwrap();
        let kid = tx
            .create_external_account(&cobble_store::NewExternalAccount {
                kid: None,
                hmac_key: None,
                status: ExternalAccountStatus::Valid,
                expires_ms: Some(40_000),
                organization_id: None,
                profile_kind: ProfileKind::Any,
                credits: None,
                contact: vec![],
                domains: vec![],
                now_ms: 1_000,
            })
            .await
            .unwrap();
        let AccountCreated::New(b) = tx
            .create_account(NewAccount {
                external_kid: Some(kid.clone()),
                ..new_account(&format!("c2-{e}"))
            })
            .await
            .unwrap()
        else {
            panic!("a new account");
        };
        tx.commit().await.unwrap();
        let order_b = processing_order(&store, &b.id, "bound.example.com").await;
        let mut tx = store.begin_hot().await.unwrap();
        let st = tx.issuance_standing(&order_b).await.unwrap().unwrap();
        assert_eq!(st.account_status, AccountStatus::Valid);
        let ext = st.external.clone().expect("bound");
        assert_eq!(
            (ext.kid.as_str(), ext.status),
            (kid.as_str(), ExternalAccountStatus::Valid)
        );
        assert_eq!(ext.status_at(40_000), ExternalAccountStatus::Expired);
        if engine != cobble_store::Engine::Postgres {
            // One writer: nothing can come between this read and the commit.
            drop(tx);
            store.close().await;
            continue;
        }

        // PostgreSQL: the closure of the external account comes while the issuance holds
        // the account's row; it waits, and its cascade includes the new certificate.
        let closing = {
            let store = store.clone();
            let kid = kid.clone();
            tokio::spawn(async move {
                let mut tx = store.begin().await.unwrap();
                tx.touch_bound_accounts(&kid, 3_000).await.unwrap();
                let update = cobble_store::ExternalAccountUpdate {
                    status: Some(ExternalAccountStatus::Revoked),
                    ..Default::default()
                };
                assert!(
                    tx.update_external_account(&kid, &update, 3_000)
                        .await
                        .unwrap()
                );
                let n = tx
                    .revoke_external_account_certificates(&kid, 5, 3_000)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                n
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            !closing.is_finished(),
            "the closure did not wait for the issuance"
        );
        let cert_id = tx
            .finish_issuance(&order_b, "issuer", &cert_for("0b0b"), 3_000)
            .await
            .unwrap()
            .expect("issued");
        tx.commit().await.unwrap();
        assert_eq!(
            closing.await.unwrap(),
            1,
            "the cascade missed the certificate"
        );
        let c = store.certificate(&cert_id).await.unwrap().unwrap();
        assert_eq!(c.revoked_reason, Some(5));

        // And the ACME account's own revocation, the same way.
        let c3 = new_account_in(&store, "c3").await;
        let order_c = processing_order(&store, &c3.id, "own.example.com").await;
        let mut tx = store.begin_hot().await.unwrap();
        let st = tx.issuance_standing(&order_c).await.unwrap().unwrap();
        assert_eq!(st.account_status, AccountStatus::Valid);
        let revoking = {
            let store = store.clone();
            let id = c3.id.clone();
            tokio::spawn(async move {
                let mut tx = store.begin().await.unwrap();
                let (_, n) = tx.revoke_account(&id, 5, 3_000).await.unwrap().unwrap();
                tx.commit().await.unwrap();
                n
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            !revoking.is_finished(),
            "the revocation did not wait for the issuance"
        );
        tx.finish_issuance(&order_c, "issuer", &cert_for("0c0c"), 3_000)
            .await
            .unwrap()
            .expect("issued");
        tx.commit().await.unwrap();
        assert_eq!(
            revoking.await.unwrap(),
            1,
            "the cascade missed the certificate"
        );
        store.close().await;
    }
}
