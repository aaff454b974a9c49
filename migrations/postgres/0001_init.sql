-- rekey state store (PostgreSQL). Keep in step with migrations/sqlite.
CREATE TABLE runs (
    id           TEXT PRIMARY KEY,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    mode         TEXT NOT NULL,
    reason       TEXT,
    actor        TEXT NOT NULL,
    simulated    BOOLEAN NOT NULL,
    status       TEXT NOT NULL,
    message      TEXT,
    plan_json    TEXT NOT NULL,
    options_json TEXT NOT NULL
);

CREATE TABLE steps (
    run_id       TEXT NOT NULL REFERENCES runs (id),
    idx          BIGINT NOT NULL,
    step_id      TEXT NOT NULL,
    credential   TEXT NOT NULL,
    state        TEXT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    outputs_json TEXT,
    error        TEXT,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (run_id, idx)
);

-- One active run per credential: the primary key is the lock.
CREATE TABLE credential_locks (
    credential  TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs (id),
    acquired_at TEXT NOT NULL
);

-- Append-only, hash-chained.
CREATE TABLE audit_events (
    seq         BIGINT PRIMARY KEY,
    at          TEXT NOT NULL,
    run_id      TEXT,
    actor       TEXT NOT NULL,
    reason      TEXT,
    credential  TEXT,
    step        TEXT,
    action      TEXT,
    event       TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT,
    fingerprint TEXT,
    simulated   BOOLEAN NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_events_run ON audit_events (run_id, seq);
