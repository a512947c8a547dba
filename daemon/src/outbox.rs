//! A session's outbound queue, bounded in bytes. Producers (the session, the
//! hub's fan-out) never block: a session whose queue overflows is closed with
//! SLOW_CONSUMER and resumes from its position on reconnect, so nothing is
//! silently skipped.

use std::{collections::VecDeque, sync::Mutex};

use bytes::Bytes;
use confab_protocol::v1;
use tokio::sync::Notify;

pub struct Outbox {
    state: Mutex<State>,
    wake: Notify,
    limit: u64,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Bytes>,
    bytes: u64,
    /// Set once: what the connection closes with after `frames` drain.
    close: Option<v1::Close>,
}

/// What the connection's writer should do next.
pub enum Drained {
    /// Write these frames (in order) and come back.
    Frames,
    /// Write these frames, then the Close, then close the transport.
    Close(v1::Close),
}

impl Outbox {
    pub fn new(limit: u64) -> Self {
        Self { state: Mutex::new(State::default()), wake: Notify::new(), limit }
    }

    /// Queues an encoded frame. Returns false (and drops it) when the session
    /// is closing, or overflowed just now and is closing with SLOW_CONSUMER.
    pub fn push(&self, frame: Bytes) -> bool {
        let mut state = self.state.lock().expect("outbox lock");
        if state.close.is_some() {
            return false;
        }
        let len = frame.len() as u64;
        // One frame always fits in an empty queue, however large: a reply the
        // server itself made big must not end the session forever.
        if state.bytes > 0 && state.bytes + len > self.limit {
            // What is queued is moot: the client resumes from its own
            // position, which lies before anything still queued here.
            state.frames.clear();
            state.bytes = 0;
            state.close = Some(v1::Close {
                code: v1::CloseCode::SlowConsumer as i32,
                reason: format!(
                    "the session fell more than {} bytes behind; reconnect and resume from your positions",
                    self.limit
                ),
            });
            drop(state);
            self.wake.notify_one();
            return false;
        }
        state.bytes += len;
        state.frames.push_back(frame);
        drop(state);
        self.wake.notify_one();
        true
    }

    /// Closes after what is queued has been written. The first close wins.
    pub fn close(&self, close: v1::Close) {
        let mut state = self.state.lock().expect("outbox lock");
        if state.close.is_none() {
            state.close = Some(close);
        }
        drop(state);
        self.wake.notify_one();
    }

    pub fn is_closing(&self) -> bool {
        self.state.lock().expect("outbox lock").close.is_some()
    }

    /// Waits for work and moves every queued frame into `out`.
    pub async fn drain(&self, out: &mut Vec<Bytes>) -> Drained {
        loop {
            {
                let mut state = self.state.lock().expect("outbox lock");
                if !state.frames.is_empty() || state.close.is_some() {
                    out.extend(state.frames.drain(..));
                    state.bytes = 0;
                    return match &state.close {
                        Some(close) => Drained::Close(close.clone()),
                        None => Drained::Frames,
                    };
                }
            }
            self.wake.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Bytes {
        Bytes::from(vec![0u8; n])
    }

    #[tokio::test]
    async fn overflow_closes_with_slow_consumer_and_drops_the_backlog() {
        let outbox = Outbox::new(100);
        assert!(outbox.push(frame(60)));
        assert!(!outbox.push(frame(60)));
        assert!(!outbox.push(frame(1)), "nothing is queued once closing");
        let mut out = Vec::new();
        match outbox.drain(&mut out).await {
            Drained::Close(close) => assert_eq!(close.code, v1::CloseCode::SlowConsumer as i32),
            Drained::Frames => panic!("expected a close"),
        }
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn one_frame_larger_than_the_limit_fits_an_empty_queue() {
        let outbox = Outbox::new(100);
        assert!(outbox.push(frame(500)));
        assert!(!outbox.push(frame(1)), "but nothing may queue behind it");
    }

    #[tokio::test]
    async fn graceful_close_delivers_what_was_queued_first() {
        let outbox = Outbox::new(1000);
        assert!(outbox.push(frame(10)));
        assert!(outbox.push(frame(20)));
        outbox.close(v1::Close { code: v1::CloseCode::ServerShutdown as i32, reason: "bye".into() });
        let mut out = Vec::new();
        assert!(matches!(outbox.drain(&mut out).await, Drained::Close(_)));
        assert_eq!(out.iter().map(|f| f.len()).collect::<Vec<_>>(), vec![10, 20]);
    }

    #[tokio::test]
    async fn bytes_are_released_as_the_writer_drains() {
        let outbox = Outbox::new(100);
        let mut out = Vec::new();
        for _ in 0..10 {
            assert!(outbox.push(frame(80)));
            assert!(matches!(outbox.drain(&mut out).await, Drained::Frames));
        }
        assert_eq!(out.len(), 10);
    }
}
