//! One cycle: ingest -> record -> feeds.
