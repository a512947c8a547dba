//! Token buckets keyed by whatever is limited (an address, a user), as a
//! sans-IO structure: time comes in as a parameter.

use std::{
    collections::HashMap,
    hash::Hash,
    time::{Duration, Instant},
};

use crate::config::Rate;

/// Keys kept before idle (full) buckets are swept out.
const SWEEP_AT: usize = 10_000;

pub struct RateLimiter<K> {
    rate: Rate,
    buckets: HashMap<K, Bucket>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    pub fn new(rate: Rate) -> Self {
        Self { rate, buckets: HashMap::new() }
    }

    /// Takes one token for `key` at `now`, or says how long until one is
    /// available.
    pub fn check(&mut self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.buckets.len() >= SWEEP_AT && !self.buckets.contains_key(key) {
            let rate = self.rate;
            self.buckets.retain(|_, bucket| refill(bucket, rate, now) < f64::from(rate.burst));
        }
        let rate = self.rate;
        let bucket = self.buckets.entry(key.clone()).or_insert(Bucket { tokens: f64::from(rate.burst), updated: now });
        let tokens = refill(bucket, rate, now);
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - tokens) / rate.per_second))
        }
    }
}

/// Brings a bucket up to `now` and returns its tokens.
fn refill(bucket: &mut Bucket, rate: Rate, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    bucket.tokens = (bucket.tokens + elapsed * rate.per_second).min(f64::from(rate.burst));
    bucket.updated = now;
    bucket.tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(Rate { per_second: 2.0, burst: 3 });
        for _ in 0..3 {
            assert!(limiter.check(&"a", t0).is_ok());
        }
        let wait = limiter.check(&"a", t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(limiter.check(&"b", t0).is_ok(), "keys are independent");
        assert!(limiter.check(&"a", t0 + Duration::from_millis(499)).is_err());
        // One second refills two tokens.
        assert!(limiter.check(&"a", t0 + Duration::from_millis(1000)).is_ok());
        assert!(limiter.check(&"a", t0 + Duration::from_millis(1000)).is_ok());
        assert!(limiter.check(&"a", t0 + Duration::from_millis(1000)).is_err());
    }

    #[test]
    fn idle_keys_are_swept() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(Rate { per_second: 1000.0, burst: 1 });
        for key in 0..SWEEP_AT {
            limiter.check(&key, t0).unwrap();
        }
        limiter.check(&usize::MAX, t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(limiter.buckets.len(), 1);
    }
}
