//! `/feeds/rss.xml`, `/feeds/atom.xml`, `/feeds/feed.json`, from memory.
//!
//! Feed readers poll, mostly to hear "nothing new". So each file is held in
//! memory with its gzip form, a strong ETag (a hash of the bytes, so it
//! survives restarts and byte-identical rebuilds) and Last-Modified (the
//! file's mtime, which the atomic writer leaves alone when nothing changed).
//! A request costs a hash-map-free lookup and, at most once a second per
//! file, one `stat` to notice a rebuild by the daemon or by `gazette feeds
//! build` from another shell. `GET`s of the three files skip the router
//! and its layers ([`fast_path`], called by [`super::Front`]): they are
//! nearly all the traffic, and the layers cost more than the answer.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use crate::feeds::{
    ATOM_FILE, ATOM_MEDIA_TYPE, JSON_FILE, JSON_MEDIA_TYPE, RSS_FILE, RSS_MEDIA_TYPE,
};

/// Readers may reuse a copy this long without asking; then they revalidate
/// (cheaply: a 304). Five minutes is well under the default schedule.
pub const CACHE_CONTROL: &str = "public, max-age=300";

/// How often a cached file is checked against the disk.
const RECHECK: Duration = Duration::from_secs(1);

const FILES: [(&str, &str); 3] = [
    (RSS_FILE, RSS_MEDIA_TYPE),
    (ATOM_FILE, ATOM_MEDIA_TYPE),
    (JSON_FILE, JSON_MEDIA_TYPE),
];

pub fn routes() -> Router<AppState> {
    Router::new().route("/feeds/{name}", get(feed))
}

/// One feed file as served.
#[derive(Debug)]
struct Cached {
    body: Bytes,
    gzip: Bytes,
    etag: HeaderValue,
    etag_gzip: HeaderValue,
    last_modified: HeaderValue,
    /// Whole seconds since the epoch, as Last-Modified says.
    modified_secs: u64,
    stamp: (SystemTime, u64),
}

#[derive(Debug)]
struct Slot {
    name: &'static str,
    media_type: HeaderValue,
    /// The copy, and when it was last compared with the file on disk.
    cached: RwLock<Option<(Arc<Cached>, Instant)>>,
    /// Answers since start: full bodies, and 304s to revalidations.
    full: AtomicU64,
    not_modified: AtomicU64,
}

/// One feed's answers since the process started (for `/metrics`).
#[derive(Debug, Clone, Copy)]
pub struct FeedRequests {
    pub name: &'static str,
    pub full: u64,
    pub not_modified: u64,
}

/// The three feed files, loaded on demand and reloaded when they change.
#[derive(Debug)]
pub struct FeedCache {
    dir: PathBuf,
    slots: Vec<Slot>,
}

impl FeedCache {
    pub fn new(dir: PathBuf) -> FeedCache {
        FeedCache {
            dir,
            slots: FILES
                .iter()
                .map(|(name, media)| Slot {
                    name,
                    media_type: HeaderValue::from_static(media),
                    cached: RwLock::new(None),
                    full: AtomicU64::new(0),
                    not_modified: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    /// How many 200s and 304s each feed got since start.
    pub fn requests(&self) -> Vec<FeedRequests> {
        self.slots
            .iter()
            .map(|s| FeedRequests {
                name: s.name,
                full: s.full.load(Ordering::Relaxed),
                not_modified: s.not_modified.load(Ordering::Relaxed),
            })
            .collect()
    }

    fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.name == name)
    }

    /// The current copy of a file; `None` when it is not there (yet).
    fn get(&self, slot: &Slot) -> Option<Arc<Cached>> {
        let current = slot.cached.read().ok().and_then(|c| c.clone());
        if let Some((c, checked)) = &current
            && checked.elapsed() < RECHECK
        {
            return Some(c.clone());
        }
        let path = self.dir.join(slot.name);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(_) => {
                if let Ok(mut w) = slot.cached.write() {
                    *w = None;
                }
                return None;
            }
        };
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        let fresh = match current {
            Some((c, _)) if c.stamp == stamp => c,
            _ => match load(&path, stamp) {
                Ok(c) => Arc::new(c),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read feed file");
                    return None;
                }
            },
        };
        if let Ok(mut w) = slot.cached.write() {
            *w = Some((fresh.clone(), Instant::now()));
        }
        Some(fresh)
    }
}

fn load(path: &std::path::Path, stamp: (SystemTime, u64)) -> std::io::Result<Cached> {
    let body = std::fs::read(path)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&body)?;
    let gzip = gz.finish()?;
    let hash = blake3::hash(&body).to_hex();
    let tag = &hash.as_str()[..20];
    let modified_secs = stamp
        .0
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let value = |s: String| HeaderValue::from_str(&s).map_err(std::io::Error::other);
    Ok(Cached {
        etag: value(format!("\"{tag}\""))?,
        etag_gzip: value(format!("\"{tag}-gz\""))?,
        last_modified: value(httpdate::fmt_http_date(
            SystemTime::UNIX_EPOCH + Duration::from_secs(modified_secs),
        ))?,
        modified_secs,
        body: Bytes::from(body),
        gzip: Bytes::from(gzip),
        stamp,
    })
}

/// Does an If-None-Match header name one of our tags (or `*`)? Weak
/// comparison, as RFC 9110 asks for GET.
fn none_match(value: &HeaderValue, tags: [&HeaderValue; 2]) -> bool {
    let Ok(s) = value.to_str() else { return false };
    s.split(',').map(str::trim).any(|t| {
        t == "*"
            || tags
                .iter()
                .any(|ours| t.trim_start_matches("W/").as_bytes() == ours.as_bytes())
    })
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

async fn feed(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    match state.feeds.slot(&name) {
        Some(slot) => respond(&state.feeds, slot, &headers),
        None => (StatusCode::NOT_FOUND, "no such feed\n").into_response(),
    }
}

/// The answer to `GET /feeds/NAME` for a known feed, without the router:
/// the polling hot path (see [`super::Front`]). `None` for anything else,
/// which then goes through the router as usual.
pub(super) fn fast_path(
    feeds: &FeedCache,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    if method != Method::GET {
        return None;
    }
    let slot = feeds.slot(path.strip_prefix("/feeds/")?)?;
    Some(respond(feeds, slot, headers))
}

fn respond(feeds: &FeedCache, slot: &Slot, headers: &HeaderMap) -> Response {
    let Some(c) = feeds.get(slot) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "60")],
            "the feeds have not been built yet\n",
        )
            .into_response();
    };
    let gzip = accepts_gzip(headers);
    let etag = if gzip { &c.etag_gzip } else { &c.etag };
    let not_modified = match headers.get(header::IF_NONE_MATCH) {
        Some(inm) => none_match(inm, [&c.etag, &c.etag_gzip]),
        None => headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .is_some_and(|since| since.as_secs() >= c.modified_secs),
    };
    // Every header of the answer, in one allocation (the security headers
    // the router's layer adds elsewhere are added by the caller).
    let mut h = HeaderMap::with_capacity(10);
    let body = if not_modified {
        Body::empty()
    } else {
        h.insert(header::CONTENT_TYPE, slot.media_type.clone());
        if gzip {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            Body::from(c.gzip.clone())
        } else {
            Body::from(c.body.clone())
        }
    };
    h.insert(header::ETAG, etag.clone());
    h.insert(header::LAST_MODIFIED, c.last_modified.clone());
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    let mut res = Response::new(body);
    *res.headers_mut() = h;
    if not_modified {
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        slot.not_modified.fetch_add(1, Ordering::Relaxed);
    } else {
        slot.full.fetch_add(1, Ordering::Relaxed);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_negotiation() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            accepts_gzip(&m)
        };
        assert!(h("gzip"));
        assert!(h("br, gzip;q=0.5"));
        assert!(h("GZIP"));
        assert!(h("*"));
        assert!(!h("gzip;q=0"));
        assert!(!h("br, deflate"));
        assert!(!h("x-gzip-not"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn missing_files_revalidation_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ATOM_FILE), "<feed>a</feed>").unwrap();
        let cache = FeedCache::new(dir.path().to_path_buf());
        // No rss.xml yet: 503, and nothing counted.
        let rss = cache.slot(RSS_FILE).unwrap();
        let res = respond(&cache, rss, &HeaderMap::new());
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);

        let atom = cache.slot(ATOM_FILE).unwrap();
        let res = respond(&cache, atom, &HeaderMap::new());
        assert_eq!(res.status(), StatusCode::OK);
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, res.headers()[header::ETAG].clone());
        assert_eq!(respond(&cache, atom, &h).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(respond(&cache, atom, &h).status(), StatusCode::NOT_MODIFIED);
        let counts: Vec<_> = cache
            .requests()
            .iter()
            .map(|r| (r.name, r.full, r.not_modified))
            .collect();
        assert_eq!(
            counts,
            [(RSS_FILE, 0, 0), (ATOM_FILE, 1, 2), (JSON_FILE, 0, 0)]
        );
    }

    #[test]
    fn etag_matching() {
        let a = HeaderValue::from_static("\"abc\"");
        let b = HeaderValue::from_static("\"abc-gz\"");
        let m = |v: &'static str| none_match(&HeaderValue::from_static(v), [&a, &b]);
        assert!(m("\"abc\""));
        assert!(m("W/\"abc-gz\""));
        assert!(m("\"x\", \"abc\""));
        assert!(m("*"));
        assert!(!m("\"abd\""));
        assert!(!m("abc"));
    }
}
