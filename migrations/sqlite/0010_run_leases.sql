-- One process drives a run at a time: the owner lease. `holder` is unique per process;
-- `host` and `pid` let a process on the same host take over at once from a holder that died;
-- `expires_ms` (Unix milliseconds) is pushed forward by the holder's heartbeat.
CREATE TABLE run_leases (
    run_id     TEXT PRIMARY KEY REFERENCES runs (id),
    holder     TEXT NOT NULL,
    host       TEXT NOT NULL,
    pid        BIGINT NOT NULL,
    renewed_at TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
