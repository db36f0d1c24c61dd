-- Returned mail (bounces, complaints, mailto unsubscribes): `inbound`.
--
-- The VERP key: every envelope sender's TAG (`mail.bounce_address`) carries
-- a MAC made with it, so that a forged or altered TAG names nothing. Random
-- per database, like the suppression key.
INSERT INTO meta (key, value) VALUES ('verp_key', lower(hex(randomblob(32))))
    ON CONFLICT (key) DO NOTHING;

-- One row per processed message, with what gazette decided. `digest` makes
-- each message count once: a second import of the same folder, or an MTA
-- that sends a message again after a lost reply, changes nothing.
CREATE TABLE inbound (
    id             INTEGER PRIMARY KEY,
    received_at    TEXT NOT NULL,                 -- RFC 3339 UTC, millisecond precision
    via            TEXT NOT NULL CHECK (via IN ('smtp', 'import')),
    origin         TEXT,                          -- the SMTP peer, or the file (and line) it was read from
    recipient      TEXT,                          -- the address of ours it came to
    digest         TEXT NOT NULL UNIQUE,          -- BLAKE3 of the whole message
    kind           TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'sender', 'complaint',
                        'unsubscribe', 'auto_reply', 'other', 'forged', 'unmatched')),
    delivery_id    INTEGER REFERENCES deliveries(id),
    subscriber_id  INTEGER REFERENCES subscribers(id),
    status         TEXT,                          -- enhanced status code, e.g. 5.1.1
    diagnostic     TEXT,                          -- the remote server's words
    decision       TEXT NOT NULL,                 -- what gazette did, in words
    size           INTEGER NOT NULL,              -- bytes of the whole message
    raw            BLOB                           -- its first inbound.keep_raw_bytes; NULL once older than inbound.keep_raw_for
);
CREATE INDEX inbound_by_subscriber ON inbound (subscriber_id, kind, received_at);
CREATE INDEX inbound_by_kind ON inbound (kind, id);
CREATE INDEX inbound_raw_kept ON inbound (received_at) WHERE raw IS NOT NULL;

-- A report to the plain bounce address names our message by its Message-ID.
CREATE INDEX deliveries_by_message_id ON deliveries (message_id) WHERE message_id IS NOT NULL;

-- Why an address is suppressed: erased at the person's request, or they
-- complained (marked an issue as spam). Either way no import or admin add
-- brings it back; only their own confirmed sign-up does.
ALTER TABLE suppressions ADD COLUMN reason TEXT NOT NULL DEFAULT 'erased'
    CHECK (reason IN ('erased', 'complaint'));

-- Erasure takes what returned mail said about the person too.
CREATE TRIGGER subscribers_erased_inbound AFTER UPDATE OF erased_at ON subscribers
WHEN NEW.erased_at IS NOT NULL
BEGIN
    UPDATE inbound SET raw = NULL, diagnostic = NULL, recipient = NULL, origin = NULL
    WHERE subscriber_id = NEW.id;
END;
