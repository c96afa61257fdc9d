-- Cobble schema 10: the lookup of an account's reusable authorization for one identifier
-- (every newOrder makes it, one per name) narrows on the identifier and the expiry in one
-- index. With (account_id, identifier_type, identifier_value, status) alone, SQLite without
-- statistics preferred (account_id, status, expires_ms) and walked every valid authorization
-- of the account, a walk that grows with the account's history.
DROP INDEX authzs_for_reuse;
CREATE INDEX authzs_for_reuse ON authzs (account_id, identifier_type, identifier_value, status, expires_ms);
