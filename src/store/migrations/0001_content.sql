-- Issues and articles as ingest last saw them. Later migrations add
-- subscribers and the delivery ledger (one row per issue and subscriber),
-- which reference issues(id).
CREATE TABLE issues (
    id             INTEGER PRIMARY KEY,
    slug           TEXT NOT NULL UNIQUE,
    title          TEXT NOT NULL,
    issue_date     TEXT NOT NULL,            -- YYYY-MM-DD
    content_hash   TEXT NOT NULL,            -- over issue.toml and every article file
    article_count  INTEGER NOT NULL,
    first_seen_at  TEXT NOT NULL,            -- RFC 3339 UTC: when ingest first saw it
    updated_at     TEXT NOT NULL             -- RFC 3339 UTC: last change of content_hash
);

CREATE TABLE articles (
    id             INTEGER PRIMARY KEY,
    issue_id       INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    slug           TEXT NOT NULL,
    title          TEXT NOT NULL,
    authors        TEXT NOT NULL,            -- JSON array of names
    article_date   TEXT NOT NULL,
    source_path    TEXT NOT NULL,
    content_hash   TEXT NOT NULL,
    first_seen_at  TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (issue_id, slug)
);

-- Small facts between runs, e.g. the fingerprint of the last ingest.
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
