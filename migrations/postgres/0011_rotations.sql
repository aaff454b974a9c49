-- Rotation history: one row per credential a run finished (rotated, rolled back, stopped),
-- written when the run ends and rewritten if a resume ends it again. `inventory list`, drill
-- selection, lint and the scorecard read it; timings come from the audit log's step events.
-- `steps_json` holds each step's action, provider, effect and milliseconds: never a value.
CREATE TABLE rotations (
    run_id      TEXT NOT NULL REFERENCES runs (id),
    credential  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    mode        TEXT NOT NULL,
    simulated   BOOLEAN NOT NULL,
    outcome     TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    human_ms    BIGINT NOT NULL,
    steps_json  TEXT NOT NULL,
    PRIMARY KEY (run_id, credential)
);
CREATE INDEX rotations_credential ON rotations (credential, finished_at);
