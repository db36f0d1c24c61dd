-- The admin console's subscriber pages at a million rows: search, keyset
-- listing by status, and each subscriber's history.

-- Search by any piece of the address or the name, any case, beyond ASCII.
-- A trigram index finds a substring of 3 characters or more without
-- reading every row. External content: the text stays in `subscribers`
-- only, the index holds trigrams and row ids. `trigram` folds case
-- through Unicode (case_sensitive 0) and keeps diacritics, so "ÉMILE"
-- finds "émile" but "emile" does not.
CREATE VIRTUAL TABLE subscribers_fts USING fts5(
    email_key, name,
    content = 'subscribers', content_rowid = 'id',
    tokenize = 'trigram'
);

-- An erasure rewrites email_key and name: the old trigrams must go from
-- the index pages too, not only be marked deleted in a newer segment
-- (SQLite's secure_delete pragma zeroes free pages, but an FTS5 delete
-- marker would leave the old entry in a live page until a merge).
INSERT INTO subscribers_fts (subscribers_fts, rank) VALUES ('secure-delete', 1);

-- Kept in step by triggers, so every path that writes subscribers (imports,
-- sign-up, erasure, normalization at open) keeps the index right. An
-- external-content delete must be given the values that were indexed: the
-- old row's.
CREATE TRIGGER subscribers_fts_insert AFTER INSERT ON subscribers BEGIN
    INSERT INTO subscribers_fts (rowid, email_key, name) VALUES (NEW.id, NEW.email_key, NEW.name);
END;
CREATE TRIGGER subscribers_fts_update AFTER UPDATE OF email_key, name ON subscribers BEGIN
    INSERT INTO subscribers_fts (subscribers_fts, rowid, email_key, name)
        VALUES ('delete', OLD.id, OLD.email_key, OLD.name);
    INSERT INTO subscribers_fts (rowid, email_key, name) VALUES (NEW.id, NEW.email_key, NEW.name);
END;
CREATE TRIGGER subscribers_fts_delete AFTER DELETE ON subscribers BEGIN
    INSERT INTO subscribers_fts (subscribers_fts, rowid, email_key, name)
        VALUES ('delete', OLD.id, OLD.email_key, OLD.name);
END;

-- The rows already there.
INSERT INTO subscribers_fts (subscribers_fts) VALUES ('rebuild');

-- Keyset listing: `status = ? AND id > ? ORDER BY id` walks this index in
-- order and stops after a page (0002's index is by sign-up time). Only rows
-- that are listed (not erased), so counting one status reads this index
-- alone.
CREATE INDEX subscribers_listed_by_status ON subscribers (status, id) WHERE erased_at IS NULL;

-- Every change of a subscriber's status, whichever path made it (the
-- console or the API, a sign-up confirmation, an unsubscribe link, a
-- bounce or complaint): one trigger instead of a call in each of them.
CREATE TABLE subscriber_events (
    id             INTEGER PRIMARY KEY,
    subscriber_id  INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    at             TEXT NOT NULL,      -- RFC 3339 UTC, seconds (the store's `stamp`)
    from_status    TEXT NOT NULL,
    to_status      TEXT NOT NULL
);
CREATE INDEX subscriber_events_by_subscriber ON subscriber_events (subscriber_id, id);

CREATE TRIGGER subscribers_status_event AFTER UPDATE OF status ON subscribers
WHEN OLD.status IS NOT NEW.status
BEGIN
    INSERT INTO subscriber_events (subscriber_id, at, from_status, to_status)
    VALUES (NEW.id, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), OLD.status, NEW.status);
END;

-- How many listed (not erased) subscribers have each status, kept by
-- triggers: counting a status of a million rows reads most of an index
-- (tens of milliseconds) on every page of the console and the dashboard;
-- this is one row. The triggers run in the transaction that changes the
-- row, so the counts are never out of step with the rows.
CREATE TABLE subscriber_counts (
    status  TEXT PRIMARY KEY,
    n       INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO subscriber_counts (status, n)
    SELECT s.status, (SELECT COUNT(*) FROM subscribers x WHERE x.status = s.status AND x.erased_at IS NULL)
    FROM (SELECT 'pending' AS status UNION ALL SELECT 'active' UNION ALL SELECT 'unsubscribed'
          UNION ALL SELECT 'bounced') s;

CREATE TRIGGER subscriber_counts_insert AFTER INSERT ON subscribers
WHEN NEW.erased_at IS NULL
BEGIN
    UPDATE subscriber_counts SET n = n + 1 WHERE status = NEW.status;
END;
CREATE TRIGGER subscriber_counts_update AFTER UPDATE OF status, erased_at ON subscribers
WHEN OLD.status IS NOT NEW.status OR (OLD.erased_at IS NULL) IS NOT (NEW.erased_at IS NULL)
BEGIN
    UPDATE subscriber_counts SET n = n - 1 WHERE status = OLD.status AND OLD.erased_at IS NULL;
    UPDATE subscriber_counts SET n = n + 1 WHERE status = NEW.status AND NEW.erased_at IS NULL;
END;
CREATE TRIGGER subscriber_counts_delete AFTER DELETE ON subscribers
WHEN OLD.erased_at IS NULL
BEGIN
    UPDATE subscriber_counts SET n = n - 1 WHERE status = OLD.status;
END;
