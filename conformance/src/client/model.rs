//! The scripted server's protocol model: a tiny confab server in memory.
//! One user under test (plus `bob`, who talks in the rooms), a few rooms
//! with their logs, tokens that expire and rotate, transaction ids, and
//! one session per connection. It answers `Hello`, `Login`,
//! `Authenticate`, `Refresh`, `Logout`, `Resume`, `SendMessage`,
//! `GetHistory`, `JoinRoom`, `ListRooms` and `Ping` as PROTOCOL.md says,
//! except where the case's [`Script`] tells it to misbehave.
//!
//! It does no IO: every input returns the [`WriteOp`]s to perform, by
//! connection, and [`super::server`] performs them in that order. It also
//! audits what the client sends (HELLO-1, FRAME-2) and hands back the
//! breaches as failed checks.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use confab_protocol::{
    Encoding, Epoch, Seq,
    resume::{self, ResumePlan},
    v1::{self, client_frame::Command, room_event::Kind, server_frame::Body},
};

use super::server::WriteOp;
use crate::outcome::Check;

/// A connection's number within a case, from 1.
pub type ConnId = u32;

/// The room every case has: its id needs more than 53 bits, as JSON
/// numbers cannot hold it (ENC-4).
pub const LOUNGE: u64 = 9_007_199_254_740_993;
/// A second room, with a small id.
pub const DEN: u64 = 7;

/// Frames the server writes, in order, by connection.
pub type Writes = Vec<(ConnId, WriteOp)>;

/// What an input to the model produced.
#[derive(Default)]
pub struct Effects {
    pub writes: Writes,
    /// Breaches of client requirements seen in the input.
    pub breaches: Vec<Check>,
}

/// Makes a crafted reply: the payload for a session's encoding and the
/// request id, with a description for the frame log.
pub type Crafter = Box<dyn Fn(Encoding, u64) -> (Bytes, String) + Send>;

/// How the server answers one `Hello`.
pub enum HelloAct {
    Welcome,
    /// No `Welcome`: a `Close` frame (when `frame`), then the transport
    /// closed with `code`.
    Close {
        code: u32,
        frame: bool,
    },
}

/// How the server handles one `SendMessage` (a new one or a retry).
/// Whatever the act, a retry of a transaction id already applied appends
/// nothing and is answered with the original result, `duplicate` set.
pub enum SendAct {
    /// Append, reply, push the event.
    Ack,
    /// Append, push the event, then reply.
    EventFirst,
    /// Append, push, and reply after this long (later frames wait too).
    DelayReply(Duration),
    /// Append, push, reply twice.
    DuplicateReply,
    /// Append and push; the reply waits until the session's next command
    /// has been answered (or the case releases it).
    Hold,
    /// Append and push; never reply.
    Unanswered,
    /// Append, push to the other sessions, drop this connection without
    /// replying.
    AppendThenDrop,
    /// Drop the connection; append nothing.
    DropBeforeAppend,
    /// Reply with this error; append nothing.
    Error(v1::Error),
    /// Reply with a crafted payload; append nothing.
    Crafted(Crafter),
}

/// How the server answers one `GetHistory`.
pub enum HistoryAct {
    Page,
    Crafted(Crafter),
}

/// How the server answers one `Resume`.
pub enum ResumeAct {
    Normal,
    /// Append a live event to each of these rooms after the replay and
    /// before the `ResumeResult` (RESUME-5).
    LiveFirst(Vec<u64>),
}

/// The case's adversity: what the server does differently from a plain
/// confabd. Queues are consumed in order; once empty, the plain behaviour
/// applies.
#[derive(Default)]
pub struct Script {
    pub hellos: VecDeque<HelloAct>,
    pub sends: VecDeque<SendAct>,
    pub histories: VecDeque<HistoryAct>,
    pub resumes: VecDeque<ResumeAct>,
    /// Replays start this many events before the client's position, so it
    /// receives events it has seen (duplicates to drop).
    pub replay_overlap: u64,
    /// Every event pushed is written twice.
    pub duplicate_pushes: bool,
    /// `Ping` on this connection goes unanswered: the server falls silent.
    pub silent_on: Option<ConnId>,
    /// Capabilities every `Welcome` names, asked for or not.
    pub extra_capabilities: Vec<String>,
}

/// One room: its log and whether the user under test is joined.
#[derive(Clone, Debug)]
pub struct Room {
    pub id: u64,
    pub name: String,
    pub epoch: u64,
    pub events: Vec<v1::RoomEvent>,
    pub joined: bool,
}

impl Room {
    pub fn head(&self) -> u64 {
        self.events.len() as u64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenState {
    Valid,
    Expired,
    /// Refresh tokens only: traded for a new pair already.
    Rotated,
    Revoked,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    AwaitingHello,
    Unauthenticated,
    Authenticated,
}

struct Session {
    encoding: Encoding,
    phase: Phase,
    /// Sent `Resume`: room events are pushed to it.
    following: bool,
    /// Request ids received and not answered yet (FRAME-2).
    unanswered: BTreeSet<u64>,
    frames: u64,
}

/// A transaction id's first use.
struct Txn {
    room: u64,
    text: String,
    result: v1::SendResult,
}

pub struct Model {
    pub me: v1::User,
    pub bob: v1::User,
    pub password: String,
    /// The `Welcome` every session gets (its `session_id` and
    /// capabilities are filled in per session).
    pub welcome: v1::Welcome,
    pub script: Script,
    rooms: BTreeMap<u64, Room>,
    access: BTreeMap<String, TokenState>,
    refresh: BTreeMap<String, TokenState>,
    /// A random tag in every token, so a token leaked into the driver's
    /// output is recognised (AUTH-2).
    tag: String,
    issued: u64,
    txns: BTreeMap<String, Txn>,
    sessions: BTreeMap<ConnId, Session>,
    next_session_id: u64,
    clock_ms: u64,
    /// Replies held back by [`SendAct::Hold`].
    held: Writes,
    /// Logins and authentications, for cases to read.
    pub logins: u32,
}

impl Model {
    pub fn new(username: &str, password: &str) -> Model {
        let me = v1::User { user_id: 42, name: username.into(), guest: false, ..Default::default() };
        let bob = v1::User { user_id: 43, name: "bob".into(), guest: false, ..Default::default() };
        let mut model = Model {
            me: me.clone(),
            bob: bob.clone(),
            password: password.into(),
            welcome: v1::Welcome {
                version: confab_protocol::PROTOCOL_VERSION,
                feature_level: confab_protocol::FEATURE_LEVEL,
                capabilities: Vec::new(),
                server_name: "confab-conformance".into(),
                server_version: env!("CARGO_PKG_VERSION").into(),
                ping_interval_ms: 20_000,
                idle_timeout_ms: 60_000,
                limits: Some(v1::Limits {
                    max_frame_bytes_unauthenticated: 16_384,
                    max_frame_bytes: 262_144,
                    max_message_bytes: 16_384,
                    max_history_page: 100,
                    max_outbound_queue_bytes: 1 << 20,
                    max_resume_events: 1000,
                    ..Default::default()
                }),
                session_id: 0,
                ..Default::default()
            },
            script: Script::default(),
            rooms: BTreeMap::new(),
            access: BTreeMap::new(),
            refresh: BTreeMap::new(),
            tag: format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
            issued: 0,
            txns: BTreeMap::new(),
            sessions: BTreeMap::new(),
            next_session_id: 1_000_000_000_007,
            clock_ms: 1_767_225_600_000,
            held: Vec::new(),
            logins: 0,
        };
        let public = v1::RoomKind::Public as i32;
        model.add_room(LOUNGE, "lounge");
        model.append_quietly(LOUNGE, &bob, Kind::RoomCreated(v1::RoomCreated { name: "lounge".into(), kind: public }));
        model.append_quietly(LOUNGE, &bob, Kind::MemberJoined(v1::MemberJoined {}));
        model.append_quietly(LOUNGE, &me, Kind::MemberJoined(v1::MemberJoined {}));
        model.add_room(DEN, "den");
        model.append_quietly(DEN, &me, Kind::RoomCreated(v1::RoomCreated { name: "den".into(), kind: public }));
        model.append_quietly(DEN, &me, Kind::MemberJoined(v1::MemberJoined {}));
        model
    }

    // ---- the world, for cases ------------------------------------------

    /// Adds an empty room the user has joined.
    pub fn add_room(&mut self, id: u64, name: &str) {
        let room = Room { id, name: name.into(), epoch: 1, events: Vec::new(), joined: true };
        self.rooms.insert(id, room);
    }

    pub fn room(&self, id: u64) -> Option<&Room> {
        self.rooms.get(&id)
    }

    pub fn room_mut(&mut self, id: u64) -> Option<&mut Room> {
        self.rooms.get_mut(&id)
    }

    pub fn limits(&self) -> v1::Limits {
        self.welcome.limits.unwrap_or_default()
    }

    /// Appends an event to a room's log without pushing it (the user
    /// misses it until it resumes or reads history).
    pub fn append_quietly(&mut self, room: u64, sender: &v1::User, kind: Kind) -> v1::RoomEvent {
        let template = v1::RoomEvent { sender: Some(sender.clone()), kind: Some(kind), ..Default::default() };
        self.append_event(room, template)
    }

    /// Appends `template` (its position and, when 0, its time filled in)
    /// without pushing it. An unknown room is created.
    pub fn append_event(&mut self, room: u64, mut template: v1::RoomEvent) -> v1::RoomEvent {
        self.clock_ms += 1000;
        let clock = self.clock_ms;
        let log = self.rooms.entry(room).or_insert_with(|| Room {
            id: room,
            name: format!("room{room}"),
            epoch: 1,
            events: Vec::new(),
            joined: true,
        });
        template.room_id = room;
        template.epoch = log.epoch;
        template.seq = log.head() + 1;
        if template.server_time_ms == 0 {
            template.server_time_ms = clock;
        }
        log.events.push(template.clone());
        template
    }

    /// A message from bob, appended and pushed to every following session.
    pub fn bob_says(&mut self, room: u64, text: &str) -> (v1::RoomEvent, Writes) {
        let bob = self.bob.clone();
        let event = self.append_quietly(room, &bob, message(text, ""));
        let writes = self.push_event(&event, None);
        (event, writes)
    }

    /// Pushes an event to every session following its room (`except` one).
    pub fn push_event(&self, event: &v1::RoomEvent, except: Option<ConnId>) -> Writes {
        let followed = self.rooms.get(&event.room_id).is_some_and(|room| room.joined);
        if !followed {
            return Vec::new();
        }
        let frame = push(Body::Event(event.clone()));
        let mut writes = Vec::new();
        for conn in self.followers() {
            if Some(conn) == except {
                continue;
            }
            writes.push((conn, WriteOp::Frame(frame.clone())));
            if self.script.duplicate_pushes {
                writes.push((conn, WriteOp::Frame(frame.clone())));
            }
        }
        writes
    }

    /// The sessions that receive room events.
    pub fn followers(&self) -> Vec<ConnId> {
        self.sessions.iter().filter(|(_, s)| s.following).map(|(conn, _)| *conn).collect()
    }

    pub fn is_following(&self, conn: ConnId) -> bool {
        self.sessions.get(&conn).is_some_and(|s| s.following)
    }

    /// The log was rebuilt (a restore): a new epoch, positions of the old
    /// one are void (LOG-3).
    pub fn rebuild(&mut self, room: u64) {
        if let Some(room) = self.rooms.get_mut(&room) {
            room.epoch += 1;
            let epoch = room.epoch;
            for event in &mut room.events {
                event.epoch = epoch;
            }
        }
    }

    /// The user left the room on another device.
    pub fn leave_elsewhere(&mut self, room: u64) {
        let me = self.me.clone();
        self.append_quietly(room, &me, Kind::MemberLeft(v1::MemberLeft {}));
        if let Some(room) = self.rooms.get_mut(&room) {
            room.joined = false;
        }
    }

    /// Every valid access token expires (the next `Authenticate` with one
    /// is answered `TOKEN_EXPIRED`).
    pub fn expire_access_tokens(&mut self) {
        for state in self.access.values_mut() {
            if *state == TokenState::Valid {
                *state = TokenState::Expired;
            }
        }
    }

    /// Every token issued so far: none may appear in the driver's output
    /// (AUTH-2). The password is not among them: the driver is given it.
    pub fn secrets(&self) -> Vec<String> {
        self.access.keys().chain(self.refresh.keys()).cloned().collect()
    }

    /// The access token currently valid, if any.
    pub fn current_access_token(&self) -> Option<String> {
        self.access.iter().find(|(_, state)| **state == TokenState::Valid).map(|(token, _)| token.clone())
    }

    /// The refresh token currently valid, if any.
    pub fn current_refresh_token(&self) -> Option<String> {
        self.refresh.iter().find(|(_, state)| **state == TokenState::Valid).map(|(token, _)| token.clone())
    }

    /// The replies held back by [`SendAct::Hold`], to write now.
    pub fn release_held(&mut self) -> Writes {
        std::mem::take(&mut self.held)
    }

    // ---- connections ---------------------------------------------------

    pub fn opened(&mut self, conn: ConnId, encoding: Encoding) {
        let session =
            Session { encoding, phase: Phase::AwaitingHello, following: false, unanswered: BTreeSet::new(), frames: 0 };
        self.sessions.insert(conn, session);
    }

    pub fn closed(&mut self, conn: ConnId) {
        self.sessions.remove(&conn);
        self.held.retain(|(held, _)| *held != conn);
    }

    /// The largest frame the session accepts now (LIMIT-1).
    pub fn frame_limit(&self, conn: ConnId) -> usize {
        let limits = self.limits();
        let authenticated = self.sessions.get(&conn).is_some_and(|s| s.phase == Phase::Authenticated);
        let limit = if authenticated { limits.max_frame_bytes } else { limits.max_frame_bytes_unauthenticated };
        limit as usize
    }

    /// A frame the client sent on `conn`.
    pub fn handle(&mut self, conn: ConnId, frame: &v1::ClientFrame) -> Effects {
        let mut effects = Effects::default();
        let Some(session) = self.sessions.get_mut(&conn) else { return effects };
        session.frames += 1;
        let first = session.frames == 1;
        let request_id = frame.request_id;
        if request_id == 0 {
            effects.breaches.push(Check::of("FRAME-2", false, "a frame with request id 0"));
        } else if !session.unanswered.insert(request_id) {
            effects.breaches.push(Check::of(
                "FRAME-2",
                false,
                format!("request id {request_id} reused while the request with that id awaits its reply"),
            ));
        }
        let Some(command) = &frame.command else {
            effects.breaches.push(Check::of("FRAME-2", false, format!("request {request_id} carries no command")));
            effects.writes.push(self.error(conn, request_id, v1::ErrorCode::UnknownCommand, "no command"));
            return effects;
        };
        if first && !matches!(command, Command::Hello(_)) {
            effects.breaches.push(Check::of(
                "HELLO-1",
                false,
                format!("the first frame is {}, not Hello", name(command)),
            ));
        }
        if !matches!(command, Command::Hello(_)) && self.phase(conn) == Phase::AwaitingHello {
            effects.writes.push(self.error(conn, request_id, v1::ErrorCode::WrongState, "send Hello first"));
            return effects;
        }
        // A reply held back earlier goes out once this later command is
        // answered (FRAME-4: replies in another order than the requests).
        let (held_earlier, others): (Writes, Writes) = self.held.drain(..).partition(|(c, _)| *c == conn);
        self.held = others;
        let mut writes = match command {
            Command::Hello(hello) => self.hello(conn, request_id, hello, &mut effects.breaches),
            Command::Ping(_) if self.script.silent_on == Some(conn) => Vec::new(),
            Command::Ping(_) => vec![self.reply(conn, request_id, Body::Pong(v1::Pong {}))],
            Command::Login(login) => self.login(conn, request_id, login),
            Command::Authenticate(auth) => self.authenticate(conn, request_id, &auth.access_token),
            Command::Refresh(refresh) => self.refresh(conn, request_id, &refresh.refresh_token),
            Command::Logout(_) => self.logout(conn, request_id),
            Command::Resume(resume) => self.resume(conn, request_id, resume),
            Command::SendMessage(send) => self.send(conn, request_id, send),
            Command::GetHistory(get) => self.history(conn, request_id, get),
            Command::JoinRoom(join) => self.join(conn, request_id, join),
            Command::ListRooms(_) => self.list_rooms(conn, request_id),
            other => vec![self.error(
                conn,
                request_id,
                v1::ErrorCode::UnknownCommand,
                &format!("the scripted server does not play {}", name(other)),
            )],
        };
        writes.extend(held_earlier);
        effects.writes.extend(writes);
        effects
    }

    // ---- commands ------------------------------------------------------

    fn hello(&mut self, conn: ConnId, request_id: u64, hello: &v1::Hello, breaches: &mut Vec<Check>) -> Writes {
        if self.phase(conn) != Phase::AwaitingHello {
            return vec![self.error(conn, request_id, v1::ErrorCode::WrongState, "Hello was received already")];
        }
        if !hello.versions.contains(&confab_protocol::PROTOCOL_VERSION) {
            breaches.push(Check::of("HELLO-1", false, format!("Hello offers versions {:?}, not 1", hello.versions)));
        }
        match self.script.hellos.pop_front().unwrap_or(HelloAct::Welcome) {
            HelloAct::Close { code, frame } => {
                let mut writes = Vec::new();
                if frame {
                    let close = v1::Close { code: code as i32, reason: "scripted close".into() };
                    writes.push((conn, WriteOp::Frame(push(Body::Close(close)))));
                }
                writes.push((conn, WriteOp::Close { code, reason: "scripted close".into() }));
                writes
            }
            HelloAct::Welcome => {
                let mut welcome = self.welcome.clone();
                welcome.session_id = self.next_session_id;
                self.next_session_id += 1;
                let mut capabilities: Vec<String> =
                    hello.capabilities.iter().filter(|c| c.as_str() == "resume").cloned().collect();
                capabilities.extend(self.script.extra_capabilities.iter().cloned());
                capabilities.sort();
                capabilities.dedup();
                welcome.capabilities = capabilities;
                self.set_phase(conn, Phase::Unauthenticated);
                vec![self.reply(conn, request_id, Body::Welcome(welcome))]
            }
        }
    }

    fn login(&mut self, conn: ConnId, request_id: u64, login: &v1::Login) -> Writes {
        if self.phase(conn) != Phase::Unauthenticated {
            return vec![self.error(conn, request_id, v1::ErrorCode::WrongState, "log out first")];
        }
        if !login.username.eq_ignore_ascii_case(&self.me.name) || login.password != self.password {
            return vec![self.error(conn, request_id, v1::ErrorCode::InvalidCredentials, "wrong name or password")];
        }
        self.logins += 1;
        let auth = self.issue_tokens();
        self.set_phase(conn, Phase::Authenticated);
        vec![self.reply(conn, request_id, Body::Auth(auth))]
    }

    fn authenticate(&mut self, conn: ConnId, request_id: u64, token: &str) -> Writes {
        if self.phase(conn) != Phase::Unauthenticated {
            return vec![self.error(conn, request_id, v1::ErrorCode::WrongState, "log out first")];
        }
        match self.access.get(token) {
            Some(TokenState::Valid) => {
                self.set_phase(conn, Phase::Authenticated);
                let auth = v1::AuthResult { user: Some(self.me.clone()), ..Default::default() };
                vec![self.reply(conn, request_id, Body::Auth(auth))]
            }
            Some(TokenState::Expired) => {
                vec![self.error(conn, request_id, v1::ErrorCode::TokenExpired, "the access token has expired")]
            }
            _ => vec![self.error(conn, request_id, v1::ErrorCode::TokenInvalid, "unknown or revoked access token")],
        }
    }

    fn refresh(&mut self, conn: ConnId, request_id: u64, token: &str) -> Writes {
        match self.refresh.get(token).copied() {
            Some(TokenState::Valid) => {
                self.refresh.insert(token.to_owned(), TokenState::Rotated);
                let auth = self.issue_tokens();
                vec![self.reply(conn, request_id, Body::Auth(auth))]
            }
            Some(TokenState::Rotated) => {
                // Someone holds a copy: the whole family is revoked (AUTH-9).
                for state in self.access.values_mut().chain(self.refresh.values_mut()) {
                    *state = TokenState::Revoked;
                }
                vec![self.error(conn, request_id, v1::ErrorCode::TokenReused, "this refresh token was used already")]
            }
            _ => vec![self.error(conn, request_id, v1::ErrorCode::TokenInvalid, "unknown or revoked refresh token")],
        }
    }

    fn logout(&mut self, conn: ConnId, request_id: u64) -> Writes {
        if self.phase(conn) != Phase::Authenticated {
            return vec![self.error(conn, request_id, v1::ErrorCode::WrongState, "log in first")];
        }
        for state in self.access.values_mut().chain(self.refresh.values_mut()) {
            *state = TokenState::Revoked;
        }
        self.set_phase(conn, Phase::Unauthenticated);
        if let Some(session) = self.sessions.get_mut(&conn) {
            session.following = false;
        }
        vec![self.reply(conn, request_id, Body::Done(v1::Done {}))]
    }

    fn resume(&mut self, conn: ConnId, request_id: u64, resume: &v1::Resume) -> Writes {
        if self.phase(conn) != Phase::Authenticated {
            return vec![self.error(conn, request_id, v1::ErrorCode::WrongState, "log in first")];
        }
        let positions: BTreeMap<u64, (u64, u64)> =
            resume.positions.iter().map(|p| (p.room_id, (p.epoch, p.seq))).collect();
        let max_events = u64::from(self.limits().max_resume_events);
        let mut writes = Vec::new();
        let mut statuses = Vec::new();
        for room in self.rooms.values().filter(|room| room.joined) {
            let position = positions.get(&room.id).map(|&(epoch, seq)| (Epoch(epoch), Seq(seq)));
            let head = room.head();
            let status = |outcome: v1::ResumeOutcome, replayed: u64| v1::RoomResumeStatus {
                room_id: room.id,
                epoch: room.epoch,
                head_seq: head,
                outcome: outcome as i32,
                replayed,
            };
            match resume::plan(position, Epoch(room.epoch), Seq(head), max_events) {
                ResumePlan::Live => statuses.push(status(v1::ResumeOutcome::Live, 0)),
                ResumePlan::Reset => statuses.push(status(v1::ResumeOutcome::Reset, 0)),
                ResumePlan::Replay { after, .. } => {
                    let from = after.0.saturating_sub(self.script.replay_overlap);
                    let replay: Vec<_> = room.events.iter().filter(|e| e.seq > from).collect();
                    for event in &replay {
                        writes.push((conn, WriteOp::Frame(push(Body::Event((*event).clone())))));
                    }
                    statuses.push(status(v1::ResumeOutcome::Replayed, head - after.0));
                }
            }
        }
        for (&room_id, _) in positions.iter().filter(|(id, _)| !self.rooms.get(id).is_some_and(|r| r.joined)) {
            let gone = v1::RoomResumeStatus { room_id, outcome: v1::ResumeOutcome::Gone as i32, ..Default::default() };
            statuses.push(gone);
        }
        if let Some(session) = self.sessions.get_mut(&conn) {
            session.following = true;
        }
        if let Some(ResumeAct::LiveFirst(rooms)) = self.script.resumes.pop_front() {
            for room in rooms {
                let (_, pushed) = self.bob_says(room, "live, before the resume result");
                writes.extend(pushed);
            }
        }
        writes.push(self.reply(conn, request_id, Body::Resumed(v1::ResumeResult { rooms: statuses })));
        writes
    }

    fn send(&mut self, conn: ConnId, request_id: u64, send: &v1::SendMessage) -> Writes {
        if self.phase(conn) != Phase::Authenticated {
            return vec![self.error(conn, request_id, v1::ErrorCode::WrongState, "log in first")];
        }
        let Some(room) = self.find_room(send.room.as_ref()) else {
            return vec![self.error(conn, request_id, v1::ErrorCode::RoomNotFound, "no such room")];
        };
        if !self.rooms.get(&room).is_some_and(|r| r.joined) {
            return vec![self.error(conn, request_id, v1::ErrorCode::NotAMember, "join the room first")];
        }
        if send.text.trim().is_empty() || send.client_txn_id.is_empty() || send.client_txn_id.len() > 64 {
            return vec![self.error(conn, request_id, v1::ErrorCode::InvalidArgument, "text or client_txn_id")];
        }
        if send.text.len() > self.limits().max_message_bytes as usize {
            return vec![self.error(conn, request_id, v1::ErrorCode::MessageTooLong, "text over max_message_bytes")];
        }
        let earlier = self.txns.get(&send.client_txn_id).map(|t| (t.room == room && t.text == send.text, t.result));
        if let Some((false, _)) = earlier {
            return vec![self.error(conn, request_id, v1::ErrorCode::TxnConflict, "client_txn_id used for another")];
        }
        let act = self.script.sends.pop_front().unwrap_or(SendAct::Ack);
        let appends = !matches!(act, SendAct::DropBeforeAppend | SendAct::Error(_) | SendAct::Crafted(_));
        let (result, event) = match earlier {
            Some((_, result)) => (v1::SendResult { duplicate: true, ..result }, None),
            None if appends => {
                let me = self.me.clone();
                let event = self.append_quietly(room, &me, message(&send.text, &send.client_txn_id));
                let result = v1::SendResult {
                    room_id: room,
                    epoch: event.epoch,
                    seq: event.seq,
                    server_time_ms: event.server_time_ms,
                    duplicate: false,
                };
                let txn = Txn { room, text: send.text.clone(), result };
                self.txns.insert(send.client_txn_id.clone(), txn);
                (result, Some(event))
            }
            None => (v1::SendResult::default(), None),
        };
        let pushes = |model: &Model, except| event.as_ref().map(|e| model.push_event(e, except)).unwrap_or_default();
        let sent = Body::Sent(result);
        match act {
            SendAct::Ack => {
                let mut writes = vec![self.reply(conn, request_id, sent)];
                writes.extend(pushes(self, None));
                writes
            }
            SendAct::EventFirst => {
                let mut writes = pushes(self, None);
                writes.push(self.reply(conn, request_id, sent));
                writes
            }
            SendAct::DelayReply(delay) => {
                let mut writes = pushes(self, None);
                writes.push((conn, WriteOp::Pause(delay)));
                writes.push(self.reply(conn, request_id, sent));
                writes
            }
            SendAct::DuplicateReply => {
                let mut writes = vec![self.reply(conn, request_id, sent.clone())];
                writes.push((conn, WriteOp::Frame(v1::ServerFrame { request_id, body: Some(sent) })));
                writes.extend(pushes(self, None));
                writes
            }
            SendAct::Hold => {
                let reply = self.reply(conn, request_id, sent);
                self.held.push(reply);
                pushes(self, None)
            }
            SendAct::Unanswered => pushes(self, None),
            SendAct::AppendThenDrop => {
                let mut writes = pushes(self, Some(conn));
                writes.push((conn, WriteOp::Drop));
                writes
            }
            SendAct::DropBeforeAppend => vec![(conn, WriteOp::Drop)],
            SendAct::Error(error) => vec![self.reply(conn, request_id, Body::Error(error))],
            SendAct::Crafted(craft) => vec![self.crafted_reply(conn, request_id, &craft)],
        }
    }

    fn history(&mut self, conn: ConnId, request_id: u64, get: &v1::GetHistory) -> Writes {
        if self.phase(conn) != Phase::Authenticated {
            return vec![self.error(conn, request_id, v1::ErrorCode::WrongState, "log in first")];
        }
        let Some(room) = self.find_room(get.room.as_ref()).and_then(|id| self.rooms.get(&id)) else {
            return vec![self.error(conn, request_id, v1::ErrorCode::RoomNotFound, "no such room")];
        };
        let max = self.limits().max_history_page;
        let limit = if get.limit == 0 { max } else { get.limit };
        if limit > max {
            return vec![self.error(conn, request_id, v1::ErrorCode::InvalidArgument, "limit over max_history_page")];
        }
        let limit = limit as usize;
        let (events, has_more) = if get.direction == v1::HistoryDirection::Forward as i32 {
            let after: Vec<_> = room.events.iter().filter(|e| e.seq > get.anchor_seq).cloned().collect();
            let more = after.len() > limit;
            (after.into_iter().take(limit).collect::<Vec<_>>(), more)
        } else {
            let anchor = if get.anchor_seq == 0 { u64::MAX } else { get.anchor_seq };
            let before: Vec<_> = room.events.iter().filter(|e| e.seq < anchor).cloned().collect();
            let more = before.len() > limit;
            (before[before.len().saturating_sub(limit)..].to_vec(), more)
        };
        let page = v1::HistoryPage {
            room_id: room.id,
            epoch: room.epoch,
            events,
            has_more,
            head_seq: room.head(),
            ..Default::default()
        };
        match self.script.histories.pop_front().unwrap_or(HistoryAct::Page) {
            HistoryAct::Page => vec![self.reply(conn, request_id, Body::History(page))],
            HistoryAct::Crafted(craft) => vec![self.crafted_reply(conn, request_id, &craft)],
        }
    }

    fn join(&mut self, conn: ConnId, request_id: u64, join: &v1::JoinRoom) -> Writes {
        if self.phase(conn) != Phase::Authenticated {
            return vec![self.error(conn, request_id, v1::ErrorCode::WrongState, "log in first")];
        }
        match self.find_room(join.room.as_ref()).and_then(|id| self.rooms.get(&id)).filter(|r| r.joined) {
            Some(room) => {
                let info = self.room_info(room);
                vec![self.reply(conn, request_id, Body::Room(info))]
            }
            None => vec![self.error(conn, request_id, v1::ErrorCode::RoomNotFound, "no such room")],
        }
    }

    fn list_rooms(&mut self, conn: ConnId, request_id: u64) -> Writes {
        if self.phase(conn) != Phase::Authenticated {
            return vec![self.error(conn, request_id, v1::ErrorCode::WrongState, "log in first")];
        }
        let rooms = self.rooms.values().filter(|r| r.joined).map(|r| self.room_info(r)).collect();
        vec![self.reply(conn, request_id, Body::Rooms(v1::RoomList { rooms }))]
    }

    // ---- helpers -------------------------------------------------------

    fn phase(&self, conn: ConnId) -> Phase {
        self.sessions.get(&conn).map_or(Phase::AwaitingHello, |s| s.phase)
    }

    fn set_phase(&mut self, conn: ConnId, phase: Phase) {
        if let Some(session) = self.sessions.get_mut(&conn) {
            session.phase = phase;
        }
    }

    fn issue_tokens(&mut self) -> v1::AuthResult {
        self.issued += 1;
        let (access, refresh) =
            (format!("at-{}-{}", self.tag, self.issued), format!("rt-{}-{}", self.tag, self.issued));
        self.access.insert(access.clone(), TokenState::Valid);
        self.refresh.insert(refresh.clone(), TokenState::Valid);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        v1::AuthResult {
            user: Some(self.me.clone()),
            access_token: access,
            access_expires_at_ms: now + 15 * 60 * 1000,
            refresh_token: refresh,
            refresh_expires_at_ms: now + 30 * 24 * 3600 * 1000,
        }
    }

    fn find_room(&self, room: Option<&v1::RoomRef>) -> Option<u64> {
        match room?.room.as_ref()? {
            v1::room_ref::Room::Id(id) => self.rooms.contains_key(id).then_some(*id),
            v1::room_ref::Room::Name(name) => {
                let name = name.trim_start_matches('#');
                self.rooms.values().find(|r| r.name.eq_ignore_ascii_case(name)).map(|r| r.id)
            }
        }
    }

    fn room_info(&self, room: &Room) -> v1::RoomInfo {
        v1::RoomInfo {
            room_id: room.id,
            name: room.name.clone(),
            kind: v1::RoomKind::Public as i32,
            epoch: room.epoch,
            head_seq: room.head(),
            member_count: 2,
            membership: v1::Membership::Joined as i32,
            ..Default::default()
        }
    }

    /// The reply to `request_id`: it is answered from now on.
    fn reply(&mut self, conn: ConnId, request_id: u64, body: Body) -> (ConnId, WriteOp) {
        if let Some(session) = self.sessions.get_mut(&conn) {
            session.unanswered.remove(&request_id);
        }
        (conn, WriteOp::Frame(v1::ServerFrame { request_id, body: Some(body) }))
    }

    fn error(&mut self, conn: ConnId, request_id: u64, code: v1::ErrorCode, message: &str) -> (ConnId, WriteOp) {
        self.reply(conn, request_id, Body::Error(v1::Error::new(code, message)))
    }

    fn crafted_reply(&mut self, conn: ConnId, request_id: u64, craft: &Crafter) -> (ConnId, WriteOp) {
        let encoding = self.sessions.get(&conn).map_or(Encoding::Proto, |s| s.encoding);
        if let Some(session) = self.sessions.get_mut(&conn) {
            session.unanswered.remove(&request_id);
        }
        let (payload, what) = craft(encoding, request_id);
        (conn, WriteOp::Crafted { payload, what })
    }
}

/// A push (request id 0).
pub fn push(body: Body) -> v1::ServerFrame {
    v1::ServerFrame { request_id: 0, body: Some(body) }
}

/// A `Message` event kind.
pub fn message(text: &str, client_txn_id: &str) -> Kind {
    Kind::Message(v1::Message { text: text.into(), client_txn_id: client_txn_id.into(), ..Default::default() })
}

/// A command's name, for messages.
pub fn name(command: &Command) -> &'static str {
    match command {
        Command::Hello(_) => "Hello",
        Command::Ping(_) => "Ping",
        Command::Register(_) => "Register",
        Command::Login(_) => "Login",
        Command::Refresh(_) => "Refresh",
        Command::Logout(_) => "Logout",
        Command::Authenticate(_) => "Authenticate",
        Command::GuestLogin(_) => "GuestLogin",
        Command::CreateRoom(_) => "CreateRoom",
        Command::JoinRoom(_) => "JoinRoom",
        Command::LeaveRoom(_) => "LeaveRoom",
        Command::InviteToRoom(_) => "InviteToRoom",
        Command::ListRooms(_) => "ListRooms",
        Command::ListMembers(_) => "ListMembers",
        Command::OpenDirect(_) => "OpenDirect",
        Command::SendMessage(_) => "SendMessage",
        Command::GetHistory(_) => "GetHistory",
        Command::Resume(_) => "Resume",
        Command::UpdateRoom(_) => "UpdateRoom",
        Command::SetNotificationLevel(_) => "SetNotificationLevel",
        Command::EditMessage(_) => "EditMessage",
        Command::DeleteMessage(_) => "DeleteMessage",
        Command::React(_) => "React",
        Command::GetThread(_) => "GetThread",
        Command::MarkRead(_) => "MarkRead",
        Command::MarkDelivered(_) => "MarkDelivered",
        Command::GetReceipts(_) => "GetReceipts",
        Command::SetTyping(_) => "SetTyping",
        Command::SetPresence(_) => "SetPresence",
        Command::GetProfile(_) => "GetProfile",
        Command::SetProfile(_) => "SetProfile",
        Command::SearchUsers(_) => "SearchUsers",
        Command::GetFile(_) => "GetFile",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(request_id: u64, command: Command) -> v1::ClientFrame {
        v1::ClientFrame { request_id, command: Some(command) }
    }

    fn frames(effects: &Effects) -> Vec<v1::ServerFrame> {
        effects
            .writes
            .iter()
            .filter_map(|(_, op)| match op {
                WriteOp::Frame(frame) => Some(frame.clone()),
                _ => None,
            })
            .collect()
    }

    fn logged_in() -> Model {
        let mut model = Model::new("ada", "secret password");
        model.opened(1, Encoding::Proto);
        let hello = v1::Hello { versions: vec![1], capabilities: vec!["resume".into()], ..Default::default() };
        model.handle(1, &frame(1, Command::Hello(hello)));
        let login = v1::Login { username: "ada".into(), password: "secret password".into(), ..Default::default() };
        let effects = model.handle(1, &frame(2, Command::Login(login)));
        assert!(matches!(frames(&effects)[0].body, Some(Body::Auth(_))));
        model
    }

    #[test]
    fn resume_replays_resets_and_forgets_as_the_protocol_says() {
        let mut model = logged_in();
        model.welcome.limits.as_mut().unwrap().max_resume_events = 2;
        model.bob_says(DEN, "one");
        model.leave_elsewhere(77);
        let positions = vec![
            v1::RoomPosition { room_id: LOUNGE, epoch: 1, seq: 2 },
            v1::RoomPosition { room_id: DEN, epoch: 1, seq: 0 },
            v1::RoomPosition { room_id: 77, epoch: 1, seq: 1 },
        ];
        let effects = model.handle(1, &frame(3, Command::Resume(v1::Resume { positions })));
        let frames = frames(&effects);
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert!(matches!(&frames[0].body, Some(Body::Event(e)) if e.room_id == LOUNGE && e.seq == 3));
        let Some(Body::Resumed(result)) = &frames[1].body else { panic!("{frames:?}") };
        let outcomes: Vec<_> = result.rooms.iter().map(|s| (s.room_id, s.outcome)).collect();
        assert_eq!(
            outcomes,
            [
                (DEN, v1::ResumeOutcome::Reset as i32),
                (LOUNGE, v1::ResumeOutcome::Replayed as i32),
                (77, v1::ResumeOutcome::Gone as i32)
            ]
        );
        assert!(model.is_following(1));
    }

    #[test]
    fn a_retried_send_is_answered_with_the_original_result() {
        let mut model = logged_in();
        model.script.sends.push_back(SendAct::AppendThenDrop);
        let send = || {
            Command::SendMessage(v1::SendMessage {
                room: Some(v1::RoomRef::id(confab_protocol::RoomId(LOUNGE))),
                text: "hi".into(),
                client_txn_id: "t1".into(),
                ..Default::default()
            })
        };
        let effects = model.handle(1, &frame(3, send()));
        assert!(matches!(effects.writes.last(), Some((1, WriteOp::Drop))));
        let effects = model.handle(1, &frame(4, send()));
        let Some(Body::Sent(sent)) = &frames(&effects)[0].body else { panic!() };
        assert!(sent.duplicate);
        assert_eq!(sent.seq, 4);
        assert_eq!(model.room(LOUNGE).unwrap().head(), 4);
    }

    #[test]
    fn tokens_expire_rotate_and_a_reused_refresh_token_revokes_the_family() {
        let mut model = logged_in();
        let refresh = model.current_refresh_token().unwrap();
        model.expire_access_tokens();
        model.opened(2, Encoding::Proto);
        model.handle(2, &frame(1, Command::Hello(v1::Hello { versions: vec![1], ..Default::default() })));
        let access = model.secrets().into_iter().find(|t| t.starts_with("at-")).unwrap();
        let effects = model.handle(2, &frame(2, Command::Authenticate(v1::Authenticate { access_token: access })));
        assert!(
            matches!(&frames(&effects)[0].body, Some(Body::Error(e)) if e.code == v1::ErrorCode::TokenExpired as i32)
        );
        let effects = model.handle(2, &frame(3, Command::Refresh(v1::Refresh { refresh_token: refresh.clone() })));
        assert!(matches!(&frames(&effects)[0].body, Some(Body::Auth(a)) if !a.access_token.is_empty()));
        let effects = model.handle(2, &frame(4, Command::Refresh(v1::Refresh { refresh_token: refresh })));
        assert!(
            matches!(&frames(&effects)[0].body, Some(Body::Error(e)) if e.code == v1::ErrorCode::TokenReused as i32)
        );
        assert_eq!(model.current_refresh_token(), None);
    }

    #[test]
    fn breaches_of_the_envelope_are_reported() {
        let mut model = Model::new("ada", "pw");
        model.opened(1, Encoding::Json);
        let effects = model.handle(1, &frame(0, Command::Ping(v1::Ping {})));
        let cited: Vec<_> = effects.breaches.iter().map(|c| c.requirement.as_str()).collect();
        assert_eq!(cited, ["FRAME-2", "HELLO-1"]);
    }
}
