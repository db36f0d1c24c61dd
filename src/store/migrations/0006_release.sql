-- Drafts and scheduled publication. An issue is recorded as soon as ingest
-- sees it, but readers and subscribers see it only once it is released:
-- not a draft, and its publication moment (issue.toml's publish_at, else
-- the start of its date) has passed at a cycle.
ALTER TABLE issues ADD COLUMN draft INTEGER NOT NULL DEFAULT 0;   -- 1: draft = true
ALTER TABLE issues ADD COLUMN release_at TEXT;     -- RFC 3339 UTC: its publication moment
ALTER TABLE issues ADD COLUMN released_at TEXT;    -- RFC 3339 UTC: the cycle that let it out; NULL while held or a draft

-- Everything recorded before this was out from the moment it was seen.
UPDATE issues SET release_at = first_seen_at, released_at = first_seen_at;
