-- Cobble schema 9: fewer index entries written per order (issue 10).
--
-- Used nonces are keyed by (expiry, nonce) in one index: inserts land at its end (nonces
-- expire in the order they are made), pruning deletes a prefix, and the separate expiry
-- index goes. A nonce seals its expiry, so the pair is as unique as the nonce alone.
ALTER TABLE used_nonces DROP CONSTRAINT used_nonces_pkey;
DROP INDEX used_nonces_expires;
ALTER TABLE used_nonces ADD PRIMARY KEY (expires_ms, nonce);

-- Only revoked certificates are looked up by revocation time (the CRL), and only failed
-- authorizations by failure time (the failed-validation limit): issuing a certificate and
-- validating an authorization no longer touch those indexes.
DROP INDEX certificates_revoked;
CREATE INDEX certificates_revoked ON certificates (revoked_ms) WHERE revoked_ms IS NOT NULL;
DROP INDEX authzs_failed;
CREATE INDEX authzs_failed ON authzs (account_id, identifier_value, updated_ms) WHERE status = 'invalid';
