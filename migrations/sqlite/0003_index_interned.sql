-- The dependency index, v2: package names interned and rows clustered by file, so a build
-- writes ~3 small integers and a version per component instead of four strings, and
-- replacing a file is a range delete on the primary key instead of a second index.
-- The index is a cache of files on disk: the next `rekey index` rebuilds it.
DROP TABLE index_packages;
DROP TABLE index_files;

CREATE TABLE index_files (
    id         INTEGER PRIMARY KEY,
    path       TEXT NOT NULL UNIQUE,
    size       BIGINT NOT NULL,
    mtime      TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    format     TEXT,
    error      TEXT,
    packages   BIGINT NOT NULL,
    indexed_at TEXT NOT NULL
);

-- Never deleted: an id, once committed, always means the same package.
CREATE TABLE index_names (
    id        INTEGER PRIMARY KEY,
    ecosystem TEXT NOT NULL,
    name      TEXT NOT NULL,
    UNIQUE (ecosystem, name)
);

-- A file's rows are one contiguous key range; the secondary index on `name` carries the
-- primary key, so a lookup is answered from the index alone.
CREATE TABLE index_packages (
    file    INTEGER NOT NULL,
    name    INTEGER NOT NULL,
    version TEXT NOT NULL,
    PRIMARY KEY (file, name, version)
) WITHOUT ROWID;
CREATE INDEX index_packages_name ON index_packages (name);
