-- The delivery ledger: one row per (issue, subscriber), created when the
-- issue is published, in the same transaction that marks it published.
--
--   queued -> sending -> sent | failed | bounced        (retries go back to queued)
--   queued -> cancelled                                  (subscriber left before it went out)
ALTER TABLE issues ADD COLUMN published_at TEXT;       -- recipients fixed at this time
ALTER TABLE issues ADD COLUMN mail_state TEXT NOT NULL DEFAULT 'unpublished'
    CHECK (mail_state IN ('unpublished', 'published', 'skipped'));
ALTER TABLE issues ADD COLUMN mail_note TEXT;          -- why it was skipped, etc.

-- Issues recorded before delivery existed are not mailed automatically.
UPDATE issues SET mail_state = 'skipped',
    mail_note = 'recorded before gazette sent mail; `gazette issues send SLUG` mails it';

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    issue_id         INTEGER NOT NULL REFERENCES issues(id),
    subscriber_id    INTEGER NOT NULL REFERENCES subscribers(id),
    status           TEXT NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'bounced', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,               -- RFC 3339 UTC, millisecond precision
    last_reply       TEXT,                        -- the server's last answer, or why not sent
    message_id       TEXT,                        -- stable per (issue, subscriber)
    sent_at          TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (issue_id, subscriber_id)
);

CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id);
