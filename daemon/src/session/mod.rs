//! One client session, whatever the transport: the driver loop that reads
//! frames, admits and dispatches commands, and queues replies; plus the
//! command table. The handlers live in `account`, `rooms`, `messages`,
//! `conversation`, `state`, `profiles` and `files`.

mod account;
mod conversation;
mod files;
mod messages;
mod profiles;
mod rooms;
mod state;

pub(crate) use account::{Bearer, verify_bearer};

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use confab_protocol::{
    Encoding, codec,
    liveness::{Liveness, LivenessAction},
    session::{Phase, ServerOffer, negotiate},
    v1::{self, ErrorCode, client_frame::Command, server_frame::Body},
};
use futures_util::{StreamExt as _, stream::FuturesUnordered};
use tracing::Instrument as _;

use crate::{
    context::Context,
    hub::{SessionId, Subscriber, push},
    ids::UserId,
    outbox::{Drained, Outbox},
    store::StoreError,
    transport::{FrameReader, FrameWriter, Inbound},
};

/// How long a closing session may take to deliver the Close and see the peer
/// close in turn before the connection is dropped (a peer that stopped
/// reading, or never closes, must not hold it).
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// A reply that is ready, or one that completes later (a durable write)
/// while the session goes on reading.
pub(crate) enum Reply {
    Now(Result<Body, v1::Error>),
    Later(Pin<Box<dyn Future<Output = Result<Body, v1::Error>> + Send>>),
}

impl From<Result<Body, v1::Error>> for Reply {
    fn from(result: Result<Body, v1::Error>) -> Self {
        Reply::Now(result)
    }
}

/// Who the session is logged in as.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub user: UserId,
    pub name: String,
    pub guest: bool,
    /// Refresh-token family of the login; 0 for guests.
    pub family: u64,
}

pub(crate) struct Session {
    pub id: SessionId,
    pub peer: SocketAddr,
    pub encoding: Encoding,
    pub phase: Phase,
    pub identity: Option<Identity>,
    pub ctx: Arc<Context>,
    pub outbox: Arc<Outbox>,
    /// This device is idle (SetPresence with `this_device_only`); counts
    /// for presence once the session resumed.
    pub away: bool,
}

/// Runs a session over an accepted connection until it ends.
pub async fn run(ctx: Arc<Context>, peer: SocketAddr, encoding: Encoding, reader: FrameReader, writer: FrameWriter) {
    let id = ctx.next_session.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let span = tracing::info_span!("session", conn_id = id, %peer, user_id = tracing::field::Empty);
    let outbox = Arc::new(Outbox::new(ctx.config.limits.max_outbound_queue_bytes));
    let writer_task = ctx.tracker.spawn(write_loop(outbox.clone(), writer).instrument(span.clone()));
    let session = Session { id, peer, encoding, phase: Phase::AwaitingHello, identity: None, ctx, outbox, away: false };
    session.drive(reader, writer_task).instrument(span).await;
}

/// Moves frames from the outbox to the transport until the session closes.
async fn write_loop(outbox: Arc<Outbox>, mut writer: FrameWriter) {
    let mut frames = Vec::new();
    loop {
        let drained = outbox.drain(&mut frames).await;
        let written = writer.write(&frames).await;
        frames.clear();
        match (drained, written) {
            (Drained::Frames, Ok(())) => {}
            (Drained::Close(close), Ok(())) => {
                tracing::debug!(code = close.code, reason = %close.reason, "closing");
                writer.close(close).await;
                return;
            }
            (_, Err(())) => {
                tracing::debug!("transport write failed");
                outbox.close(v1::Close { code: v1::CloseCode::InternalError as i32, reason: "write failed".into() });
                return;
            }
        }
    }
}

impl Session {
    async fn drive(mut self, mut reader: FrameReader, mut writer_task: tokio::task::JoinHandle<()>) {
        let config = &self.ctx.config;
        let started = Instant::now();
        let handshake_deadline = started + Duration::from_millis(config.limits.handshake_timeout_ms.into());
        let mut liveness = Liveness::new(started, config.ping_interval(), config.idle_timeout());
        let mut pending: FuturesUnordered<Pin<Box<dyn Future<Output = v1::ServerFrame> + Send>>> =
            FuturesUnordered::new();
        let shutdown = self.ctx.shutdown.clone();
        // Once the session is closing, what the peer still sends is read and
        // discarded (a lingering close: closing a TCP socket with unread
        // bytes makes the kernel send a reset, which can destroy the Close
        // before the peer reads it), until the peer closes too or
        // `CLOSE_GRACE` runs out.
        let mut close_deadline: Option<Instant> = None;
        let mut writer_done = false;
        loop {
            if self.outbox.is_closing() {
                close_deadline.get_or_insert_with(|| Instant::now() + CLOSE_GRACE);
            }
            let deadline = match close_deadline {
                Some(deadline) => deadline,
                None if self.phase == Phase::AwaitingHello => liveness.next_deadline().min(handshake_deadline),
                None => liveness.next_deadline(),
            };
            let max = self.max_frame_bytes();
            tokio::select! {
                inbound = reader.next(max) => {
                    liveness.on_received(Instant::now());
                    if close_deadline.is_some() {
                        match inbound {
                            Inbound::Frame(_) | Inbound::Malformed(_) => continue,
                            Inbound::TooLarge { .. } | Inbound::Unframeable(_) | Inbound::Closed => break,
                        }
                    }
                    match inbound {
                        Inbound::Frame(payload) => {
                            if let Some(later) = self.on_frame(payload).await {
                                pending.push(later);
                            }
                        }
                        Inbound::TooLarge { len, max } => {
                            self.close(v1::CloseCode::FrameTooLarge, format!(
                                "frame of {} exceeds the limit of {max} bytes{}",
                                if len > 0 { format!("{len} bytes") } else { "more bytes".into() },
                                if self.phase == Phase::Authenticated { "" } else { " before authentication" },
                            ));
                        }
                        Inbound::Malformed(why) => self.send_error(0, v1::Error::new(ErrorCode::BadFrame, why)),
                        Inbound::Unframeable(why) => {
                            self.close(v1::CloseCode::ProtocolViolation, format!("cannot read frames: {why}"));
                        }
                        Inbound::Closed => break,
                    }
                }
                Some(frame) = pending.next(), if !pending.is_empty() => {
                    self.send(frame);
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    let now = Instant::now();
                    if close_deadline.is_some() {
                        tracing::debug!("the peer did not take the Close in time");
                        break;
                    } else if self.phase == Phase::AwaitingHello && now >= handshake_deadline {
                        self.close(v1::CloseCode::HandshakeTimeout, "no Hello within the handshake timeout".into());
                    } else {
                        match liveness.poll(now) {
                            LivenessAction::TimedOut => {
                                self.close(v1::CloseCode::IdleTimeout, "nothing received within the idle timeout".into())
                            }
                            LivenessAction::SendPing => {
                                self.send(push(Body::Ping(v1::Ping {})));
                                liveness.on_sent(now);
                            }
                            LivenessAction::Wait => {}
                        }
                    }
                }
                _ = shutdown.cancelled(), if !self.outbox.is_closing() => {
                    self.close(v1::CloseCode::ServerShutdown, "the server is shutting down; reconnect shortly".into());
                }
                _ = &mut writer_task, if !writer_done => {
                    // The writer delivered the Close (or failed, and closed
                    // the outbox): linger until the peer closes.
                    writer_done = true;
                    if !self.outbox.is_closing() {
                        break;
                    }
                }
            }
        }
        self.end(writer_task, writer_done).await;
    }

    /// Cleans up once the reading side is done.
    async fn end(mut self, mut writer_task: tokio::task::JoinHandle<()>, writer_done: bool) {
        self.forget_login();
        if !writer_done {
            self.outbox.close(v1::Close { code: v1::CloseCode::ServerShutdown as i32, reason: "session ended".into() });
            if tokio::time::timeout(CLOSE_GRACE, &mut writer_task).await.is_err() {
                writer_task.abort();
            }
        }
        tracing::debug!("session ended");
    }

    fn max_frame_bytes(&self) -> usize {
        let limits = &self.ctx.config.limits;
        match self.phase {
            Phase::Authenticated => limits.max_frame_bytes as usize,
            _ => limits.max_frame_bytes_unauthenticated as usize,
        }
    }

    fn send(&self, frame: v1::ServerFrame) {
        self.outbox.push(codec::encode(&frame, self.encoding));
    }

    fn send_error(&self, request_id: u64, error: v1::Error) {
        self.send(v1::ServerFrame { request_id, body: Some(Body::Error(error)) });
    }

    fn close(&self, code: v1::CloseCode, reason: String) {
        self.outbox.close(v1::Close { code: code as i32, reason });
    }

    /// Decodes, admits and dispatches one frame; returns the reply future
    /// when the reply comes later.
    async fn on_frame(&mut self, payload: Bytes) -> Option<Pin<Box<dyn Future<Output = v1::ServerFrame> + Send>>> {
        let frame: v1::ClientFrame = match codec::decode(&payload, self.encoding) {
            Ok(frame) => frame,
            Err(error) => {
                self.send_error(0, v1::Error::new(ErrorCode::BadFrame, format!("undecodable frame: {error}")));
                return None;
            }
        };
        let request_id = frame.request_id;
        let Some(command) = frame.command else {
            self.send_error(
                request_id,
                v1::Error::new(ErrorCode::UnknownCommand, "the frame carries no command this server knows"),
            );
            return None;
        };
        if request_id == 0 {
            self.send_error(0, v1::Error::new(ErrorCode::InvalidArgument, "request_id must be non-zero"));
            return None;
        }
        if let Err(error) = self.phase.admit(&command) {
            self.send_error(request_id, error);
            return None;
        }
        match self.dispatch(command).await {
            Reply::Now(result) => {
                self.send(reply(request_id, result));
                None
            }
            Reply::Later(future) => Some(Box::pin(async move { reply(request_id, future.await) })),
        }
    }

    /// The command table: every command and its handler.
    async fn dispatch(&mut self, command: Command) -> Reply {
        match command {
            Command::Hello(hello) => self.hello(hello).into(),
            Command::Ping(_) => Reply::Now(Ok(Body::Pong(v1::Pong {}))),
            Command::Register(register) => self.register(register).await.into(),
            Command::Login(login) => self.login(login).await.into(),
            Command::Refresh(refresh) => self.refresh(refresh).await.into(),
            Command::Logout(_) => self.logout().await.into(),
            Command::Authenticate(authenticate) => self.authenticate(authenticate).await.into(),
            Command::GuestLogin(guest) => self.guest_login(guest).await.into(),
            Command::CreateRoom(create) => self.create_room(create).await.into(),
            Command::JoinRoom(join) => self.join_room(join).await.into(),
            Command::LeaveRoom(leave) => self.leave_room(leave).await.into(),
            Command::InviteToRoom(invite) => self.invite_to_room(invite).await.into(),
            Command::ListRooms(list) => self.list_rooms(list).into(),
            Command::ListMembers(list) => self.list_members(list).into(),
            Command::OpenDirect(open) => self.open_direct(open).await.into(),
            Command::SendMessage(send) => self.send_message(send).await,
            Command::GetHistory(get) => self.get_history(get).into(),
            Command::Resume(resume) => self.resume(resume).into(),
            Command::UpdateRoom(update) => self.update_room(update).await.into(),
            Command::SetNotificationLevel(set) => self.set_notification_level(set).await.into(),
            Command::EditMessage(edit) => self.edit_message(edit).await,
            Command::DeleteMessage(delete) => self.delete_message(delete).await,
            Command::React(react) => self.react(react).await,
            Command::GetThread(get) => self.get_thread(get).into(),
            Command::MarkRead(mark) => self.mark_read(mark).await,
            Command::MarkDelivered(mark) => self.mark_delivered(mark).await,
            Command::GetReceipts(get) => self.get_receipts(get).into(),
            Command::SetTyping(typing) => self.set_typing(typing).into(),
            Command::SetPresence(presence) => self.set_presence(presence).await.into(),
            Command::GetProfile(get) => self.get_profile(get).into(),
            Command::SetProfile(set) => self.set_profile(set).await.into(),
            Command::SearchUsers(search) => self.search_users(search).into(),
            Command::GetFile(get) => self.get_file(get).into(),
        }
    }

    fn hello(&mut self, hello: v1::Hello) -> Result<Body, v1::Error> {
        let offer = ServerOffer {
            feature_level: confab_protocol::FEATURE_LEVEL,
            capabilities: vec!["resume".into(), "guests".into()],
        };
        let mut negotiated = match negotiate(&hello, &offer) {
            Ok(negotiated) => negotiated,
            Err(close) => {
                // The Close frame is the answer; no reply follows it.
                let reason = close.reason.clone();
                self.outbox.close(close);
                return Err(v1::Error::new(ErrorCode::Unspecified, reason));
            }
        };
        if !self.ctx.config.accounts.guests {
            negotiated.capabilities.retain(|c| c != "guests");
        }
        self.phase = Phase::Unauthenticated;
        let config = &self.ctx.config;
        let limits = &config.limits;
        Ok(Body::Welcome(v1::Welcome {
            version: negotiated.version,
            feature_level: negotiated.feature_level,
            capabilities: negotiated.capabilities,
            server_name: config.server.name.clone(),
            server_version: env!("CARGO_PKG_VERSION").into(),
            ping_interval_ms: limits.ping_interval_ms,
            idle_timeout_ms: limits.idle_timeout_ms,
            limits: Some(v1::Limits {
                max_frame_bytes_unauthenticated: limits.max_frame_bytes_unauthenticated,
                max_frame_bytes: limits.max_frame_bytes,
                max_message_bytes: limits.max_message_bytes,
                max_history_page: limits.max_history_page,
                max_outbound_queue_bytes: limits.max_outbound_queue_bytes,
                max_resume_events: limits.max_resume_events,
                max_file_bytes: config.files.max_file_bytes,
                max_attachments: config.files.max_attachments,
            }),
            session_id: self.id,
            http_url: self.ctx.http_url.clone(),
        }))
    }

    fn resume(&mut self, resume: v1::Resume) -> Result<Body, v1::Error> {
        let identity = self.identity()?;
        crate::context::check(&self.ctx.limiters.resumes, &identity.user)
            .map_err(|wait| rate_limited(wait, "Resume commands"))?;
        let subscriber =
            Subscriber { id: self.id, user: identity.user, encoding: self.encoding, outbox: self.outbox.clone() };
        let rooms = self.ctx.hub.resume(subscriber, &resume.positions).map_err(internal)?;
        // Present from now on (ONLINE unless away): others hear of it.
        self.ctx.hub.set_device_away(self.id, self.away);
        let max_members = self.ctx.config.presence.max_room_members;
        self.ctx.hub.refresh_presence(identity.user, max_members, false).map_err(internal)?;
        Ok(Body::Resumed(v1::ResumeResult { rooms }))
    }

    /// Drops the session's login, if any: no more events, the guest name and
    /// the login's registration released, back to Unauthenticated.
    pub(crate) fn forget_login(&mut self) {
        let Some(identity) = self.identity.take() else { return };
        self.away = false;
        if let Some(at_ms) = self.ctx.hub.depart(self.id, self.ctx.config.presence.max_room_members) {
            // The user's last session ended: remember when, durably but
            // without holding up the session's end; once stored, the hub
            // need not remember it any more.
            let (writer, hub, user) = (self.ctx.writer.clone(), self.ctx.hub.clone(), identity.user);
            let op = crate::store::WriteOp::SetLastSeen { user, at_ms };
            self.ctx.tracker.spawn(async move {
                match writer.write(op).await {
                    // Refused: the user is gone, and so is the need.
                    Ok(_) => hub.last_seen_stored(user, at_ms),
                    Err(error) => tracing::warn!(%error, "storing when the user was last seen failed"),
                }
            });
        }
        if identity.guest {
            self.ctx.guests.release(&identity.name, identity.user);
        }
        if identity.family != 0 {
            self.ctx.logins.remove(identity.family, self.id);
        }
        self.phase = Phase::Unauthenticated;
    }

    /// The logged-in identity (admission guarantees there is one).
    pub(crate) fn identity(&self) -> Result<Identity, v1::Error> {
        self.identity.clone().ok_or_else(|| v1::Error::new(ErrorCode::WrongState, "log in first"))
    }
}

fn reply(request_id: u64, result: Result<Body, v1::Error>) -> v1::ServerFrame {
    let body = result.unwrap_or_else(Body::Error);
    v1::ServerFrame { request_id, body: Some(body) }
}

/// A store failure as the client sees it: temporary, details in our log.
pub(crate) fn internal(error: StoreError) -> v1::Error {
    if let StoreError::Closed = error {
        return v1::Error::temporary(ErrorCode::Unavailable, "the server is shutting down; try again shortly", 1000);
    }
    tracing::error!(%error, "store error");
    v1::Error::temporary(ErrorCode::Internal, "the server could not complete this; try again", 1000)
}

/// A malformed or out-of-bounds argument; `message` names the field.
pub(crate) fn invalid(message: impl Into<String>) -> v1::Error {
    v1::Error::new(ErrorCode::InvalidArgument, message)
}

/// A rate limit as the client sees it.
pub(crate) fn rate_limited(wait: Duration, what: &str) -> v1::Error {
    v1::Error::temporary(
        ErrorCode::RateLimited,
        format!("too many {what}; retry in {} ms", wait.as_millis().max(1)),
        wait.as_millis().clamp(1, u32::MAX.into()) as u32,
    )
}
