-- Cobble schema 8: rate-limit overrides made through the admin API (issue 12), and the
-- request-rate buckets of the fleet-wide mode (one GCRA state per class and client address,
-- shared by every instance on the database).
CREATE TABLE rate_limit_overrides (
    scope       TEXT NOT NULL,
    subject     TEXT NOT NULL,
    limit_name  TEXT NOT NULL,
    count       INTEGER,
    window_secs INTEGER,
    enabled     INTEGER NOT NULL,
    comment     TEXT,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (scope, subject, limit_name)
);

CREATE TABLE request_buckets (
    key     TEXT PRIMARY KEY,
    tat_us  INTEGER NOT NULL,
    allowed INTEGER NOT NULL
);
CREATE INDEX request_buckets_tat ON request_buckets (tat_us);
