-- Publishing in pieces (store/deliveries.rs, `Store::publish_issue`).
--
-- An issue's ledger rows are created a piece of subscribers at a time, each
-- piece its own transaction, so a publish to a million subscribers never
-- holds the write lock for long: sign-ups, the console and the API go on
-- between pieces. While it lasts, these say where it is:
--   recipients_up_to  the highest subscriber id at the moment of publishing;
--                     subscribers who sign up later are not recipients;
--   queued_up_to      rows exist for every active subscriber with an id up
--                     to and including this one.
-- Both are NULL once every piece is in (and for every issue published
-- before this migration, whose rows were made in one transaction). A run
-- that stops half-way leaves them set, and the next cycle goes on from
-- queued_up_to.
ALTER TABLE issues ADD COLUMN recipients_up_to INTEGER;
ALTER TABLE issues ADD COLUMN queued_up_to INTEGER;
