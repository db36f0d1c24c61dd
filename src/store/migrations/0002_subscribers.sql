-- Subscribers: who gets the digest. Rows are never deleted: an unsubscribed
-- or bounced subscriber keeps their row, so the delivery ledger (0003,
-- deliveries.subscriber_id REFERENCES subscribers(id)) keeps its history and
-- an import cannot quietly re-subscribe them.
CREATE TABLE subscribers (
    id               INTEGER PRIMARY KEY,
    email            TEXT NOT NULL,             -- as given, domain lowercased
    email_key        TEXT NOT NULL UNIQUE,      -- the whole address lowercased (Unicode): uniqueness ignores case
    name             TEXT,                      -- display name, NULL when none
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced')),
    token            TEXT NOT NULL UNIQUE,      -- 43 chars of URL-safe base64 (256 random bits)
    created_at       TEXT NOT NULL,             -- RFC 3339 UTC
    confirmed_at     TEXT,                      -- when they became active
    unsubscribed_at  TEXT,                      -- when they last left (NULL while subscribed)
    bounced_at       TEXT,                      -- when a permanent failure marked the address dead
    updated_at       TEXT NOT NULL
);

-- Listing in sign-up order, all or by status (and "every active subscriber"
-- when an issue is published).
CREATE INDEX subscribers_by_created ON subscribers (created_at, id);
CREATE INDEX subscribers_by_status ON subscribers (status, created_at, id);
