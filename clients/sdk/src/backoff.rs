//! Reconnect pacing: exponential backoff with jitter, as a pure function of
//! the attempt number and a random draw.

use std::time::Duration;

/// How a [`crate::Client`] reconnects after losing its connection.
///
/// Attempt `n` (from 1) waits `min(initial_delay * 2^(n-1), max_delay)`,
/// jittered to between half and all of it so that many clients dropped at
/// once do not come back at once. The count restarts after every connection
/// that got as far as authenticating and resuming.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Delay before the first attempt. Default 100 ms.
    pub initial_delay: Duration,
    /// Largest delay between attempts. Default 5 s.
    pub max_delay: Duration,
    /// Give up (and report [`crate::Event::Disconnected`]) after this many
    /// failed attempts in a row; `None` retries forever. Default `None`.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_attempts: None,
        }
    }
}

impl ReconnectPolicy {
    /// Never reconnect: the first connection loss is final.
    pub fn never() -> Self {
        ReconnectPolicy { max_attempts: Some(0), ..Self::default() }
    }

    /// Whether attempt number `attempt` (from 1) may be made.
    pub fn allows(&self, attempt: u32) -> bool {
        self.max_attempts.is_none_or(|max| attempt <= max)
    }

    /// The delay before attempt number `attempt` (from 1), for a random
    /// `jitter` in `[0, 1)`.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32);
        let base = self.initial_delay.saturating_mul(1u32 << doublings.min(31)).min(self.max_delay);
        let jitter = jitter.clamp(0.0, 1.0);
        base / 2 + base.mul_f64(jitter / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_bounded_jitter() {
        let policy = ReconnectPolicy::default();
        let ms = Duration::from_millis;
        // Without jitter, half the base; with full jitter, the whole base.
        let expected =
            [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1600), (6, 3200), (7, 5000), (8, 5000), (100, 5000)];
        for (attempt, base) in expected {
            assert_eq!(policy.delay(attempt, 0.0), ms(base / 2), "attempt {attempt}");
            assert_eq!(policy.delay(attempt, 1.0), ms(base), "attempt {attempt}");
            let mid = policy.delay(attempt, 0.5);
            assert!(mid > ms(base / 2) && mid < ms(base), "attempt {attempt}: {mid:?}");
        }
        assert_eq!(policy.delay(u32::MAX, 0.99).min(ms(5000)), policy.delay(u32::MAX, 0.99));
        assert_eq!(policy.delay(0, 1.0), ms(100));
    }

    #[test]
    fn attempts_are_bounded_when_asked() {
        assert!(ReconnectPolicy::default().allows(u32::MAX));
        let three = ReconnectPolicy { max_attempts: Some(3), ..Default::default() };
        assert!(three.allows(3));
        assert!(!three.allows(4));
        assert!(!ReconnectPolicy::never().allows(1));
    }
}
