//! Wrong passwords, counted per client address and per account, so that
//! guessing is slow from one place and slow against one account.
//!
//! Each key (a client: IPv4 address or IPv6 /64; an account: a hash of its
//! address's key) remembers the times of its attempts within [`WINDOW`].
//! An attempt counts as a failure from the moment it starts
//! ([`Throttle::attempt`], under the table's lock), and a good password
//! clears both keys ([`Throttle::succeeded`]): counting only once Argon2
//! said "wrong" would let a client that sends hundreds of sign-ins at once
//! get them all past the check before the first failure lands. With
//! [`LIMIT`] - 1 counted, the next attempt is refused (429) before the
//! password is even checked: the 10th wrong password in a row is answered
//! 429, and so is everything after it until the oldest leaves the window.
//!
//! The table is bounded: past [`MAX_KEYS`], keys with nothing in the window
//! are dropped, then those with the fewest attempts, so a flood of fresh
//! keys cannot push out the counter of an account under attack. Account
//! keys are 128-bit hashes, so a junk "address" of 64 KiB costs 16 bytes.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    V4(u32),
    V6(u64),
    Account(u128),
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

fn account_key(account: &str) -> Key {
    let hash = blake3::hash(account.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash.as_bytes()[..16]);
    Key::Account(u128::from_le_bytes(first))
}

#[derive(Debug, Default)]
pub struct Throttle {
    attempts: Mutex<HashMap<Key, Vec<Instant>>>,
}

impl Throttle {
    /// A sign-in attempt begins: `Err(wait)` refuses it (`wait`: until the
    /// oldest counted attempt leaves the window); `Ok` counts it, until
    /// [`Throttle::succeeded`] says the password was right.
    pub fn attempt(&self, ip: IpAddr, account: &str, now: Instant) -> Result<(), Duration> {
        let mut map = self.lock();
        let keys = [client_key(ip), account_key(account)];
        let mut wait = None;
        for key in keys {
            if let Some(times) = map.get_mut(&key) {
                times.retain(|t| now.saturating_duration_since(*t) < WINDOW);
                if times.len() >= LIMIT - 1 {
                    let oldest = times.iter().min().copied().unwrap_or(now);
                    let w = WINDOW.saturating_sub(now.saturating_duration_since(oldest));
                    wait = Some(wait.map_or(w, |x: Duration| x.max(w)));
                }
            }
        }
        if let Some(w) = wait {
            return Err(w);
        }
        if map.len() + 2 > MAX_KEYS {
            prune(&mut map, now);
        }
        for key in keys {
            let times = map.entry(key).or_default();
            times.push(now);
            // Only the last LIMIT matter.
            if times.len() > LIMIT {
                times.remove(0);
            }
        }
        Ok(())
    }

    /// The password was right: both keys start again from nothing.
    pub fn succeeded(&self, ip: IpAddr, account: &str) {
        let mut map = self.lock();
        map.remove(&client_key(ip));
        map.remove(&account_key(account));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Vec<Instant>>> {
        // A panic while holding it leaves plain data behind; go on with it.
        self.attempts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Make room: keys with nothing left in the window go, then, if the table
/// is still full, the half with the fewest attempts (the oldest first among
/// equals). A key at the limit is the last to go.
fn prune(map: &mut HashMap<Key, Vec<Instant>>, now: Instant) {
    map.retain(|_, times| {
        times.retain(|t| now.saturating_duration_since(*t) < WINDOW);
        !times.is_empty()
    });
    if map.len() + 2 > MAX_KEYS {
        let mut weakest: Vec<(usize, Instant, Key)> = map
            .iter()
            .map(|(k, t)| (t.len(), t.iter().max().copied().unwrap_or(now), *k))
            .collect();
        weakest.sort_by_key(|(n, newest, _)| (*n, *newest));
        for (_, _, k) in weakest.into_iter().take(MAX_KEYS / 2) {
            map.remove(&k);
        }
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
                t.attempt(ip, &format!("a{i}@example.org"), now).is_ok(),
                "{i}"
            );
        }
        // The client is out, whichever account it tries.
        assert!(t.attempt(ip, "new@example.org", now).is_err());
        // Another client is fine; the same /64 is not.
        assert!(
            t.attempt("192.0.2.8".parse().unwrap(), "x@example.org", now)
                .is_ok()
        );
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        for _ in 0..9 {
            assert!(t.attempt(v6, "v6@example.org", now).is_ok());
        }
        assert!(
            t.attempt("2001:db8::ffff".parse().unwrap(), "y@example.org", now)
                .is_err()
        );
        // One account guessed at from many addresses is out too.
        for i in 0..9u8 {
            let from = IpAddr::from([198, 51, 100, i]);
            assert!(t.attempt(from, "ed@example.org", now).is_ok());
        }
        let wait = t
            .attempt("203.0.113.1".parse().unwrap(), "ed@example.org", now)
            .unwrap_err();
        assert!(wait <= WINDOW && wait > Duration::ZERO);
        // After the window, all is forgiven; a good password clears at once.
        assert!(t.attempt(ip, "new@example.org", now + WINDOW).is_ok());
        t.succeeded(ip, "new@example.org");
        assert!(t.attempt(ip, "new@example.org", now).is_ok());
    }

    #[test]
    fn attempts_in_flight_count_so_a_burst_gets_nine_through() {
        let t = std::sync::Arc::new(Throttle::default());
        let now = Instant::now();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        // 200 sign-ins at once, none finished (no success, no failure yet).
        let allowed = std::thread::scope(|s| {
            let handles: Vec<_> = (0..200)
                .map(|_| {
                    let t = &t;
                    s.spawn(move || t.attempt(ip, "ed@example.org", now).is_ok())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|ok| *ok)
                .count()
        });
        assert_eq!(allowed, LIMIT - 1);
    }

    #[test]
    fn a_flood_of_fresh_keys_does_not_push_out_an_account_at_the_limit() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..9u8 {
            let from = IpAddr::from([198, 51, 100, i]);
            assert!(t.attempt(from, "ed@example.org", now).is_ok());
        }
        // Fresh clients and junk accounts, each tried once: far past MAX_KEYS.
        for i in 0..(MAX_KEYS as u32 * 2) {
            let from = IpAddr::from((0x0a00_0000u32 + i).to_be_bytes());
            let junk = format!("{}{i}", "x".repeat(1000));
            assert!(t.attempt(from, &junk, now).is_ok());
        }
        assert!(t.lock().len() <= MAX_KEYS);
        assert!(
            t.attempt("203.0.113.1".parse().unwrap(), "ed@example.org", now)
                .is_err()
        );
    }
}
