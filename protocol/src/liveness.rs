//! Heartbeats as a sans-IO timer: either side sends a `Ping` when it has been
//! quiet for a ping interval, and gives up on a peer silent for the idle
//! timeout. Any frame counts as a sign of life.

use std::time::{Duration, Instant};

/// What the driver should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LivenessAction {
    /// Nothing is due before [`Liveness::next_deadline`].
    Wait,
    /// Send a `Ping`: we have been quiet for a ping interval.
    SendPing,
    /// The peer has been silent for the idle timeout: close the connection.
    TimedOut,
}

/// Heartbeat state of one connection.
#[derive(Clone, Debug)]
pub struct Liveness {
    ping_interval: Duration,
    idle_timeout: Duration,
    last_received: Instant,
    last_sent: Instant,
}

impl Liveness {
    pub fn new(now: Instant, ping_interval: Duration, idle_timeout: Duration) -> Self {
        Self { ping_interval, idle_timeout, last_received: now, last_sent: now }
    }

    /// A frame arrived from the peer.
    pub fn on_received(&mut self, now: Instant) {
        self.last_received = now;
    }

    /// We sent a frame to the peer.
    pub fn on_sent(&mut self, now: Instant) {
        self.last_sent = now;
    }

    /// What is due at `now`.
    pub fn poll(&self, now: Instant) -> LivenessAction {
        if now.saturating_duration_since(self.last_received) >= self.idle_timeout {
            LivenessAction::TimedOut
        } else if now.saturating_duration_since(self.last_sent) >= self.ping_interval {
            LivenessAction::SendPing
        } else {
            LivenessAction::Wait
        }
    }

    /// When [`Self::poll`] next has something to do.
    pub fn next_deadline(&self) -> Instant {
        (self.last_received + self.idle_timeout).min(self.last_sent + self.ping_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_when_quiet_and_times_out_when_the_peer_is_silent() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut live = Liveness::new(t0, s(10), s(30));
        assert_eq!(live.poll(t0 + s(9)), LivenessAction::Wait);
        assert_eq!(live.next_deadline(), t0 + s(10));
        assert_eq!(live.poll(t0 + s(10)), LivenessAction::SendPing);
        live.on_sent(t0 + s(10));
        live.on_received(t0 + s(15));
        assert_eq!(live.next_deadline(), t0 + s(20));
        live.on_sent(t0 + s(20));
        live.on_sent(t0 + s(30));
        live.on_sent(t0 + s(40));
        assert_eq!(live.poll(t0 + s(44)), LivenessAction::Wait);
        assert_eq!(live.next_deadline(), t0 + s(45));
        assert_eq!(live.poll(t0 + s(45)), LivenessAction::TimedOut);
    }
}
