//! Status machines for orders, authorizations and challenges (RFC 8555 §7.1.6): one
//! function per object, tested as tables.

/// Declares a status enum with its wire names.
macro_rules! status_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $(#[doc = $text] $variant),* }
        impl $name {
            /// The wire and database name.
            pub fn as_str(self) -> &'static str { match self { $(Self::$variant => $text),* } }
            /// Parses a wire or database name.
            pub fn parse(s: &str) -> Option<Self> { match s { $($text => Some(Self::$variant),)* _ => None } }
        }
    };
}

status_enum!(
    /// A challenge's status.
    ChallengeStatus { Pending = "pending", Processing = "processing", Valid = "valid", Invalid = "invalid" }
);
status_enum!(
    /// An authorization's status.
    AuthzStatus { Pending = "pending", Valid = "valid", Invalid = "invalid", Deactivated = "deactivated", Expired = "expired", Revoked = "revoked" }
);
status_enum!(
    /// An order's status.
    OrderStatus { Pending = "pending", Ready = "ready", Processing = "processing", Valid = "valid", Invalid = "invalid" }
);

impl AuthzStatus {
    /// The status as of `now_ms`: pending and valid authorizations past `expires_ms` are expired (§7.1.6).
    pub fn at(self, expires_ms: i64, now_ms: i64) -> Self {
        match self {
            AuthzStatus::Pending | AuthzStatus::Valid if now_ms > expires_ms => {
                AuthzStatus::Expired
            }
            s => s,
        }
    }

    /// The authorization's status after one of its challenges reached `challenge` (§7.1.6).
    pub fn after_challenge(self, challenge: ChallengeStatus) -> Self {
        match (self, challenge) {
            (AuthzStatus::Pending, ChallengeStatus::Valid) => AuthzStatus::Valid,
            (AuthzStatus::Pending, ChallengeStatus::Invalid) => AuthzStatus::Invalid,
            (s, _) => s,
        }
    }
}

impl OrderStatus {
    /// An order's status derived from its stored status, its authorizations' current
    /// statuses and its expiry (§7.1.6). `processing` and `valid` come from finalization only.
    pub fn derive(
        stored: OrderStatus,
        authzs: &[AuthzStatus],
        expires_ms: i64,
        now_ms: i64,
    ) -> OrderStatus {
        match stored {
            OrderStatus::Valid | OrderStatus::Invalid | OrderStatus::Processing => return stored,
            _ => {}
        }
        if now_ms > expires_ms {
            return OrderStatus::Invalid;
        }
        if authzs.iter().any(|a| {
            matches!(
                a,
                AuthzStatus::Invalid
                    | AuthzStatus::Deactivated
                    | AuthzStatus::Expired
                    | AuthzStatus::Revoked
            )
        }) {
            return OrderStatus::Invalid;
        }
        if !authzs.is_empty() && authzs.iter().all(|a| *a == AuthzStatus::Valid) {
            OrderStatus::Ready
        } else {
            OrderStatus::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AuthzStatus as A;
    use super::ChallengeStatus as C;
    use super::OrderStatus as O;

    #[test]
    fn order_status_table() {
        // (stored, authzs, expires, now, want) — RFC 8555 §7.1.6.
        let rows: &[(O, &[A], i64, i64, O)] = &[
            (O::Pending, &[A::Pending], 10, 5, O::Pending),
            (O::Pending, &[A::Valid, A::Pending], 10, 5, O::Pending),
            (O::Pending, &[A::Valid, A::Valid], 10, 5, O::Ready),
            (O::Ready, &[A::Valid], 10, 5, O::Ready),
            (O::Pending, &[A::Valid, A::Invalid], 10, 5, O::Invalid),
            (O::Pending, &[A::Deactivated], 10, 5, O::Invalid),
            (O::Pending, &[A::Expired], 10, 5, O::Invalid),
            (O::Pending, &[A::Revoked], 10, 5, O::Invalid),
            (O::Pending, &[A::Valid], 10, 11, O::Invalid),
            (O::Ready, &[A::Valid], 10, 11, O::Invalid),
            (O::Processing, &[A::Valid], 10, 11, O::Processing),
            (O::Valid, &[A::Valid], 10, 11, O::Valid),
            (O::Invalid, &[A::Valid], 10, 5, O::Invalid),
            (O::Pending, &[], 10, 5, O::Pending),
        ];
        for (stored, authzs, exp, now, want) in rows {
            assert_eq!(
                O::derive(*stored, authzs, *exp, *now),
                *want,
                "{stored:?} {authzs:?} exp={exp} now={now}"
            );
        }
    }

    #[test]
    fn authz_status_table() {
        let rows = [
            (A::Pending, C::Valid, A::Valid),
            (A::Pending, C::Invalid, A::Invalid),
            (A::Pending, C::Processing, A::Pending),
            (A::Valid, C::Invalid, A::Valid),
            (A::Deactivated, C::Valid, A::Deactivated),
        ];
        for (from, ch, want) in rows {
            assert_eq!(from.after_challenge(ch), want, "{from:?} + {ch:?}");
        }
        assert_eq!(A::Pending.at(10, 11), A::Expired);
        assert_eq!(A::Valid.at(10, 11), A::Expired);
        assert_eq!(A::Valid.at(10, 10), A::Valid);
        assert_eq!(A::Invalid.at(10, 11), A::Invalid);
        for s in [
            A::Pending,
            A::Valid,
            A::Invalid,
            A::Deactivated,
            A::Expired,
            A::Revoked,
        ] {
            assert_eq!(A::parse(s.as_str()), Some(s));
        }
    }
}
