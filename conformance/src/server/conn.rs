//! [`Conn`]: one logged connection to the server under test, with every wait
//! bounded. Replies are matched by request id; whatever else arrives while
//! a reply is awaited is kept, in order, for the next read.

use std::{collections::VecDeque, time::Duration};

use bytes::Bytes;
use confab_sdk::{
    raw::{RawConnection, RawReceived},
    v1::{self, client_frame::Command, server_frame::Body},
};
use tokio::time::{Instant, timeout_at};

use super::show::{show_frame, show_reply};
use crate::{
    evidence::{Direction, FrameLog},
    outcome::{CaseResult, Stop},
};

/// A command's reply: its body, or the error the server answered.
pub type Reply = Result<Body, v1::Error>;

/// How long "nothing more arrives" is watched for after the events a case
/// waits for.
pub const QUIET: Duration = Duration::from_millis(300);

/// How long the room and account cases watch for a stray event.
pub const LONG_QUIET: Duration = Duration::from_millis(500);

/// How the server ended a connection.
#[derive(Clone, Debug, Default)]
pub struct Closing {
    /// The `Close` push, if one came before the transport closed.
    pub close: Option<v1::Close>,
    /// The transport close code (WebSocket status, QUIC application error).
    pub code: Option<i32>,
    pub reason: String,
    /// Frames that arrived before the close (other than `Close`).
    pub before: Vec<v1::ServerFrame>,
}

impl Closing {
    /// Whether both the `Close` frame and the transport carry `code` (CLOSE-1).
    pub fn is(&self, code: v1::CloseCode) -> bool {
        self.code == Some(code as i32) && self.close.as_ref().is_some_and(|c| c.code == code as i32)
    }

    pub fn describe(&self) -> String {
        let frame = match &self.close {
            Some(close) => format!("Close frame {} {:?}", close_name(close.code), close.reason),
            None => "no Close frame".into(),
        };
        let transport = match self.code {
            Some(code) => format!("transport code {code} {:?}", self.reason),
            None if self.reason.is_empty() => "no transport code".into(),
            None => format!("no transport code: {}", self.reason),
        };
        format!("{frame}, {transport}")
    }
}

fn close_name(code: i32) -> String {
    v1::CloseCode::try_from(code).map(|c| c.as_str_name().to_owned()).unwrap_or_else(|_| code.to_string())
}

pub struct Conn {
    raw: RawConnection,
    label: String,
    log: FrameLog,
    held: VecDeque<RawReceived>,
    wait: Duration,
    /// The `Welcome` of this connection, once [`Conn::hello`] succeeded.
    pub welcome: Option<v1::Welcome>,
}

impl Conn {
    pub(super) fn new(raw: RawConnection, label: String, log: FrameLog, wait: Duration) -> Conn {
        Conn { raw, label, log, held: VecDeque::new(), wait, welcome: None }
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The limits from `Welcome` (defaults before the handshake).
    pub fn limits(&self) -> v1::Limits {
        self.welcome.as_ref().and_then(|w| w.limits).unwrap_or_default()
    }

    /// `ping_interval_ms` from `Welcome` (zero before the handshake).
    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.welcome.as_ref().map_or(0, |w| w.ping_interval_ms).into())
    }

    /// Waits until `deadline`, sending a `Ping` every ping interval meanwhile
    /// as a client keeping its session alive does (LIVE-1), so a server's
    /// idle timeout shorter than the wait does not end the session.
    pub async fn keep_alive_until(&mut self, deadline: Instant) -> CaseResult {
        let interval = self.ping_interval().max(Duration::from_millis(100));
        loop {
            let next = (Instant::now() + interval).min(deadline);
            tokio::time::sleep_until(next).await;
            if next >= deadline {
                return Ok(());
            }
            if let Err(error) = self.request_once(Command::Ping(v1::Ping {})).await? {
                return Err(self.failed(format!("Ping answered {error}")));
            }
        }
    }

    /// `idle_timeout_ms` from `Welcome` (zero before the handshake).
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.welcome.as_ref().map_or(0, |w| w.idle_timeout_ms).into())
    }

    fn failed(&self, what: impl std::fmt::Display) -> Stop {
        Stop::Failed(format!("{}: {what}", self.label))
    }

    // --- sending ---

    /// Sends `frame` exactly as given (any request id, even 0).
    pub async fn send(&mut self, frame: &v1::ClientFrame) -> CaseResult {
        self.log.frame(&self.label, Direction::Sent, frame);
        self.raw.send(frame).await.map_err(|e| self.failed(format!("send failed: {e}")))
    }

    /// Sends `command` with a fresh request id; returns the id.
    pub async fn command(&mut self, command: Command) -> CaseResult<u64> {
        let request_id = self.raw.next_request_id();
        self.send(&v1::ClientFrame { request_id, command: Some(command) }).await?;
        Ok(request_id)
    }

    /// Sends `payload` as one frame, whatever it holds.
    pub async fn send_payload(&mut self, payload: impl Into<Bytes>) -> CaseResult {
        let payload = payload.into();
        self.log.bytes(&self.label, Direction::Sent, "payload", &payload);
        self.raw.send_payload(payload).await.map_err(|e| self.failed(format!("send failed: {e}")))
    }

    /// Writes `bytes` unframed (QUIC stream bytes; one binary WebSocket message).
    pub async fn send_raw(&mut self, bytes: impl Into<Bytes>) -> CaseResult {
        let bytes = bytes.into();
        self.log.bytes(&self.label, Direction::Sent, "raw bytes", &bytes);
        self.raw.send_raw(bytes).await.map_err(|e| self.failed(format!("send failed: {e}")))
    }

    /// Sends one WebSocket text message.
    pub async fn send_ws_text(&mut self, text: impl Into<String>) -> CaseResult {
        let text = text.into();
        self.log.bytes(&self.label, Direction::Sent, "ws text", text.as_bytes());
        self.raw.send_ws_text(text).await.map_err(|e| self.failed(format!("send failed: {e}")))
    }

    // --- receiving ---

    /// The next thing received (held ones first), or `None` when nothing
    /// comes within `wait`; a transport error as it came.
    async fn receive(&mut self, wait: Duration) -> Option<Result<RawReceived, confab_sdk::Error>> {
        if let Some(held) = self.held.pop_front() {
            return Some(Ok(held));
        }
        let received = tokio::time::timeout(wait, self.raw.recv()).await.ok()?;
        match &received {
            Ok(RawReceived::Frame(frame)) => self.log.frame(&self.label, Direction::Received, frame),
            Ok(RawReceived::Undecodable { payload, error }) => {
                self.log.bytes(&self.label, Direction::Received, &format!("undecodable ({error})"), payload)
            }
            Ok(RawReceived::Closed { code, reason }) => {
                self.log.event(&self.label, &format!("transport closed: code {code:?}, reason {reason:?}"))
            }
            Err(error) => self.log.event(&self.label, &format!("transport failed: {error}")),
        }
        Some(received)
    }

    /// The next thing received, or `None` when nothing comes within `wait`.
    /// A transport error (a connection reset, say) stops the case.
    pub async fn recv_within(&mut self, wait: Duration) -> CaseResult<Option<RawReceived>> {
        match self.receive(wait).await {
            None => Ok(None),
            Some(Ok(received)) => Ok(Some(received)),
            Some(Err(error)) => Err(self.failed(format!("receive failed: {error}"))),
        }
    }

    /// [`Conn::recv_within`] for reading how a session ends: a transport
    /// torn down without a close (a connection reset, say) comes as
    /// `Closed` with no code and the error as the reason.
    pub async fn recv_or_reset(&mut self, wait: Duration) -> Option<RawReceived> {
        match self.receive(wait).await? {
            Ok(received) => Some(received),
            Err(error) => Some(RawReceived::Closed { code: None, reason: error.to_string() }),
        }
    }

    /// The next thing received, failing the case after the reply timeout.
    pub async fn recv(&mut self) -> CaseResult<RawReceived> {
        match self.recv_within(self.wait).await? {
            Some(received) => Ok(received),
            None => Err(self.failed(format!("nothing received within {} s", self.wait.as_secs()))),
        }
    }

    /// The next decodable frame; a close or an undecodable frame fails the case.
    pub async fn frame(&mut self) -> CaseResult<v1::ServerFrame> {
        match self.recv().await? {
            RawReceived::Frame(frame) => Ok(frame),
            RawReceived::Undecodable { error, .. } => Err(self.failed(format!("undecodable frame: {error}"))),
            RawReceived::Closed { code, reason } => {
                Err(self.failed(format!("closed unexpectedly (code {code:?}, {reason:?})")))
            }
        }
    }

    /// Waits for the frame answering `request_id`, keeping everything else.
    pub async fn reply(&mut self, request_id: u64) -> CaseResult<v1::ServerFrame> {
        let deadline = Instant::now() + self.wait;
        let mut kept = VecDeque::new();
        let found = loop {
            let Some(received) = self.held.pop_front() else {
                match timeout_at(deadline, self.recv_within(self.wait)).await {
                    Ok(Ok(Some(received))) => {
                        self.held.push_back(received);
                        continue;
                    }
                    Ok(Err(stop)) => break Err(stop),
                    Ok(Ok(None)) | Err(_) => {
                        break Err(
                            self.failed(format!("no reply to request {request_id} within {} s", self.wait.as_secs()))
                        );
                    }
                }
            };
            match received {
                RawReceived::Frame(frame) if frame.request_id == request_id => break Ok(frame),
                RawReceived::Closed { code, reason } => {
                    kept.push_back(RawReceived::Closed { code, reason: reason.clone() });
                    break Err(self.failed(format!(
                        "closed (code {code:?}, {reason:?}) before replying to request {request_id}"
                    )));
                }
                other => kept.push_back(other),
            }
        };
        kept.extend(self.held.drain(..));
        self.held = kept;
        found
    }

    /// The reply to `request_id` (an `Error` reply is `Err`).
    pub async fn reply_of(&mut self, request_id: u64) -> CaseResult<Reply> {
        let frame = self.reply(request_id).await?;
        match frame.body {
            Some(Body::Error(error)) => Ok(Err(error)),
            Some(body) => Ok(Ok(body)),
            None => Err(self.failed(format!("the reply to request {request_id} has no body this suite knows"))),
        }
    }

    /// Sends `command` and returns its reply (an `Error` reply is `Err`),
    /// waiting out `RATE_LIMITED` answers as told for up to 30 s: the suite
    /// makes many requests from one address, and a server's request limits
    /// must not decide what other cases see. Cases about the limits
    /// themselves use [`Conn::request_once`].
    pub async fn request(&mut self, command: Command) -> CaseResult<Reply> {
        self.patiently(command).await
    }

    /// Sends `command` once and returns its reply, whatever it is.
    pub async fn request_once(&mut self, command: Command) -> CaseResult<Reply> {
        let request_id = self.command(command).await?;
        self.reply_of(request_id).await
    }

    /// Sends `command` and expects the reply `extract` picks out; anything
    /// else stops the case with what was received.
    pub async fn call<T>(&mut self, command: Command, what: &str, extract: fn(Body) -> Option<T>) -> CaseResult<T> {
        let reply = self.request(command).await?;
        let shown = show_reply(&reply);
        match reply.map(extract) {
            Ok(Some(value)) => Ok(value),
            _ => Err(self.failed(format!("expected {what}, got {shown}"))),
        }
    }

    /// The next frame that is not a heartbeat.
    pub async fn next_answer(&mut self) -> CaseResult<v1::ServerFrame> {
        loop {
            let frame = self.frame().await?;
            if !is_heartbeat(&frame) {
                return Ok(frame);
            }
        }
    }

    /// Everything but heartbeats that arrives within `window`, shown: for
    /// checking that nothing (more) answers what was sent.
    pub async fn anything_within(&mut self, window: Duration) -> CaseResult<Vec<String>> {
        let deadline = Instant::now() + window;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.recv_within(left).await? {
                None => break,
                Some(RawReceived::Frame(frame)) if is_heartbeat(&frame) => {}
                Some(RawReceived::Frame(frame)) => seen.push(show_frame(&frame)),
                Some(RawReceived::Undecodable { error, .. }) => seen.push(format!("an undecodable frame ({error})")),
                Some(RawReceived::Closed { code, reason }) => {
                    seen.push(format!("the transport closed (code {code:?}, {reason:?})"));
                    break;
                }
            }
        }
        Ok(seen)
    }

    /// The next room event pushed, skipping heartbeats. Replies and other
    /// pushes that arrive first are kept for later reads.
    pub async fn event(&mut self) -> CaseResult<v1::RoomEvent> {
        match self.event_within(self.wait).await? {
            Some(event) => Ok(event),
            None => Err(self.failed(format!("no room event within {} s", self.wait.as_secs()))),
        }
    }

    /// The next room event pushed within `wait`, or `None`.
    pub async fn event_within(&mut self, wait: Duration) -> CaseResult<Option<v1::RoomEvent>> {
        let deadline = Instant::now() + wait;
        let mut kept = VecDeque::new();
        let mut pending = std::mem::take(&mut self.held);
        let found = loop {
            let received = match pending.pop_front() {
                Some(held) => held,
                None => match timeout_at(deadline, self.recv_within(wait)).await {
                    Ok(Ok(Some(received))) => received,
                    Ok(Err(stop)) => break Err(stop),
                    Ok(Ok(None)) | Err(_) => break Ok(None),
                },
            };
            match received {
                RawReceived::Frame(v1::ServerFrame { request_id: 0, body: Some(Body::Event(event)) }) => {
                    break Ok(Some(event));
                }
                RawReceived::Frame(v1::ServerFrame { request_id: 0, body: Some(Body::Ping(_)) }) => {}
                RawReceived::Closed { code, reason } => {
                    kept.push_back(RawReceived::Closed { code, reason: reason.clone() });
                    break Err(self.failed(format!("closed (code {code:?}, {reason:?}) while waiting for an event")));
                }
                other => kept.push_back(other),
            }
        };
        kept.extend(pending);
        kept.extend(self.held.drain(..));
        self.held = kept;
        found
    }

    /// The next push (request id 0) that `pick` picks out within `wait`,
    /// or `None`; heartbeats are dropped and everything else is kept, in
    /// order, for later reads. For the pushes of feature level 2
    /// (`typing`, `receipt`, `presence`, `notification`, `read_state`).
    pub async fn push_within<T>(&mut self, wait: Duration, pick: impl Fn(&Body) -> Option<T>) -> CaseResult<Option<T>> {
        let deadline = Instant::now() + wait;
        let mut kept = VecDeque::new();
        let mut pending = std::mem::take(&mut self.held);
        let found = loop {
            let received = match pending.pop_front() {
                Some(held) => held,
                None => match timeout_at(deadline, self.recv_within(wait)).await {
                    Ok(Ok(Some(received))) => received,
                    Ok(Err(stop)) => break Err(stop),
                    Ok(Ok(None)) | Err(_) => break Ok(None),
                },
            };
            match received {
                RawReceived::Frame(v1::ServerFrame { request_id: 0, body: Some(Body::Ping(_)) }) => {}
                RawReceived::Frame(v1::ServerFrame { request_id: 0, body: Some(body) }) => match pick(&body) {
                    Some(value) => break Ok(Some(value)),
                    None => kept.push_back(RawReceived::Frame(v1::ServerFrame { request_id: 0, body: Some(body) })),
                },
                RawReceived::Closed { code, reason } => {
                    kept.push_back(RawReceived::Closed { code, reason: reason.clone() });
                    break Err(self.failed(format!("closed (code {code:?}, {reason:?}) while waiting for a push")));
                }
                other => kept.push_back(other),
            }
        };
        kept.extend(pending);
        kept.extend(self.held.drain(..));
        self.held = kept;
        found
    }

    /// [`Conn::push_within`] the reply timeout; none is a failure saying `what`.
    pub async fn push<T>(&mut self, what: &str, pick: impl Fn(&Body) -> Option<T>) -> CaseResult<T> {
        match self.push_within(self.wait, pick).await? {
            Some(value) => Ok(value),
            None => Err(self.failed(format!("no {what} pushed within {} s", self.wait.as_secs()))),
        }
    }

    /// Every push `pick` picks out until none comes for `quiet`.
    pub async fn pushes_until_quiet<T>(
        &mut self,
        quiet: Duration,
        pick: impl Fn(&Body) -> Option<T>,
    ) -> CaseResult<Vec<T>> {
        let mut found = Vec::new();
        while let Some(value) = self.push_within(quiet, &pick).await? {
            found.push(value);
        }
        Ok(found)
    }

    /// Forgets everything received so far and not yet read (after a step
    /// whose pushes the case does not look at).
    pub async fn drain(&mut self, quiet: Duration) -> CaseResult {
        self.held.clear();
        while self.recv_within(quiet).await?.is_some() {}
        Ok(())
    }

    /// Every room event pushed until nothing more comes for `quiet`.
    pub async fn events_until_quiet(&mut self, quiet: Duration) -> CaseResult<Vec<v1::RoomEvent>> {
        let mut events = Vec::new();
        while let Some(event) = self.event_within(quiet).await? {
            events.push(event);
        }
        Ok(events)
    }

    /// `n` room events pushed (each within the reply timeout; fewer when
    /// they stop coming), then whatever else comes until `QUIET`.
    pub async fn events(&mut self, n: usize) -> CaseResult<Vec<v1::RoomEvent>> {
        let mut events = Vec::with_capacity(n);
        while events.len() < n {
            match self.event_within(self.wait).await? {
                Some(event) => events.push(event),
                None => break,
            }
        }
        events.extend(self.events_until_quiet(QUIET).await?);
        Ok(events)
    }

    /// Reads until the server closes the transport (within `wait`),
    /// collecting the `Close` push and anything before it. A transport torn
    /// down without a close (a connection reset) is a closing too, with no
    /// code and the error as the reason: the case grades it.
    pub async fn closed_within(&mut self, wait: Duration) -> CaseResult<Closing> {
        let deadline = Instant::now() + wait;
        let mut closing = Closing::default();
        loop {
            let received = match timeout_at(deadline, self.recv_or_reset(wait)).await {
                Ok(Some(received)) => received,
                Ok(None) | Err(_) => {
                    return Err(self.failed(format!(
                        "still open {} s later; expected the server to close ({})",
                        wait.as_secs(),
                        closing.describe()
                    )));
                }
            };
            match received {
                RawReceived::Frame(v1::ServerFrame { body: Some(Body::Close(close)), .. }) => {
                    closing.close = Some(close)
                }
                RawReceived::Frame(frame) => closing.before.push(frame),
                RawReceived::Undecodable { .. } => {}
                RawReceived::Closed { code, reason } => {
                    closing.code = code;
                    closing.reason = reason;
                    return Ok(closing);
                }
            }
        }
    }

    /// [`Conn::closed_within`] the reply timeout.
    pub async fn closed(&mut self) -> CaseResult<Closing> {
        self.closed_within(self.wait).await
    }

    /// Closes politely.
    pub async fn close(self) {
        self.log.event(&self.label, "closing");
        self.raw.close().await;
    }

    // --- commands ---

    /// `Hello` as a v1 client sends it; keeps and returns the `Welcome`.
    pub async fn hello(&mut self) -> CaseResult<v1::Welcome> {
        let hello = hello();
        let welcome = self
            .call(Command::Hello(hello), "Welcome", |b| match b {
                Body::Welcome(w) => Some(w),
                _ => None,
            })
            .await?;
        self.welcome = Some(welcome.clone());
        Ok(welcome)
    }

    /// Whether `Welcome` lists `capability` (HELLO-4).
    pub fn offers(&self, capability: &str) -> bool {
        self.welcome.as_ref().is_some_and(|w| w.capabilities.iter().any(|c| c == capability))
    }

    /// Which phase the session is in, seen from outside: the reply to
    /// `ListRooms`, which is admitted only when authenticated (STATE-2).
    /// See `is_authenticated`.
    pub async fn probe(&mut self) -> CaseResult<Reply> {
        self.request(Command::ListRooms(v1::ListRooms { scope: v1::RoomScope::Mine as i32, ..Default::default() }))
            .await
    }

    // --- log-in commands ---

    /// Sends a command and returns its reply, waiting out `RATE_LIMITED`
    /// answers for up to 30 s (the suite makes many requests from one
    /// address); still refused then, the case is skipped, saying so.
    pub async fn patiently(&mut self, command: Command) -> CaseResult<Reply> {
        match self.patiently_until(command, Instant::now() + Duration::from_secs(30)).await? {
            // Still refused after 30 s: the limits decide what the case
            // sees, so it cannot check anything more.
            Err(error) if error.code == v1::ErrorCode::RateLimited as i32 => Err(rate_limited(&error)),
            reply => Ok(reply),
        }
    }

    /// [`Conn::patiently`], retrying only while the retry would be sent
    /// before `give_up`; returns the last reply (`RATE_LIMITED` if it gave up).
    pub async fn patiently_until(&mut self, command: Command, give_up: Instant) -> CaseResult<Reply> {
        loop {
            let reply = self.request_once(command.clone()).await?;
            match &reply {
                Err(error) if error.code == v1::ErrorCode::RateLimited as i32 => {
                    let wait = Duration::from_millis(u64::from(error.retry_after_ms).max(100));
                    if Instant::now() + wait >= give_up {
                        return Ok(reply);
                    }
                    self.log.note(&format!("rate limited; waiting {} ms as told", wait.as_millis()));
                    tokio::time::sleep(wait).await;
                }
                _ => return Ok(reply),
            }
        }
    }

    /// `Register`, waiting out `RATE_LIMITED` answers (up to 30 s): the
    /// suite makes many accounts from one address.
    pub async fn register(&mut self, name: &str, password: &str) -> CaseResult<v1::AuthResult> {
        self.auth_patiently(register_command(name, password, "conformance")).await
    }

    /// `Login`, waiting out `RATE_LIMITED` answers.
    pub async fn login(&mut self, name: &str, password: &str) -> CaseResult<v1::AuthResult> {
        self.auth_patiently(login_command(name, password, "conformance")).await
    }

    /// `GuestLogin`, waiting out `RATE_LIMITED` answers.
    pub async fn guest(&mut self, name: &str) -> CaseResult<v1::AuthResult> {
        self.auth_patiently(guest_command(name)).await
    }

    /// `Refresh`, waiting out `RATE_LIMITED` answers; expects `AuthResult`.
    pub async fn refresh(&mut self, refresh_token: &str) -> CaseResult<v1::AuthResult> {
        self.auth_patiently(refresh_command(refresh_token)).await
    }

    /// `Authenticate` with an access token.
    pub async fn authenticate(&mut self, access_token: &str) -> CaseResult<v1::AuthResult> {
        self.call(authenticate_command(access_token), "AuthResult", auth).await
    }

    pub async fn try_authenticate(&mut self, access_token: &str) -> CaseResult<Reply> {
        self.request(authenticate_command(access_token)).await
    }

    async fn auth_patiently(&mut self, command: Command) -> CaseResult<v1::AuthResult> {
        let reply = self.patiently(command).await?;
        let shown = show_reply(&reply);
        match reply {
            Ok(Body::Auth(result)) => Ok(result),
            _ => Err(self.failed(format!("expected AuthResult, got {shown}"))),
        }
    }

    /// `Logout`; expects `Done`.
    pub async fn logout(&mut self) -> CaseResult {
        self.call(Command::Logout(v1::Logout {}), "Done (Logout)", done).await
    }

    // --- rooms: `try_X` returns the reply as it came, `X` expects success ---

    pub async fn create_room(&mut self, name: &str, kind: v1::RoomKind) -> CaseResult<v1::RoomInfo> {
        let create = v1::CreateRoom { name: name.into(), kind: kind as i32, ..Default::default() };
        self.call(Command::CreateRoom(create), "RoomInfo", room).await
    }

    /// `CreateRoom` of any `kind` number, known or not.
    pub async fn try_create_room(&mut self, name: &str, kind: i32) -> CaseResult<Reply> {
        self.request(Command::CreateRoom(v1::CreateRoom { name: name.into(), kind, ..Default::default() })).await
    }

    pub async fn join(&mut self, room_ref: v1::RoomRef) -> CaseResult<v1::RoomInfo> {
        self.call(Command::JoinRoom(v1::JoinRoom { room: Some(room_ref) }), "RoomInfo", room).await
    }

    pub async fn try_join(&mut self, room: v1::RoomRef) -> CaseResult<Reply> {
        self.request(Command::JoinRoom(v1::JoinRoom { room: Some(room) })).await
    }

    pub async fn leave(&mut self, room: v1::RoomRef) -> CaseResult {
        self.call(Command::LeaveRoom(v1::LeaveRoom { room: Some(room) }), "Done (LeaveRoom)", done).await
    }

    pub async fn try_leave(&mut self, room: v1::RoomRef) -> CaseResult<Reply> {
        self.request(Command::LeaveRoom(v1::LeaveRoom { room: Some(room) })).await
    }

    pub async fn invite(&mut self, room: v1::RoomRef, username: &str) -> CaseResult {
        let invite = v1::InviteToRoom { room: Some(room), username: username.into() };
        self.call(Command::InviteToRoom(invite), "Done (InviteToRoom)", done).await
    }

    pub async fn try_invite(&mut self, room: v1::RoomRef, username: &str) -> CaseResult<Reply> {
        self.request(Command::InviteToRoom(v1::InviteToRoom { room: Some(room), username: username.into() })).await
    }

    /// `ListMembers`; the members.
    pub async fn list_members(&mut self, room: v1::RoomRef) -> CaseResult<Vec<v1::Member>> {
        let list = Command::ListMembers(v1::ListMembers { room: Some(room) });
        self.call(list, "MemberList", |b| match b {
            Body::Members(m) => Some(m.members),
            _ => None,
        })
        .await
    }

    pub async fn try_list_members(&mut self, room: v1::RoomRef) -> CaseResult<Reply> {
        self.request(Command::ListMembers(v1::ListMembers { room: Some(room) })).await
    }

    /// `ListRooms` in `scope`; the rooms.
    pub async fn list_rooms(&mut self, scope: v1::RoomScope) -> CaseResult<Vec<v1::RoomInfo>> {
        let list = Command::ListRooms(v1::ListRooms { scope: scope as i32, ..Default::default() });
        self.call(list, &format!("RoomList ({})", scope.as_str_name()), |b| match b {
            Body::Rooms(r) => Some(r.rooms),
            _ => None,
        })
        .await
    }

    pub async fn open_direct(&mut self, username: &str) -> CaseResult<v1::RoomInfo> {
        self.call(Command::OpenDirect(v1::OpenDirect { username: username.into() }), "RoomInfo", room).await
    }

    pub async fn try_open_direct(&mut self, username: &str) -> CaseResult<Reply> {
        self.request(Command::OpenDirect(v1::OpenDirect { username: username.into() })).await
    }

    /// `SendMessage` to room `room_id`; expects `SendResult`.
    pub async fn send_message(&mut self, room_id: u64, text: &str, txn: &str) -> CaseResult<v1::SendResult> {
        let command = send_message(room_id, text, txn);
        self.call(command, "SendResult", |b| match b {
            Body::Sent(s) => Some(s),
            _ => None,
        })
        .await
    }

    pub async fn history(
        &mut self,
        room_id: u64,
        direction: v1::HistoryDirection,
        anchor_seq: u64,
        limit: u32,
    ) -> CaseResult<v1::HistoryPage> {
        let get = v1::GetHistory { room: Some(by_id(room_id)), direction: direction as i32, anchor_seq, limit };
        self.call(Command::GetHistory(get), "HistoryPage", |b| match b {
            Body::History(h) => Some(h),
            _ => None,
        })
        .await
    }

    /// A room's whole log, read `FORWARD` from the start, page by page.
    pub async fn room_log(&mut self, room_id: u64) -> CaseResult<Vec<v1::RoomEvent>> {
        let mut events: Vec<v1::RoomEvent> = Vec::new();
        for _ in 0..1000 {
            let anchor = events.last().map_or(0, |e| e.seq);
            let page = self.history(room_id, v1::HistoryDirection::Forward, anchor, 0).await?;
            let more = page.has_more && !page.events.is_empty();
            events.extend(page.events);
            if !more {
                return Ok(events);
            }
        }
        Err(self.failed(format!("room {room_id}: still more history after 1000 pages")))
    }

    /// The head of each room, from `GetHistory`.
    pub async fn head_seqs<const N: usize>(&mut self, rooms: [u64; N]) -> CaseResult<[u64; N]> {
        let mut heads = [0; N];
        for (head, room) in heads.iter_mut().zip(rooms) {
            *head = self.history(room, v1::HistoryDirection::Backward, 0, 1).await?.head_seq;
        }
        Ok(heads)
    }

    /// Sends every `(text, txn)` to room `room_id` without waiting, then
    /// reads the replies in the order sent; expects every one a `SendResult`.
    pub async fn send_all(&mut self, room_id: u64, sends: &[(String, String)]) -> CaseResult<Vec<v1::SendResult>> {
        let mut ids = Vec::with_capacity(sends.len());
        for (text, txn) in sends {
            ids.push(self.command(send_message(room_id, text, txn)).await?);
        }
        let mut results = Vec::with_capacity(ids.len());
        for id in ids {
            match self.reply_of(id).await? {
                Ok(Body::Sent(result)) => results.push(result),
                Err(error) if error.code == v1::ErrorCode::RateLimited as i32 => return Err(rate_limited(&error)),
                other => return Err(self.failed(format!("expected SendResult, got {}", show_reply(&other)))),
            }
        }
        Ok(results)
    }

    /// `Resume` from `positions` (empty: live from now on).
    pub async fn resume(&mut self, positions: Vec<v1::RoomPosition>) -> CaseResult<v1::ResumeResult> {
        self.call(Command::Resume(v1::Resume { positions }), "ResumeResult", resumed).await
    }

    /// `Resume` without positions: live from now on in every joined room.
    pub async fn go_live(&mut self) -> CaseResult<v1::ResumeResult> {
        self.resume(Vec::new()).await
    }

    /// `Resume` from `positions`, reading until its reply: the events pushed
    /// before it (in arrival order) and the `ResumeResult`.
    pub async fn resume_collect(
        &mut self,
        positions: Vec<v1::RoomPosition>,
    ) -> CaseResult<(Vec<v1::RoomEvent>, v1::ResumeResult)> {
        let request_id = self.command(Command::Resume(v1::Resume { positions })).await?;
        let mut before = Vec::new();
        loop {
            let frame = self.frame().await?;
            if frame.request_id == request_id {
                return match frame.body {
                    Some(Body::Resumed(result)) => Ok((before, result)),
                    _ => Err(self.failed(format!("expected ResumeResult, got {}", show_frame(&frame)))),
                };
            }
            if let v1::ServerFrame { request_id: 0, body: Some(Body::Event(event)) } = frame {
                before.push(event);
            }
        }
    }
}

/// How a case stops when the server's request limits got in the way of
/// pipelined requests it cannot simply repeat: not checked, so skipped.
pub fn rate_limited(error: &v1::Error) -> Stop {
    Stop::Skipped(format!(
        "the server's request limits answered RATE_LIMITED ({}): raise them for a conformance run",
        error.message
    ))
}

/// The `Hello` a v1 client sends.
pub fn hello() -> v1::Hello {
    v1::Hello {
        versions: vec![confab_protocol::PROTOCOL_VERSION],
        feature_level: confab_protocol::FEATURE_LEVEL,
        capabilities: vec!["resume".into(), "guests".into()],
        client_name: "confab-conformance".into(),
    }
}

/// A `SendMessage` command.
pub fn send_message(room_id: u64, text: &str, txn: &str) -> Command {
    Command::SendMessage(v1::SendMessage {
        room: Some(by_id(room_id)),
        text: text.into(),
        client_txn_id: txn.into(),
        ..Default::default()
    })
}

pub fn register_command(username: &str, password: &str, device_name: &str) -> Command {
    Command::Register(v1::Register {
        username: username.into(),
        password: password.into(),
        device_name: device_name.into(),
    })
}

pub fn login_command(username: &str, password: &str, device_name: &str) -> Command {
    Command::Login(v1::Login { username: username.into(), password: password.into(), device_name: device_name.into() })
}

pub fn refresh_command(refresh_token: &str) -> Command {
    Command::Refresh(v1::Refresh { refresh_token: refresh_token.into() })
}

pub fn authenticate_command(access_token: &str) -> Command {
    Command::Authenticate(v1::Authenticate { access_token: access_token.into() })
}

pub fn guest_command(display_name: &str) -> Command {
    Command::GuestLogin(v1::GuestLogin { display_name: display_name.into() })
}

pub fn by_id(room_id: u64) -> v1::RoomRef {
    v1::RoomRef::id(confab_sdk::RoomId(room_id))
}

pub fn by_name(name: impl Into<String>) -> v1::RoomRef {
    v1::RoomRef::name(name)
}

/// `n` sends with texts `{tag} {i}` and transaction ids `{tag}-{i}`, for
/// [`Conn::send_all`].
pub fn numbered(tag: &str, n: usize) -> Vec<(String, String)> {
    (0..n).map(|i| (format!("{tag} {i}"), format!("{tag}-{i}"))).collect()
}

/// Whether `reply` is the error `code`.
pub fn is_error(reply: &Reply, code: v1::ErrorCode) -> bool {
    matches!(reply, Err(error) if error.code == code as i32)
}

/// Whether `frame` is an `Error` with `code` (a reply or a push).
pub fn is_error_frame(frame: &v1::ServerFrame, code: v1::ErrorCode) -> bool {
    matches!(&frame.body, Some(Body::Error(error)) if error.code == code as i32)
}

/// Whether `frame` is the server's `Ping` push.
pub fn is_heartbeat(frame: &v1::ServerFrame) -> bool {
    frame.request_id == 0 && matches!(frame.body, Some(Body::Ping(_)))
}

/// Whether a [`Conn::probe`] reply says the session is authenticated (a
/// `RoomList`; `WRONG_STATE` when it is not).
pub fn is_authenticated(probe: &Reply) -> bool {
    matches!(probe, Ok(Body::Rooms(_)))
}

fn auth(body: Body) -> Option<v1::AuthResult> {
    match body {
        Body::Auth(a) => Some(a),
        _ => None,
    }
}

fn done(body: Body) -> Option<()> {
    matches!(body, Body::Done(_)).then_some(())
}

fn room(body: Body) -> Option<v1::RoomInfo> {
    match body {
        Body::Room(r) => Some(r),
        _ => None,
    }
}

fn resumed(body: Body) -> Option<v1::ResumeResult> {
    match body {
        Body::Resumed(r) => Some(r),
        _ => None,
    }
}
