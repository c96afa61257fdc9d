-- Indexes for pruning past the retention period, so that housekeeping never scans a table.
CREATE INDEX orders_expires ON orders (expires_ms);
CREATE INDEX authzs_expires ON authzs (expires_ms);
CREATE INDEX certificates_not_after ON certificates (not_after_ms);
CREATE INDEX challenges_by_authz ON challenges (authz_id);
