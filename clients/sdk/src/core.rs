//! The sans-IO core of the reconnecting client: request bookkeeping, the
//! sequence every connection goes through (Hello, Authenticate with a token
//! refresh when needed, Resume), event deduplication and gap handling, and
//! what is resent or failed when a connection drops.
//!
//! Inputs come in with `now` as a parameter (`on_connected`, `on_frame`,
//! `on_timeout`, `on_disconnected`, `submit`, `authenticate`); outputs are
//! pulled out (`poll_transmit`, `poll_reply`, `poll_event`, `poll_action`).
//! [`crate::client`] is the only async code around it. `R` is whatever the
//! driver uses to answer a request (a oneshot sender; a plain tag in tests).
//!
//! Per connection:
//!
//! ```text
//! on_connected --Hello--> Welcome --(tokens?)--Authenticate--> auth --Resume--> resumed --> Ready
//!                            |                      |TOKEN_EXPIRED
//!                            |                      +--Refresh--> auth --Authenticate--> ...
//!                            +--(no tokens)----------------------------------------------> Ready
//! ```
//!
//! Requests submitted before `Ready` wait in a queue. When a connection
//! drops, requests that were never written, sends (same `client_txn_id`, the
//! server deduplicates) and idempotent reads go back to the queue, in the
//! order the application made them; the others fail with
//! [`Error::ConnectionLost`]. A send refused with a temporary error stays too:
//! it goes again after the server's `retry_after_ms` (IDEM-5, LIMIT-3), see
//! [`retry_delay`]. Sends go out in the order the application made them
//! (SEND-6): while one waits for its retry, later sends wait behind it, across
//! reconnects too; other requests go ahead. A request still waiting when the
//! application gave up on it (its deadline passed, or its answer has no
//! receiver) is answered and never sent; sends still waiting when the session
//! logs out or becomes another user fail with [`Error::SessionChanged`].
//!
//! A `Close` frame is announced at once and stops all writing; what follows
//! (reconnect or stop) waits for the transport's close code, which decides
//! when the two disagree (CLOSE-3), even when a write fails in between; a
//! frame whose transport never closes decides alone after
//! [`CLOSE_CODE_WAIT`]. No application request goes out in a frame over the
//! limit `Welcome` states (LIMIT-1).

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    time::{Duration, Instant},
};

use confab_protocol::{
    Encoding, Epoch, RoomId, Seq, codec,
    liveness::{Liveness, LivenessAction},
    resume::{Observation, Positions},
    v1::{self, ClientFrame, client_frame::Command, server_frame::Body},
};

use crate::{Error, Event, Tokens};

/// Settings of the core that do not change while it runs.
#[derive(Clone, Debug)]
pub(crate) struct CoreConfig {
    /// Sent in `Hello`.
    pub client_name: String,
    /// Whether to send `Resume` (and so receive room events) once
    /// authenticated.
    pub receive_events: bool,
    /// How long to wait for `Welcome` after connecting.
    pub handshake_timeout: Duration,
    /// Room events kept for the application before further ones are
    /// dropped unobserved (and replayed by a `Resume` once it catches up).
    pub max_buffered_events: usize,
    /// How long the application waits for each reply (`None`: as long as
    /// the client lives). A request still waiting for its turn after that is
    /// answered with its last error (or [`Error::Timeout`]) and never sent.
    pub request_timeout: Option<Duration>,
    /// Temporary errors a send may meet in a row and still be kept and sent
    /// again (IDEM-5); the next one is the application's. 0: the first is.
    pub send_retries: u32,
    /// The most one send waits for its retries in all: a temporary error
    /// whose delay would take the total over this goes to the application.
    pub max_retry_wait: Duration,
}

/// How the core answers a request (a oneshot sender in the client, a plain
/// tag in tests): it must tell whether anyone still waits for the answer.
pub(crate) trait Answer {
    /// The application stopped waiting (it dropped the request's future).
    fn abandoned(&self) -> bool;
}

/// What the driver must do with the current connection.
#[derive(Clone, Debug)]
pub(crate) enum Action {
    /// Drop it and reconnect, waiting at least `min_delay` (the server's
    /// `retry_after_ms`) on top of the backoff.
    Reconnect { error: Error, min_delay: Duration },
    /// Drop it and stop for good.
    Stop(Error),
}

/// Where the current connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No connection.
    Disconnected,
    /// `Hello` sent, waiting for `Welcome`.
    Hello,
    /// `Authenticate` or `Refresh` in flight.
    Authenticating,
    /// The first `Resume` of this connection is in flight.
    Resuming,
    /// Application requests go straight out.
    Ready,
}

/// An application request and how to answer it.
struct AppRequest<R> {
    command: Command,
    reply: R,
    /// When the application made it, among all its requests: requests that
    /// go again after a reconnect keep this order (IDEM-5), and sends go out
    /// in it (SEND-6).
    order: u64,
    /// When the application stops waiting: not sent after it.
    deadline: Option<Instant>,
    /// A send refused for now goes again not before this (LIMIT-3, ERR-4),
    /// on this connection or the next.
    not_before: Option<Instant>,
    /// Temporary errors met in a row (sends only).
    temporary_errors: u32,
    /// The retry delays waited so far, against `max_retry_wait`.
    waited: Duration,
    /// The last temporary error: the answer if the send is given up.
    refused: Option<Box<Error>>,
}

impl<R: Answer> AppRequest<R> {
    /// Whether the application gave up on it.
    fn expired(&self, now: Instant) -> bool {
        self.reply.abandoned() || self.deadline.is_some_and(|deadline| now >= deadline)
    }

    /// A send held back by a refusal: later sends wait behind it.
    fn held(&self, now: Instant) -> bool {
        self.not_before.is_some_and(|due| due > now)
    }
}

/// How long a `Close` frame waits for the transport's close code.
pub(crate) const CLOSE_CODE_WAIT: Duration = Duration::from_secs(3);

/// Backoff for a temporary error without `retry_after_ms` (ERR-4): the
/// first delay, doubled on each retry up to the cap.
const TEMPORARY_RETRY_DELAY: Duration = Duration::from_secs(1);
const TEMPORARY_RETRY_MAX_DELAY: Duration = Duration::from_secs(30);

/// Why a request id is in flight.
enum Purpose<R> {
    App(AppRequest<R>),
    Hello,
    Authenticate { after_refresh: bool },
    Refresh,
    Resume,
    KeepAlive,
}

/// The capabilities this client asks for in `Hello`.
const CAPABILITIES: [&str; 2] = ["resume", "guests"];

pub(crate) struct ClientCore<R> {
    config: CoreConfig,
    phase: Phase,
    next_request_id: u64,
    /// Requests written (or about to be) on the current connection.
    pending: BTreeMap<u64, Purpose<R>>,
    /// Application requests not written yet, in the application's order:
    /// waiting for `Ready`, for a refused send's retry, or behind such a
    /// send. Grows only with requests the application is awaiting (those it
    /// gave up on are dropped at their deadline).
    queue: VecDeque<AppRequest<R>>,
    next_order: u64,
    /// Frames for the driver to write, in order.
    transmit: VecDeque<ClientFrame>,
    replies: VecDeque<(R, Result<Body, Error>)>,
    /// Events for the application; room events are capped at
    /// `max_buffered_events`, the rest are a few per connection.
    events: VecDeque<Event>,
    action: Option<Action>,
    tokens: Option<Tokens>,
    user: Option<v1::User>,
    /// Whether this connection's session is logged in.
    authenticated: bool,
    /// Application `authenticate` calls waiting for the outcome.
    auth_waiters: Vec<R>,
    positions: Positions,
    resume_in_flight: bool,
    /// Another `Resume` is needed once the one in flight is answered.
    resume_again: bool,
    /// Room events were dropped because the application fell behind.
    events_dropped: bool,
    /// `Event::Connected` was emitted for this connection.
    announced: bool,
    welcome: Option<v1::Welcome>,
    liveness: Option<Liveness>,
    last_received: Instant,
    idle_timeout: Duration,
    /// The encoding of the current connection, for frame sizes.
    encoding: Encoding,
    /// The `Close` frame of this connection, waiting for the transport's
    /// close code until `close_deadline`.
    close_frame: Option<v1::Close>,
    close_deadline: Option<Instant>,
}

impl<R: Answer> ClientCore<R> {
    pub fn new(config: CoreConfig, now: Instant) -> Self {
        ClientCore {
            idle_timeout: config.handshake_timeout,
            config,
            phase: Phase::Disconnected,
            next_request_id: 1,
            pending: BTreeMap::new(),
            queue: VecDeque::new(),
            next_order: 0,
            transmit: VecDeque::new(),
            replies: VecDeque::new(),
            events: VecDeque::new(),
            action: None,
            tokens: None,
            user: None,
            authenticated: false,
            auth_waiters: Vec::new(),
            positions: Positions::default(),
            resume_in_flight: false,
            resume_again: false,
            events_dropped: false,
            announced: false,
            welcome: None,
            liveness: None,
            last_received: now,
            encoding: Encoding::Proto,
            close_frame: None,
            close_deadline: None,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn tokens(&self) -> Option<&Tokens> {
        self.tokens.as_ref()
    }

    pub fn user(&self) -> Option<&v1::User> {
        self.user.as_ref()
    }

    pub fn welcome(&self) -> Option<&v1::Welcome> {
        self.welcome.as_ref()
    }

    #[cfg(test)]
    pub fn positions(&self) -> &Positions {
        &self.positions
    }

    // ---- inputs -------------------------------------------------------

    /// An application request; answered through `reply`.
    pub fn submit(&mut self, now: Instant, command: Command, reply: R) {
        let order = self.next_order;
        self.next_order += 1;
        self.queue.push_back(AppRequest {
            command,
            reply,
            order,
            deadline: self.config.request_timeout.map(|timeout| now + timeout),
            not_before: None,
            temporary_errors: 0,
            waited: Duration::ZERO,
            refused: None,
        });
        self.release(now);
    }

    /// The application's `authenticate(tokens)`: remember the tokens and
    /// authenticate now (or as soon as connected). `reply` gets the
    /// `AuthResult` or the error.
    pub fn authenticate(&mut self, tokens: Tokens, reply: R) {
        if self.tokens.is_some() {
            self.replies.push_back((reply, Err(Error::InvalidState("already logged in; log out first".into()))));
            return;
        }
        self.tokens = Some(tokens);
        self.auth_waiters.push(reply);
        if self.phase == Phase::Ready {
            self.start_authenticate(false);
        }
        // Otherwise the Welcome of the connection being set up authenticates.
    }

    /// A transport is up: start the handshake.
    pub fn on_connected(&mut self, now: Instant, encoding: Encoding) {
        self.phase = Phase::Hello;
        self.encoding = encoding;
        self.close_frame = None;
        self.close_deadline = None;
        self.authenticated = false;
        self.announced = false;
        self.welcome = None;
        self.action = None;
        self.last_received = now;
        self.idle_timeout = self.config.handshake_timeout;
        self.liveness = Some(Liveness::new(now, self.config.handshake_timeout, self.config.handshake_timeout));
        let hello = v1::Hello {
            versions: vec![confab_protocol::PROTOCOL_VERSION],
            feature_level: confab_protocol::FEATURE_LEVEL,
            capabilities: CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            client_name: self.config.client_name.clone(),
        };
        self.send_internal(Purpose::Hello, Command::Hello(hello));
    }

    /// The transport is gone: requeue what can be retried, fail the rest.
    pub fn on_disconnected(&mut self) {
        let unsent: BTreeSet<u64> = self.transmit.drain(..).map(|frame| frame.request_id).collect();
        self.phase = Phase::Disconnected;
        self.authenticated = false;
        self.liveness = None;
        self.close_frame = None;
        self.close_deadline = None;
        self.resume_in_flight = false;
        self.resume_again = false;
        // The next connection's Resume replays whatever was dropped.
        self.events_dropped = false;
        let mut retry = Vec::new();
        for (id, purpose) in std::mem::take(&mut self.pending) {
            if let Purpose::App(request) = purpose {
                if unsent.contains(&id) || retried_after_reconnect(&request.command) {
                    retry.push(request);
                } else {
                    self.replies.push_back((request.reply, Err(Error::ConnectionLost)));
                }
            }
        }
        retry.extend(self.queue.drain(..));
        // As the application made them (IDEM-5: sends in their original
        // order); a refused send keeps its due time and holds later ones.
        retry.sort_by_key(|request| request.order);
        self.queue = retry.into();
    }

    /// The transport closed, with the WebSocket status or QUIC application
    /// error code it gave. A code of 4000-4999 decides (CLOSE-3), whatever
    /// the `Close` frame said; without one, the frame decides; without
    /// either, the connection was lost: reconnect.
    pub fn on_transport_closed(&mut self, code: Option<i32>, reason: String) {
        self.close_deadline = None;
        let frame = self.close_frame.take();
        let action = match (code.filter(|c| (4000..5000).contains(c)), frame) {
            (Some(code), frame) => {
                let reason = if reason.is_empty() { frame.map(|f| f.reason).unwrap_or_default() } else { reason };
                close_action(code, reason)
            }
            (None, Some(frame)) => close_action(frame.code, frame.reason),
            (None, None) => {
                let error = if reason.is_empty() {
                    Error::Transport("the server closed the connection".into())
                } else {
                    Error::Transport(format!("the server closed the connection: {reason}"))
                };
                Action::Reconnect { error, min_delay: Duration::ZERO }
            }
        };
        self.set_action(action);
    }

    /// Writing failed. After a `Close` frame the transport's close code may
    /// still come and decide (CLOSE-3): wait for it until the close
    /// deadline. Otherwise reconnect.
    pub fn on_write_failed(&mut self, error: Error) {
        if self.close_frame.is_some() {
            tracing::debug!(%error, "write failed after a Close frame; waiting for the close code");
            return;
        }
        self.on_transport_lost(error);
    }

    /// Reading failed (so no close code will come): reconnect, or do what a
    /// `Close` frame received before said.
    pub fn on_transport_lost(&mut self, error: Error) {
        self.close_deadline = None;
        let action = match self.close_frame.take() {
            Some(frame) => close_action(frame.code, frame.reason),
            None => Action::Reconnect { error, min_delay: Duration::ZERO },
        };
        self.set_action(action);
    }

    /// The client stops for good: every waiting request fails with `error`.
    pub fn fail_all(&mut self, error: &Error) {
        self.on_disconnected();
        for request in self.queue.drain(..) {
            self.replies.push_back((request.reply, Err(error.clone())));
        }
        for waiter in self.auth_waiters.drain(..) {
            self.replies.push_back((waiter, Err(error.clone())));
        }
    }

    /// A frame arrived from the server.
    pub fn on_frame(&mut self, now: Instant, frame: v1::ServerFrame) {
        self.last_received = now;
        if let Some(liveness) = &mut self.liveness {
            liveness.on_received(now);
        }
        if frame.request_id == 0 {
            self.on_push(now, frame.body);
            return;
        }
        let Some(purpose) = self.pending.remove(&frame.request_id) else {
            tracing::debug!(request_id = frame.request_id, "reply to no request in flight; ignored");
            return;
        };
        let result = match frame.body {
            Some(Body::Error(error)) => Err(Error::Server(error)),
            Some(body) => Ok(body),
            None => Err(Error::Protocol("the server answered with a reply kind this client does not know".into())),
        };
        match purpose {
            Purpose::App(request) => self.on_app_reply(now, request, result),
            Purpose::Hello => self.on_welcome(now, result),
            Purpose::Authenticate { after_refresh } => self.on_authenticated(now, result, after_refresh),
            Purpose::Refresh => self.on_refreshed(now, result),
            Purpose::Resume => self.on_resumed(now, result),
            Purpose::KeepAlive => {}
        }
    }

    /// Time passed: act on a `Close` frame whose transport stayed open, send
    /// sends due again, answer requests the application gave up on, send a
    /// keep-alive `Ping`, or give up on a silent server.
    pub fn on_timeout(&mut self, now: Instant) {
        if self.close_deadline.is_some_and(|deadline| now >= deadline) {
            self.close_deadline = None;
            if let Some(frame) = self.close_frame.take() {
                self.set_action(close_action(frame.code, frame.reason));
            }
        }
        self.release(now);
        let Some(liveness) = &self.liveness else { return };
        match liveness.poll(now) {
            LivenessAction::Wait => {}
            LivenessAction::TimedOut => {
                let what = if self.phase == Phase::Hello { "no Welcome" } else { "nothing" };
                tracing::debug!(
                    idle_ms = self.idle_timeout.as_millis() as u64,
                    "{what} received in time; reconnecting"
                );
                self.set_action(Action::Reconnect { error: Error::Timeout, min_delay: Duration::ZERO });
            }
            LivenessAction::SendPing => {
                if self.phase != Phase::Hello && self.transmit.is_empty() && self.close_frame.is_none() {
                    self.send_internal(Purpose::KeepAlive, Command::Ping(v1::Ping {}));
                }
            }
        }
    }

    /// When `on_timeout` next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let liveness = self.liveness.as_ref().map(|liveness| {
            if self.transmit.is_empty() {
                liveness.next_deadline()
            } else {
                // Writing is pending; only the idle timeout matters until it is done.
                self.last_received + self.idle_timeout
            }
        });
        // After `release`, the first send waiting is the one holding the
        // others (when sending at all).
        let retry = self.queue.iter().find(|request| is_send(&request.command)).and_then(|request| request.not_before);
        let retry = retry.filter(|_| self.may_transmit());
        let given_up = self.queue.iter().filter_map(|request| request.deadline).min();
        [liveness, retry, given_up, self.close_deadline].into_iter().flatten().min()
    }

    // ---- outputs ------------------------------------------------------

    /// Whether there is a frame to write (never after a `Close` frame).
    pub fn has_transmit(&self) -> bool {
        !self.transmit.is_empty() && self.close_frame.is_none()
    }

    /// The next frame to write; the caller writes it now.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<ClientFrame> {
        if self.close_frame.is_some() {
            // The server is closing: what is left goes on the next connection.
            return None;
        }
        let frame = self.transmit.pop_front()?;
        if let Some(liveness) = &mut self.liveness {
            liveness.on_sent(now);
        }
        Some(frame)
    }

    pub fn poll_reply(&mut self) -> Option<(R, Result<Body, Error>)> {
        self.replies.pop_front()
    }

    pub fn has_event(&self) -> bool {
        !self.events.is_empty()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        if self.events_dropped && self.events.len() <= self.config.max_buffered_events / 2 && self.phase == Phase::Ready
        {
            self.events_dropped = false;
            tracing::debug!("caught up after dropping events; resuming to replay them");
            self.request_resume();
        }
        Some(event)
    }

    /// Adds an event of the driver's own (connection state changes) in order
    /// with the core's.
    pub fn push_event(&mut self, event: Event) {
        self.events.push_back(event);
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.action.take()
    }

    // ---- internals ----------------------------------------------------

    fn next_id(&mut self) -> u64 {
        let id = self.next_request_id;
        self.next_request_id = self.next_request_id.checked_add(1).unwrap_or(1);
        id
    }

    fn send_internal(&mut self, purpose: Purpose<R>, command: Command) {
        let request_id = self.next_id();
        self.pending.insert(request_id, purpose);
        self.transmit.push_back(ClientFrame { request_id, command: Some(command) });
    }

    fn send_app(&mut self, request: AppRequest<R>) {
        let request_id = self.next_id();
        let frame = ClientFrame { request_id, command: Some(request.command.clone()) };
        if let Some(limit) = self.frame_limit() {
            let size = match self.encoding {
                Encoding::Proto => prost::Message::encoded_len(&frame),
                Encoding::Json => codec::encode(&frame, Encoding::Json).len(),
            };
            if size > limit {
                // The server would close the session (LIMIT-1): refuse here.
                self.replies.push_back((request.reply, Err(Error::FrameTooLarge { size, limit })));
                return;
            }
        }
        self.transmit.push_back(frame);
        self.pending.insert(request_id, Purpose::App(request));
    }

    /// The largest frame the server accepts now, from `Welcome` (LIMIT-1).
    fn frame_limit(&self) -> Option<usize> {
        let limits = self.welcome.as_ref()?.limits?;
        let limit = if self.authenticated { limits.max_frame_bytes } else { limits.max_frame_bytes_unauthenticated };
        (limit > 0).then_some(limit as usize)
    }

    fn set_action(&mut self, action: Action) {
        // A decision to stop is never downgraded to a reconnect.
        if !matches!(self.action, Some(Action::Stop(_))) {
            self.action = Some(action);
        }
    }

    fn become_ready(&mut self, now: Instant) {
        self.phase = Phase::Ready;
        if !self.announced {
            self.announced = true;
            let session_id = self.welcome.as_ref().map_or(0, |w| w.session_id);
            self.events.push_back(Event::Connected { session_id });
        }
        self.release(now);
    }

    /// Whether application requests may be written now.
    fn may_transmit(&self) -> bool {
        self.phase == Phase::Ready && self.close_frame.is_none()
    }

    /// Answers the requests the application gave up on, then writes what may
    /// go out, in the application's order: a send waiting for its retry
    /// holds every later send behind it (SEND-6, IDEM-5); other requests go
    /// ahead.
    fn release(&mut self, now: Instant) {
        self.expire(now);
        if !self.may_transmit() {
            return;
        }
        let mut waiting = VecDeque::new();
        let mut sends_held = false;
        for request in std::mem::take(&mut self.queue) {
            if is_send(&request.command) && (sends_held || request.held(now)) {
                sends_held = true;
                waiting.push_back(request);
            } else {
                self.send_app(request);
            }
        }
        self.queue = waiting;
    }

    /// Answers, without sending them, the waiting requests whose application
    /// gave up: with a send's last refusal, or a timeout.
    fn expire(&mut self, now: Instant) {
        let (expired, waiting): (VecDeque<_>, VecDeque<_>) =
            std::mem::take(&mut self.queue).into_iter().partition(|r| r.expired(now));
        self.queue = waiting;
        for request in expired {
            tracing::debug!(order = request.order, "request given up before it could be sent");
            let error = request.refused.map_or(Error::Timeout, |refused| *refused);
            self.replies.push_back((request.reply, Err(error)));
        }
    }

    /// Puts a refused send back among the waiting requests, in order.
    fn requeue(&mut self, request: AppRequest<R>) {
        let at = self.queue.partition_point(|waiting| waiting.order < request.order);
        self.queue.insert(at, request);
    }

    /// Fails the sends not written yet: the session they were made in has
    /// logged out or become another user.
    fn fail_waiting_sends(&mut self) {
        let (sends, others): (VecDeque<_>, VecDeque<_>) =
            std::mem::take(&mut self.queue).into_iter().partition(|r| is_send(&r.command));
        self.queue = others;
        for request in sends {
            self.replies.push_back((request.reply, Err(Error::SessionChanged)));
        }
    }

    fn start_authenticate(&mut self, after_refresh: bool) {
        let Some(tokens) = &self.tokens else { return };
        let command = Command::Authenticate(v1::Authenticate { access_token: tokens.access_token.clone() });
        self.phase = Phase::Authenticating;
        self.send_internal(Purpose::Authenticate { after_refresh }, command);
    }

    /// Sends `Resume` now, or right after the one in flight is answered.
    fn request_resume(&mut self) {
        if !self.config.receive_events || !self.authenticated {
            return;
        }
        if self.resume_in_flight {
            self.resume_again = true;
            return;
        }
        self.resume_in_flight = true;
        let resume = self.positions.to_resume();
        self.send_internal(Purpose::Resume, Command::Resume(resume));
    }

    fn on_app_reply(&mut self, now: Instant, mut request: AppRequest<R>, result: Result<Body, Error>) {
        if let Err(Error::Server(error)) = &result
            && let Some(delay) = retry_delay(&request, error, now, &self.config)
        {
            // Kept in the outbox (IDEM-5) and sent again, with the same
            // transaction id, not before `retry_after_ms` (LIMIT-3, ERR-4).
            tracing::debug!(code = error.code, delay_ms = delay.as_millis() as u64, "send refused for now; retrying");
            request.temporary_errors += 1;
            request.waited += delay;
            request.not_before = Some(now + delay);
            request.refused = result.err().map(Box::new);
            self.requeue(request);
            return;
        }
        if let Ok(body) = &result {
            match (&request.command, body) {
                (Command::Login(_) | Command::Register(_) | Command::GuestLogin(_), Body::Auth(auth)) => {
                    let me = self.user.as_ref().map(|user| user.user_id);
                    if me.is_some() && me != auth.user.as_ref().map(|user| user.user_id) {
                        // Sends made as the previous user are not sent as this one.
                        self.fail_waiting_sends();
                    }
                    self.tokens = Tokens::from_auth(auth);
                    self.user = auth.user.clone();
                    self.authenticated = true;
                    self.request_resume();
                }
                (Command::Refresh(_), Body::Auth(auth)) => {
                    // Rotation: the refresh token just used is dead.
                    if let Some(tokens) = Tokens::from_auth(auth) {
                        self.tokens = Some(tokens);
                    }
                    if auth.user.is_some() {
                        self.user = auth.user.clone();
                    }
                }
                (Command::Logout(_), Body::Done(_)) => {
                    self.tokens = None;
                    self.user = None;
                    self.authenticated = false;
                    self.positions = Positions::default();
                    self.resume_again = false;
                    self.fail_waiting_sends();
                }
                _ => {}
            }
        }
        self.replies.push_back((request.reply, result));
    }

    fn on_welcome(&mut self, now: Instant, result: Result<Body, Error>) {
        match result {
            Ok(Body::Welcome(welcome)) => {
                let ping = millis_or(welcome.ping_interval_ms, Duration::from_secs(10));
                self.idle_timeout = millis_or(welcome.idle_timeout_ms, ping * 3);
                self.liveness = Some(Liveness::new(now, ping, self.idle_timeout));
                self.welcome = Some(welcome);
                if self.tokens.is_some() {
                    self.start_authenticate(false);
                } else {
                    self.become_ready(now);
                }
            }
            Ok(_) => self.set_action(Action::Stop(Error::Protocol("the server answered Hello without Welcome".into()))),
            Err(error) => self.set_action(Action::Stop(error)),
        }
    }

    fn on_authenticated(&mut self, now: Instant, result: Result<Body, Error>, after_refresh: bool) {
        match result {
            Ok(Body::Auth(auth)) => {
                self.authenticated = true;
                if auth.user.is_some() {
                    self.user = auth.user.clone();
                }
                if let Some(tokens) = Tokens::from_auth(&auth) {
                    self.tokens = Some(tokens);
                }
                for waiter in std::mem::take(&mut self.auth_waiters) {
                    self.replies.push_back((waiter, Ok(Body::Auth(auth.clone()))));
                }
                if self.config.receive_events {
                    self.phase = Phase::Resuming;
                    self.request_resume();
                } else {
                    self.become_ready(now);
                }
            }
            Err(Error::Server(error))
                if error.code == v1::ErrorCode::TokenExpired as i32
                    && !after_refresh
                    && self.tokens.as_ref().is_some_and(|t| t.refresh_token.is_some()) =>
            {
                let refresh_token = self.tokens.as_ref().and_then(|t| t.refresh_token.clone()).unwrap_or_default();
                tracing::debug!("access token expired; refreshing");
                self.send_internal(Purpose::Refresh, Command::Refresh(v1::Refresh { refresh_token }));
            }
            Ok(_) => {
                self.auth_failed(now, Error::Protocol("the server answered Authenticate without AuthResult".into()))
            }
            Err(error) => self.auth_failed(now, error),
        }
    }

    fn on_refreshed(&mut self, now: Instant, result: Result<Body, Error>) {
        match result {
            Ok(Body::Auth(auth)) => match Tokens::from_auth(&auth) {
                Some(tokens) => {
                    self.tokens = Some(tokens.clone());
                    self.events.push_back(Event::TokensRefreshed(tokens));
                    self.start_authenticate(true);
                }
                None => self.auth_failed(now, Error::Protocol("the server answered Refresh without tokens".into())),
            },
            Ok(_) => self.auth_failed(now, Error::Protocol("the server answered Refresh without AuthResult".into())),
            Err(error) => self.auth_failed(now, error),
        }
    }

    /// Authentication (or the refresh before it) was refused.
    fn auth_failed(&mut self, now: Instant, error: Error) {
        if let Error::Server(server) = &error
            && server.temporary
        {
            let min_delay = Duration::from_millis(server.retry_after_ms.into());
            self.set_action(Action::Reconnect { error, min_delay });
            return;
        }
        if self.auth_waiters.is_empty() {
            // Re-authenticating after a reconnect: the session cannot go on.
            tracing::debug!(%error, "re-authentication refused; stopping");
            self.set_action(Action::Stop(error));
            return;
        }
        // The application's own authenticate: tell it, stay connected.
        self.tokens = None;
        self.user = None;
        for waiter in std::mem::take(&mut self.auth_waiters) {
            self.replies.push_back((waiter, Err(error.clone())));
        }
        self.become_ready(now);
    }

    fn on_resumed(&mut self, now: Instant, result: Result<Body, Error>) {
        self.resume_in_flight = false;
        match result {
            Ok(Body::Resumed(resumed)) => {
                for status in &resumed.rooms {
                    self.apply_resume_status(status);
                }
                if self.phase == Phase::Resuming {
                    self.become_ready(now);
                }
                if std::mem::take(&mut self.resume_again) {
                    self.request_resume();
                }
            }
            Ok(_) => {
                self.set_action(Action::Stop(Error::Protocol("the server answered Resume without ResumeResult".into())))
            }
            Err(Error::Server(error)) if error.temporary => {
                let min_delay = Duration::from_millis(error.retry_after_ms.into());
                self.set_action(Action::Reconnect { error: Error::Server(error), min_delay });
            }
            Err(error) => self.set_action(Action::Stop(error)),
        }
    }

    fn apply_resume_status(&mut self, status: &v1::RoomResumeStatus) {
        let room = RoomId(status.room_id);
        let outcome = v1::ResumeOutcome::try_from(status.outcome);
        if matches!(outcome, Ok(v1::ResumeOutcome::Live | v1::ResumeOutcome::Reset)) {
            // Live events after head_seq may have arrived before this answer;
            // never move a position back over them.
            let ahead = self
                .positions
                .get(room)
                .is_some_and(|(epoch, seen)| epoch == Epoch(status.epoch) && seen > Seq(status.head_seq));
            if !ahead {
                self.positions.apply(status);
            }
        } else {
            self.positions.apply(status);
        }
        if outcome == Ok(v1::ResumeOutcome::Reset) {
            self.events.push_back(Event::RoomReset {
                room,
                epoch: Epoch(status.epoch),
                head_seq: Seq(status.head_seq),
            });
        }
    }

    fn on_push(&mut self, now: Instant, body: Option<Body>) {
        match body {
            Some(Body::Event(event)) => self.on_room_event(event),
            Some(Body::Close(close)) => {
                self.events.push_back(Event::ServerClosed { code: close.code, reason: close.reason.clone() });
                // What follows waits for the transport's close code (CLOSE-3).
                self.close_frame = Some(close);
                self.close_deadline = Some(now + CLOSE_CODE_WAIT);
            }
            Some(Body::Ping(_)) => {}
            Some(Body::ReadState(state)) => self.push_transient(Event::ReadState(state)),
            Some(Body::Receipt(receipt)) => self.push_transient(Event::Receipt(receipt)),
            Some(Body::Typing(typing)) => self.push_transient(Event::Typing(typing)),
            Some(Body::Presence(presence)) => self.push_transient(Event::Presence(presence)),
            Some(Body::Notification(notification)) => self.push_transient(Event::Notification(notification)),
            Some(Body::Error(error)) => {
                tracing::warn!(code = error.code, "the server reported an error answering no request");
                self.events.push_back(Event::ServerError(error));
            }
            // Unknown push kinds (and replies without a request id) are
            // ignored, as the protocol asks.
            _ => tracing::debug!("ignored a push of a kind this client does not handle"),
        }
    }

    /// A push that is not part of a room's log: nothing replays it, so when
    /// the application has fallen behind it is dropped rather than held.
    fn push_transient(&mut self, event: Event) {
        if self.events.len() >= self.config.max_buffered_events {
            tracing::debug!("the application fell behind; a push was dropped");
            return;
        }
        self.events.push_back(event);
    }

    fn invites_me(&self, event: &v1::RoomEvent) -> bool {
        let Some(v1::room_event::Kind::MemberInvited(invited)) = &event.kind else { return false };
        let me = self.user.as_ref().map(|u| u.user_id);
        me.is_some() && invited.invitee.as_ref().map(|u| u.user_id) == me
    }

    fn on_room_event(&mut self, event: v1::RoomEvent) {
        if self.events.len() >= self.config.max_buffered_events {
            // Not observed, so the position stays before it and a Resume
            // once the application catches up replays it.
            self.events_dropped = true;
            return;
        }
        let room = RoomId(event.room_id);
        if self.positions.get(room).is_none() && self.invites_me(&event) {
            // An invitation to a room this client does not follow: news, not
            // a position in that room (RESUME-6).
            self.events.push_back(Event::Room(event));
            return;
        }
        if let Some((known, _)) = self.positions.get(room)
            && known != Epoch(event.epoch)
        {
            // The log was rebuilt: positions of the old epoch are void, and
            // the room is reloaded as after RESET (RESUME-11, LOG-3). The
            // event is part of what the reload reads.
            let (epoch, head_seq) = (Epoch(event.epoch), Seq(event.seq));
            tracing::debug!(room_id = event.room_id, epoch = epoch.0, "the room's log has a new epoch; reset");
            self.positions.set(room, epoch, head_seq);
            self.events.push_back(Event::RoomReset { room, epoch, head_seq });
            return;
        }
        match self.positions.observe(&event) {
            Observation::Duplicate => {}
            Observation::Gap { expected } => {
                tracing::debug!(
                    room_id = event.room_id,
                    expected = expected.0,
                    got = event.seq,
                    "gap in room events; resuming"
                );
                self.request_resume();
            }
            Observation::Next | Observation::First => self.events.push_back(Event::Room(event)),
        }
    }
}

/// What a close code asks for: 4000-4499 reconnect, 4500-4999 stop, and
/// anything else (no usable code) reconnect, as a lost connection.
fn close_action(code: i32, reason: String) -> Action {
    let error = Error::Closed { code, reason };
    if (4500..5000).contains(&code) {
        Action::Stop(error)
    } else {
        Action::Reconnect { error, min_delay: Duration::ZERO }
    }
}

/// How long to wait before sending a send refused with `error` again, or
/// `None` when the error is the application's: not a send, not temporary,
/// refused too often in a row, or a wait that would take the send's total
/// over `max_retry_wait` or end when the application has stopped waiting.
/// The server's `retry_after_ms` when it gives one (LIMIT-3), else a
/// doubling backoff (ERR-4).
fn retry_delay<R>(request: &AppRequest<R>, error: &v1::Error, now: Instant, config: &CoreConfig) -> Option<Duration> {
    if !is_send(&request.command) || !error.temporary || request.temporary_errors >= config.send_retries {
        return None;
    }
    let delay = if error.retry_after_ms > 0 {
        Duration::from_millis(error.retry_after_ms.into())
    } else {
        TEMPORARY_RETRY_DELAY.saturating_mul(1 << request.temporary_errors.min(5)).min(TEMPORARY_RETRY_MAX_DELAY)
    };
    let within_budget = request.waited.saturating_add(delay) <= config.max_retry_wait;
    let before_deadline = request.deadline.is_none_or(|deadline| now + delay < deadline);
    (within_budget && before_deadline).then_some(delay)
}

fn is_send(command: &Command) -> bool {
    matches!(command, Command::SendMessage(_))
}

/// Whether an application request written on a connection that dropped
/// before its reply is sent again on the next one. Sends are safe (the
/// server deduplicates by `client_txn_id`), as are reads, joins and
/// requests that set a state; anything else (an edit appends an event each
/// time, a second deletion is refused) may have been applied and fails with
/// `ConnectionLost`.
fn retried_after_reconnect(command: &Command) -> bool {
    matches!(
        command,
        Command::SendMessage(_)
            | Command::GetHistory(_)
            | Command::ListRooms(_)
            | Command::ListMembers(_)
            | Command::Ping(_)
            | Command::JoinRoom(_)
            | Command::OpenDirect(_)
            // Reads.
            | Command::GetThread(_)
            | Command::GetReceipts(_)
            | Command::GetProfile(_)
            | Command::SearchUsers(_)
            | Command::GetFile(_)
            // Setting a state again changes nothing more: markers only move
            // forward, a reaction is a set member, a setting holds one value.
            | Command::MarkRead(_)
            | Command::MarkDelivered(_)
            | Command::React(_)
            | Command::SetTyping(_)
            | Command::SetPresence(_)
            | Command::SetProfile(_)
            | Command::SetNotificationLevel(_)
            | Command::UpdateRoom(_)
    )
}

fn millis_or(ms: u32, default: Duration) -> Duration {
    if ms == 0 { default } else { Duration::from_millis(ms.into()) }
}

#[cfg(test)]
mod tests;
