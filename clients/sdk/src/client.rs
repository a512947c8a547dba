//! [`Client`]: the reconnecting client. Typed async requests go through one
//! driver task that owns the [`ClientCore`](crate::core) state machine and
//! the current [`Connection`], reconnects with backoff, and feeds the event
//! stream. The requests of feature level 2 are in `conversation.rs`, file
//! transfers (beside the command stream) in `files.rs`.

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use confab_protocol::{
    Encoding, Seq, codec,
    v1::{self, client_frame::Command, server_frame::Body},
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    Error, Event, ReconnectPolicy, RoomRef, Tokens,
    connection::{Connection, Incoming},
    core::{Action, Answer, ClientCore, CoreConfig, Phase},
    tls::{Fingerprint, Trust},
    transport::TransportSettings,
    url::ServerUrl,
};

/// The reply body's `$variant`, or a protocol error naming what came instead.
macro_rules! expect {
    ($body:expr, $variant:ident) => {
        match $body {
            Body::$variant(inner) => Ok(inner),
            other => Err(Error::Protocol(format!(
                "expected a {} reply, got {}",
                stringify!($variant),
                crate::client::body_name(&other)
            ))),
        }
    };
}

mod conversation;
mod files;

/// How a [`Client`] connects and behaves. Start from `Default` and change
/// what you need:
///
/// ```
/// use confab_sdk::{ClientOptions, Trust, protocol::Encoding};
/// let options = ClientOptions {
///     encoding: Encoding::Json,
///     trust: Trust::TrustOnFirstUse,
///     ..ClientOptions::default()
/// };
/// ```
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// WebSocket encoding (`confab.v1.proto` or `confab.v1.json`); QUIC is
    /// always protobuf. Default: protobuf.
    pub encoding: Encoding,
    /// Which certificates to accept on `quic://` and `wss://`. Default:
    /// [`Trust::WebPki`]. confabd's default self-signed certificate needs
    /// [`Trust::Fingerprint`] or [`Trust::TrustOnFirstUse`].
    pub trust: Trust,
    /// Sent in `Hello`, for the server's logs. Default `confab-sdk/VERSION`.
    pub client_name: String,
    /// Sent with `Register` and `Login`, shown in session lists.
    pub device_name: String,
    /// Bound on connecting (transport, TLS, and the `Hello`/`Welcome`
    /// handshake). Default 10 s.
    pub connect_timeout: Duration,
    /// Bound on each request's reply; `None` waits as long as the client
    /// lives. A timed-out send may still be applied (retry it with
    /// [`Client::send_with_txn`] and the same id to be sure). Default 30 s.
    pub request_timeout: Option<Duration>,
    /// Reconnect pacing after a connection is lost.
    pub reconnect: ReconnectPolicy,
    /// How many times in a row a send refused with a temporary error
    /// (`RATE_LIMITED`, `UNAVAILABLE`, `INTERNAL`) is kept and sent again,
    /// with its transaction id, after the server's `retry_after_ms` (or a
    /// backoff), before [`Client::send`] returns the error; across
    /// reconnects too (protocol IDEM-5). Later sends wait behind one
    /// waiting for its retry, so sends go out in the order they were made.
    /// An error whose wait would end after `request_timeout` (counted from
    /// the call) is returned at once; a send whose caller stopped waiting is
    /// never sent again. 0 returns the first one. Default 8.
    pub send_retries: u32,
    /// Whether to receive room events (the SDK sends `Resume` once logged
    /// in). Turn off for one-shot requests that never read events. Default on.
    pub receive_events: bool,
    /// Room events buffered for [`Client::next_event`]. When the application
    /// falls further behind, newer events are dropped and replayed by a
    /// `Resume` once it catches up, so none is lost. Default 4096.
    pub event_buffer: usize,
    /// Largest frame accepted from the server. Default 16 MiB.
    pub max_frame_bytes: usize,
    /// QUIC keep-alive for the first connection; reconnects use the
    /// server's ping interval. Default 10 s.
    pub quic_keep_alive: Duration,
    /// QUIC idle timeout for the first connection; reconnects use the
    /// server's idle timeout. Default 60 s (the server's applies if smaller).
    pub quic_idle_timeout: Duration,
    /// Where HTTP file transfers go (`http://host:port` or
    /// `https://host:port/prefix`): downloads, and uploads over WebSocket.
    /// Default `None`: the host and port of a `ws://` or `wss://` URL
    /// (`/files` beside the WebSocket path); for a `quic://` URL, the HTTP
    /// listener the server names in `Welcome.http_url` (uploads go over the
    /// QUIC connection itself).
    pub files_url: Option<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            encoding: Encoding::Proto,
            trust: Trust::WebPki,
            client_name: concat!("confab-sdk/", env!("CARGO_PKG_VERSION")).into(),
            device_name: String::new(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Some(Duration::from_secs(30)),
            reconnect: ReconnectPolicy::default(),
            send_retries: 8,
            receive_events: true,
            event_buffer: 4096,
            max_frame_bytes: 16 << 20,
            quic_keep_alive: Duration::from_secs(10),
            quic_idle_timeout: Duration::from_secs(60),
            files_url: None,
        }
    }
}

impl ClientOptions {
    pub(crate) fn transport_settings(&self) -> TransportSettings {
        TransportSettings {
            encoding: self.encoding,
            trust: self.trust.clone(),
            connect_timeout: self.connect_timeout,
            max_frame_bytes: self.max_frame_bytes,
            quic_keep_alive: self.quic_keep_alive,
            quic_idle_timeout: self.quic_idle_timeout,
        }
    }
}

type Reply = oneshot::Sender<Result<Body, Error>>;

impl<T> Answer for oneshot::Sender<T> {
    /// The caller's future (holding the receiver) was dropped or timed out.
    fn abandoned(&self) -> bool {
        self.is_closed()
    }
}

/// A call from a [`Client`] handle to its driver task.
enum ApiCall {
    Request { command: Command, reply: Reply },
    Authenticate { tokens: Tokens, reply: Reply },
    Close,
}

/// What the driver publishes for the handle to read without a round trip.
#[derive(Default)]
struct Snapshot {
    tokens: Option<Tokens>,
    user: Option<v1::User>,
    welcome: Option<v1::Welcome>,
    fingerprint: Option<Fingerprint>,
    /// The current QUIC connection (QUIC only), for upload streams.
    quic: Option<quinn::Connection>,
    /// Why the client stopped, once it has.
    stopped: Option<Error>,
}

type Shared = Arc<Mutex<Snapshot>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Snapshot> {
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A connection to a confab server that stays up: it reconnects with
/// backoff, re-authenticates (refreshing an expired access token), resumes
/// room events without loss or duplicates, and resends unanswered messages
/// with their original transaction ids.
///
/// ```no_run
/// # async fn demo() -> Result<(), confab_sdk::Error> {
/// use confab_sdk::{Client, ClientOptions, Event};
/// let client = Client::connect("ws://127.0.0.1:7080", ClientOptions::default()).await?;
/// client.login("alice", "correct horse").await?;
/// client.join("general").await?;
/// client.send("general", "hello").await?;
/// while let Some(event) = client.next_event().await {
///     if let Event::Room(event) = event {
///         println!("{} in room {}", event.seq, event.room_id);
///     }
/// }
/// # Ok(()) }
/// ```
///
/// Requests may be made concurrently from several tasks (`&self`). Requests
/// made while reconnecting wait and go out once the session is back. When the
/// connection drops after a request was written and before its reply came:
/// sends are resent with the same `client_txn_id` and the same content
/// (the server applies each once and answers the retry with `duplicate:
/// true`); reads, joins and requests that set a state (`history`, `thread`,
/// `list_rooms`, `search_rooms`, `members`, `receipts`, `profile`,
/// `search_users`, `file_info`, `ping`, `join`, `open_direct`, `mark_read`,
/// `mark_delivered`, `react`, `unreact`, `set_typing`, `set_presence`,
/// `set_profile`, `set_notification_level`, `update_room`) are simply sent
/// again; anything else (`register`, `login`, `guest`, `refresh`, `logout`,
/// `create_room`, `create_group`, `leave`, `invite`, `edit`,
/// `delete_message`) fails with [`Error::ConnectionLost`], because it may
/// or may not have been applied. File transfers run beside the command
/// stream and are not retried.
///
/// Dropping the client stops its tasks and the connection at once;
/// [`Client::close`] closes politely first.
pub struct Client {
    calls: mpsc::Sender<ApiCall>,
    events: tokio::sync::Mutex<mpsc::Receiver<Event>>,
    shared: Shared,
    options: ClientOptions,
    url: ServerUrl,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Client {
    /// Connects to `url` (`quic://host:port`, `ws://host:port[/path]` or
    /// `wss://host:port[/path]`) and completes the `Hello`/`Welcome`
    /// handshake. Makes one attempt: reconnecting starts only once connected.
    pub async fn connect(url: &str, options: ClientOptions) -> Result<Client, Error> {
        let url = ServerUrl::parse(url)?;
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let settings = options.transport_settings();
        let first = Connection::open(&url, &settings, &tracker, &cancel).await?;
        let (calls, calls_rx) = mpsc::channel(64);
        let (events_tx, events) = mpsc::channel(256);
        let (ready_tx, ready_rx) = oneshot::channel();
        let shared = Shared::default();
        {
            let mut shared = lock(&shared);
            shared.fingerprint = first.fingerprint;
            shared.quic = first.quic.clone();
        }
        let core = ClientCore::new(
            CoreConfig {
                client_name: options.client_name.clone(),
                receive_events: options.receive_events,
                handshake_timeout: options.connect_timeout,
                max_buffered_events: options.event_buffer.max(1),
                request_timeout: options.request_timeout,
                send_retries: options.send_retries,
                max_retry_wait: options.request_timeout.unwrap_or(Duration::MAX),
            },
            now(),
        );
        let driver = Driver {
            core,
            url: url.clone(),
            settings,
            policy: options.reconnect.clone(),
            calls: calls_rx,
            events: events_tx,
            shared: shared.clone(),
            tracker: tracker.clone(),
            cancel: cancel.clone(),
            ready: Some(ready_tx),
        };
        tracker.spawn(driver.run(first));
        tracker.close();
        let client = Client { calls, events: tokio::sync::Mutex::new(events), shared, options, url, cancel, tracker };
        match tokio::time::timeout(client.options.connect_timeout, ready_rx).await {
            Ok(Ok(Ok(()))) => Ok(client),
            Ok(Ok(Err(error))) => Err(error),
            Ok(Err(_)) => Err(client.stopped_error()),
            Err(_) => Err(Error::Timeout),
        }
    }

    // ---- accounts -----------------------------------------------------

    /// Creates an account and logs in. Events start (when enabled).
    pub async fn register(&self, username: &str, password: &str) -> Result<v1::AuthResult, Error> {
        let command = Command::Register(v1::Register {
            username: username.into(),
            password: password.into(),
            device_name: self.options.device_name.clone(),
        });
        expect!(self.request(command).await?, Auth)
    }

    /// Logs in with a password. Events start (when enabled).
    pub async fn login(&self, username: &str, password: &str) -> Result<v1::AuthResult, Error> {
        let command = Command::Login(v1::Login {
            username: username.into(),
            password: password.into(),
            device_name: self.options.device_name.clone(),
        });
        expect!(self.request(command).await?, Auth)
    }

    /// Enters as a guest under `display_name` (no refresh token).
    pub async fn guest(&self, display_name: &str) -> Result<v1::AuthResult, Error> {
        let command = Command::GuestLogin(v1::GuestLogin { display_name: display_name.into() });
        expect!(self.request(command).await?, Auth)
    }

    /// Logs in with stored tokens (from [`Client::tokens`] of an earlier
    /// client): `Authenticate`, and when the access token has expired,
    /// `Refresh` then `Authenticate` again (the new tokens are in
    /// [`Client::tokens`] and an [`Event::TokensRefreshed`]). On refusal the
    /// client stays connected, logged out. The answer carries the user; its
    /// token fields are empty.
    pub async fn authenticate(&self, access_token: &str, refresh_token: Option<&str>) -> Result<v1::AuthResult, Error> {
        let tokens = Tokens::new(access_token, refresh_token.map(str::to_owned));
        self.authenticate_with(tokens).await
    }

    /// [`Client::authenticate`] with a whole [`Tokens`].
    pub async fn authenticate_with(&self, tokens: Tokens) -> Result<v1::AuthResult, Error> {
        let (reply, answer) = oneshot::channel();
        self.call(ApiCall::Authenticate { tokens, reply }, answer).await.and_then(|body| expect!(body, Auth))
    }

    /// Trades the stored refresh token for a new pair, which replaces it
    /// (the old refresh token is dead afterwards).
    pub async fn refresh(&self) -> Result<v1::AuthResult, Error> {
        let refresh_token = self
            .tokens()
            .and_then(|t| t.refresh_token)
            .ok_or_else(|| Error::InvalidState("no refresh token (not logged in, or a guest)".into()))?;
        expect!(self.request(Command::Refresh(v1::Refresh { refresh_token })).await?, Auth)
    }

    /// Logs out: the server revokes the refresh token; the client forgets
    /// its tokens and room positions and stays connected.
    pub async fn logout(&self) -> Result<(), Error> {
        expect!(self.request(Command::Logout(v1::Logout {})).await?, Done).map(|_| ())
    }

    // ---- rooms --------------------------------------------------------

    /// Creates a room (`kind` PUBLIC or PRIVATE) and joins it as owner.
    pub async fn create_room(&self, name: &str, kind: v1::RoomKind) -> Result<v1::RoomInfo, Error> {
        let command =
            Command::CreateRoom(v1::CreateRoom { name: name.into(), kind: kind as i32, ..Default::default() });
        expect!(self.request(command).await?, Room)
    }

    /// Joins a public room, or a private one the user is invited to.
    /// Joining a room one is in already succeeds.
    pub async fn join(&self, room: impl Into<RoomRef>) -> Result<v1::RoomInfo, Error> {
        let command = Command::JoinRoom(v1::JoinRoom { room: Some(room.into().into()) });
        expect!(self.request(command).await?, Room)
    }

    pub async fn leave(&self, room: impl Into<RoomRef>) -> Result<(), Error> {
        let command = Command::LeaveRoom(v1::LeaveRoom { room: Some(room.into().into()) });
        expect!(self.request(command).await?, Done).map(|_| ())
    }

    /// Invites `username` to a room the user is a member of.
    pub async fn invite(&self, room: impl Into<RoomRef>, username: &str) -> Result<(), Error> {
        let command =
            Command::InviteToRoom(v1::InviteToRoom { room: Some(room.into().into()), username: username.into() });
        expect!(self.request(command).await?, Done).map(|_| ())
    }

    /// The user's rooms (`MINE`: joined or invited) or the public
    /// directory (`DIRECTORY`).
    pub async fn list_rooms(&self, scope: v1::RoomScope) -> Result<Vec<v1::RoomInfo>, Error> {
        let command = Command::ListRooms(v1::ListRooms { scope: scope as i32, ..Default::default() });
        expect!(self.request(command).await?, Rooms).map(|list| list.rooms)
    }

    pub async fn members(&self, room: impl Into<RoomRef>) -> Result<v1::MemberList, Error> {
        let command = Command::ListMembers(v1::ListMembers { room: Some(room.into().into()) });
        expect!(self.request(command).await?, Members)
    }

    /// Opens (or finds) the direct conversation with `username`.
    pub async fn open_direct(&self, username: &str) -> Result<v1::RoomInfo, Error> {
        let command = Command::OpenDirect(v1::OpenDirect { username: username.into() });
        expect!(self.request(command).await?, Room)
    }

    // ---- messages -----------------------------------------------------

    /// Sends a message with a fresh random transaction id. Across reconnects
    /// it is applied exactly once.
    pub async fn send(&self, room: impl Into<RoomRef>, text: &str) -> Result<v1::SendResult, Error> {
        self.send_with_txn(room, text, &new_txn_id()).await
    }

    /// Sends a message with the caller's transaction id (1 to 64 bytes,
    /// unique per user). Sending again with the same id and text returns the
    /// first result with `duplicate: true` and appends nothing.
    pub async fn send_with_txn(
        &self,
        room: impl Into<RoomRef>,
        text: &str,
        client_txn_id: &str,
    ) -> Result<v1::SendResult, Error> {
        let command = Command::SendMessage(v1::SendMessage {
            room: Some(room.into().into()),
            text: text.into(),
            client_txn_id: client_txn_id.into(),
            ..Default::default()
        });
        expect!(self.request(command).await?, Sent)
    }

    /// A page of a room's log: `BACKWARD` gives events before `anchor`
    /// (`Seq(0)`: the newest), `FORWARD` events after it; always in
    /// ascending order. `limit` 0 means the server's default.
    pub async fn history(
        &self,
        room: impl Into<RoomRef>,
        direction: v1::HistoryDirection,
        anchor: Seq,
        limit: u32,
    ) -> Result<v1::HistoryPage, Error> {
        let command = Command::GetHistory(v1::GetHistory {
            room: Some(room.into().into()),
            direction: direction as i32,
            anchor_seq: anchor.0,
            limit,
        });
        expect!(self.request(command).await?, History)
    }

    /// A round trip to the server; returns how long it took.
    pub async fn ping(&self) -> Result<Duration, Error> {
        let started = tokio::time::Instant::now();
        expect!(self.request(Command::Ping(v1::Ping {})).await?, Pong)?;
        Ok(started.elapsed())
    }

    /// Sends any command and returns the reply body (an `error` reply
    /// becomes [`Error::Server`]). The retry rules above apply; the client's
    /// own bookkeeping (tokens, positions) only follows the typed methods'
    /// commands.
    pub async fn request(&self, command: Command) -> Result<Body, Error> {
        let (reply, answer) = oneshot::channel();
        self.call(ApiCall::Request { command, reply }, answer).await
    }

    // ---- events and state ---------------------------------------------

    /// The next event; `None` once the client has stopped and every event
    /// was read. Read events steadily (from a task or a `select!` loop):
    /// see [`ClientOptions::event_buffer`].
    pub async fn next_event(&self) -> Option<Event> {
        self.events.lock().await.recv().await
    }

    /// The current tokens, to store for [`Client::authenticate`] later.
    /// They change on login, refresh (also automatic) and logout.
    pub fn tokens(&self) -> Option<Tokens> {
        lock(&self.shared).tokens.clone()
    }

    /// Who the session is logged in as.
    pub fn user(&self) -> Option<v1::User> {
        lock(&self.shared).user.clone()
    }

    /// The server's `Welcome` on the current (or last) connection.
    pub fn welcome(&self) -> Option<v1::Welcome> {
        lock(&self.shared).welcome.clone()
    }

    /// SHA-256 of the certificate the server presented (TLS transports),
    /// for example to store after [`Trust::TrustOnFirstUse`].
    pub fn server_fingerprint(&self) -> Option<Fingerprint> {
        lock(&self.shared).fingerprint
    }

    /// Why the client stopped, once it has.
    pub fn stopped(&self) -> Option<Error> {
        lock(&self.shared).stopped.clone()
    }

    pub fn url(&self) -> &ServerUrl {
        &self.url
    }

    /// The encoding frames use.
    pub fn encoding(&self) -> Encoding {
        match self.url.scheme() {
            crate::Scheme::Quic => Encoding::Proto,
            _ => self.options.encoding,
        }
    }

    /// Closes the connection politely and stops every task. Requests still
    /// waiting fail with [`Error::ClientClosed`].
    pub async fn close(self) {
        if self.calls.send(ApiCall::Close).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(3), self.tracker.wait()).await;
        }
        self.cancel.cancel();
        self.tracker.wait().await;
    }

    // ---- internals ----------------------------------------------------

    async fn call(&self, call: ApiCall, answer: oneshot::Receiver<Result<Body, Error>>) -> Result<Body, Error> {
        self.calls.send(call).await.map_err(|_| self.stopped_error())?;
        let wait = async { answer.await.unwrap_or_else(|_| Err(self.stopped_error())) };
        match self.options.request_timeout {
            Some(limit) => tokio::time::timeout(limit, wait).await.map_err(|_| Error::Timeout)?,
            None => wait.await,
        }
    }

    fn stopped_error(&self) -> Error {
        self.stopped().unwrap_or(Error::ClientClosed)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The name of a reply kind, for error messages.
pub(crate) fn body_name(body: &Body) -> &'static str {
    match body {
        Body::Error(_) => "error",
        Body::Welcome(_) => "welcome",
        Body::Pong(_) => "pong",
        Body::Auth(_) => "auth",
        Body::Done(_) => "done",
        Body::Room(_) => "room",
        Body::Rooms(_) => "rooms",
        Body::Members(_) => "members",
        Body::Sent(_) => "sent",
        Body::History(_) => "history",
        Body::Resumed(_) => "resumed",
        Body::Event(_) => "event",
        Body::Close(_) => "close",
        Body::Ping(_) => "ping",
        Body::ReadState(_) => "read_state",
        Body::Receipts(_) => "receipts",
        Body::Profile(_) => "profile",
        Body::Profiles(_) => "profiles",
        Body::File(_) => "file",
        Body::Receipt(_) => "receipt",
        Body::Typing(_) => "typing",
        Body::Presence(_) => "presence",
        Body::Notification(_) => "notification",
    }
}

/// A random transaction id: 32 hex digits.
pub(crate) fn new_txn_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

type Connecting = Pin<Box<dyn Future<Output = Result<Connection, Error>> + Send>>;

/// What woke the driver.
enum Step {
    Stop(Error, bool),
    Call(ApiCall),
    EventSent,
    Write(mpsc::OwnedPermit<bytes::Bytes>),
    Incoming(Incoming),
    Deadline,
    BackoffOver,
    Connected(Result<Connection, Error>),
}

/// The task behind a [`Client`]: owns the core and the connection.
struct Driver {
    core: ClientCore<Reply>,
    url: ServerUrl,
    settings: TransportSettings,
    policy: ReconnectPolicy,
    calls: mpsc::Receiver<ApiCall>,
    /// Bounded; the core holds events back while it is full.
    events: mpsc::Sender<Event>,
    shared: Shared,
    tracker: TaskTracker,
    cancel: CancellationToken,
    /// Completed when the first connection is ready (or failed).
    ready: Option<oneshot::Sender<Result<(), Error>>>,
}

impl Driver {
    async fn run(mut self, first: Connection) {
        let encoding = first.encoding;
        let mut conn = Some(first);
        let mut backoff: Option<Pin<Box<tokio::time::Sleep>>> = None;
        let mut connecting: Option<Connecting> = None;
        let mut attempt: u32 = 0;
        self.core.on_connected(now(), encoding);
        let (reason, polite) = loop {
            // Publish first: a caller woken by its reply must see the
            // tokens and user that reply brought.
            self.publish();
            while let Some((reply, result)) = self.core.poll_reply() {
                let _ = reply.send(result);
            }
            if self.core.phase() == Phase::Ready {
                attempt = 0;
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Ok(()));
                }
            }
            if let Some(action) = self.core.poll_action() {
                drop(conn.take());
                lock(&self.shared).quic = None;
                self.core.on_disconnected();
                let (error, min_delay) = match action {
                    Action::Stop(error) => break (error, false),
                    Action::Reconnect { error, min_delay } => (error, min_delay),
                };
                if self.ready.is_some() {
                    // The first connection never got going: report, don't retry.
                    break (error, false);
                }
                attempt += 1;
                match self.schedule_reconnect(attempt, error, min_delay) {
                    Ok(sleep) => backoff = Some(sleep),
                    Err(error) => break (error, false),
                }
                continue;
            }

            let step = self.next_step(&mut conn, &mut backoff, &mut connecting).await;
            match step {
                Step::Stop(error, polite) => break (error, polite),
                Step::Call(ApiCall::Request { command, reply }) => self.core.submit(now(), command, reply),
                Step::Call(ApiCall::Authenticate { tokens, reply }) => self.core.authenticate(tokens, reply),
                Step::Call(ApiCall::Close) => break (Error::ClientClosed, true),
                Step::EventSent => {}
                Step::Write(permit) => {
                    if let (Some(frame), Some(c)) = (self.core.poll_transmit(now()), conn.as_ref()) {
                        permit.send(codec::encode(&frame, c.encoding));
                    }
                }
                Step::Incoming(Incoming::Frame(frame)) => self.core.on_frame(now(), frame),
                Step::Incoming(Incoming::Closed { code, reason }) => self.core.on_transport_closed(code, reason),
                Step::Incoming(Incoming::Failed(error)) => self.core.on_transport_lost(error),
                Step::Incoming(Incoming::WriteFailed(error)) => self.core.on_write_failed(error),
                Step::Deadline => self.core.on_timeout(now()),
                Step::BackoffOver => {
                    backoff = None;
                    let (url, settings, tracker, cancel) =
                        (self.url.clone(), self.settings.clone(), self.tracker.clone(), self.cancel.clone());
                    connecting =
                        Some(Box::pin(async move { Connection::open(&url, &settings, &tracker, &cancel).await }));
                }
                Step::Connected(Ok(connection)) => {
                    connecting = None;
                    tracing::debug!(attempt, "reconnected");
                    {
                        let mut shared = lock(&self.shared);
                        if connection.fingerprint.is_some() {
                            shared.fingerprint = connection.fingerprint;
                        }
                        shared.quic = connection.quic.clone();
                    }
                    let encoding = connection.encoding;
                    conn = Some(connection);
                    self.core.on_connected(now(), encoding);
                }
                Step::Connected(Err(error)) => {
                    connecting = None;
                    if error.is_permanent_connect_error() {
                        break (error, false);
                    }
                    attempt += 1;
                    match self.schedule_reconnect(attempt, error, Duration::ZERO) {
                        Ok(sleep) => backoff = Some(sleep),
                        Err(error) => break (error, false),
                    }
                }
            }
        };
        self.finish(conn, reason, polite).await;
    }

    /// Waits for whatever happens next.
    async fn next_step(
        &mut self,
        conn: &mut Option<Connection>,
        backoff: &mut Option<Pin<Box<tokio::time::Sleep>>>,
        connecting: &mut Option<Connecting>,
    ) -> Step {
        let deadline = self.core.next_deadline().map(tokio::time::Instant::from_std);
        let writer = conn.as_ref().filter(|_| self.core.has_transmit()).map(|c| c.outgoing.clone());
        let incoming = conn.as_mut();
        // Unbiased: neither a chatty server nor a busy application starves
        // the other.
        tokio::select! {
            _ = self.cancel.cancelled() => Step::Stop(Error::ClientClosed, false),
            permit = self.events.reserve(), if self.core.has_event() => match permit {
                Ok(permit) => {
                    if let Some(event) = self.core.poll_event() {
                        permit.send(event);
                    }
                    Step::EventSent
                }
                // Nobody reads events any more (the client is going away).
                Err(_) => {
                    while self.core.poll_event().is_some() {}
                    Step::EventSent
                }
            },
            call = self.calls.recv() => match call {
                Some(call) => Step::Call(call),
                None => Step::Stop(Error::ClientClosed, false),
            },
            permit = reserve(writer) => match permit {
                Some(permit) => Step::Write(permit),
                None => Step::Incoming(Incoming::WriteFailed(Error::Transport("the connection's writer stopped".into()))),
            },
            incoming = recv(incoming) => Step::Incoming(incoming),
            _ = sleep_until(deadline) => Step::Deadline,
            _ = wait_backoff(backoff) => Step::BackoffOver,
            result = wait_connecting(connecting) => Step::Connected(result),
        }
    }

    /// Announces and times reconnect attempt `attempt`, or refuses it.
    fn schedule_reconnect(
        &mut self,
        attempt: u32,
        error: Error,
        min_delay: Duration,
    ) -> Result<Pin<Box<tokio::time::Sleep>>, Error> {
        if !self.policy.allows(attempt) {
            return Err(error);
        }
        if let Some(welcome) = self.core.welcome() {
            // Match QUIC's keep-alive and idle timeout to the server's.
            if welcome.ping_interval_ms > 0 {
                self.settings.quic_keep_alive = Duration::from_millis(welcome.ping_interval_ms.into());
            }
            if welcome.idle_timeout_ms > 0 {
                self.settings.quic_idle_timeout = Duration::from_millis(welcome.idle_timeout_ms.into());
            }
        }
        if self.settings.trust == Trust::TrustOnFirstUse
            && let Some(seen) = lock(&self.shared).fingerprint
        {
            // Trusted on first use: from now on, only that certificate.
            self.settings.trust = Trust::Fingerprint(seen);
        }
        let delay = self.policy.delay(attempt, rand::random::<f64>()).max(min_delay);
        tracing::info!(attempt, delay_ms = delay.as_millis() as u64, %error, "connection lost; reconnecting");
        self.core.push_event(Event::Reconnecting { attempt, delay, error });
        Ok(Box::pin(tokio::time::sleep(delay)))
    }

    /// Copies what the handle can read into the shared snapshot.
    fn publish(&self) {
        let mut shared = lock(&self.shared);
        if shared.tokens.as_ref() != self.core.tokens() {
            shared.tokens = self.core.tokens().cloned();
        }
        if shared.user.as_ref() != self.core.user() {
            shared.user = self.core.user().cloned();
        }
        if let Some(welcome) = self.core.welcome()
            && shared.welcome.as_ref() != Some(welcome)
        {
            shared.welcome = Some(welcome.clone());
        }
    }

    /// Stops for good: fails what waits, reports why, drains events.
    async fn finish(mut self, conn: Option<Connection>, reason: Error, polite: bool) {
        if let Some(conn) = conn {
            if polite { conn.close().await } else { drop(conn) }
        }
        tracing::debug!(%reason, "client stopped");
        {
            let mut shared = lock(&self.shared);
            shared.stopped = Some(reason.clone());
            shared.quic = None;
        }
        self.core.fail_all(&reason);
        self.publish();
        while let Some((reply, result)) = self.core.poll_reply() {
            let _ = reply.send(result);
        }
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Err(reason));
            return;
        }
        if polite {
            return;
        }
        self.core.push_event(Event::Disconnected { reason });
        while let Some(event) = self.core.poll_event() {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                sent = self.events.send(event) => if sent.is_err() { return },
            }
        }
    }
}

async fn reserve(writer: Option<mpsc::Sender<bytes::Bytes>>) -> Option<mpsc::OwnedPermit<bytes::Bytes>> {
    match writer {
        Some(writer) => writer.reserve_owned().await.ok(),
        None => std::future::pending().await,
    }
}

async fn recv(conn: Option<&mut Connection>) -> Incoming {
    match conn {
        Some(conn) => conn.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn wait_backoff(backoff: &mut Option<Pin<Box<tokio::time::Sleep>>>) {
    match backoff {
        Some(sleep) => sleep.await,
        None => std::future::pending().await,
    }
}

async fn wait_connecting(connecting: &mut Option<Connecting>) -> Result<Connection, Error> {
    match connecting {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_ids_are_fresh_and_within_limits() {
        let (a, b) = (new_txn_id(), new_txn_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
