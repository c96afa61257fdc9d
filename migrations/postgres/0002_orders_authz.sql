-- Cobble schema 2: orders, authorizations, challenges and the validation job queue.
-- An order's pending/ready/invalid status is derived from its authorizations on read;
-- the stored status only records what finalization sets (processing, valid, invalid).
CREATE TABLE orders (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    status        TEXT NOT NULL,
    identifiers   TEXT NOT NULL,
    not_before_ms BIGINT,
    not_after_ms  BIGINT,
    expires_ms    BIGINT NOT NULL,
    error         TEXT,
    profile       TEXT,
    created_ms    BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL
);
CREATE INDEX orders_by_account ON orders (account_id, created_ms, id);

CREATE TABLE authzs (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    identifier_type  TEXT NOT NULL,
    identifier_value TEXT NOT NULL,
    wildcard         BIGINT NOT NULL,
    preauth          BIGINT NOT NULL,
    status           TEXT NOT NULL,
    expires_ms       BIGINT NOT NULL,
    created_ms       BIGINT NOT NULL,
    updated_ms       BIGINT NOT NULL
);
CREATE INDEX authzs_for_reuse ON authzs (account_id, identifier_type, identifier_value, status);

CREATE TABLE order_authzs (
    order_id TEXT NOT NULL REFERENCES orders (id),
    authz_id TEXT NOT NULL REFERENCES authzs (id),
    position BIGINT NOT NULL,
    PRIMARY KEY (order_id, authz_id)
);
CREATE INDEX order_authzs_by_authz ON order_authzs (authz_id);

CREATE TABLE challenges (
    id                TEXT PRIMARY KEY,
    authz_id          TEXT NOT NULL REFERENCES authzs (id),
    type              TEXT NOT NULL,
    token             TEXT NOT NULL,
    status            TEXT NOT NULL,
    validated_ms      BIGINT,
    error             TEXT,
    validation_record TEXT,
    UNIQUE (authz_id, type)
);

CREATE TABLE validation_jobs (
    challenge_id   TEXT PRIMARY KEY REFERENCES challenges (id),
    run_after_ms   BIGINT NOT NULL,
    claimed_by     TEXT,
    lease_until_ms BIGINT,
    attempts       BIGINT NOT NULL,
    created_ms     BIGINT NOT NULL
);
CREATE INDEX validation_jobs_due ON validation_jobs (run_after_ms);
