-- Cobble schema 1: settings, accounts, used nonces.
-- Timestamps are integer Unix milliseconds, booleans integers, JSON documents text (same meaning as postgres/).
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
    tos_agreed     INTEGER NOT NULL,
    initial_ip     TEXT NOT NULL,
    created_ms     INTEGER NOT NULL,
    updated_ms     INTEGER NOT NULL
);

CREATE TABLE used_nonces (
    nonce      TEXT PRIMARY KEY,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX used_nonces_expires ON used_nonces (expires_ms);
