-- Cobble schema 6: the operator's records (issue 11). Organizations and their documents,
-- external accounts (EAB keys) with domain lists and credits, the approval state and
-- lifetime of ACME accounts, and the audit log of every operator change.
CREATE TABLE organizations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    status     TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);

CREATE TABLE organization_documents (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    kind            TEXT NOT NULL,
    valid_until_ms  INTEGER NOT NULL,
    file_name       TEXT,
    created_ms      INTEGER NOT NULL
);
CREATE INDEX organization_documents_org ON organization_documents (organization_id);

CREATE TABLE external_accounts (
    kid             TEXT PRIMARY KEY,
    hmac_key        TEXT NOT NULL,
    status          TEXT NOT NULL,
    expires_ms      INTEGER,
    organization_id TEXT REFERENCES organizations (id),
    profile_kind    TEXT NOT NULL,
    credits         INTEGER,
    contact         TEXT NOT NULL,
    bindings        INTEGER NOT NULL DEFAULT 0,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
);
CREATE INDEX external_accounts_org ON external_accounts (organization_id);

CREATE TABLE external_account_domains (
    kid        TEXT NOT NULL REFERENCES external_accounts (kid),
    name       TEXT NOT NULL,
    authorized INTEGER NOT NULL,
    PRIMARY KEY (kid, name)
);
CREATE INDEX external_account_domains_name ON external_account_domains (name);

ALTER TABLE accounts ADD COLUMN external_kid TEXT REFERENCES external_accounts (kid);
ALTER TABLE accounts ADD COLUMN approval TEXT NOT NULL DEFAULT 'approved';
ALTER TABLE accounts ADD COLUMN expires_ms INTEGER;
CREATE INDEX accounts_external ON accounts (external_kid);
CREATE INDEX certificates_account ON certificates (account_id);

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms  INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    before TEXT,
    after  TEXT
);
