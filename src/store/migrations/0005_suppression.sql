-- Erasure at a person's request (`DELETE /api/v1/subscribers/{id}`,
-- `gazette subscribers erase EMAIL`).
--
-- The subscriber row stays so the delivery ledger keeps its history and
-- counts (deliveries.subscriber_id references it), but everything personal
-- goes: the address becomes the placeholder `erased-ID@erased.invalid`,
-- email_key becomes `erased:ID` (a real key always holds an '@', so it never
-- collides with one), the name NULL, the token a fresh one nobody knows.
-- Lists, counts and exports leave rows with erased_at set out.
ALTER TABLE subscribers ADD COLUMN erased_at TEXT;   -- RFC 3339 UTC, NULL unless erased

-- One row per erased address, so imports and admin adds never bring it back.
-- Only a keyed hash of the address is kept (the address as its uniqueness
-- key has it: lowercased), never the address itself.
CREATE TABLE suppressions (
    address_hash  TEXT PRIMARY KEY,   -- 64 hex digits: BLAKE3 keyed with meta.suppression_key
    erased_at     TEXT NOT NULL
) WITHOUT ROWID;

-- The hash key, random per database: a list of hashes cannot be checked
-- against hashes of known addresses computed elsewhere.
INSERT INTO meta (key, value) VALUES ('suppression_key', lower(hex(randomblob(32))))
    ON CONFLICT (key) DO NOTHING;

-- An erased subscriber's delivery rows keep their status and counts but no
-- reply text: a server's reply often quotes the address. Erasure rewrites the
-- replies already there (by touching last_reply, which fires this trigger);
-- the trigger also catches a reply recorded later, for a message that was in
-- flight when the subscriber was erased. What stays is the 3-digit reply code.
CREATE TRIGGER deliveries_erased_replies AFTER UPDATE OF last_reply ON deliveries
WHEN NEW.last_reply IS NOT NULL
 AND NOT (NEW.last_reply IN ('(reply text erased)', 'not sent: the subscriber was erased')
          OR NEW.last_reply GLOB '[0-9][0-9][0-9] (reply text erased)')
 AND EXISTS (SELECT 1 FROM subscribers s WHERE s.id = NEW.subscriber_id AND s.erased_at IS NOT NULL)
BEGIN
    UPDATE deliveries SET last_reply =
        CASE WHEN NEW.last_reply GLOB '[1-5][0-9][0-9]*'
             THEN substr(NEW.last_reply, 1, 3) || ' (reply text erased)'
             ELSE '(reply text erased)' END
    WHERE id = NEW.id;
END;
