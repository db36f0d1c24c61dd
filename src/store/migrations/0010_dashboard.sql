-- The admin console's dashboard (store/dashboard.rs).
--
-- Growth per month reads each event column over the last 12 months only:
-- with these, that is a range scan of the rows in the window per column,
-- not a scan of every subscriber (a million on a big list). Partial, so
-- the many rows where the event never happened cost nothing. (Sign-ups
-- use subscribers_by_created.)
CREATE INDEX subscribers_by_confirmed ON subscribers (confirmed_at) WHERE confirmed_at IS NOT NULL;
CREATE INDEX subscribers_by_unsubscribed ON subscribers (unsubscribed_at) WHERE unsubscribed_at IS NOT NULL;
CREATE INDEX subscribers_by_bounced ON subscribers (bounced_at) WHERE bounced_at IS NOT NULL;

-- Subscribers by status, erased rows left out (`Store::subscriber_counts`:
-- the dashboard, /metrics): counted from this index alone, without reading
-- a million table rows for their `erased_at`.
CREATE INDEX subscribers_live_by_status ON subscribers (status) WHERE erased_at IS NULL;
