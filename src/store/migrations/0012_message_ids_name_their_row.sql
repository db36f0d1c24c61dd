-- Message-IDs name their delivery row (mail/message.rs, `message_id`).
--
-- A digest's Message-ID is now `<slug.TAG@domain>`, TAG being the row's
-- VERP tag (`d42-<mac>`): a report to the plain bounce address that quotes
-- it names the row by id, checked by its MAC, and the ledger needs no
-- index over every Message-ID it records. That index took a random insert
-- per message sent (the ids were hashes), and at a million rows those
-- inserts were the largest cost of recording outcomes: a million-message
-- send ran at 3,240 messages/s with it and 4,690 without it.
--
-- Rows sent before this migration carry the older, token-hash ids; a late
-- report about one of them is still found, by `legacy_message_id` and its
-- own index, which no new row enters. `message_id` stays what was sent.
ALTER TABLE deliveries ADD COLUMN legacy_message_id TEXT;
UPDATE deliveries SET legacy_message_id = message_id WHERE message_id IS NOT NULL;
DROP INDEX deliveries_by_message_id;
CREATE INDEX deliveries_by_legacy_message_id ON deliveries (legacy_message_id)
    WHERE legacy_message_id IS NOT NULL;
