//! The implementation of every catalogue entry, by id. Each check is an async function of
//! the run's [`Ctx`] returning a [`Verdict`].

use crate::client::Verdict;
use crate::ctx::Ctx;
use std::future::Future;
use std::pin::Pin;

mod account;
mod ari;
mod authz;
mod caa;
mod cert;
mod directory;
mod eab;
mod finalize;
mod ip;
mod jws;
mod key_change;
mod nonce;
mod order;
mod preauth;
mod problem;
mod revoke;
mod robust;
pub(crate) mod util;

/// A boxed check future.
pub type BoxFut<'a> = Pin<Box<dyn Future<Output = Verdict> + Send + 'a>>;
/// A check.
pub type CheckFn = for<'a> fn(&'a Ctx) -> BoxFut<'a>;

macro_rules! registry {
    ($($id:literal => $f:path),* $(,)?) => {
        /// Every implemented check, by catalogue id.
        pub fn registry() -> Vec<(&'static str, CheckFn)> {
            vec![$(($id, {
                fn wrap(c: &Ctx) -> BoxFut<'_> { Box::pin($f(c)) }
                wrap as CheckFn
            })),*]
        }
    };
}

registry! {
    "dir.get-json" => directory::get_json,
    "dir.required-urls" => directory::required_urls,
    "dir.meta-types" => directory::meta_types,
    "dir.post-as-get" => directory::post_as_get,
    "dir.no-auth-needed" => directory::no_auth_needed,
    "nonce.head-200" => nonce::head_200,
    "nonce.get-204" => nonce::get_204,
    "nonce.cache-control" => nonce::cache_control,
    "nonce.syntax" => nonce::syntax,
    "nonce.unique" => nonce::unique,
    "nonce.post-as-get" => nonce::post_as_get,
    "nonce.index-link" => nonce::index_link,
    "nonce.replay" => nonce::replay,
    "nonce.unknown" => nonce::unknown,
    "nonce.missing" => nonce::missing,
    "nonce.bad-nonce-fresh" => nonce::bad_nonce_fresh,
    "nonce.success-carries-nonce" => nonce::success_carries_nonce,
    "nonce.error-carries-nonce" => nonce::error_carries_nonce,
    "nonce.expired" => nonce::expired,
    "jws.content-type" => jws::content_type,
    "jws.compact" => jws::compact,
    "jws.general" => jws::general,
    "jws.unprotected-header" => jws::unprotected_header,
    "jws.alg-none" => jws::alg_none,
    "jws.alg-hs256" => jws::alg_hs256,
    "jws.alg-unknown" => jws::alg_unknown,
    "jws.alg-key-mismatch" => jws::alg_key_mismatch,
    "jws.bad-alg-lists-algorithms" => jws::bad_alg_lists_algorithms,
    "jws.jwk-and-kid" => jws::jwk_and_kid,
    "jws.neither-jwk-nor-kid" => jws::neither_jwk_nor_kid,
    "jws.kid-on-new-account" => jws::kid_on_new_account,
    "jws.jwk-on-account-resource" => jws::jwk_on_account_resource,
    "jws.url-missing" => jws::url_missing,
    "jws.url-mismatch" => jws::url_mismatch,
    "jws.bad-signature" => jws::bad_signature,
    "jws.payload-not-json" => jws::payload_not_json,
    "jws.payload-not-object" => jws::payload_not_object,
    "jws.unknown-kid" => jws::unknown_kid,
    "jws.get-refused" => jws::get_refused,
    "acct.create" => account::create,
    "acct.fields" => account::fields,
    "acct.existing-key" => account::existing_key,
    "acct.only-return-existing-unknown" => account::only_return_existing_unknown,
    "acct.only-return-existing-known" => account::only_return_existing_known,
    "acct.contact-unsupported-scheme" => account::contact_unsupported_scheme,
    "acct.contact-invalid-mailto" => account::contact_invalid_mailto,
    "acct.contact-not-array" => account::contact_not_array,
    "acct.terms" => account::terms,
    "acct.post-as-get" => account::post_as_get,
    "acct.update-contact" => account::update_contact,
    "acct.update-terms-only" => account::update_terms_only,
    "acct.update-ignores-orders" => account::update_ignores_orders,
    "acct.other-account" => account::other_account,
    "acct.orders-list" => account::orders_list,
    "acct.deactivate" => account::deactivate,
    "acct.deactivated-refused" => account::deactivated_refused,
    "acct.deactivated-new-order" => account::deactivated_new_order,
    "eab.required" => eab::required,
    "eab.success" => eab::success,
    "eab.bad-mac" => eab::bad_mac,
    "eab.other-key" => eab::other_key,
    "eab.url-mismatch" => eab::url_mismatch,
    "kc.rollover" => key_change::rollover,
    "kc.inner-nonce" => key_change::inner_nonce,
    "kc.inner-url" => key_change::inner_url,
    "kc.inner-kid" => key_change::inner_kid,
    "kc.inner-signature" => key_change::inner_signature,
    "kc.wrong-old-key" => key_change::wrong_old_key,
    "kc.wrong-account" => key_change::wrong_account,
    "kc.key-in-use" => key_change::key_in_use,
    "kc.key-in-use-409" => key_change::key_in_use_409,
    "order.create" => order::create,
    "order.fields" => order::fields,
    "order.post-as-get" => order::post_as_get,
    "order.empty-identifiers" => order::empty_identifiers,
    "order.missing-identifiers" => order::missing_identifiers,
    "order.unsupported-type" => order::unsupported_type,
    "order.rejected-name" => order::rejected_name,
    "order.subproblems" => order::subproblems,
    "order.no-top-level-identifier" => order::no_top_level_identifier,
    "order.wildcard" => order::wildcard,
    "order.ip" => order::ip,
    "order.ip-no-dns01" => order::ip_no_dns01,
    "order.validity-fields" => order::validity_fields,
    "order.in-orders-list" => order::in_orders_list,
    "order.ip-http01" => ip::http01_valid,
    "order.ip-tlsalpn01" => ip::tlsalpn01_valid,
    "preauth.create" => preauth::create,
    "preauth.wildcard-refused" => preauth::wildcard_refused,
    "preauth.used-by-order" => preauth::used_by_order,
    "profile.meta" => preauth::meta_shape,
    "profile.listed-accepted" => preauth::listed_accepted,
    "profile.unknown-refused" => preauth::unknown_refused,
    "authz.fields" => authz::fields,
    "authz.token-syntax" => authz::token_syntax,
    "authz.challenge-post-as-get" => authz::challenge_post_as_get,
    "authz.other-account" => authz::other_account,
    "authz.http01-valid" => authz::http01_valid,
    "authz.http01-wrong" => authz::http01_wrong,
    "authz.dns01-valid" => authz::dns01_valid,
    "authz.dns01-wrong" => authz::dns01_wrong,
    "authz.tlsalpn01-valid" => authz::tlsalpn01_valid,
    "authz.tlsalpn01-wrong" => authz::tlsalpn01_wrong,
    "authz.invalid-order-invalid" => authz::invalid_order_invalid,
    "authz.retry-after" => authz::retry_after,
    "authz.challenge-retry-after" => authz::challenge_retry_after,
    "authz.deactivate" => authz::deactivate,
    "authz.deactivated-order-invalid" => authz::deactivated_order_invalid,
    "caa.other-ca" => caa::other_ca,
    "caa.no-ca" => caa::no_ca,
    "caa.this-ca" => caa::this_ca,
    "caa.tree-climbing" => caa::tree_climbing,
    "caa.critical-unknown" => caa::critical_unknown,
    "caa.accounturi-mismatch" => caa::accounturi_mismatch,
    "caa.accounturi-match" => caa::accounturi_match,
    "caa.validationmethods-mismatch" => caa::validationmethods_mismatch,
    "caa.validationmethods-match" => caa::validationmethods_match,
    "caa.issuewild-forbids" => caa::issuewild_forbids,
    "caa.issuewild-permits" => caa::issuewild_permits,
    "fin.not-ready" => finalize::not_ready,
    "fin.csr-garbage" => finalize::csr_garbage,
    "fin.csr-missing" => finalize::csr_missing,
    "fin.csr-other-name" => finalize::csr_other_name,
    "fin.csr-extra-name" => finalize::csr_extra_name,
    "fin.csr-missing-name" => finalize::csr_missing_name,
    "fin.csr-names-badcsr" => finalize::csr_names_badcsr,
    "fin.csr-bad-signature" => finalize::csr_bad_signature,
    "fin.csr-account-key" => finalize::csr_account_key,
    "fin.csr-rsa-1024" => finalize::csr_rsa_1024,
    "fin.csr-sha1" => finalize::csr_sha1,
    "fin.csr-no-names" => finalize::csr_no_names,
    "fin.csr-cn-other" => finalize::csr_cn_other,
    "fin.csr-cn-only" => finalize::csr_cn_only,
    "fin.success" => finalize::success,
    "fin.again" => finalize::again,
    "fin.ip-issued" => ip::issued,
    "cert.media-type" => cert::media_type,
    "cert.leaf-names" => cert::leaf_names,
    "cert.chain-order" => cert::chain_order,
    "cert.links" => cert::links,
    "cert.alternate-same-leaf" => cert::alternate_same_leaf,
    "cert.other-account" => cert::other_account,
    "cert.chain-to-root" => cert::chain_to_root,
    "rev.by-account" => revoke::by_account,
    "rev.already-revoked" => revoke::already_revoked,
    "rev.by-cert-key" => revoke::by_cert_key,
    "rev.by-authz-holder" => revoke::by_authz_holder,
    "rev.unrelated-account" => revoke::unrelated_account,
    "rev.bad-reason" => revoke::bad_reason,
    "rev.reason-accepted" => revoke::reason_accepted,
    "rev.reason-ca-compromise" => revoke::reason_ca_compromise,
    "rev.reason-certificate-hold" => revoke::reason_certificate_hold,
    "rev.reason-out-of-range" => revoke::reason_out_of_range,
    "rev.cert-key-wrong-key" => revoke::cert_key_wrong_key,
    "ari.renewal-info" => revoke::ari_renewal_info,
    "ari.unknown" => revoke::ari_unknown,
    "ari.replaces-reflected" => ari::replaces_reflected,
    "ari.already-replaced" => ari::already_replaced,
    "ari.replaces-other-account" => ari::replaces_other_account,
    "ari.replaces-unknown" => ari::replaces_unknown,
    "robust.malformed-bodies" => robust::malformed_bodies,
    "robust.big-body-http1" => robust::big_body_http1,
    "robust.big-body-http2" => robust::big_body_http2,
    "robust.unknown-revoke" => robust::unknown_revoke,
    "prob.media-type" => problem::media_type,
    "prob.registered-type" => problem::registered_type,
    "prob.status-member" => problem::status_member,
    "prob.detail" => problem::detail,
    "robust.no-5xx" => problem::no_5xx,
}
