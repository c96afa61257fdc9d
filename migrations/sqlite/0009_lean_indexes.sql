-- Cobble schema 9: fewer B-tree pages written per order (issue 10). Every commit writes each
-- page it changed to the WAL, and an order commits about ten times.
--
-- Used nonces are keyed by (expiry, nonce) in one B-tree: inserts land at the end (nonces
-- expire in the order they are made), pruning deletes a prefix, and the separate expiry
-- index goes. A nonce seals its expiry, so the pair is as unique as the nonce alone.
CREATE TABLE used_nonces_by_expiry (
    expires_ms INTEGER NOT NULL,
    nonce      TEXT NOT NULL,
    PRIMARY KEY (expires_ms, nonce)
) WITHOUT ROWID;
INSERT INTO used_nonces_by_expiry (expires_ms, nonce) SELECT expires_ms, nonce FROM used_nonces;
DROP TABLE used_nonces;
ALTER TABLE used_nonces_by_expiry RENAME TO used_nonces;

-- Only revoked certificates are looked up by revocation time (the CRL), and only failed
-- authorizations by failure time (the failed-validation limit): issuing a certificate and
-- validating an authorization no longer touch those indexes.
DROP INDEX certificates_revoked;
CREATE INDEX certificates_revoked ON certificates (revoked_ms) WHERE revoked_ms IS NOT NULL;
DROP INDEX authzs_failed;
CREATE INDEX authzs_failed ON authzs (account_id, identifier_value, updated_ms) WHERE status = 'invalid';
