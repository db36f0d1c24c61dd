//! `mail.rate_per_second`, enforced as a token bucket shared by all senders.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// A token bucket: `rate` tokens a second, holding at most `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    burst: u32,
    /// The time at which the bucket would be full again ("virtual time").
    state: Mutex<Instant>,
}

impl RateLimiter {
    pub fn new(rate_per_second: f64, burst: u32) -> RateLimiter {
        let interval = Duration::from_secs_f64(1.0 / rate_per_second.max(1e-6));
        RateLimiter {
            interval,
            burst: burst.max(1),
            state: Mutex::new(Instant::now()),
        }
    }

    /// Wait for one token.
    pub async fn acquire(&self) {
        let wait_until = {
            let mut full_at = self.state.lock().await;
            let now = Instant::now();
            // A bucket idle for long is full, not fuller.
            let t = (*full_at).max(now) + self.interval;
            *full_at = t;
            // The token is ours once t is at most `burst` intervals ahead.
            t.checked_sub(self.interval * self.burst).unwrap_or(now)
        };
        tokio::time::sleep_until(wait_until).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn enforces_the_rate_after_the_burst() {
        let limiter = RateLimiter::new(10.0, 5);
        let start = Instant::now();
        for _ in 0..25 {
            limiter.acquire().await;
        }
        // 5 at once, then 20 more at 10/s: 2 s of (virtual) time.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1900) && took <= Duration::from_millis(2100),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_bucket_allows_only_one_burst() {
        let limiter = RateLimiter::new(100.0, 3);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let start = Instant::now();
        for _ in 0..13 {
            limiter.acquire().await;
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(95) && took <= Duration::from_millis(110),
            "{took:?}"
        );
    }
}
