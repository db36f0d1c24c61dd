//! The per-client limit on `POST /subscribe`: a token bucket per client
//! address, `http.subscribe_burst` deep, refilled at
//! `http.subscribe_per_minute`.
//!
//! Clients are keyed by IPv4 address, or by IPv6 /64 (one host usually has a
//! whole /64, so keying by full address would let it walk around the limit).
//! The table is bounded: past [`MAX_CLIENTS`] entries, buckets that have
//! refilled completely are dropped (a full bucket is the same as no entry, so
//! that loses nothing); if a flood of addresses keeps it full anyway, the
//! least recently seen half goes. Memory stays bounded at the cost of
//! forgetting some of the flood, never of refusing a newcomer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Client entries kept before pruning (a few hundred kilobytes at most).
pub const MAX_CLIENTS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(u32),
    /// The /64 prefix.
    V6(u64),
}

impl ClientKey {
    fn of(ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(v4) => ClientKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(u32::from(v4)),
                None => ClientKey::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    capacity: usize,
    clients: Mutex<HashMap<ClientKey, Bucket>>,
}

impl RateLimiter {
    pub fn new(burst: u32, per_minute: u32) -> RateLimiter {
        RateLimiter::with_capacity(burst, per_minute, MAX_CLIENTS)
    }

    fn with_capacity(burst: u32, per_minute: u32, capacity: usize) -> RateLimiter {
        RateLimiter {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_minute.max(1)) / 60.0,
            capacity: capacity.max(2),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Take one request for `ip` at `now`: `Err(wait)` when over the limit,
    /// with how long until the next one is allowed.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = ClientKey::of(ip);
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if clients.len() >= self.capacity && !clients.contains_key(&key) {
            self.prune(&mut clients, now);
        }
        let bucket = clients.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        // Requests take their `now` before the lock, so a later one can get
        // here first: the refill time never goes back, or the gap would be
        // refilled twice.
        bucket.at = bucket.at.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }

    fn prune(&self, clients: &mut HashMap<ClientKey, Bucket>, now: Instant) {
        clients.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * self.per_second
                < self.burst
        });
        if clients.len() >= self.capacity {
            let mut seen: Vec<Instant> = clients.values().map(|b| b.at).collect();
            seen.sort_unstable();
            let cut = seen[seen.len() / 2];
            clients.retain(|_, b| b.at > cut);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.clients.lock().map(|c| c.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_then_the_refill_rate_per_client() {
        let l = RateLimiter::new(3, 6); // one every 10 s
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check(ip("192.0.2.1"), t0), Ok(()));
        }
        let wait = l.check(ip("192.0.2.1"), t0).unwrap_err();
        assert!(
            wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        // Another client is not affected.
        assert_eq!(l.check(ip("192.0.2.2"), t0), Ok(()));
        // After the wait, exactly one more.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(l.check(ip("192.0.2.1"), t1), Ok(()));
        assert!(l.check(ip("192.0.2.1"), t1).is_err());
        // A long pause refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(l.check(ip("192.0.2.1"), t2), Ok(()));
        }
        assert!(l.check(ip("192.0.2.1"), t2).is_err());
    }

    #[test]
    fn a_request_that_took_its_time_before_the_lock_adds_nothing() {
        let l = RateLimiter::new(1, 1); // one a minute
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(60);
        assert_eq!(l.check(ip("192.0.2.1"), t1), Ok(()));
        // Its clock read was earlier, but it got the lock later.
        assert!(l.check(ip("192.0.2.1"), t0).is_err());
        assert!(
            l.check(ip("192.0.2.1"), t1).is_err(),
            "no refill for time already counted"
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_v4_by_the_v4() {
        let l = RateLimiter::new(1, 1);
        let t0 = Instant::now();
        assert_eq!(l.check(ip("2001:db8:1:2::1"), t0), Ok(()));
        assert!(l.check(ip("2001:db8:1:2::ffff"), t0).is_err(), "same /64");
        assert_eq!(l.check(ip("2001:db8:1:3::1"), t0), Ok(()), "another /64");
        assert_eq!(l.check(ip("198.51.100.7"), t0), Ok(()));
        assert!(l.check(ip("::ffff:198.51.100.7"), t0).is_err(), "v4-mapped");
    }

    #[test]
    fn the_table_stays_bounded_and_keeps_limiting_recent_clients() {
        let l = RateLimiter::with_capacity(1, 1, 100);
        let t0 = Instant::now();
        assert_eq!(l.check(ip("10.0.0.1"), t0), Ok(()));
        // A flood of other addresses, each using its one request.
        for i in 0..1000u32 {
            let a = IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + i));
            let at = t0 + Duration::from_millis(u64::from(i));
            assert_eq!(l.check(a, at), Ok(()));
            assert!(l.len() <= 100, "{} entries", l.len());
        }
        // Buckets that refilled are the first to go: an hour later everyone
        // is back to full, so the next prune keeps only the new clients.
        let later = t0 + Duration::from_secs(3600);
        for i in 0..20u8 {
            assert_eq!(l.check(ip(&format!("10.0.1.{i}")), later), Ok(()));
        }
        assert!(l.len() <= 20, "{}", l.len());
        // ...and those are still limited.
        assert!(l.check(ip("10.0.1.19"), later).is_err());
    }
}
