-- Cobble schema 1: settings, accounts, used nonces.
-- Timestamps are integer Unix milliseconds, booleans integers, JSON documents text (same meaning as sqlite/).
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    id             TEXT PRIMARY KEY,
    key_thumbprint TEXT NOT NULL UNIQUE,
    jwk            TEXT NOT NULL,
    status         TEXT NOT NULL,
    contact        TEXT NOT NULL,
    tos_agreed     BIGINT NOT NULL,
    initial_ip     TEXT NOT NULL,
    created_ms     BIGINT NOT NULL,
    updated_ms     BIGINT NOT NULL
);

CREATE TABLE used_nonces (
    nonce      TEXT PRIMARY KEY,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX used_nonces_expires ON used_nonces (expires_ms);
