-- The dependency index: what each SBOM or lockfile contains, so that an advisory is a lookup
-- instead of a rescan. A file is re-read only when its size, mtime or hash changed.
CREATE TABLE index_files (
    path       TEXT PRIMARY KEY,
    size       BIGINT NOT NULL,
    mtime      TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    format     TEXT,
    error      TEXT,
    packages   BIGINT NOT NULL,
    indexed_at TEXT NOT NULL
);

-- Rows are written and deleted per file by rekey (readers deduplicate), so two lean
-- indexes serve both access paths: lookups by package, and replacing a file.
CREATE TABLE index_packages (
    path      TEXT NOT NULL,
    ecosystem TEXT NOT NULL,
    name      TEXT NOT NULL,
    version   TEXT NOT NULL
);
CREATE INDEX index_packages_name ON index_packages (ecosystem, name);
CREATE INDEX index_packages_path ON index_packages (path);
