-- Cobble schema 7: rate limits (issue 12). One event per registered domain and one per
-- name set for every certificate issued, counted over sliding windows through an index
-- (no scan of the certificates table); lock rows that make concurrent issuances for the
-- same key take turns, so the count and the new event commit together on every engine.
CREATE TABLE issuance_events (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    account_id TEXT NOT NULL,
    at_ms      BIGINT NOT NULL
);
CREATE INDEX issuance_events_window ON issuance_events (kind, key, at_ms);
CREATE INDEX issuance_events_account ON issuance_events (kind, key, account_id);
CREATE INDEX issuance_events_at ON issuance_events (at_ms);

CREATE TABLE rate_limit_locks (
    key TEXT PRIMARY KEY
);

-- Pending authorizations per account, and failed validations per account and name.
CREATE INDEX authzs_account_status ON authzs (account_id, status, expires_ms);
CREATE INDEX authzs_failed ON authzs (account_id, identifier_value, status, updated_ms);
