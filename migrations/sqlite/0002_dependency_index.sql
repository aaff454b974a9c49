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

CREATE TABLE index_packages (
    path      TEXT NOT NULL REFERENCES index_files (path) ON DELETE CASCADE,
    ecosystem TEXT NOT NULL,
    name      TEXT NOT NULL,
    version   TEXT NOT NULL,
    PRIMARY KEY (ecosystem, name, version, path)
);
CREATE INDEX index_packages_path ON index_packages (path);
