-- Named counters shared by every instance on the database. 'revocation_generation' grows
-- with every revocation, so that any instance can tell its cached CRL is out of date.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

-- Issuance jobs (finalize): claimed under a lease like validation jobs, so an order left in
-- 'processing' by a dead instance is finished by another or by the restarted one.
CREATE TABLE issuance_jobs (
    order_id       TEXT PRIMARY KEY REFERENCES orders (id),
    request        TEXT NOT NULL,
    run_after_ms   BIGINT NOT NULL,
    claimed_by     TEXT,
    lease_until_ms BIGINT,
    attempts       BIGINT NOT NULL DEFAULT 0,
    created_ms     BIGINT NOT NULL
);
CREATE INDEX issuance_jobs_due ON issuance_jobs (run_after_ms);

-- One certificate per order, whatever the races between instances.
CREATE UNIQUE INDEX certificates_one_per_order ON certificates (order_id);
