//! Which form POSTs come from the site's own pages.
//!
//! A browser sends `Origin` with every POST; a page on another site can
//! make a reader's browser post the subscribe form (mailing a stranger a
//! confirmation from the reader's address) without ever seeing the answer.
//! A POST is refused when its `Origin` names another site. It is accepted
//! when:
//! - it has no `Origin`: a plain client (curl, a script), which can send
//!   whatever it likes anyway, so refusing would protect nobody;
//! - `Origin` is the origin of `publication.base_url` (what readers'
//!   browsers see behind a reverse proxy);
//! - `Origin`'s host and port are the request's own `Host`: the site
//!   opened at another address (`http://127.0.0.1:8080/` on the machine
//!   itself). A browser sets `Host` from the URL it posts to, and a page of
//!   another site cannot change it, so this admits no other site.
//!
//! `Origin: null` (sandboxed frames, some redirects, a page whose referrer
//! policy is `no-referrer`) is refused: it cannot be told apart from a
//! hostile page. That is why the pages send `Referrer-Policy: same-origin`
//! (see [`crate::web`]).

use axum::http::uri::Authority;
use axum::http::{HeaderMap, header};
use url::Url;

/// The origin of `publication.base_url`, for [`SiteOrigin::allows`].
#[derive(Debug, Clone)]
pub struct SiteOrigin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl SiteOrigin {
    pub fn new(base_url: &Url) -> SiteOrigin {
        SiteOrigin {
            scheme: base_url.scheme().to_ascii_lowercase(),
            host: base_url.host_str().unwrap_or("").to_ascii_lowercase(),
            port: base_url.port_or_known_default(),
        }
    }

    /// May a form POST with these headers go on?
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        let Some(origin) = origin.to_str().ok().and_then(|o| Url::parse(o).ok()) else {
            return false;
        };
        let Some(host) = origin.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let port = origin.port_or_known_default();
        if origin.scheme() == self.scheme && host == self.host && port == self.port {
            return true;
        }
        let Some(authority) = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<Authority>().ok())
        else {
            return false;
        };
        // A Host without a port means the default port of the scheme the
        // browser used, which is the Origin's.
        let host_port = authority.port_u16().or(port);
        authority.host().eq_ignore_ascii_case(&host) && host_port == port
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        if let Some(v) = host {
            h.insert(header::HOST, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn own_pages_and_plain_clients_pass_other_sites_do_not() {
        let site = SiteOrigin::new(&Url::parse("https://News.example.org/ledger/").unwrap());
        let ok = |o: Option<&str>, h: Option<&str>| site.allows(&headers(o, h));
        // No Origin: a plain client.
        assert!(ok(None, Some("evil.example")));
        assert!(ok(None, None));
        // The public origin, whatever Host the proxy passed on.
        assert!(ok(Some("https://news.example.org"), Some("127.0.0.1:8080")));
        assert!(ok(Some("https://news.example.org:443"), None));
        // The request's own host, at whatever address it was opened.
        assert!(ok(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")));
        assert!(ok(Some("http://[::1]:8080"), Some("[::1]:8080")));
        assert!(ok(Some("http://localhost"), Some("LOCALHOST")));
        // Other sites, and what cannot be told apart from them.
        assert!(!ok(Some("https://evil.example"), Some("news.example.org")));
        assert!(!ok(Some("http://news.example.org"), Some("127.0.0.1:8080")));
        assert!(!ok(Some("https://news.example.org:8443"), None));
        assert!(!ok(Some("http://127.0.0.1:9999"), Some("127.0.0.1:8080")));
        assert!(!ok(Some("http://127.0.0.1"), Some("127.0.0.1:8080")));
        assert!(!ok(Some("null"), Some("news.example.org")));
        assert!(!ok(Some("not a url"), Some("news.example.org")));
    }
}
