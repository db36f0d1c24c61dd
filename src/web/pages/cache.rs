//! Rendered issue pages, kept by slug and the issue's content hash.
//!
//! The web version of an issue is the digest's HTML: parsing the issue's
//! files, rendering the template and inlining CSS take milliseconds, far
//! more than a request should cost, and a big archive must not be read per
//! request. So a page is built once from its own folder only
//! (`content::scan::read_issue_folder`), and kept under the content hash the
//! store has for the issue (`issues.content_hash`, written by the cycle).
//! Each request costs one indexed lookup of that hash; when a cycle records
//! new content the hash changes and the next request rebuilds the page.
//! Content edited on disk but not yet ingested shows at the next cycle, as
//! it does in the feeds and the archive.
//!
//! At most [`CAPACITY`] pages are kept; the least recently used goes first.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;

/// Pages kept (a digest page is tens of kilobytes).
pub const CAPACITY: usize = 256;

#[derive(Debug)]
struct Entry {
    hash: String,
    page: Bytes,
    used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    clock: u64,
}

#[derive(Debug)]
pub struct IssueCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl Default for IssueCache {
    fn default() -> Self {
        IssueCache::new(CAPACITY)
    }
}

impl IssueCache {
    pub fn new(capacity: usize) -> IssueCache {
        IssueCache {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The page of `slug` if it was built from content with `hash`.
    pub fn get(&self, slug: &str, hash: &str) -> Option<Bytes> {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.clock += 1;
        let now = inner.clock;
        let entry = inner.entries.get_mut(slug).filter(|e| e.hash == hash)?;
        entry.used = now;
        Some(entry.page.clone())
    }

    pub fn put(&self, slug: &str, hash: &str, page: Bytes) {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.clock += 1;
        let used = inner.clock;
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(slug) {
            let oldest = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                inner.entries.remove(&k);
            }
        }
        inner.entries.insert(
            slug.to_string(),
            Entry {
                hash: hash.to_string(),
                page,
                used,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_kept_per_hash_and_the_least_used_goes() {
        let c = IssueCache::new(2);
        c.put("a", "h1", Bytes::from_static(b"A1"));
        assert_eq!(c.get("a", "h1").as_deref(), Some(&b"A1"[..]));
        assert_eq!(c.get("a", "h2"), None, "new content, new page");
        c.put("b", "h1", Bytes::from_static(b"B"));
        assert!(c.get("a", "h1").is_some());
        c.put("c", "h1", Bytes::from_static(b"C"));
        assert_eq!(c.get("b", "h1"), None, "b was used least recently");
        assert!(c.get("a", "h1").is_some() && c.get("c", "h1").is_some());
        c.put("a", "h2", Bytes::from_static(b"A2"));
        assert_eq!(c.get("a", "h2").as_deref(), Some(&b"A2"[..]));
        assert!(
            c.get("c", "h1").is_some(),
            "replacing a page evicts nothing"
        );
    }
}
