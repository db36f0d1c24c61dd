//! Wrong passwords, counted per client address and per account, so that
//! guessing is slow from one place and slow against one account.
//!
//! Each key (a client: IPv4 address or IPv6 /64; an account: its address's
//! key) remembers the times of its failures within [`WINDOW`]. With
//! [`LIMIT`] - 1 failures there, the next attempt is refused (429) before
//! the password is even checked: the 10th wrong password in a row is
//! answered 429, and so is everything after it until the oldest failure
//! leaves the window. A good password clears both keys. The table is
//! bounded like the sign-up limiter's: past [`MAX_KEYS`], keys with no
//! failure in the window are dropped, then the oldest half.
//!
//! In memory on purpose: a restart forgets the counts, which costs an
//! attacker a restart of the server per nine guesses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures that make the next attempt a 429.
pub const LIMIT: usize = 10;
/// How long a failure counts.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys kept before pruning.
pub const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    V4(u32),
    V6(u64),
    Account(String),
}

fn client_key(ip: IpAddr) -> Key {
    match ip {
        IpAddr::V4(v4) => Key::V4(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Key::V4(u32::from(v4)),
            None => Key::V6((u128::from(v6) >> 64) as u64),
        },
    }
}

#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<Key, Vec<Instant>>>,
}

impl Throttle {
    /// `Err(wait)`: refuse this attempt; `wait` is when the oldest counted
    /// failure leaves the window.
    pub fn check(&self, ip: IpAddr, account: &str, now: Instant) -> Result<(), Duration> {
        let mut map = self.lock();
        let mut wait = None;
        for key in [client_key(ip), Key::Account(account.to_string())] {
            if let Some(times) = map.get_mut(&key) {
                times.retain(|t| now.saturating_duration_since(*t) < WINDOW);
                if times.len() >= LIMIT - 1 {
                    let oldest = times.iter().min().copied().unwrap_or(now);
                    let w = WINDOW.saturating_sub(now.saturating_duration_since(oldest));
                    wait = Some(wait.map_or(w, |x: Duration| x.max(w)));
                }
            }
        }
        wait.map_or(Ok(()), Err)
    }

    pub fn failed(&self, ip: IpAddr, account: &str, now: Instant) {
        let mut map = self.lock();
        if map.len() >= MAX_KEYS {
            map.retain(|_, times| {
                times.retain(|t| now.saturating_duration_since(*t) < WINDOW);
                !times.is_empty()
            });
            if map.len() >= MAX_KEYS {
                let mut newest: Vec<(Instant, Key)> = map
                    .iter()
                    .map(|(k, t)| (t.iter().max().copied().unwrap_or(now), k.clone()))
                    .collect();
                newest.sort_by_key(|(t, _)| *t);
                for (_, k) in newest.into_iter().take(MAX_KEYS / 2) {
                    map.remove(&k);
                }
            }
        }
        for key in [client_key(ip), Key::Account(account.to_string())] {
            let times = map.entry(key).or_default();
            times.push(now);
            // Only the last LIMIT matter.
            if times.len() > LIMIT {
                times.remove(0);
            }
        }
    }

    pub fn succeeded(&self, ip: IpAddr, account: &str) {
        let mut map = self.lock();
        map.remove(&client_key(ip));
        map.remove(&Key::Account(account.to_string()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Vec<Instant>>> {
        // A panic while holding it leaves plain data behind; go on with it.
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenth_wrong_password_is_refused_per_client_and_per_account() {
        let t = Throttle::default();
        let now = Instant::now();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for i in 0..9 {
            assert!(
                t.check(ip, &format!("a{i}@example.org"), now).is_ok(),
                "{i}"
            );
            t.failed(ip, &format!("a{i}@example.org"), now);
        }
        // The client is out, whichever account it tries.
        assert!(t.check(ip, "new@example.org", now).is_err());
        // Another client is fine; the same /64 is not.
        assert!(
            t.check("192.0.2.8".parse().unwrap(), "x@example.org", now)
                .is_ok()
        );
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        for _ in 0..9 {
            t.failed(v6, "v6@example.org", now);
        }
        assert!(
            t.check("2001:db8::ffff".parse().unwrap(), "y@example.org", now)
                .is_err()
        );
        // One account guessed at from many addresses is out too.
        for i in 0..9u8 {
            let from = IpAddr::from([198, 51, 100, i]);
            t.failed(from, "ed@example.org", now);
        }
        let wait = t
            .check("203.0.113.1".parse().unwrap(), "ed@example.org", now)
            .unwrap_err();
        assert!(wait <= WINDOW && wait > Duration::ZERO);
        // After the window, all is forgiven; a good password clears at once.
        assert!(t.check(ip, "new@example.org", now + WINDOW).is_ok());
        t.succeeded(ip, "a0@example.org");
        assert!(t.check(ip, "new@example.org", now).is_ok());
    }
}
