-- Sign-up from the web (double opt-in) and each subscriber's preferences.

-- How a subscriber wants the digest: multipart text + HTML, or plain text only.
ALTER TABLE subscribers ADD COLUMN format TEXT NOT NULL DEFAULT 'html'
    CHECK (format IN ('html', 'text'));

-- Outstanding confirmation links. Separate from the subscriber's permanent
-- token (the one in every digest's unsubscribe and preferences links), so a
-- confirmation link can expire and be used once without touching that one.
-- Only a hash of the link's token is kept: a copy of the database does not
-- let anyone confirm an address. Rows go when they are used (with every
-- other row of the subscriber) and are pruned once expired.
CREATE TABLE confirmations (
    id             INTEGER PRIMARY KEY,
    subscriber_id  INTEGER NOT NULL REFERENCES subscribers(id),
    token_hash     TEXT NOT NULL UNIQUE,      -- blake3 hex of the token in the link
    name           TEXT,                      -- the name given with the request, applied on confirmation
    created_at     TEXT NOT NULL,             -- RFC 3339 UTC, seconds
    expires_at     TEXT NOT NULL              -- same format: text order is time order
);
CREATE INDEX confirmations_by_subscriber ON confirmations (subscriber_id);
CREATE INDEX confirmations_by_expiry ON confirmations (expires_at);

-- Every sign-up request that mailed an address (a confirmation, or a notice
-- to an address that is already active), for the per-address daily limit:
-- the web form must not become a way to flood someone's mailbox. Rows older
-- than a day are pruned.
CREATE TABLE signup_mails (
    subscriber_id  INTEGER NOT NULL REFERENCES subscribers(id),
    sent_at        TEXT NOT NULL
);
CREATE INDEX signup_mails_by_subscriber ON signup_mails (subscriber_id, sent_at);
CREATE INDEX signup_mails_by_time ON signup_mails (sent_at);
