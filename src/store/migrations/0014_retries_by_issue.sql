-- The rows waiting for a retry (tried, queued again), by issue: an issue's
-- problem list (`Store::delivery_problems`) reads these and the rows of
-- the problem statuses through `deliveries_due`, instead of every row of
-- the issue (a million while its send runs). A row enters this index only
-- when an attempt is deferred: the first claim of a queued row and its
-- outcome never touch it.
CREATE INDEX deliveries_retrying ON deliveries (issue_id) WHERE status = 'queued' AND attempts > 0;
