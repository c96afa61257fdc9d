-- Cobble schema 3: certificates, revocation, blocked keys, CRL numbers, ARI replacement.
CREATE TABLE certificates (
    id             TEXT PRIMARY KEY,
    serial         TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    order_id       TEXT NOT NULL REFERENCES orders (id),
    pem            TEXT NOT NULL,
    identifiers    TEXT NOT NULL,
    spki_sha256    TEXT NOT NULL,
    ari_id         TEXT NOT NULL UNIQUE,
    not_before_ms  BIGINT NOT NULL,
    not_after_ms   BIGINT NOT NULL,
    revoked_ms     BIGINT,
    revoked_reason BIGINT,
    replaced_by    TEXT,
    created_ms     BIGINT NOT NULL
);
CREATE INDEX certificates_revoked ON certificates (revoked_ms);

ALTER TABLE orders ADD COLUMN certificate_id TEXT;
ALTER TABLE orders ADD COLUMN replaces TEXT;

CREATE TABLE blocked_keys (
    spki_sha256 TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE crl_numbers (
    issuer TEXT PRIMARY KEY,
    number BIGINT NOT NULL
);
