//! The client's address behind reverse proxies (`http.trusted_proxies`).
//!
//! The sign-up limiter and the request log need the reader's address. With
//! a proxy in front, the TCP peer is the proxy for everyone, so the proxy's
//! `X-Forwarded-For` names the client. Anybody can send that header, so it
//! is read only when the peer is a listed proxy, and then from the right:
//! each proxy appends the address it saw, so the rightmost entry that is
//! not itself a trusted proxy is the one a trusted proxy vouched for; what
//! is left of it is whatever the client claimed.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

pub use crate::config::{IpNet, IpNetError};

/// The client's address: `peer`, or when `peer` is a trusted proxy, the
/// rightmost `X-Forwarded-For` entry that is not a trusted proxy (port 0:
/// unknown). An entry that is not an address ends the search at the last
/// trusted hop, which then stands for the client.
pub fn client_addr(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> SocketAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer.ip()) {
        return peer;
    }
    let mut last = peer;
    let values: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .collect();
    for entry in values.iter().rev().flat_map(|v| v.rsplit(',')) {
        let Some(ip) = parse_entry(entry.trim()) else {
            return last;
        };
        last = SocketAddr::new(ip, 0);
        if !is_trusted(ip) {
            return last;
        }
    }
    last
}

/// `1.2.3.4`, `2001:db8::1`, or with a port: `1.2.3.4:5678`, `[2001:db8::1]:5678`.
fn parse_entry(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| IpNet::parse(s).unwrap()).collect()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn networks_parse_and_match() {
        let n = IpNet::parse("10.1.0.0/16").unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(
            IpNet::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            IpNet::parse("::1")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(
            IpNet::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        assert!(
            !IpNet::parse("127.0.0.1")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "::/129", "example.org", "10.0.0.0/", "1.2.3"] {
            let e = IpNet::parse(bad).unwrap_err();
            assert_eq!(e.input, bad);
            assert_eq!(
                e.to_string(),
                format!(
                    "{bad:?} is not an address or network such as \"127.0.0.1\", \"10.0.0.0/8\" or \"::1\""
                )
            );
        }
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let proxies = nets(&["127.0.0.1", "10.0.0.0/8"]);
        let ip = |h: &HeaderMap, t: &[IpNet]| client_addr(peer, h, t).ip().to_string();
        // Not trusted: the header is ignored.
        assert_eq!(ip(&xff(&["203.0.113.7"]), &[]), "127.0.0.1");
        assert_eq!(ip(&xff(&["203.0.113.7"]), &proxies), "203.0.113.7");
        // What the client claimed is left of what the proxies saw.
        assert_eq!(
            ip(&xff(&["6.6.6.6, 203.0.113.7, 10.0.0.2"]), &proxies),
            "203.0.113.7"
        );
        assert_eq!(
            ip(&xff(&["6.6.6.6", "[2001:db8::5]:443, 10.0.0.2"]), &proxies),
            "2001:db8::5"
        );
        // No header, or only proxies: the last hop.
        assert_eq!(ip(&HeaderMap::new(), &proxies), "127.0.0.1");
        assert_eq!(ip(&xff(&["10.0.0.3, 10.0.0.2"]), &proxies), "10.0.0.3");
        // Garbage ends the search at the last trusted hop.
        assert_eq!(ip(&xff(&["6.6.6.6, junk, 10.0.0.2"]), &proxies), "10.0.0.2");
    }
}
